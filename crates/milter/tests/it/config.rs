//! examples/milter.toml documents every option with its default.

use dmarc_milter::config::{MilterConfig, option_names};

fn example() -> std::path::PathBuf {
    dmarc_testkit::workspace_root().join("examples/milter.toml")
}

#[test]
fn example_file_equals_the_defaults() {
    let c = MilterConfig::load(Some(&example()), &[]).unwrap();
    assert_eq!(c, MilterConfig::default());
    c.validate("mx.example.org").unwrap();
}

#[test]
fn example_file_names_every_option() {
    let text = std::fs::read_to_string(example()).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut in_file = Vec::new();
    for (k, v) in &table {
        match v {
            toml::Value::Table(t) => in_file.extend(t.keys().map(|k2| format!("{k}.{k2}"))),
            _ => in_file.push(k.clone()),
        }
    }
    let mut want = option_names();
    in_file.sort();
    want.sort();
    assert_eq!(
        in_file, want,
        "examples/milter.toml must list every option, and only those"
    );
    // Every option has a comment above it.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains(" = ") && !line.starts_with('#') {
            assert!(
                i > 0 && lines[i - 1].starts_with('#'),
                "line {} ({line}) has no comment above it",
                i + 1
            );
        }
    }
}

#[test]
fn a_bad_file_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.toml");
    std::fs::write(&p, "mode = \"enforce\"\n[exempt]\nclient_ipz = []\n").unwrap();
    let e = MilterConfig::load(Some(&p), &[]).unwrap_err().to_string();
    assert!(
        e.contains("m.toml") && e.contains("client_ipz") && e.contains("line 3"),
        "{e}"
    );
}
