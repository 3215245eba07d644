//! The publicsuffix.org test cases (`psl/tests.txt`), run against the embedded list with both
//! sections loaded (HOW_TO_USE §6).

use dmarc_psl::{Psl, Sections};

#[test]
fn publicsuffix_org_tests_txt() {
    let text = std::fs::read_to_string(dmarc_testkit::corpus("psl/tests.txt")).unwrap();
    let psl = Psl::builtin();
    let mut checked = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (input, expected) = (parts.next().unwrap(), parts.next().unwrap());
        let got = if input == "null" {
            None
        } else {
            psl.registrable_domain(input, Sections::All)
        };
        let expected = (expected != "null").then(|| expected.to_lowercase());
        assert_eq!(got, expected, "input {input:?}");
        checked += 1;
    }
    assert_eq!(checked, 78);
}

#[test]
fn embedded_list_is_the_corpus_copy() {
    let corpus =
        std::fs::read_to_string(dmarc_testkit::corpus("psl/public_suffix_list.dat")).unwrap();
    assert_eq!(corpus, dmarc_psl::BUILTIN_LIST);
}
