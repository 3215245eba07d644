//! `dmarc report parse --json` prints exactly what it printed before its output was
//! streamed from the report model (issue 9): every report of the corpora, compared with
//! the output recorded then (`data/report_parse_golden.jsonl`, paths relative to the
//! corpora directory), and for the two largest reports (4 MB of JSON) with its SHA-256.

use std::process::Command;

use dmarc_testkit::corpus;

fn parse_json(inputs: &[&str]) -> Vec<u8> {
    let root = corpus("reports-opendmarc");
    let root = root.parent().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .current_dir(root)
        .args(["report", "parse", "--json"])
        .args(inputs)
        .output()
        .expect("run dmarc");
    out.stdout
}

#[test]
fn report_parse_json_is_unchanged_on_the_corpora() {
    let inputs = include_str!("data/report_parse_golden.inputs");
    let inputs: Vec<&str> = inputs.lines().collect();
    assert!(inputs.len() > 50);
    let got = String::from_utf8(parse_json(&inputs)).unwrap();
    let want = include_str!("data/report_parse_golden.jsonl");
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "line {} differs", i + 1);
    }
    assert_eq!(got.lines().count(), want.lines().count());
}

#[test]
fn report_parse_json_is_unchanged_on_the_largest_reports() {
    let got = parse_json(&[
        "reports-opendmarc/good.com!example.com!1337270400!1337356799.xml",
        "reports-opendmarc/google.com!example.com!1337299200!1337385599.13003092557703129505.xml",
    ]);
    assert!(got.len() > 4_000_000);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &got);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "fc016d3ea90f6a272271375740a87dbaf27f5275b2613e56e4f0253fb5544dc6"
    );
}
