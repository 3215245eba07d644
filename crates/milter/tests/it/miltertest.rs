//! `miltertest` (Debian's package, from OpenDKIM) as a second, independent MTA-side
//! implementation: its Lua scripts in tests/miltertest/ run against the server.
//! scripts/test.sh installs it when missing; without it these tests fail, saying how to
//! install it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use dmarc_milter::listen::ListenAddr;
use dmarc_milter::server::{Current, Listeners, ServerSettings, Stop, serve};
use tokio::sync::watch;

use crate::support::{Recorder, filter, mail_bench};

fn miltertest() -> PathBuf {
    for p in ["/usr/bin/miltertest", "/usr/local/bin/miltertest"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    match Command::new("miltertest").arg("-V").output() {
        Ok(_) => "miltertest".into(),
        Err(_) => panic!(
            "miltertest is not installed: apt-get install miltertest (scripts/test.sh installs it when run as root)"
        ),
    }
}

async fn run_script(name: &str) {
    let tool = miltertest();
    let built = filter(&["quarantine=hold"]);
    let listeners = Listeners::bind(
        &[ListenAddr::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        }],
        0o600,
    )
    .await
    .unwrap();
    let addr = listeners.names()[0].clone();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let observer = Arc::new(Recorder::default());
    let server = tokio::spawn(serve(
        listeners,
        Arc::new(Current::new(built.filter.clone())),
        ServerSettings::default(),
        observer.clone(),
        stop_rx,
    ));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/miltertest");
    let script = dir.join(format!("{name}.lua"));
    let out = tokio::task::spawn_blocking(move || {
        Command::new(tool)
            .arg("-D")
            .arg(format!("port={port}"))
            .arg("-D")
            .arg(format!("corpus={}", mail_bench().display()))
            .arg("-D")
            .arg(format!("libdir={}", dir.display()))
            .arg("-s")
            .arg(script)
            .output()
            .expect("run miltertest")
    })
    .await
    .unwrap();
    stop_tx.send(Stop::Drain).unwrap();
    server.await.unwrap();
    assert!(
        out.status.success(),
        "miltertest {name} failed ({}):\n{}\n{}\nserver: {:?}\nlog: {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        observer.lines(),
        built.logger.lines()
    );
    // No connection ended on an error.
    assert!(
        !observer.lines().iter().any(|l| l.contains("error")),
        "{:?}",
        observer.lines()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miltertest_pass() {
    run_script("pass").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miltertest_reject() {
    run_script("reject").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miltertest_quarantine() {
    run_script("quarantine").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miltertest_protocol_paths() {
    run_script("protocol").await;
}
