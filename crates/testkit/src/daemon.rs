//! A daemon started by a test (`dmarc milter`, say) with its standard error in a log file
//! that the test reads as it grows; killed when dropped if it is still running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running daemon and its log (its standard error).
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    log: PathBuf,
    /// The log file when the daemon made it (removed with the daemon).
    _temp: Option<tempfile::TempPath>,
}

impl Daemon {
    /// Starts `cmd`, its standard error into the file `log` (created or emptied), its
    /// standard output discarded.
    pub fn spawn(cmd: &mut Command, log: &Path) -> Daemon {
        let file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        Daemon::start(cmd, file, log.to_owned(), None)
    }

    /// [`Daemon::spawn`] with the log in a temporary file of its own.
    pub fn spawn_with_temp_log(cmd: &mut Command) -> Daemon {
        let temp = tempfile::NamedTempFile::new().expect("a temporary log file");
        let file = temp.reopen().expect("the temporary log file");
        let path = temp.into_temp_path();
        Daemon::start(cmd, file, path.to_path_buf(), Some(path))
    }

    fn start(
        cmd: &mut Command,
        file: std::fs::File,
        log: PathBuf,
        temp: Option<tempfile::TempPath>,
    ) -> Daemon {
        let child = cmd
            .stderr(file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Daemon {
            child,
            log,
            _temp: temp,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to 20 s) until `needle` is in the log `occurrences` times; panics with the
    /// log otherwise.
    pub fn wait_for_log(&self, needle: &str, occurrences: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.log().matches(needle).count() < occurrences {
            assert!(
                Instant::now() < deadline,
                "{needle:?} not {occurrences} times in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`-TERM`, `-HUP`...) with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} {}", self.child.id());
    }

    /// Its exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// Waits (up to `limit`) for the exit, which must be a success; the log.
    pub fn exit_within(mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.try_wait() {
                break s;
            }
            assert!(Instant::now() < deadline, "still running:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = self.log();
        assert!(status.success(), "{status}:\n{log}");
        log
    }

    /// Waits (up to 30 s) for the exit after a signal, which must be a success; the log.
    pub fn exit(self) -> String {
        self.exit_within(Duration::from_secs(30))
    }

    /// SIGTERM, then [`Daemon::exit`].
    pub fn stop(self) -> String {
        self.signal("-TERM");
        self.exit()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits (up to 20 s) until something accepts TCP connections at `addr` (`HOST:PORT`).
pub fn wait_for_port(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
