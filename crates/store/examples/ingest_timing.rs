//! Wall-clock and CPU time of ingesting large aggregate reports into SQLite, outside
//! criterion (for a loaded machine, where CPU time tells more than wall time):
//!
//! ```text
//! cargo run --release -p dmarc-store --example ingest_timing -- 10 50000
//! ```

use std::time::Instant;

use dmarc_report::{Limits, parse_named};
use dmarc_store::{Origin, Store};

/// CPU time (user + system) of this process in seconds, from /proc (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the line (utime, stime), counted after the ")" from field 3.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let reports: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let records: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let mut xml = String::new();
    xml.push_str(
        "<feedback><report_metadata><org_name>google.com</org_name><email>x@google.com</email>\
         <report_id>REPORT-ID</report_id><date_range><begin>1709251200</begin>\
         <end>1709337599</end></date_range></report_metadata><policy_published>\
         <domain>example.com</domain><p>quarantine</p></policy_published>",
    );
    for i in 0..records {
        let ok = i % 3 != 0;
        let r = if ok { "pass" } else { "fail" };
        xml.push_str(&format!(
            "<record><row><source_ip>10.{}.{}.{}</source_ip><count>{}</count><policy_evaluated>\
             <disposition>none</disposition><dkim>{r}</dkim><spf>{r}</spf></policy_evaluated>\
             </row><identifiers><header_from>example.com</header_from></identifiers>\
             <auth_results><dkim><domain>example.com</domain><selector>s</selector>\
             <result>{r}</result></dkim><spf><domain>bounce.example.com</domain>\
             <result>{r}</result></spf></auth_results></record>",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            1 + i % 17
        ));
    }
    xml.push_str("</feedback>");
    let dir = std::env::temp_dir().join(format!("dmarc-ingest-timing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut store = Store::open_sqlite(&dir.join("t.sqlite3")).expect("open");
    let limits = Limits::default();
    let origin = Origin {
        kind: "file",
        location: "timing.xml",
    };
    let (wall0, cpu0) = (Instant::now(), cpu_seconds());
    for n in 0..reports {
        let x = xml.replacen("REPORT-ID", &format!("t-{n}"), 1);
        for p in parse_named("t.xml", x.as_bytes(), &limits) {
            let p = p.expect("parses");
            assert!(store.store_report(&p, &origin).expect("stores").is_new());
        }
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let total = (reports * records) as f64;
    println!(
        "{reports} reports x {records} records: wall {wall:.2} s ({:.0} records/s), \
         CPU {cpu:.2} s ({:.0} records per CPU-second)",
        total / wall,
        total / cpu.max(1e-9)
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
