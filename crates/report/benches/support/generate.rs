//! A large, realistic aggregate report generated deterministically, shared by the criterion
//! benchmark and the `agg_timing` example (included with `#[path]`).

use std::fmt::Write as _;

/// A small deterministic PRNG (xorshift64*), so every run measures the same document.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A report shaped like a large receiver's: `records` rows with a realistic spread of
/// IPv4/IPv6 sources, counts, results, signatures, override reasons and identifiers.
pub fn large_report(records: usize, namespaced: bool) -> String {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut x = String::with_capacity(records * 900);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n");
    if namespaced {
        x.push_str(
            "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n  <version>1.0</version>\n",
        );
    } else {
        x.push_str("<feedback>\n");
    }
    x.push_str(
        "  <report_metadata>\n    <org_name>google.com</org_name>\n    \
         <email>noreply-dmarc-support@google.com</email>\n    \
         <extra_contact_info>https://support.google.com/a/answer/2466580</extra_contact_info>\n    \
         <report_id>13970600164729605250</report_id>\n    <date_range>\n      \
         <begin>1760400000</begin>\n      <end>1760486399</end>\n    </date_range>\n  \
         </report_metadata>\n  <policy_published>\n    <domain>example.com</domain>\n    \
         <adkim>r</adkim>\n    <aspf>r</aspf>\n    <p>quarantine</p>\n    <sp>none</sp>\n    \
         <pct>100</pct>\n    <np>reject</np>\n  </policy_published>\n",
    );
    let senders = [
        "example.com",
        "mail.example.com",
        "news.example.com",
        "sendgrid.net",
        "amazonses.com",
        "mcsv.net",
        "bounces.google.com",
        "outlook.com",
        "spoofer.example",
        "forwarder.example.org",
    ];
    let selectors = ["google", "s1", "s2", "selector1", "k1", "mail", "20230601"];
    let dkim_results = [
        "pass",
        "pass",
        "pass",
        "fail",
        "neutral",
        "temperror",
        "none",
    ];
    let spf_results = [
        "pass",
        "pass",
        "fail",
        "softfail",
        "neutral",
        "none",
        "temperror",
    ];
    let dispositions = ["none", "none", "none", "quarantine", "reject", "pass"];
    let reasons = [
        "forwarded",
        "mailing_list",
        "local_policy",
        "trusted_forwarder",
    ];
    for _ in 0..records {
        let ip = if rng.below(5) == 0 {
            format!(
                "2a01:{:x}:{:x}:{:x}::{:x}",
                rng.below(0xffff),
                rng.below(0xffff),
                rng.below(0xffff),
                rng.below(0xffff)
            )
        } else {
            format!(
                "{}.{}.{}.{}",
                rng.below(223) + 1,
                rng.below(256),
                rng.below(256),
                rng.below(256)
            )
        };
        let count = match rng.below(10) {
            0..=5 => 1 + rng.below(3),
            6..=8 => 1 + rng.below(200),
            _ => 1 + rng.below(50_000),
        };
        let d_eval = if rng.below(3) == 0 { "fail" } else { "pass" };
        let s_eval = if rng.below(3) == 0 { "fail" } else { "pass" };
        let _ = write!(
            x,
            "  <record>\n    <row>\n      <source_ip>{ip}</source_ip>\n      <count>{count}</count>\n      \
             <policy_evaluated>\n        <disposition>{}</disposition>\n        <dkim>{d_eval}</dkim>\n        \
             <spf>{s_eval}</spf>\n",
            rng.pick(&dispositions)
        );
        if rng.below(12) == 0 {
            let _ = write!(
                x,
                "        <reason>\n          <type>{}</type>\n          <comment>arc=pass as.1.google.com=pass</comment>\n        </reason>\n",
                rng.pick(&reasons)
            );
        }
        let from = rng.pick(&senders);
        let env = rng.pick(&senders);
        let _ = write!(
            x,
            "      </policy_evaluated>\n    </row>\n    <identifiers>\n      <envelope_to>example.net</envelope_to>\n      \
             <envelope_from>{env}</envelope_from>\n      <header_from>{from}</header_from>\n    </identifiers>\n    \
             <auth_results>\n"
        );
        for _ in 0..rng.below(4) {
            let _ = write!(
                x,
                "      <dkim>\n        <domain>{}</domain>\n        <selector>{}</selector>\n        \
                 <result>{}</result>\n",
                rng.pick(&senders),
                rng.pick(&selectors),
                rng.pick(&dkim_results)
            );
            if rng.below(8) == 0 {
                x.push_str("        <human_result>signature verification failed</human_result>\n");
            }
            x.push_str("      </dkim>\n");
        }
        let _ = write!(
            x,
            "      <spf>\n        <domain>{env}</domain>\n        <scope>mfrom</scope>\n        \
             <result>{}</result>\n      </spf>\n    </auth_results>\n  </record>\n",
            rng.pick(&spf_results)
        );
    }
    x.push_str("</feedback>\n");
    x
}
