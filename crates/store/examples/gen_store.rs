//! Fills a report store with generated aggregate reports for `example.com`, through the
//! real write path (XML parsed by `dmarc-report`, stored by `Store::store_report` in a batch, as
//! `dmarc ingest` does), and
//! writes the zone file its senders need: the store of the `summary`, `sources` and
//! `rollout` benchmarks (BENCHMARKS.md).
//!
//! `cargo run --release -p dmarc-store --example gen_store -- DB ROWS DIR`
//!
//! Senders: own servers (192.0.2.0/26, in SPF, signing), Google Workspace (2,000
//! addresses, aligned), SendGrid (500 addresses, unaligned), forwarders (200 addresses,
//! SPF failing, DKIM surviving, reason `forwarded`) and spoofers (20,000 addresses, failing).
//! 1,000 rows per report, 40 reporters, 90 days; a deterministic generator, so two runs
//! give the same store.

use std::fmt::Write as _;
use std::io::Write as _;

use dmarc_report::{Limits, parse_named};
use dmarc_store::{Origin, Store};

/// A small deterministic generator (xorshift64*).
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
}

#[derive(Clone, Copy)]
enum Kind {
    Own,
    Google,
    SendGrid,
    Forwarder,
    Spoofer,
}

fn ip_of(kind: Kind, i: u64) -> String {
    match kind {
        Kind::Own => format!("192.0.2.{}", 1 + i % 50),
        Kind::Google => format!("209.85.{}.{}", 128 + (i / 250) % 100, 1 + i % 250),
        Kind::SendGrid => format!("167.89.{}.{}", (i / 250) % 100, 1 + i % 250),
        Kind::Forwarder => format!("198.51.100.{}", 1 + i % 200),
        Kind::Spoofer => format!(
            "100.{}.{}.{}",
            64 + (i >> 16) % 64,
            (i >> 8) % 256,
            1 + i % 250
        ),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(db), Some(rows), Some(dir)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: gen_store DB ROWS DIR");
        std::process::exit(2);
    };
    let rows: u64 = rows.parse().expect("ROWS is a number");
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create DIR");

    // The zone: SPF, DMARC, and forward-confirmed names of the own and Google hosts.
    let mut zone = String::from(
        "$TTL 300\n\
         example.com. TXT \"v=spf1 ip4:192.0.2.0/26 include:_spf.google.com include:sendgrid.net -all\"\n\
         _dmarc.example.com. TXT \"v=DMARC1; p=none; rua=mailto:dmarc@example.com\"\n\
         _spf.google.com. TXT \"v=spf1 ip4:209.85.128.0/17 ~all\"\n\
         sendgrid.net. TXT \"v=spf1 ip4:167.89.0.0/17 ~all\"\n",
    );
    for i in 0..50u64 {
        let ip = ip_of(Kind::Own, i);
        let _ = writeln!(zone, "mx{i}.example.com. A {ip}");
        let o: Vec<&str> = ip.split('.').collect();
        let _ = writeln!(
            zone,
            "{}.{}.{}.{}.in-addr.arpa. PTR mx{i}.example.com.",
            o[3], o[2], o[1], o[0]
        );
    }
    for i in 0..2000u64 {
        let ip = ip_of(Kind::Google, i);
        let name = format!("mail-sor-f{i}.google.com");
        let o: Vec<&str> = ip.split('.').collect();
        let _ = writeln!(zone, "{name}. A {ip}");
        let _ = writeln!(
            zone,
            "{}.{}.{}.{}.in-addr.arpa. PTR {name}.",
            o[3], o[2], o[1], o[0]
        );
    }
    std::fs::write(dir.join("bench.zone"), zone).expect("write the zone");

    let reporters: Vec<(String, u64)> = (0..40u64)
        .map(|i| match i {
            0 => ("google.com".to_string(), 40),
            1 => ("yahoo.com".to_string(), 15),
            2 => ("outlook.com".to_string(), 15),
            n => (format!("reporter{n}.example"), 1),
        })
        .collect();
    let weight_total: u64 = reporters.iter().map(|r| r.1).sum();

    let mut store = Store::open(&db).expect("open the store");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let per_report = 1000u64;
    let reports = rows.div_ceil(per_report);
    let limits = Limits::default();
    let started = std::time::Instant::now();
    store.begin_batch().expect("begin a batch");
    for n in 0..reports {
        let mut pick = rng.below(weight_total);
        let org = reporters
            .iter()
            .find(|r| {
                if pick < r.1 {
                    true
                } else {
                    pick -= r.1;
                    false
                }
            })
            .map_or("google.com", |r| r.0.as_str());
        let day = n * 90 / reports;
        let begin = 1_704_067_200 + day as i64 * 86_400; // 2024-01-01
        let mut x = String::with_capacity(600 * per_report as usize);
        let _ = write!(
            x,
            "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>{org}</org_name>\
             <email>dmarc@{org}</email><report_id>bench-{n}</report_id><date_range>\
             <begin>{begin}</begin><end>{}</end></date_range></report_metadata>\
             <policy_published><domain>example.com</domain><adkim>r</adkim><aspf>r</aspf>\
             <p>none</p><sp>none</sp><pct>100</pct></policy_published>",
            begin + 86_399
        );
        let in_report = per_report.min(rows - n * per_report);
        for _ in 0..in_report {
            let roll = rng.below(100);
            let kind = match roll {
                0..40 => Kind::Own,
                40..65 => Kind::Google,
                65..75 => Kind::SendGrid,
                75..80 => Kind::Forwarder,
                _ => Kind::Spoofer,
            };
            let i = match kind {
                Kind::Own => rng.below(50),
                Kind::Google => rng.below(2000),
                Kind::SendGrid => rng.below(500),
                Kind::Forwarder => rng.below(200),
                Kind::Spoofer => rng.below(20_000),
            };
            let ip = ip_of(kind, i);
            let count = 1 + rng.below(40);
            let from = if rng.below(10) == 0 {
                "news.example.com"
            } else {
                "example.com"
            };
            let (ed, es, dkim, spf, reason) = match kind {
                Kind::Own => (
                    "pass",
                    "pass",
                    "<dkim><domain>example.com</domain><selector>sel1</selector><result>pass</result></dkim>",
                    "<spf><domain>example.com</domain><scope>mfrom</scope><result>pass</result></spf>",
                    "",
                ),
                Kind::Google => (
                    "pass",
                    "pass",
                    "<dkim><domain>example.com</domain><selector>google</selector><result>pass</result></dkim>",
                    "<spf><domain>example.com</domain><scope>mfrom</scope><result>pass</result></spf>",
                    "",
                ),
                Kind::SendGrid => (
                    "fail",
                    "fail",
                    "<dkim><domain>sendgrid.net</domain><selector>s1</selector><result>pass</result></dkim>",
                    "<spf><domain>sendgrid.net</domain><scope>mfrom</scope><result>pass</result></spf>",
                    "",
                ),
                Kind::Forwarder => (
                    "pass",
                    "fail",
                    "<dkim><domain>example.com</domain><selector>sel1</selector><result>pass</result></dkim>",
                    "<spf><domain>example.com</domain><scope>mfrom</scope><result>fail</result></spf>",
                    "<reason><type>forwarded</type></reason>",
                ),
                Kind::Spoofer => (
                    "fail",
                    "fail",
                    "",
                    "<spf><domain>example.com</domain><scope>mfrom</scope><result>fail</result></spf>",
                    "",
                ),
            };
            let _ = write!(
                x,
                "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>\
                 <disposition>none</disposition><dkim>{ed}</dkim><spf>{es}</spf>{reason}\
                 </policy_evaluated></row><identifiers><header_from>{from}</header_from>\
                 </identifiers><auth_results>{dkim}{spf}</auth_results></record>"
            );
        }
        x.push_str("</feedback>");
        let name = format!("bench-{n}.xml");
        for parsed in parse_named(&name, x.as_bytes(), &limits) {
            let parsed = parsed.expect("the generated report parses");
            let origin = Origin {
                kind: "file",
                location: &name,
            };
            store
                .store_report(&parsed, &origin)
                .expect("store the report");
        }
        if n % 500 == 499 {
            eprint!(
                "\r{} of {reports} reports, {:.0} s",
                n + 1,
                started.elapsed().as_secs_f64()
            );
            let _ = std::io::stderr().flush();
        }
    }
    store.end_batch().expect("commit the batch");
    eprintln!(
        "\n{rows} rows in {reports} reports stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
