//! End to end: `dmarc ingest` the example reports, the shared report corpora and a hostile
//! report into a store, start `dmarc serve` on a free loopback port, and fetch every page,
//! its CSV exports and the JSON API: the figures equal `dmarc summary --json`, the hostile
//! strings are shown as text. Then headless Chromium loads every page (screenshots under
//! `target/web-screenshots/`). Authentication: a non-loopback listener refuses to start
//! without it, and with it refuses every unauthenticated client, loopback ones too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const CORPORA: &[&str] = &[
    "reports-mail-auth",
    "reports-dmarc-report-viewer",
    "reports-opendmarc",
];

/// A report whose every free-text field tries to run script.
const HOSTILE_ORG: &str = "<script>document.title='pwned'</script>";
const HOSTILE_ID: &str = "\"><svg onload=\"document.title='pwned2'\">";

fn hostile_report() -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    format!(
        r#"<?xml version="1.0"?>
<feedback><report_metadata><org_name>{org}</org_name><email>x@hostile.example</email>
<report_id>{id}</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range>
</report_metadata><policy_published><domain>hostile.example</domain><p>none</p></policy_published>
<record><row><source_ip>198.51.100.66</source_ip><count>7</count><policy_evaluated>
<disposition>none</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
<identifiers><header_from>hostile.example</header_from></identifiers>
<auth_results><dkim><domain>hostile.example</domain><selector>{org}</selector><result>fail</result></dkim>
<spf><domain>hostile.example</domain><result>fail</result></spf></auth_results></record>
</feedback>"#,
        org = esc(HOSTILE_ORG),
        id = esc(HOSTILE_ID),
    )
}

fn dmarc(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(args)
        .output()
        .expect("run dmarc");
    assert!(
        out.status.success(),
        "dmarc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// A store filled by `dmarc ingest`.
fn filled_store(dir: &Path) -> String {
    let db = dir.join("db.sqlite3").display().to_string();
    let hostile = dir.join("hostile.xml");
    std::fs::write(&hostile, hostile_report()).expect("write hostile report");
    let examples = dmarc_testkit::workspace_root().join("examples/reports");
    let mut args = vec!["ingest".to_string(), "--db".into(), db.clone()];
    args.push(examples.display().to_string());
    args.push(hostile.display().to_string());
    for c in CORPORA {
        args.push(dmarc_testkit::corpus(c).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dmarc(&args);
    db
}

/// `dmarc serve` running; killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .arg("serve")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dmarc serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let line = lines
        .next()
        .expect("dmarc serve printed nothing")
        .expect("read stderr");
    let addr = line
        .strip_prefix("dmarc serve: listening on http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    // Keep draining stderr so that the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

/// One HTTP/1.0 exchange (the server closes after it): status, headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }
}

fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.0\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8(raw[..split].to_vec()).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn get(addr: &str, path: &str) -> Answer {
    http(addr, "GET", path, &[], "")
}

/// Every page of the dashboard over this store.
fn pages(summary: &Value) -> Vec<String> {
    let mut p: Vec<String> = [
        "/",
        "/domain/example.com",
        "/domain/hostile.example",
        "/source/198.51.100.66",
        "/reports",
        "/failures",
        "/tls",
        "/rejected",
        "/reports?since=2000-01-01&until=2030-12-31",
        "/?domain=example.com&since=2000-01-01",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let top = summary["top_sources"][0]["ip"]
        .as_str()
        .expect("a top source");
    p.push(format!("/source/{top}"));
    p
}

fn hostile_report_id(addr: &str) -> i64 {
    let list: Value =
        serde_json::from_slice(&get(addr, "/api/reports?domain=hostile.example").body)
            .expect("report list");
    list[0]["id"].as_i64().expect("hostile report id")
}

#[test]
fn every_page_shows_the_summary_figures_and_hostile_text_as_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = filled_store(dir.path());
    let zone = dmarc_testkit::workspace_root().join("examples/example.zone");
    let server = serve(&[
        "--db",
        &db,
        "--listen",
        "127.0.0.1:0",
        "--dns-zone",
        &zone.display().to_string(),
    ]);
    let addr = server.addr.as_str();

    // The API answers what the command line prints, byte for byte.
    for (query, flags) in [
        ("", vec![]),
        (
            "?domain=example.com&since=2000-01-01",
            vec!["--domain", "example.com", "--since", "2000-01-01"],
        ),
        (
            "?since=2012-01-01&until=2020-12-31&by=day&top=3",
            vec![
                "--since",
                "2012-01-01",
                "--until",
                "2020-12-31",
                "--by",
                "day",
                "--top",
                "3",
            ],
        ),
    ] {
        let mut args = vec!["summary", "--json", "--no-rdns", "--db", &db];
        args.extend(flags);
        let cli = dmarc(&args);
        let api = get(addr, &format!("/api/summary{query}"));
        assert_eq!(api.status, 200);
        assert_eq!(api.header("content-type"), Some("application/json"));
        assert_eq!(
            api.text(),
            cli,
            "GET /api/summary{query} differs from dmarc {args:?}"
        );
    }
    let total: Value = serde_json::from_str(&dmarc(&[
        "summary",
        "--json",
        "--no-rdns",
        "--by",
        "total",
        "--db",
        &db,
    ]))
    .expect("summary json");

    // The domains table, as CSV and as HTML, has the summary's figures.
    let csv = get(addr, "/?format=csv&table=domains");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let csv = csv.text();
    let index = get(addr, "/").text();
    let domains = total["domains"].as_array().expect("domains");
    assert!(domains.len() >= 3, "{domains:?}");
    for d in domains {
        let name = d["domain"].as_str().expect("domain");
        let (reports, messages, pass) = (&d["reports"], &d["messages"], &d["dmarc_pass"]);
        let line = format!("{name},{reports},{messages},{pass},");
        assert!(
            csv.lines().any(|l| l.starts_with(&line)),
            "no {line} in\n{csv}"
        );
        let cells = format!(
            "{name}</a></td><td class=\"num\">{reports}</td><td class=\"num\">{messages}</td>\
             <td class=\"num\">{pass}</td>"
        );
        assert!(index.contains(&cells), "no {cells} in the index page");
    }
    // One domain's page: its per-day table sums to the summary; its top sources are the
    // summary's.
    let one: Value = serde_json::from_str(&dmarc(&[
        "summary",
        "--json",
        "--no-rdns",
        "--by",
        "day",
        "--domain",
        "example.com",
        "--db",
        &db,
    ]))
    .expect("summary json");
    let days = get(addr, "/domain/example.com?format=csv&table=days").text();
    let rows: Vec<&str> = days.lines().skip(1).collect();
    assert_eq!(rows.len(), one["domains"].as_array().expect("days").len());
    for (row, d) in rows.iter().zip(one["domains"].as_array().expect("days")) {
        let want = format!(
            "{},{},{},{},",
            d["period"].as_str().expect("period"),
            d["reports"],
            d["messages"],
            d["dmarc_pass"]
        );
        assert!(row.starts_with(&want), "{row} vs {want}");
    }
    let top = get(addr, "/domain/example.com?format=csv&table=top").text();
    for (row, s) in top
        .lines()
        .skip(1)
        .zip(one["top_sources"].as_array().expect("top"))
    {
        assert!(
            row.starts_with(&format!("{},", s["ip"].as_str().expect("ip"))),
            "{row}"
        );
        assert!(
            row.contains(&format!(",{},{},", s["messages"], s["dmarc_pass"])),
            "{row}"
        );
    }
    // Rollout advice and named sources, as `dmarc rollout` and `dmarc sources` give them.
    let zone_s = zone.display().to_string();
    let cli_rollout = dmarc(&[
        "rollout",
        "example.com",
        "--json",
        "--db",
        &db,
        "--dns-zone",
        &zone_s,
    ]);
    let api_rollout = get(addr, "/api/rollout?domain=example.com");
    assert_eq!(api_rollout.status, 200, "{}", api_rollout.text());
    assert_eq!(api_rollout.text(), cli_rollout);
    let cli_sources = dmarc(&[
        "sources",
        "example.com",
        "--json",
        "--db",
        &db,
        "--dns-zone",
        &zone_s,
    ]);
    assert_eq!(
        get(addr, "/api/sources?domain=example.com").text(),
        cli_sources
    );
    let domain_page = get(addr, "/domain/example.com").text();
    assert!(domain_page.contains("Rollout advice"), "{domain_page}");

    // Every page answers, with the security headers, and no hostile markup survives.
    let report_id = hostile_report_id(addr);
    let mut all = pages(&total);
    all.push(format!("/reports/{report_id}"));
    for p in &all {
        let a = get(addr, p);
        assert_eq!(a.status, 200, "GET {p}: {}", a.text());
        assert_eq!(
            a.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{p}"
        );
        let csp = a.header("content-security-policy").unwrap_or("");
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script"),
            "{p}: {csp}"
        );
        let html = a.text();
        assert!(!html.contains("<script"), "GET {p} has a script element");
        assert!(!html.contains("<svg onload"), "GET {p} has the hostile svg");
    }
    let reports = get(addr, "/reports").text();
    assert!(
        reports.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"),
        "the hostile org_name is not shown as text"
    );
    let report = get(addr, &format!("/reports/{report_id}")).text();
    assert!(report.contains("&quot;&gt;&lt;svg onload=&quot;document.title='pwned2'&quot;&gt;"));
    let source = get(addr, "/source/198.51.100.66").text();
    assert!(
        source.contains("&lt;script&gt;"),
        "the hostile selector is not shown"
    );
    // CSV keeps the text as it is (quoted where needed).
    let csv = get(addr, "/reports?format=csv&table=reporters").text();
    assert!(csv.contains(HOSTILE_ORG), "{csv}");
    // Filters: a date that excludes everything, a bad date, an unknown report.
    let empty = get(addr, "/?since=2099-01-01").text();
    assert!(empty.contains("No aggregate reports in this selection."));
    assert_eq!(get(addr, "/?since=yesterday").status, 400);
    assert_eq!(get(addr, "/reports/999999").status, 404);
    assert_eq!(get(addr, "/?format=csv&table=nope").status, 404);
    // Without authentication only a loopback Host is answered (DNS rebinding).
    let rebound = http(addr, "GET", "/api/summary", &[("Host", "evil.example")], "");
    assert_eq!(rebound.status, 403);
    assert_eq!(
        http(addr, "GET", "/", &[("Host", "localhost:1")], "").status,
        200
    );
    // Rejected inputs: listed with their errors, content only as a download.
    let rejected: Value =
        serde_json::from_slice(&get(addr, "/api/rejected").body).expect("rejected json");
    let first = &rejected[0];
    let page = get(addr, "/rejected").text();
    let err = first["error"].as_str().expect("error");
    assert!(
        page.contains(
            &err.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        )
    );
    let content = get(addr, &format!("/rejected/{}/content", first["id"]));
    assert_eq!(content.status, 200);
    assert_eq!(
        content.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(
        content
            .header("content-disposition")
            .unwrap_or("")
            .starts_with("attachment")
    );
    assert_eq!(
        content.body.len() as i64,
        first["size"].as_i64().expect("size")
    );

    // A report stored while the server runs shows at once (what the server keeps is
    // recomputed when the store changes).
    let before = get(addr, "/api/summary").text();
    let late = dir.path().join("late.xml");
    std::fs::write(
        &late,
        hostile_report()
            .replace("hostile.example", "late.example")
            .replace("1700000000", "1710000000")
            .replace("1700086399", "1710086399"),
    )
    .expect("write");
    dmarc(&["ingest", "--db", &db, &late.display().to_string()]);
    let after = get(addr, "/api/summary").text();
    assert_ne!(before, after);
    assert_eq!(
        after,
        dmarc(&["summary", "--json", "--no-rdns", "--db", &db])
    );
    assert!(get(addr, "/").text().contains("/domain/late.example"));
}

/// The text of the `<title>` element, entities decoded.
fn title_of(html: &str) -> String {
    let raw = html
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or("");
    raw.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    panic!(
        "headless Chromium is needed for this test and was not found: install it with \
         `apt-get install -y chromium` (scripts/test.sh does so when run as root)"
    );
}

#[test]
fn chromium_renders_every_page_with_the_figures_and_runs_no_hostile_script() {
    let browser = chromium();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = filled_store(dir.path());
    let zone = dmarc_testkit::workspace_root().join("examples/example.zone");
    let server = serve(&[
        "--db",
        &db,
        "--listen",
        "127.0.0.1:0",
        "--dns-zone",
        &zone.display().to_string(),
    ]);
    let addr = server.addr.as_str();
    let total: Value = serde_json::from_str(&dmarc(&[
        "summary",
        "--json",
        "--no-rdns",
        "--by",
        "total",
        "--db",
        &db,
    ]))
    .expect("summary json");
    let shots = dmarc_testkit::workspace_root().join("target/web-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let profile = dir.path().join("chromium-profile");
    let mut all = pages(&total);
    all.push(format!("/reports/{}", hostile_report_id(addr)));
    for (i, p) in all.iter().enumerate() {
        let shot = shots.join(format!("{i:02}.png"));
        let _ = std::fs::remove_file(&shot);
        let out = Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--window-size=1280,1600",
                &format!("--user-data-dir={}", profile.display()),
                &format!("--screenshot={}", shot.display()),
                "--dump-dom",
                &format!("http://{addr}{p}"),
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium on {p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(
            dom.contains("<title>dmarc: "),
            "{p}: no page title in\n{dom}"
        );
        // The hostile payloads set document.title: the title must still be the one served.
        let served = get(addr, p).text();
        assert_eq!(
            title_of(&dom),
            title_of(&served),
            "{p}: the hostile script ran"
        );
        assert!(!dom.contains("<script"), "{p}: a script element in the DOM");
        let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{p}: no screenshot: {e}"));
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 5000,
            "{p}: empty screenshot"
        );
        if p == "/" {
            for d in total["domains"].as_array().expect("domains") {
                let cells = format!(
                    "{}</a></td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
                    d["domain"].as_str().expect("domain"),
                    d["reports"],
                    d["messages"]
                );
                assert!(dom.contains(&cells), "the browser's DOM lacks {cells}");
            }
            // The hostile org_name is in the DOM as text (the page escaped it).
        }
        if p == "/reports" {
            assert!(
                dom.contains("&lt;script&gt;document.title='pwned'"),
                "{dom}"
            );
        }
    }
}

#[test]
fn the_domain_page_answers_at_once_while_its_advice_is_worked_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = filled_store(dir.path());
    // A name server that never answers: the advice (reverse DNS, the domain's records)
    // takes as long as the DNS timeouts; the page must not wait for it.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let ns = silent.local_addr().expect("addr").to_string();
    let server = serve(&[
        "--db",
        &db,
        "--listen",
        "127.0.0.1:0",
        "--nameserver",
        &ns,
        "--dns-timeout",
        "10",
    ]);
    let addr = server.addr.as_str();
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let page = get(addr, "/domain/example.com?since=2000-01-01");
        let took = started.elapsed();
        assert_eq!(page.status, 200, "{}", page.text());
        let text = page.text();
        assert!(text.contains("Being worked out"), "{text}");
        assert!(
            text.contains(
                "href=\"/domain/example.com?domain=example.com&amp;since=2000-01-01#advice\""
            ),
            "{text}"
        );
        // The summary is on the page meanwhile.
        assert!(text.contains("messages in"), "{text}");
        assert!(
            took < std::time::Duration::from_millis(1500),
            "the page waited {took:?} for the advice"
        );
    }
    drop(silent);
}

#[test]
fn a_non_loopback_listener_needs_authentication_from_every_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db.sqlite3").display().to_string();
    // Without credentials: refused at start, for 0.0.0.0 as for any other address.
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
        .args(["serve", "--db", &db, "--listen", "0.0.0.0:0"])
        .output()
        .expect("run dmarc serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{err}"
    );

    let hash = {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dmarc"))
            .args(["serve", "--hash-password"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("hash");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(b"correct horse battery\n")
            .expect("write");
        let out = c.wait_with_output().expect("hash output");
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    };
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let token = "t0ken-for-scripts-0123456789";
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!("[serve]\nlisten = \"0.0.0.0:0\"\ndb = \"{db}\"\npassword_hash = \"{hash}\"\ntoken = \"{token}\"\n"),
    )
    .expect("config");
    let server = serve(&["--config", &config.display().to_string()]);
    let port = server.addr.rsplit(':').next().expect("port");
    assert!(server.addr.starts_with("0.0.0.0:"), "{}", server.addr);
    // A loopback client is refused too.
    let addr = format!("127.0.0.1:{port}");
    let a = get(&addr, "/");
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/login"));
    for p in [
        "/api/summary",
        "/?format=csv",
        "/reports?format=csv&table=reports",
    ] {
        assert_eq!(get(&addr, p).status, 401, "{p}");
    }
    let wrong = format!("Bearer {token}x");
    assert_eq!(
        http(
            &addr,
            "GET",
            "/api/summary",
            &[("Authorization", &wrong)],
            ""
        )
        .status,
        401
    );
    let right = format!("Bearer {token}");
    assert_eq!(
        http(
            &addr,
            "GET",
            "/api/summary",
            &[("Authorization", &right)],
            ""
        )
        .status,
        200
    );

    // The login form: a CSRF cookie repeated in the form.
    let form = get(&addr, "/login");
    assert_eq!(form.status, 200);
    let set = form.header("set-cookie").expect("csrf cookie").to_string();
    let csrf = set
        .strip_prefix("dmarc_csrf=")
        .and_then(|s| s.split(';').next())
        .expect("csrf value")
        .to_string();
    assert!(form.text().contains(&format!("value=\"{csrf}\"")));
    let cookie = format!("dmarc_csrf={csrf}");
    let post =
        |body: &str, cookie: &str| http(&addr, "POST", "/login", &[("Cookie", cookie)], body);
    // Without the matching token: refused, even with the right password.
    let a = post("secret=correct+horse+battery&csrf=0000", &cookie);
    assert_eq!(a.status, 403);
    assert_eq!(
        post(&format!("secret=correct+horse+battery&csrf={csrf}"), "").status,
        403
    );
    // A wrong password.
    assert_eq!(
        post(&format!("secret=wrong&csrf={csrf}"), &cookie).status,
        401
    );
    // The right one: a session cookie, HttpOnly, Secure, SameSite=Strict.
    let a = post(
        &format!("secret=correct+horse+battery&csrf={csrf}"),
        &cookie,
    );
    assert_eq!(a.status, 303, "{}", a.text());
    let session = a
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.clone())
        .find(|v| v.starts_with("dmarc_session="))
        .expect("session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(session.contains(attr), "{session}");
    }
    let sid = session.split(';').next().expect("cookie").to_string();
    let page = http(&addr, "GET", "/", &[("Cookie", &sid)], "");
    assert_eq!(page.status, 200);
    let html = page.text();
    let logout_csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("logout form with a CSRF token")
        .to_string();
    // Logging out needs the session's CSRF token.
    let a = http(&addr, "POST", "/logout", &[("Cookie", &sid)], "csrf=forged");
    assert_eq!(a.status, 403);
    assert_eq!(http(&addr, "GET", "/", &[("Cookie", &sid)], "").status, 200);
    let a = http(
        &addr,
        "POST",
        "/logout",
        &[("Cookie", &sid)],
        &format!("csrf={logout_csrf}"),
    );
    assert_eq!(a.status, 303);
    assert_eq!(http(&addr, "GET", "/", &[("Cookie", &sid)], "").status, 303);
    // A token is accepted by the login form too.
    let a = post(&format!("secret={token}&csrf={csrf}"), &cookie);
    assert_eq!(a.status, 303);
}

/// One day's aggregate report: `(source, messages, passing)` rows.
fn day_report(org: &str, day: i64, rows: &[(&str, i64, bool)]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>{org}</org_name>\
         <email>r@{org}</email><report_id>{org}-{day}</report_id><date_range><begin>{day}</begin>\
         <end>{}</end></date_range></report_metadata><policy_published><domain>alerts.example\
         </domain><p>none</p></policy_published>",
        day + 86_399
    );
    for (ip, n, pass) in rows {
        let r = if *pass { "pass" } else { "fail" };
        x.push_str(&format!(
            "<record><row><source_ip>{ip}</source_ip><count>{n}</count><policy_evaluated>\
             <disposition>none</disposition><dkim>{r}</dkim><spf>{r}</spf></policy_evaluated>\
             </row><identifiers><header_from>alerts.example</header_from></identifiers>\
             <auth_results><spf><domain>alerts.example</domain><result>{r}</result></spf>\
             </auth_results></record>"
        ));
    }
    x.push_str("</feedback>");
    x
}

/// A webhook receiver on loopback: every request body, as it arrives.
fn webhook() -> (String, std::sync::mpsc::Receiver<Value>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if let Ok(v) = serde_json::from_slice(&body) {
                let _ = tx.send(v);
            }
        }
    });
    (url, rx)
}

#[test]
fn alert_rules_fire_once_clear_and_are_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db.sqlite3").display().to_string();
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(&reports).expect("mkdir");
    // March 2016: two reporters see one legitimate source each, always passing; the second
    // stops on the 20th. The last two days: the first source fails, a new one appears.
    let march1 = 1_456_790_400; // 2016-03-01
    for d in 0..30 {
        let day = march1 + d * 86_400;
        let r1 = day_report("r1.example", day, &[("192.0.2.10", 200, true)]);
        std::fs::write(reports.join(format!("r1-{d}.xml")), r1).expect("write");
        if d < 20 {
            let r2 = day_report("r2.example", day, &[("192.0.2.11", 100, true)]);
            std::fs::write(reports.join(format!("r2-{d}.xml")), r2).expect("write");
        }
    }
    for d in 30..32 {
        let day = march1 + d * 86_400;
        let r = day_report(
            "r1.example",
            day,
            &[("192.0.2.10", 300, false), ("203.0.113.5", 500, false)],
        );
        std::fs::write(reports.join(format!("r1-{d}.xml")), r).expect("write");
    }
    // An SMTP TLS report of 2016-04-01 with failures (RFC 8460's example).
    let tls =
        dmarc_testkit::corpus("reports-dmarc-report-viewer/smtp-tls-reports/rfc-example.json");
    std::fs::copy(tls, reports.join("tls.json")).expect("copy");
    // DMARC failure reports: two in the baseline, six in the window.
    let dates = [
        "Sat, 05 Mar 2016 10:00:00 +0000",
        "Tue, 15 Mar 2016 10:00:00 +0000",
        "Thu, 31 Mar 2016 08:00:00 +0000",
        "Thu, 31 Mar 2016 09:00:00 +0000",
        "Thu, 31 Mar 2016 10:00:00 +0000",
        "Fri, 01 Apr 2016 08:00:00 +0000",
        "Fri, 01 Apr 2016 09:00:00 +0000",
        "Fri, 01 Apr 2016 10:00:00 +0000",
    ];
    for (i, date) in dates.iter().enumerate() {
        let arf = format!(
            "From: <fr@r1.example>\r\nDate: {date}\r\nSubject: DMARC failure report\r\n\
             To: <dmarc@alerts.example>\r\nMessage-ID: <fr-{i}@r1.example>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nA failure report.\r\n\
             --b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: auth-failure\r\n\
             User-Agent: gen/1.0\r\nVersion: 1\r\nOriginal-Mail-From: <x@alerts.example>\r\n\
             Arrival-Date: {date}\r\nSource-IP: 203.0.113.5\r\nReported-Domain: alerts.example\r\n\
             Auth-Failure: dmarc\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n\
             From: <x@alerts.example>\r\nMessage-ID: <m-{i}@alerts.example>\r\nSubject: hi\r\n\r\n--b--\r\n"
        );
        std::fs::write(reports.join(format!("fr-{i}.eml")), arf).expect("write");
    }
    let ingested = dmarc(&["ingest", "--db", &db, &reports.display().to_string()]);
    assert!(!ingested.contains("rejected #"), "{ingested}");

    let (url, hooks) = webhook();
    let maildir = dir.path().join("mail");
    std::fs::create_dir_all(&maildir).expect("maildir");
    let sendmail = dir.path().join("sendmail");
    std::fs::write(
        &sendmail,
        format!(
            "#!/bin/sh\ncat > \"{}/$(date +%s%N).eml\"\n",
            maildir.display()
        ),
    )
    .expect("sendmail");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sendmail, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let config = dir.path().join("alerts.toml");
    std::fs::write(
        &config,
        format!(
            "[alerts]\nwindow_days = 2\nbaseline_days = 30\nwebhook = \"{url}\"\n\
             email_to = [\"postmaster@alerts.example\"]\nemail_from = \"dmarc@alerts.example\"\n\
             [alerts.new_source]\nmin_messages = 100\n[alerts.pass_rate_drop]\npoints = 10\n\
             [alerts.failing_source]\nmin_messages = 100\n[alerts.reporter_silent]\ndays = 3\n\
             [alerts.failure_spike]\n[alerts.tls_failures]\n\
             [transport]\nkind = \"sendmail\"\ncommand = \"{}\"\n",
            sendmail.display()
        ),
    )
    .expect("config");
    let check = |now: &str, extra: &[&str]| -> (i32, Value) {
        let mut args = vec![
            "alerts",
            "check",
            "--config",
            config.to_str().expect("path"),
            "--db",
            &db,
            "--now",
            now,
            "--json",
        ];
        args.extend(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
            .args(&args)
            .output()
            .expect("run");
        let code = out.status.code().expect("exit code");
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        (code, v)
    };
    let subjects = |v: &Value, key: &str| -> Vec<String> {
        let mut s: Vec<String> = v["changes"][key]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c["rule"].as_str().unwrap_or(""),
                    c["subject"].as_str().unwrap_or("")
                )
            })
            .collect();
        s.sort();
        s
    };
    let expected = vec![
        "failing_source alerts.example 192.0.2.10".to_string(),
        "failure_spike alerts.example".to_string(),
        "new_source alerts.example 203.0.113.5".to_string(),
        "pass_rate_drop alerts.example".to_string(),
        "reporter_silent r2.example".to_string(),
        "tls_failures company-y.example certificate-expired".to_string(),
        "tls_failures company-y.example starttls-not-supported".to_string(),
        "tls_failures company-y.example validation-failure".to_string(),
    ];
    // A dry run says what would fire, and records and sends nothing.
    let (code, dry) = check("2016-04-02", &["--dry-run"]);
    assert_eq!(code, 1);
    assert_eq!(subjects(&dry, "fired"), expected);
    assert!(hooks.recv_timeout(Duration::from_millis(500)).is_err());
    // Fires once: delivered by webhook and email.
    let (code, first) = check("2016-04-02", &[]);
    assert_eq!(code, 1);
    assert_eq!(subjects(&first, "fired"), expected, "{first}");
    let mut got = Vec::new();
    for _ in &expected {
        let h = hooks
            .recv_timeout(Duration::from_secs(10))
            .expect("a webhook call");
        assert_eq!(h["event"], "fired");
        got.push(format!(
            "{} {}",
            h["rule"].as_str().expect("rule"),
            h["subject"].as_str().expect("subject")
        ));
    }
    got.sort();
    assert_eq!(got, expected);
    let mails: Vec<String> = std::fs::read_dir(&maildir)
        .expect("maildir")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("mail"))
        .collect();
    assert_eq!(mails.len(), expected.len());
    assert!(
        mails.iter().any(
            |m| m.contains("Subject: dmarc alert fired: new_source alerts.example 203.0.113.5")
        )
    );
    // Again at the same time: still active, nothing delivered again.
    let (code, second) = check("2016-04-02", &[]);
    assert_eq!(code, 1);
    assert!(subjects(&second, "fired").is_empty());
    assert_eq!(subjects(&second, "ongoing"), expected);
    assert!(hooks.recv_timeout(Duration::from_millis(500)).is_err());
    // Two months on, nothing holds: every condition clears (and says so once).
    let (code, later) = check("2016-06-01", &[]);
    assert_eq!(code, 0, "{later}");
    assert_eq!(subjects(&later, "cleared"), expected);
    for _ in &expected {
        let h = hooks
            .recv_timeout(Duration::from_secs(10))
            .expect("a webhook call");
        assert_eq!(h["event"], "cleared");
    }
    // Back at the first time, they fire again (each fires once per episode).
    let (_, again) = check("2016-04-02", &[]);
    assert_eq!(subjects(&again, "fired"), expected);
    // The dashboard lists them.
    let server = serve(&["--db", &db, "--listen", "127.0.0.1:0"]);
    let page = get(&server.addr, "/alerts").text();
    assert!(
        page.contains("new_source") && page.contains("203.0.113.5"),
        "{page}"
    );
    let api: Value = serde_json::from_slice(&get(&server.addr, "/api/alerts").body).expect("json");
    assert_eq!(api.as_array().expect("list").len(), expected.len());
}

/// An SMTP server on loopback (plain, no AUTH): every message's data, as it arrives.
fn smtp_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let _ = conn.write_all(b"220 localhost ESMTP test\r\n");
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-localhost\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            let _ = conn.write_all(b"354 go on\r\n");
                            let mut data = String::new();
                            loop {
                                let mut l = String::new();
                                if reader.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                                    break;
                                }
                                data.push_str(&l);
                            }
                            let _ = tx.send(data);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = conn.write_all(b"221 bye\r\n");
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = conn.write_all(reply);
                }
            });
        }
    });
    (port, rx)
}

/// The DNS rule on a zone file rewritten between `dmarc alerts check` runs: a change fires
/// once (old and new text told), a break fires and clears when fixed, a temporary failure
/// concludes nothing (and only repeated ones fire), delivered by webhook and to an SMTP
/// server on loopback, and listed on `/alerts`; `dmarc serve` evaluates it too, with its
/// `--dns-zone`.
#[test]
fn dns_record_alerts_fire_on_change_and_break_and_clear_when_fixed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db.sqlite3").display().to_string();
    // The reports show dns.example mail signed with s=s1.
    let report = "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>r1.example</org_name>\
        <email>r@r1.example</email><report_id>dns-1</report_id><date_range><begin>1456790400</begin>\
        <end>1456876799</end></date_range></report_metadata><policy_published><domain>dns.example\
        </domain><p>reject</p></policy_published><record><row><source_ip>192.0.2.10</source_ip>\
        <count>50</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim>\
        <spf>pass</spf></policy_evaluated></row><identifiers><header_from>dns.example</header_from>\
        </identifiers><auth_results><dkim><domain>dns.example</domain><selector>s1</selector>\
        <result>pass</result></dkim><spf><domain>dns.example</domain><result>pass</result></spf>\
        </auth_results></record></feedback>";
    let report_file = dir.path().join("dns.xml");
    std::fs::write(&report_file, report).expect("write");
    dmarc(&["ingest", "--db", &db, report_file.to_str().expect("path")]);

    let (url, hooks) = webhook();
    let (port, mails) = smtp_server();
    let config = dir.path().join("alerts.toml");
    std::fs::write(
        &config,
        format!(
            "[alerts]\nwebhook = \"{url}\"\nemail_to = [\"postmaster@dns.example\"]\n\
             email_from = \"dmarc@dns.example\"\n[alerts.dns_records]\nlookup_failures = 2\n\
             [transport]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             starttls = \"none\"\ntimeout = 10\n"
        ),
    )
    .expect("config");
    let zone = dir.path().join("dns.zone");
    let dmarc_reject = "v=DMARC1; p=reject; rua=mailto:dmarc@dns.example";
    let dmarc_none = "v=DMARC1; p=none; rua=mailto:dmarc@dns.example";
    let spf_ok = "v=spf1 ip4:192.0.2.0/24 -all";
    let spf_broken = "v=spf1 include:gone.dns.example -all";
    let key = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    // `dmarc`: the record's text, or None for a CNAME loop (a temporary failure).
    let write_zone = |dmarc: Option<&str>, spf: &str, dkim: Option<&str>| {
        let mut z = format!(
            "$ORIGIN dns.example.\n@ IN MX 10 mx.dns.example.\nmx IN A 192.0.2.25\n\
             @ IN TXT \"{spf}\"\n"
        );
        match dmarc {
            Some(t) => z.push_str(&format!("_dmarc IN TXT \"{t}\"\n")),
            None => z.push_str("_dmarc IN CNAME _dmarc.dns.example.\n"),
        }
        if let Some(k) = dkim {
            z.push_str(&format!("s1._domainkey IN TXT \"{k}\"\n"));
        }
        std::fs::write(&zone, z).expect("zone");
    };
    // Each evaluation a day after the one before.
    let day = std::cell::Cell::new(3);
    let check_with = |extra: &[&str]| -> (i32, Value) {
        let now = format!("2016-03-{:02}", day.get());
        day.set(day.get() + 1);
        let out = Command::new(env!("CARGO_BIN_EXE_dmarc"))
            .args(["alerts", "check", "--config"])
            .arg(&config)
            .args(["--db", &db, "--now", &now, "--json", "--dns-zone"])
            .arg(&zone)
            .args(extra)
            .output()
            .expect("run");
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().expect("exit code"), v)
    };
    let check = || check_with(&[]);
    // Rule and subject without the time a change carries.
    let listed = |v: &Value, key: &str| -> Vec<String> {
        let mut s: Vec<String> = v["changes"][key]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| {
                let subject = c["subject"].as_str().unwrap_or("");
                let subject = subject.split(' ').take(3).collect::<Vec<_>>().join(" ");
                format!("{} {subject}", c["rule"].as_str().unwrap_or(""))
            })
            .collect();
        s.sort();
        s
    };
    // Exactly `n` webhook calls, then none: (event, rule, detail) each.
    let calls = |n: usize| -> Vec<(String, String, String)> {
        let mut got: Vec<(String, String, String)> = (0..n)
            .map(|_| {
                let h = hooks
                    .recv_timeout(Duration::from_secs(10))
                    .expect("a webhook call");
                let s = |k: &str| h[k].as_str().unwrap_or("").to_string();
                (s("event"), s("rule"), s("detail"))
            })
            .collect();
        assert!(
            hooks.recv_timeout(Duration::from_millis(300)).is_err(),
            "more than {n} webhook calls"
        );
        got.sort();
        got
    };
    let mails_now = |n: usize| -> Vec<String> {
        let got: Vec<String> = (0..n)
            .map(|_| mails.recv_timeout(Duration::from_secs(10)).expect("a mail"))
            .collect();
        assert!(
            mails.recv_timeout(Duration::from_millis(300)).is_err(),
            "more than {n} mails"
        );
        got
    };
    let none: Vec<String> = Vec::new();
    let dmarc_change = "dns_change dns.example dmarc _dmarc.dns.example".to_string();

    // The first look keeps what is published: nothing to say.
    write_zone(Some(dmarc_reject), spf_ok, Some(key));
    let (code, v) = check();
    assert_eq!((code, listed(&v, "fired")), (0, none.clone()), "{v}");
    assert_eq!(v["dns"].as_array().expect("dns").len(), 3, "{v}");
    calls(0);

    // p=reject becomes p=none: a dry run says it would fire, and keeps and sends nothing;
    // then one change, told once with both texts.
    write_zone(Some(dmarc_none), spf_ok, Some(key));
    let (code, v) = check_with(&["--dry-run"]);
    assert_eq!(
        (code, listed(&v, "fired")),
        (1, vec![dmarc_change.clone()]),
        "{v}"
    );
    calls(0);
    mails_now(0);
    let (code, v) = check();
    assert_eq!(
        (code, listed(&v, "fired")),
        (1, vec![dmarc_change.clone()]),
        "{v}"
    );
    let got = calls(1);
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        ("fired", "dns_change")
    );
    for needle in [
        &format!("Was: \"{dmarc_reject}\""),
        &format!("Now: \"{dmarc_none}\""),
        "p=reject became p=none",
    ] {
        assert!(got[0].2.contains(needle), "{needle} in {}", got[0].2);
    }
    let m = mails_now(1);
    assert!(
        m[0].contains(
            "Subject: dmarc alert fired: dns_change dns.example dmarc _dmarc.dns.example 2016-03-05"
        ),
        "{}",
        m[0]
    );
    assert!(
        m[0].contains(dmarc_reject) && m[0].contains(dmarc_none),
        "{}",
        m[0]
    );

    // The next look: the change has been told; it clears without a second message.
    let (code, v) = check();
    assert_eq!(code, 0, "{v}");
    assert_eq!(listed(&v, "cleared"), vec![dmarc_change.clone()]);
    assert!(listed(&v, "fired").is_empty());
    calls(0);
    mails_now(0);

    // One failed lookup concludes nothing, and no change is seen across it.
    write_zone(None, spf_ok, Some(key));
    let (code, v) = check();
    assert_eq!((code, listed(&v, "fired")), (0, none.clone()), "{v}");
    assert!(
        v["dns"]
            .as_array()
            .expect("dns")
            .iter()
            .any(|o| o["name"] == "_dmarc.dns.example" && o["answer"]["status"] == "temporary"),
        "{v}"
    );
    write_zone(Some(dmarc_none), spf_ok, Some(key));
    let (code, v) = check();
    assert_eq!((code, listed(&v, "fired")), (0, none.clone()), "{v}");
    calls(0);

    // SPF breaks (an include without SPF) and the key of s1 is gone: each a change and a
    // break.
    write_zone(Some(dmarc_none), spf_broken, None);
    let (code, v) = check();
    let broken = vec![
        "dns_broken dns.example dkim s1._domainkey.dns.example".to_string(),
        "dns_broken dns.example spf dns.example".to_string(),
    ];
    let changed = vec![
        "dns_change dns.example dkim s1._domainkey.dns.example".to_string(),
        "dns_change dns.example spf dns.example".to_string(),
    ];
    let mut all = [broken.clone(), changed.clone()].concat();
    all.sort();
    assert_eq!((code, listed(&v, "fired")), (1, all), "{v}");
    let got = calls(4);
    let detail = |rule: &str, what: &str| {
        got.iter()
            .find(|(_, r, d)| r == rule && d.contains(what))
            .map(|(_, _, d)| d.clone())
            .unwrap_or_else(|| panic!("no {rule} about {what}: {got:?}"))
    };
    assert!(detail("dns_broken", "SPF").contains("spf_include_missing"));
    assert!(detail("dns_broken", "DKIM").contains("dkim_selector_missing"));
    assert!(detail("dns_change", "SPF").contains(&format!("Was: \"{spf_ok}\"")));
    assert!(detail("dns_change", "SPF").contains(&format!("Now: \"{spf_broken}\"")));
    assert!(detail("dns_change", "DKIM").contains("Now: (none published)"));
    assert_eq!(mails_now(4).len(), 4);

    // Still broken: active, not told again; the changes clear.
    let (code, v) = check();
    assert_eq!(code, 1, "{v}");
    assert_eq!(listed(&v, "ongoing"), broken);
    assert_eq!(listed(&v, "cleared"), changed);
    calls(0);
    mails_now(0);

    // Fixed: the breaks clear (and say so), and the records changed back.
    write_zone(Some(dmarc_none), spf_ok, Some(key));
    let (code, v) = check();
    assert_eq!(code, 1, "{v}");
    assert_eq!(listed(&v, "cleared"), broken);
    assert_eq!(listed(&v, "fired"), changed);
    let events: Vec<(String, String)> = calls(4).into_iter().map(|(e, r, _)| (e, r)).collect();
    let pair = |e: &str, r: &str| (e.to_string(), r.to_string());
    assert_eq!(
        events,
        [
            pair("cleared", "dns_broken"),
            pair("cleared", "dns_broken"),
            pair("fired", "dns_change"),
            pair("fired", "dns_change"),
        ]
    );
    mails_now(4);

    // Lookups failing at two evaluations in a row (lookup_failures = 2) are a break of
    // their own, which clears when DNS answers again.
    let dmarc_broken = vec!["dns_broken dns.example dmarc _dmarc.dns.example".to_string()];
    write_zone(None, spf_ok, Some(key));
    let (code, v) = check();
    assert_eq!(listed(&v, "cleared"), changed);
    assert_eq!((code, listed(&v, "fired")), (0, none.clone()), "{v}");
    let (code, v) = check();
    assert_eq!(
        (code, listed(&v, "fired")),
        (1, dmarc_broken.clone()),
        "{v}"
    );
    let got = calls(1);
    assert!(
        got[0].2.contains("lookup_failed") && got[0].2.contains("CNAME loop"),
        "{got:?}"
    );
    mails_now(1);
    write_zone(Some(dmarc_none), spf_ok, Some(key));
    let (code, v) = check();
    assert_eq!((code, listed(&v, "cleared")), (0, dmarc_broken), "{v}");
    assert!(listed(&v, "fired").is_empty(), "{v}");
    calls(1);
    mails_now(1);

    let api: Value = {
        let server = serve(&["--db", &db, "--listen", "127.0.0.1:0"]);
        serde_json::from_slice(&get(&server.addr, "/api/alerts").body).expect("json")
    };
    assert!(
        api.as_array()
            .expect("list")
            .iter()
            .all(|a| a["active"] == false),
        "{api}"
    );

    // `dmarc serve` evaluates the rule at once, through its own resolver: the domains
    // listed (the reports of 2016 are outside today's window), against what the checks
    // above kept; p=none back to p=reject is a change, and the policy is not weaker.
    let serve_config = dir.path().join("serve.toml");
    std::fs::write(
        &serve_config,
        format!(
            "[alerts]\nwebhook = \"{url}\"\ninterval_minutes = 60\n[alerts.dns_records]\n\
             domains = [\"dns.example\"]\nselectors = [\"s1\"]\n"
        ),
    )
    .expect("config");
    write_zone(Some(dmarc_reject), spf_ok, Some(key));
    let server = serve(&[
        "--db",
        &db,
        "--listen",
        "127.0.0.1:0",
        "--config",
        serve_config.to_str().expect("path"),
        "--dns-zone",
        zone.to_str().expect("path"),
    ]);
    let got = calls(1);
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        ("fired", "dns_change")
    );
    assert!(
        got[0].2.contains(&format!("Was: \"{dmarc_none}\""))
            && got[0].2.contains(&format!("Now: \"{dmarc_reject}\""))
            && !got[0].2.contains("weaker"),
        "{}",
        got[0].2
    );

    // The dashboard lists them all, the old and new text shown as text.
    let page = get(&server.addr, "/alerts").text();
    for needle in [
        "dns_change",
        "dns_broken",
        "_dmarc.dns.example",
        "s1._domainkey.dns.example",
        "p=reject became p=none",
        "spf_include_missing",
    ] {
        assert!(page.contains(needle), "{needle} not on /alerts: {page}");
    }
    let api: Value = serde_json::from_slice(&get(&server.addr, "/api/alerts").body).expect("json");
    let active: Vec<&str> = api
        .as_array()
        .expect("list")
        .iter()
        .filter(|a| a["active"] == true)
        .map(|a| a["rule"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(active, ["dns_change"], "{api}");
}
