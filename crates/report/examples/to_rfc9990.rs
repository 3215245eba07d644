//! Reads report files and writes each aggregate report found as RFC 9990 XML into a
//! directory: `cargo run -p dmarc-report --example to_rfc9990 -- OUTDIR FILE...`
//! (used to check the writer against the RFC 9990 schema with an outside validator).

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: to_rfc9990 OUTDIR FILE...");
        std::process::exit(2);
    };
    let limits = dmarc_report::Limits::default();
    let mut n = 0;
    for file in args {
        let bytes = std::fs::read(&file).expect("read input");
        for r in dmarc_report::parse_named(&file, &bytes, &limits) {
            match r {
                Ok(p) => {
                    if let dmarc_report::ParsedReport::Aggregate(a) = p.report {
                        n += 1;
                        let path = format!("{out}/{n}.xml");
                        std::fs::write(&path, dmarc_report::aggregate::generate::to_xml(&a))
                            .expect("write output");
                        println!("{path}\t{}", p.source);
                    }
                }
                Err(e) => eprintln!("{e}"),
            }
        }
    }
}
