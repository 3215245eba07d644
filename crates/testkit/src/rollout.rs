//! A generated set of aggregate reports for `example.com` with known senders, and the zone
//! file with their SPF, DMARC, PTR and address records: the fixture of `dmarc sources`
//! and `dmarc rollout`, with the truth the tests compare against.
//!
//! Every report holds the same rows ([`ROWS`]) with their counts multiplied by the
//! reporter's factor: google.com ×3 on 20 days, yahoo.com ×2 on the 10 even days,
//! small.example ×1 on the first 10 days. So the window has 3·20 + 2·10 + 1·10 = 90 units
//! and every total is 90 times the per-unit sum.

/// The domain.
pub const DOMAIN: &str = "example.com";
/// 2024-03-01 00:00:00 UTC, the first day.
pub const FIRST_DAY: i64 = 1_709_251_200;
/// Days of reports.
pub const DAYS: i64 = 20;

/// What a sender really is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// The source name `dmarc sources` must give.
    pub name: &'static str,
    /// `own`, `service`, `forwarder` or `unknown`.
    pub kind: &'static str,
    /// Its addresses.
    pub ips: &'static [&'static str],
}

/// The senders.
pub const SENDERS: &[Sender] = &[
    Sender {
        name: "own servers (ip4:192.0.2.0/28)",
        kind: "own",
        ips: &["192.0.2.10"],
    },
    Sender {
        name: "own servers (example.com)",
        kind: "own",
        ips: &["192.0.2.20"],
    },
    Sender {
        name: "Google Workspace",
        kind: "service",
        ips: &["209.85.220.41"],
    },
    Sender {
        name: "SendGrid (Twilio)",
        kind: "service",
        ips: &["167.89.1.5"],
    },
    Sender {
        name: "forwarder (example.net)",
        kind: "forwarder",
        ips: &["198.51.100.25"],
    },
    Sender {
        name: "forwarder (no reverse DNS)",
        kind: "forwarder",
        ips: &["198.51.100.77"],
    },
    Sender {
        name: "unknown (no reverse DNS)",
        kind: "unknown",
        ips: &["203.0.113.66", "203.0.113.77"],
    },
    Sender {
        name: "unknown (example.org)",
        kind: "unknown",
        ips: &["203.0.113.88"],
    },
];

/// One row of every report, per unit.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// Source IP.
    pub ip: &'static str,
    /// Messages per unit.
    pub count: i64,
    /// `From` domain.
    pub from: &'static str,
    /// Policy-evaluated DKIM.
    pub eval_dkim: &'static str,
    /// Policy-evaluated SPF.
    pub eval_spf: &'static str,
    /// DKIM results: (d, selector, result).
    pub dkim: &'static [(&'static str, &'static str, &'static str)],
    /// SPF result: (domain, result).
    pub spf: (&'static str, &'static str),
    /// Override reason, if any.
    pub reason: Option<&'static str>,
}

/// The rows.
pub const ROWS: &[Row] = &[
    // Own server in SPF, signing.
    Row {
        ip: "192.0.2.10",
        count: 50,
        from: "example.com",
        eval_dkim: "pass",
        eval_spf: "pass",
        dkim: &[("example.com", "mail2024", "pass")],
        spf: ("example.com", "pass"),
        reason: None,
    },
    Row {
        ip: "192.0.2.10",
        count: 5,
        from: "billing.example.com",
        eval_dkim: "pass",
        eval_spf: "fail",
        dkim: &[("example.com", "mail2024", "pass")],
        spf: ("billing.example.com", "none"),
        reason: None,
    },
    // Own server outside SPF (named by FCrDNS), one stream without DKIM.
    Row {
        ip: "192.0.2.20",
        count: 8,
        from: "example.com",
        eval_dkim: "pass",
        eval_spf: "fail",
        dkim: &[("example.com", "mail2024", "pass")],
        spf: ("example.com", "fail"),
        reason: None,
    },
    Row {
        ip: "192.0.2.20",
        count: 2,
        from: "example.com",
        eval_dkim: "fail",
        eval_spf: "fail",
        dkim: &[],
        spf: ("example.com", "fail"),
        reason: None,
    },
    // Aligned service.
    Row {
        ip: "209.85.220.41",
        count: 30,
        from: "example.com",
        eval_dkim: "pass",
        eval_spf: "pass",
        dkim: &[("example.com", "google", "pass")],
        spf: ("example.com", "pass"),
        reason: None,
    },
    // Unaligned service: its own bounce domain and signature.
    Row {
        ip: "167.89.1.5",
        count: 12,
        from: "example.com",
        eval_dkim: "fail",
        eval_spf: "fail",
        dkim: &[("sendgrid.net", "s1", "pass")],
        spf: ("sendgrid.net", "pass"),
        reason: None,
    },
    // A forwarder: SPF fails, the author's DKIM survives (mostly).
    Row {
        ip: "198.51.100.25",
        count: 6,
        from: "example.com",
        eval_dkim: "pass",
        eval_spf: "fail",
        dkim: &[("example.com", "mail2024", "pass")],
        spf: ("example.com", "fail"),
        reason: Some("forwarded"),
    },
    Row {
        ip: "198.51.100.25",
        count: 1,
        from: "example.com",
        eval_dkim: "fail",
        eval_spf: "fail",
        dkim: &[("example.com", "mail2024", "fail")],
        spf: ("example.com", "fail"),
        reason: Some("forwarded"),
    },
    // A mailing list that breaks DKIM, reported as such.
    Row {
        ip: "198.51.100.77",
        count: 3,
        from: "example.com",
        eval_dkim: "fail",
        eval_spf: "fail",
        dkim: &[("example.com", "mail2024", "fail")],
        spf: ("lists.example.org", "pass"),
        reason: Some("mailing_list"),
    },
    // Spoofers.
    Row {
        ip: "203.0.113.66",
        count: 4,
        from: "example.com",
        eval_dkim: "fail",
        eval_spf: "fail",
        dkim: &[],
        spf: ("example.com", "fail"),
        reason: None,
    },
    Row {
        ip: "203.0.113.77",
        count: 2,
        from: "example.com",
        eval_dkim: "fail",
        eval_spf: "fail",
        dkim: &[("example.com", "x", "fail")],
        spf: ("example.com", "fail"),
        reason: None,
    },
    Row {
        ip: "203.0.113.88",
        count: 1,
        from: "example.com",
        eval_dkim: "fail",
        eval_spf: "fail",
        dkim: &[],
        spf: ("example.com", "softfail"),
        reason: None,
    },
];

/// One reporter: its org_name, its factor, and on which days (0 to 19) it reports.
pub type Reporter = (&'static str, i64, fn(i64) -> bool);

/// The reporters.
pub const REPORTERS: &[Reporter] = &[
    ("google.com", 3, |_| true),
    ("yahoo.com", 2, |d| d % 2 == 0),
    ("small.example", 1, |d| d < 10),
];

/// The zone file: SPF, DMARC, PTR and address records of every sender.
pub const ZONE: &str = r#"$TTL 300
example.com.              TXT "v=spf1 ip4:192.0.2.0/28 include:_spf.google.com include:sendgrid.net -all"
_dmarc.example.com.       TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.com"
mx1.example.com.          A 192.0.2.10
mx2.example.com.          A 192.0.2.20
_spf.google.com.          TXT "v=spf1 ip4:209.85.128.0/17 ~all"
mail-sor-f41.google.com.  A 209.85.220.41
sendgrid.net.             TXT "v=spf1 ip4:167.89.0.0/17 ~all"
o1.ptr1234.sendgrid.net.  A 167.89.1.5
relay.example.net.        A 198.51.100.25
10.2.0.192.in-addr.arpa.     PTR mx1.example.com.
20.2.0.192.in-addr.arpa.     PTR mx2.example.com.
41.220.85.209.in-addr.arpa.  PTR mail-sor-f41.google.com.
5.1.89.167.in-addr.arpa.     PTR o1.ptr1234.sendgrid.net.
25.100.51.198.in-addr.arpa.  PTR relay.example.net.
88.113.0.203.in-addr.arpa.   PTR host.spoofer.example.org.
"#;

/// The reports as (file name, XML).
pub fn reports() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (org, factor, on) in REPORTERS {
        for day in (0..DAYS).filter(|d| on(*d)) {
            let begin = FIRST_DAY + day * 86_400;
            let mut x = format!(
                "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>{org}</org_name>\
                 <email>noreply-dmarc@{org}</email><report_id>{org}-{day}</report_id>\
                 <date_range><begin>{begin}</begin><end>{}</end></date_range></report_metadata>\
                 <policy_published><domain>{DOMAIN}</domain><adkim>r</adkim><aspf>r</aspf>\
                 <p>none</p><sp>none</sp><pct>100</pct></policy_published>",
                begin + 86_399
            );
            for r in ROWS {
                let reason = r.reason.map_or(String::new(), |t| {
                    format!("<reason><type>{t}</type></reason>")
                });
                x.push_str(&format!(
                    "<record><row><source_ip>{}</source_ip><count>{}</count><policy_evaluated>\
                     <disposition>none</disposition><dkim>{}</dkim><spf>{}</spf>{reason}\
                     </policy_evaluated></row><identifiers><header_from>{}</header_from>\
                     </identifiers><auth_results>",
                    r.ip,
                    r.count * factor,
                    r.eval_dkim,
                    r.eval_spf,
                    r.from
                ));
                for (d, s, res) in r.dkim {
                    x.push_str(&format!(
                        "<dkim><domain>{d}</domain><selector>{s}</selector><result>{res}</result></dkim>"
                    ));
                }
                x.push_str(&format!(
                    "<spf><domain>{}</domain><scope>mfrom</scope><result>{}</result></spf>\
                     </auth_results></record>",
                    r.spf.0, r.spf.1
                ));
            }
            x.push_str("</feedback>");
            out.push((format!("{org}-{day}.xml"), x));
        }
    }
    out
}

/// Units in the whole window (the sum of factor × days over the reporters).
pub fn units() -> i64 {
    REPORTERS
        .iter()
        .map(|(_, f, on)| f * (0..DAYS).filter(|d| on(*d)).count() as i64)
        .sum()
}

/// Per-unit messages of the rows of `ips`: (messages, passing DMARC).
pub fn per_unit(ips: &[&str]) -> (i64, i64) {
    ROWS.iter()
        .filter(|r| ips.contains(&r.ip))
        .fold((0, 0), |(m, p), r| {
            let pass = r.eval_dkim == "pass" || r.eval_spf == "pass";
            (m + r.count, p + if pass { r.count } else { 0 })
        })
}
