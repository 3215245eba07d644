//! Sources: bytes, files, directories, mbox (streamed) and maildir, into an SQLite store.

use std::io::Write;
use std::path::{Path, PathBuf};

use dmarc_ingest::{InputKind, ItemOutcome, Source, SourceKind, ingest_bytes, ingest_paths, plan};
use dmarc_report::Limits;
use dmarc_store::Store;

fn report_xml(id: &str) -> String {
    format!(
        "<feedback><report_metadata><org_name>example.net</org_name><email>d@example.net</email>\
         <report_id>{id}</report_id><date_range><begin>1709251200</begin><end>1709337599</end>\
         </date_range></report_metadata><policy_published><domain>example.com</domain><p>none</p>\
         </policy_published><record><row><source_ip>192.0.2.1</source_ip><count>4</count>\
         <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf>\
         </policy_evaluated></row><identifiers><header_from>example.com</header_from></identifiers>\
         <auth_results><dkim><domain>example.com</domain><result>pass</result></dkim></auth_results>\
         </record></feedback>"
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, c) in data.chunks(3).enumerate() {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
        if i % 19 == 18 {
            out.push('\n');
        }
    }
    out
}

/// An email carrying one gzipped aggregate report, with a body line starting "From ".
fn report_email(id: &str) -> String {
    format!(
        "From: noreply-dmarc@example.net\nTo: rua@example.com\nSubject: Report Domain: \
         example.com Report-ID: {id}\nMIME-Version: 1.0\nContent-Type: multipart/mixed; \
         boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n\nFrom the reporter, with love.\n\
         \n--XX\nContent-Type: application/gzip; name=\"r.xml.gz\"\nContent-Transfer-Encoding: \
         base64\nContent-Disposition: attachment; filename=\"r.xml.gz\"\n\n{}\n--XX--\n",
        base64(&gzip(report_xml(id).as_bytes()))
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dmarc-ingest-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn run(store: &mut Store, paths: &[PathBuf]) -> (dmarc_ingest::Counts, Vec<(Source, ItemOutcome)>) {
    let inputs = plan(paths).unwrap();
    let mut seen = Vec::new();
    let counts = ingest_paths(store, &inputs, &Limits::default(), &mut |_, s, o| {
        for i in &o.items {
            seen.push((s.clone(), i.clone()));
        }
    })
    .unwrap();
    (counts, seen)
}

#[test]
fn bytes_new_duplicate_and_rejected() {
    let mut store = Store::open_sqlite_memory().unwrap();
    let src = Source::file("/in/r.xml");
    let limits = Limits::default();
    let out = ingest_bytes(&mut store, &src, report_xml("1").as_bytes(), &limits).unwrap();
    assert_eq!(out.counts().new, 1);
    let out = ingest_bytes(&mut store, &src, report_xml("1").as_bytes(), &limits).unwrap();
    assert_eq!(out.counts().duplicate, 1);
    assert_eq!(out.counts().new, 0);

    let junk = b"<html><body>not a report</body></html>";
    let out = ingest_bytes(&mut store, &Source::file("/in/x.html"), junk, &limits).unwrap();
    let c = out.counts();
    assert_eq!(
        (c.new, c.duplicate, c.rejected, c.rejected_new),
        (0, 0, 1, 1)
    );
    let out = ingest_bytes(&mut store, &Source::file("/in/x.html"), junk, &limits).unwrap();
    assert_eq!(out.counts().rejected_new, 0);
    assert_eq!(
        out.counts().to_string(),
        "0 new, 0 duplicate, 1 rejected (1 already recorded)"
    );
    let listed = store.rejected().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].source, "/in/x.html");
    assert_eq!(listed[0].times_seen, 2);
    assert_eq!(store.rejected_content(listed[0].id).unwrap().unwrap(), junk);
}

#[test]
fn imap_sources_are_parsed_as_messages() {
    let mut store = Store::open_sqlite_memory().unwrap();
    let src = Source::imap("imaps://u@mail.example/INBOX;UIDVALIDITY=3/;UID=9", "UID 9");
    assert!(src.kind.is_message());
    let out = ingest_bytes(
        &mut store,
        &src,
        report_email("m1").as_bytes(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(out.counts().new, 1, "{out:?}");
    let ItemOutcome::New { part, kind, .. } = &out.items[0] else {
        panic!()
    };
    assert_eq!(*kind, "aggregate");
    assert!(part.starts_with("UID 9 > attachment r.xml.gz"), "{part}");
}

/// Quotes body lines as an mboxrd writer does: `>*From ` gets one more `>`.
fn mboxrd_quote(msg: &str) -> String {
    msg.lines()
        .map(|l| {
            if l.trim_start_matches('>').starts_with("From ") {
                format!(">{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

#[test]
fn mbox_is_streamed_message_by_message() {
    let dir = temp_dir("mbox");
    let junk =
        "From: someone@example.org\nSubject: hello\n\nJust a note.\n\nFrom the desk of nobody\n";
    let mbox = format!(
        "From MAILER-DAEMON Fri Mar  1 10:00:00 2024\n{}\nFrom MAILER-DAEMON Fri Mar  1 10:00:01 2024\n{}\nFrom x Fri Mar  1 10:00:02 2024\n{}\n",
        mboxrd_quote(&report_email("a")),
        mboxrd_quote(junk),
        mboxrd_quote(&report_email("b"))
    );
    let path = dir.join("Reports.mbox");
    write(&path, mbox.as_bytes());
    let inputs = plan(std::slice::from_ref(&path)).unwrap();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].kind, InputKind::Mbox);

    let mut store = Store::open_sqlite_memory().unwrap();
    let (counts, seen) = run(&mut store, std::slice::from_ref(&path));
    assert_eq!((counts.new, counts.rejected), (2, 1), "{seen:#?}");
    assert!(seen.iter().all(|(s, _)| s.kind == SourceKind::Mbox));
    let rej = store.rejected().unwrap();
    assert_eq!(rej.len(), 1);
    assert!(
        rej[0].source.ends_with("Reports.mbox#message 2"),
        "{}",
        rej[0].source
    );
    // The kept bytes are that message, unquoted.
    let kept = String::from_utf8(store.rejected_content(rej[0].id).unwrap().unwrap()).unwrap();
    assert!(kept.starts_with("From: someone@example.org"));
    assert!(kept.contains("\nFrom the desk of nobody\n"));
    assert!(!kept.contains("From MAILER-DAEMON"));

    let (again, _) = run(&mut store, &[path]);
    assert_eq!((again.new, again.duplicate, again.rejected_new), (0, 2, 0));
}

#[test]
fn maildir_and_directories() {
    let dir = temp_dir("maildir");
    let md = dir.join("mail");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    write(
        &md.join("new/1709251200.M1.host"),
        report_email("n1").as_bytes(),
    );
    write(
        &md.join("cur/1709251201.M2.host:2,S"),
        report_email("c1").as_bytes(),
    );
    write(&md.join("tmp/partial"), b"half a messa");
    write(&md.join("dovecot-uidlist"), b"3 V1 N3\n");
    write(
        &md.join(".Archive/cur/1709251202.M3.host:2,S"),
        report_email("a1").as_bytes(),
    );
    std::fs::create_dir_all(md.join(".Archive/new")).unwrap();
    // Plain files beside, nested, and hidden.
    write(
        &dir.join("files/2024/google.xml"),
        report_xml("f1").as_bytes(),
    );
    write(
        &dir.join("files/2024/google.xml.gz"),
        &gzip(report_xml("f2").as_bytes()),
    );
    write(
        &dir.join("files/.hidden.xml"),
        report_xml("hidden").as_bytes(),
    );
    write(&dir.join("files/README.txt"), b"these are reports");

    let inputs = plan(std::slice::from_ref(&dir)).unwrap();
    let kinds: Vec<(String, InputKind)> = inputs
        .iter()
        .map(|i| {
            (
                i.path.strip_prefix(&dir).unwrap().display().to_string(),
                i.kind,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("files/2024/google.xml".into(), InputKind::File),
            ("files/2024/google.xml.gz".into(), InputKind::File),
            ("files/README.txt".into(), InputKind::File),
            (
                "mail/new/1709251200.M1.host".into(),
                InputKind::MaildirMessage
            ),
            (
                "mail/cur/1709251201.M2.host:2,S".into(),
                InputKind::MaildirMessage
            ),
            (
                "mail/.Archive/cur/1709251202.M3.host:2,S".into(),
                InputKind::MaildirMessage
            ),
        ]
    );

    let mut store = Store::open_sqlite_memory().unwrap();
    let (counts, _) = run(&mut store, std::slice::from_ref(&dir));
    assert_eq!((counts.new, counts.duplicate, counts.rejected), (5, 0, 1));
    assert!(store.rejected().unwrap()[0].source.ends_with("README.txt"));
    let (again, _) = run(&mut store, &[dir]);
    assert_eq!((again.new, again.duplicate, again.rejected), (0, 5, 1));
    assert_eq!(store.totals().unwrap().aggregate_reports, 5);
}

#[test]
fn oversized_and_missing_inputs() {
    let dir = temp_dir("big");
    let path = dir.join("big.xml");
    write(&path, report_xml("big").as_bytes());
    let limits = Limits {
        max_input_size: 100,
        ..Limits::default()
    };
    let mut store = Store::open_sqlite_memory().unwrap();
    let inputs = plan(std::slice::from_ref(&path)).unwrap();
    let counts = ingest_paths(&mut store, &inputs, &limits, &mut |_, _, _| {}).unwrap();
    assert_eq!((counts.new, counts.rejected), (0, 1));
    let rej = store.rejected().unwrap();
    assert_eq!(rej[0].error_kind, "limit");
    assert!(rej[0].error.contains("max_input_size"), "{}", rej[0].error);
    assert_eq!(store.rejected_content(rej[0].id).unwrap(), None);

    let err = plan(&[dir.join("does-not-exist")]).unwrap_err();
    assert!(err.to_string().contains("does-not-exist"), "{err}");
}
