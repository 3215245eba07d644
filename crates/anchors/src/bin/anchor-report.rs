//! mail-auth 0.13 doing the parsing work of `dmarc report parse FILES...` on aggregate
//! reports: `Report::parse_xml` over each file's XML, in one process, and one line per
//! file (records and the sum of their counts, so that nothing is optimised away).
//!
//! Usage: anchor-report FILES.xml...

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: anchor-report FILES.xml...");
        return ExitCode::from(2);
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    for file in &files {
        let Ok(xml) = std::fs::read(file) else {
            eprintln!("anchor-report: cannot read {file}");
            return ExitCode::from(2);
        };
        let line = match mail_auth::report::Report::parse_xml(&xml) {
            Ok(report) => {
                let messages: u64 = report.records().iter().map(|r| u64::from(r.count())).sum();
                format!(
                    "{file}: {} records, {messages} messages",
                    report.records().len()
                )
            }
            Err(e) => format!("{file}: error: {e}"),
        };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(2);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
