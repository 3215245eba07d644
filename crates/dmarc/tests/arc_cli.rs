//! `dmarc arc` end to end: keys from `dmarc dkim keygen`, messages sealed over one to three
//! hops with `dmarc arc seal` (some altered after sealing), `dmarc arc verify --json` over
//! them, and the same messages validated by dkimpy's ARC verifier (PyPI; scripts/test.sh
//! installs it): the two must agree on every message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dmarc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dmarc"))
}

const NOW: &str = "1790000000";

const MESSAGE: &str = "From: Alice <alice@brand.example>\r\nTo: list@lists.example\r\n\
Subject: hello\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\nMessage-ID: <1@brand.example>\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello, world.\r\n\r\n";

struct Hop {
    domain: &'static str,
    key: PathBuf,
}

/// Keys for the hops, and the zone (as a file for dmarc and as a map for dkimpy).
fn setup(tmp: &Path) -> (Vec<Hop>, PathBuf, BTreeMap<String, String>) {
    let mut zone = String::from("$TTL 300\n");
    let mut records = BTreeMap::new();
    let mut hops = Vec::new();
    // RSA only: dkimpy 1.1.8 refuses ed25519-sha256 in ARC ("unknown signature
    // algorithm"); Ed25519 sealing is tested in dmarc-proto and by mail-auth's 002.txt.
    for domain in ["one.example", "two.example", "three.example"] {
        let alg = "rsa-2048";
        let key = tmp.join(format!("{domain}.pem"));
        let out = dmarc()
            .args(["dkim", "keygen", "--domain", domain, "--selector", "arc"])
            .args(["--algorithm", alg, "--out"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let line = String::from_utf8(out.stdout).unwrap();
        zone.push_str(&line);
        // `arc._domainkey.one.example. IN TXT "..." "..."`
        let (name, rest) = line.split_once(" IN TXT ").unwrap();
        let value: String = rest
            .split('"')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s)
            .collect();
        records.insert(name.trim_end_matches('.').to_string(), value);
        hops.push(Hop { domain, key });
    }
    let zone_file = tmp.join("zone.txt");
    std::fs::write(&zone_file, zone).unwrap();
    (hops, zone_file, records)
}

fn seal(hop: &Hop, zone: &Path, input: &Path, output: &Path, results: &str) {
    let out = dmarc()
        .args(["arc", "seal"])
        .arg(input)
        .args(["--domain", hop.domain, "--selector", "arc", "--key"])
        .arg(&hop.key)
        .args(["--authserv-id", &format!("mx.{}", hop.domain)])
        .args(["--auth-results", results, "--now", NOW, "--dns-zone"])
        .arg(zone)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::write(output, out.stdout).unwrap();
}

fn edit(input: &Path, output: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(input).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", input.display());
    std::fs::write(output, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn sealed_over_three_hops_and_agrees_with_dkimpy() {
    let tmp = std::env::temp_dir().join(format!("dmarc-arc-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let (hops, zone, records) = setup(&tmp);
    let p = |n: &str| tmp.join(n);
    std::fs::write(p("m0.eml"), MESSAGE).unwrap();
    seal(
        &hops[0],
        &zone,
        &p("m0.eml"),
        &p("m1.eml"),
        "spf=pass smtp.mailfrom=brand.example; dkim=pass header.d=brand.example",
    );
    seal(
        &hops[1],
        &zone,
        &p("m1.eml"),
        &p("m2.eml"),
        "spf=fail smtp.mailfrom=one.example",
    );
    seal(
        &hops[2],
        &zone,
        &p("m2.eml"),
        &p("m3.eml"),
        "spf=pass smtp.mailfrom=two.example",
    );
    // Altered after sealing.
    edit(
        &p("m1.eml"),
        &p("m1-body.eml"),
        "Hello, world.",
        "Hello, moon.",
    );
    edit(
        &p("m2.eml"),
        &p("m2-subject.eml"),
        "Subject: hello",
        "Subject: [list] hello",
    );
    edit(
        &p("m3.eml"),
        &p("m3-aar.eml"),
        "spf=pass smtp.mailfrom=brand.example",
        "spf=pass smtp.mailfrom=evil.example",
    );
    edit(&p("m3.eml"), &p("m3-cv.eml"), "cv=pass", "cv=fail");
    // Changes no signature covers: still passing.
    edit(
        &p("m3.eml"),
        &p("m3-added.eml"),
        "From: Alice",
        "X-Scanned: yes\r\nFrom: Alice",
    );
    // Sealed after a change that broke the chain it arrived with: cv=fail.
    seal(
        &hops[2],
        &zone,
        &p("m2-subject.eml"),
        &p("m3-after-break.eml"),
        "spf=pass smtp.mailfrom=two.example",
    );
    let cases: [(&str, &str, usize, Option<u64>); 9] = [
        ("m0.eml", "none", 0, None),
        ("m1.eml", "pass", 1, Some(1)),
        ("m2.eml", "pass", 2, Some(1)),
        ("m3.eml", "pass", 3, Some(1)),
        ("m1-body.eml", "fail", 1, None),
        ("m2-subject.eml", "fail", 2, None),
        ("m3-aar.eml", "fail", 3, None),
        ("m3-cv.eml", "fail", 3, None),
        ("m3-added.eml", "pass", 3, Some(1)),
    ];
    let mut files: Vec<PathBuf> = cases.iter().map(|c| p(c.0)).collect();
    files.push(p("m3-after-break.eml"));
    let out = dmarc()
        .args(["arc", "verify", "--json", "--now", NOW, "--dns-zone"])
        .arg(&zone)
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), files.len());
    let mut ours = Vec::new();
    for (line, (file, result, instances, oldest)) in lines.iter().zip(cases) {
        assert_eq!(line["file"], p(file).display().to_string());
        assert_eq!(line["result"], result, "{file}: {line}");
        assert_eq!(line["instances"], instances, "{file}: {line}");
        assert_eq!(line["oldest_pass"].as_u64(), oldest, "{file}: {line}");
        assert!(line["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
    let last = lines.last().unwrap();
    assert_eq!(last["result"], "fail");
    assert_eq!(last["hops"][2]["cv"], "fail", "{last}");
    // The first hop's AAR, as the chain carries it.
    let m3 = &lines[3];
    assert_eq!(m3["hops"][0]["authserv_id"], "mx.one.example");
    assert_eq!(m3["hops"][0]["results"][1], "spf=pass", "{m3}");
    assert_eq!(m3["hops"][2]["sealer"], "three.example");
    for l in &lines {
        ours.push(l["result"].as_str().unwrap().to_string());
    }

    // The text form: one line per file.
    let out = dmarc()
        .args(["arc", "verify", "--now", NOW, "--dns-zone"])
        .arg(&zone)
        .arg(p("m3.eml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!(
            "{}: arc=pass instances=3 oldest-pass=1 (",
            p("m3.eml").display()
        )),
        "{text}"
    );

    // --no-oldest-pass: the same chain statuses, no oldest-pass, the older AMSs unchecked.
    let out = dmarc()
        .args(["arc", "verify", "--json", "--no-oldest-pass", "--now", NOW])
        .arg("--dns-zone")
        .arg(&zone)
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let quick: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(quick.len(), lines.len());
    for (q, l) in quick.iter().zip(&lines) {
        assert_eq!(q["result"], l["result"], "{q}");
        assert_eq!(q["oldest_pass"], serde_json::Value::Null, "{q}");
    }
    assert_eq!(
        quick[3]["hops"][0]["message_signature"],
        serde_json::Value::Null
    );
    assert_eq!(quick[3]["hops"][0]["seal"], "pass", "{}", quick[3]);
    assert_eq!(
        quick[3]["hops"][2]["message_signature"], "pass",
        "{}",
        quick[3]
    );

    // A chain that already failed gets no further set; the message passes through.
    let out = dmarc()
        .args(["arc", "seal"])
        .arg(p("m3-after-break.eml"))
        .args(["--domain", "one.example", "--selector", "arc", "--key"])
        .arg(&hops[0].key)
        .args([
            "--authserv-id",
            "mx.one.example",
            "--now",
            NOW,
            "--dns-zone",
        ])
        .arg(&zone)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(out.stdout, std::fs::read(p("m3-after-break.eml")).unwrap());

    // dkimpy on the same files.
    let have = Command::new("python3")
        .args(["-c", "import dkim, authres"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have,
        "dkimpy is needed for the ARC agreement test: python3 -m pip install dkimpy authres \
         (scripts/test.sh installs it)"
    );
    let zone_json = tmp.join("zone.json");
    std::fs::write(&zone_json, serde_json::to_string(&records).unwrap()).unwrap();
    let script = dmarc_testkit::workspace_root().join("scripts/arc_dkimpy_verify.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&zone_json)
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let theirs: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap().to_string())
        .collect();
    for ((file, a), b) in files.iter().zip(&ours).zip(&theirs) {
        assert_eq!(a, b, "{}: dmarc says {a}, dkimpy says {b}", file.display());
    }
    assert_eq!(theirs.len(), files.len());
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `dmarc verify` on a message two hops sealed: the ARC chain in words and in JSON, and
/// `--arc-trusted-sealer` turning the DMARC failure into accept (`--batch` too), `--no-arc`
/// leaving ARC out.
#[test]
fn verify_explains_arc_and_trusts_sealers() {
    let tmp = std::env::temp_dir().join(format!("dmarc-arc-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let (hops, zone, _) = setup(&tmp);
    let mut z = std::fs::read_to_string(&zone).unwrap();
    z.push_str("_dmarc.brand.example. IN TXT \"v=DMARC1; p=reject\"\n");
    std::fs::write(&zone, z).unwrap();
    let p = |n: &str| tmp.join(n);
    std::fs::write(p("m0.eml"), MESSAGE).unwrap();
    seal(
        &hops[0],
        &zone,
        &p("m0.eml"),
        &p("m1.eml"),
        "spf=pass smtp.mailfrom=alice@brand.example; dkim=pass header.d=brand.example",
    );
    seal(
        &hops[1],
        &zone,
        &p("m1.eml"),
        &p("m2.eml"),
        "arc=pass; spf=pass smtp.mailfrom=one.example",
    );
    let verify = |extra: &[&str]| {
        let out = dmarc()
            .arg("verify")
            .arg(p("m2.eml"))
            .args(["--ip", "192.0.2.25", "--helo", "mx.two.example"])
            .args([
                "--mail-from",
                "bounces@two.example",
                "--authserv-id",
                "mx.receiver.example",
            ])
            .arg("--dns-zone")
            .arg(&zone)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let text = verify(&[]);
    assert!(
        text.contains(
            "ARC: forwarded by two.example (before it, one.example), whose seals verified; \
             at the first hop"
        ),
        "{text}"
    );
    assert!(
        text.contains("at the first hop (mx.one.example) SPF passed for brand.example, DKIM passed for brand.example"),
        "{text}"
    );
    assert!(text.contains("ARC: pass (2 sets, oldest-pass 1)"), "{text}");
    assert!(
        text.contains(
            "  hop 1: sealed by one.example (seal verified); mx.one.example saw arc=none, spf=pass, dkim=pass"
        ),
        "{text}"
    );
    assert!(
        text.contains("A receiver would reject the message"),
        "{text}"
    );
    assert!(text.contains("arc=pass"), "{text}");

    let trusted = verify(&[
        "--arc-trusted-sealer",
        "two.example",
        "--arc-trusted-sealer",
        "one.example",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&trusted).unwrap();
    assert_eq!(v["action"], "accept");
    assert_eq!(v["dmarc"]["result"], "fail");
    assert_eq!(v["arc"]["result"], "pass");
    assert_eq!(v["arc"]["instances"], 2);
    assert_eq!(v["arc"]["oldest_pass"], 1);
    assert!(
        v["arc"]["reason"]
            .as_str()
            .unwrap()
            .contains("2 ARC sets verified")
    );
    assert_eq!(v["arc"]["trusted_forwarder"]["sealer"], "two.example");
    assert_eq!(v["arc"]["trusted_forwarder"]["vouched_instance"], 1);

    let off = verify(&["--no-arc", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&off).unwrap();
    assert!(v["arc"].is_null());
    assert_eq!(v["action"], "reject");

    // --batch with the same flags.
    std::fs::write(
        p("cases.jsonl"),
        "{\"file\":\"m2.eml\",\"ip\":\"192.0.2.25\",\"helo\":\"mx.two.example\",\"mail_from\":\"bounces@two.example\"}\n",
    )
    .unwrap();
    let out = dmarc()
        .args(["verify", "--batch"])
        .arg(p("cases.jsonl"))
        .args([
            "--arc-trusted-sealer",
            "two.example",
            "--arc-trusted-sealer",
            "one.example",
        ])
        .arg("--dns-zone")
        .arg(&zone)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let line: serde_json::Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["action"], "accept", "{line}");
    assert_eq!(line["arc"]["trusted_forwarder"]["accepted"], true);
}
