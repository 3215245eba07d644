//! The `--imap*` flags of `dmarc ingest`, turned into the IMAP source's plain
//! [`ImapConfig`] (the library does not know about flags).

use std::path::PathBuf;
use std::time::Duration;

use dmarc_ingest::imap::{
    Action, ImapConfig, ImapError, ImapUrl, PASSWORD_ENV, Password, Security, Trust,
};

/// Flags of `dmarc ingest` for reading reports from an IMAP mailbox. Flatten it into the
/// command (`#[command(flatten)] imap: ImapArgs`), then call [`ImapArgs::to_config`].
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "IMAP source")]
pub struct ImapArgs {
    /// Read reports from an IMAP mailbox: imaps://USER@HOST/MAILBOX (implicit TLS, port
    /// 993) or imap://USER@HOST/MAILBOX (STARTTLS, port 143); write HOST:PORT for another
    /// port and %40 for an '@' in the user name. The password comes from the
    /// DMARC_IMAP_PASSWORD environment variable or --imap-password-file.
    #[arg(long, value_name = "URL")]
    pub imap: Option<ImapUrl>,

    /// Read the IMAP password from this file (one trailing newline is ignored).
    #[arg(long, value_name = "PATH", requires = "imap")]
    pub imap_password_file: Option<PathBuf>,

    /// Trust only the CA certificates in this PEM file instead of the system's (for a
    /// private CA or a self-signed server certificate).
    #[arg(long, value_name = "PATH", requires = "imap")]
    pub imap_ca_file: Option<PathBuf>,

    /// Do not check the server's certificate at all. The password can then be stolen by
    /// anyone on the network path; prefer --imap-ca-file.
    #[arg(long, requires = "imap", conflicts_with = "imap_ca_file")]
    pub imap_danger_accept_invalid_certs: bool,

    /// With imap:// URLs, log in without TLS instead of requiring STARTTLS. The password
    /// crosses the network in clear: for loopback test servers only.
    #[arg(long, requires = "imap")]
    pub imap_insecure_plaintext: bool,

    /// Move processed messages to this folder (created if missing) instead of flagging them
    /// \Seen and with the processed keyword.
    #[arg(long, value_name = "FOLDER", requires = "imap")]
    pub imap_move_to: Option<String>,

    /// Move messages that are not ingestible reports to this folder (created if missing)
    /// instead of flagging them \Flagged and with the rejected keyword.
    #[arg(long, value_name = "FOLDER", requires = "imap")]
    pub imap_error_folder: Option<String>,

    /// Keyword marking processed messages (when not moved).
    #[arg(long, value_name = "KEYWORD", default_value = "$DmarcProcessed")]
    pub imap_processed_keyword: String,

    /// Keyword marking rejected messages (when not moved).
    #[arg(long, value_name = "KEYWORD", default_value = "$DmarcRejected")]
    pub imap_rejected_keyword: String,

    /// Messages fetched per request.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub imap_batch_size: usize,

    /// Largest message downloaded (bytes, or with a K, M or G suffix); bigger ones are
    /// treated as rejected.
    #[arg(long, value_name = "SIZE", default_value = "25M", value_parser = parse_size)]
    pub imap_max_message_size: u64,

    /// Seconds to wait for the server: to connect, and for each response (one message's
    /// data when fetching).
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub imap_timeout: u64,

    /// Keep running: wait for new messages with IDLE and process them as they arrive,
    /// reconnecting when the connection is lost. Stop with Ctrl-C.
    #[arg(long, requires = "imap")]
    pub watch: bool,
}

impl ImapArgs {
    /// Turns the flags into a checked [`ImapConfig`]; `None` when `--imap` was not given.
    ///
    /// `env_password` is the value of `DMARC_IMAP_PASSWORD` (the caller reads the
    /// environment: `std::env::var("DMARC_IMAP_PASSWORD").ok()`); `--imap-password-file`
    /// takes precedence over it.
    pub fn to_config(&self, env_password: Option<String>) -> Result<Option<ImapConfig>, ImapError> {
        let Some(url) = &self.imap else {
            return Ok(None);
        };
        let mut server = url.clone();
        if self.imap_insecure_plaintext {
            if server.security == Security::ImplicitTls {
                return Err(ImapError::Config(
                    "--imap-insecure-plaintext applies to imap:// URLs, not imaps://".to_owned(),
                ));
            }
            server.security = Security::Plaintext;
        }
        let password = match (&self.imap_password_file, env_password) {
            (Some(path), _) => read_password_file(path)?,
            (None, Some(p)) if !p.is_empty() => p,
            (None, _) => {
                return Err(ImapError::Config(format!(
                    "no IMAP password: set {PASSWORD_ENV} or pass --imap-password-file"
                )));
            }
        };
        let mut config = ImapConfig::new(server, Password::new(password));
        config.trust = match (&self.imap_ca_file, self.imap_danger_accept_invalid_certs) {
            (Some(_), true) => {
                return Err(ImapError::Config(
                    "--imap-ca-file and --imap-danger-accept-invalid-certs exclude each other"
                        .to_owned(),
                ));
            }
            (Some(path), false) => Trust::CaFile(path.clone()),
            (None, true) => Trust::DangerAcceptInvalidCerts,
            (None, false) => Trust::SystemRoots,
        };
        if let Some(folder) = &self.imap_move_to {
            config.on_processed = Action::MoveTo(folder.clone());
        }
        if let Some(folder) = &self.imap_error_folder {
            config.on_rejected = Action::MoveTo(folder.clone());
        }
        config.processed_keyword = self.imap_processed_keyword.clone();
        config.rejected_keyword = self.imap_rejected_keyword.clone();
        config.batch_size = self.imap_batch_size;
        config.max_message_size = self.imap_max_message_size;
        config.watch = self.watch;
        config.command_timeout = Duration::from_secs(self.imap_timeout);
        config.connect_timeout = Duration::from_secs(self.imap_timeout.min(30));
        config.validate()?;
        Ok(Some(config))
    }
}

/// The largest --imap-password-file read (a password is one line).
const MAX_PASSWORD_FILE: u64 = 4096;

fn read_password_file(path: &std::path::Path) -> Result<String, ImapError> {
    let text = dmarc_ingest::read_bounded_text(path, "password file", MAX_PASSWORD_FILE)
        .map_err(|e| ImapError::Config(format!("--imap-password-file: {e}")))?;
    let password = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(ImapError::Config(format!(
            "--imap-password-file {} is empty",
            path.display()
        )));
    }
    if password.contains(['\r', '\n']) {
        return Err(ImapError::Config(format!(
            "--imap-password-file {} has more than one line",
            path.display()
        )));
    }
    Ok(password.to_owned())
}

/// Parses `1234`, `64K`, `25M`, `1G` (binary multiples).
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, multiplier) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (s.get(..i), 1u64 << 10),
        Some((i, 'm' | 'M')) => (s.get(..i), 1 << 20),
        Some((i, 'g' | 'G')) => (s.get(..i), 1 << 30),
        _ => (Some(s), 1),
    };
    let n: u64 = digits
        .unwrap_or("")
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 1048576, 512K or 25M"))?;
    n.checked_mul(multiplier)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        imap: ImapArgs,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("dmarc").chain(args.iter().copied()))
    }

    #[test]
    fn flag_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn no_imap_no_config() {
        let cli = parse(&[]).unwrap();
        assert!(cli.imap.to_config(None).unwrap().is_none());
    }

    #[test]
    fn full_flags() {
        let cli = parse(&[
            "--imap",
            "imap://dmarc@127.0.0.1:1143/Reports",
            "--imap-insecure-plaintext",
            "--imap-move-to",
            "Processed",
            "--imap-error-folder",
            "Errors",
            "--imap-max-message-size",
            "512K",
            "--imap-batch-size",
            "7",
            "--imap-timeout",
            "9",
            "--watch",
        ])
        .unwrap();
        let c = cli.imap.to_config(Some("pw".into())).unwrap().unwrap();
        assert_eq!(c.server.security, Security::Plaintext);
        assert_eq!(c.password, Password::new("pw"));
        assert_eq!(c.on_processed, Action::MoveTo("Processed".into()));
        assert_eq!(c.on_rejected, Action::MoveTo("Errors".into()));
        assert_eq!(c.max_message_size, 512 * 1024);
        assert_eq!(c.batch_size, 7);
        assert_eq!(c.command_timeout, Duration::from_secs(9));
        assert!(c.watch);
        assert_eq!(c.trust, Trust::SystemRoots);
    }

    #[test]
    fn defaults_flag_and_verify() {
        let cli = parse(&["--imap", "imaps://u@h/"]).unwrap();
        let c = cli.imap.to_config(Some("pw".into())).unwrap().unwrap();
        assert_eq!(c.server.security, Security::ImplicitTls);
        assert_eq!(c.on_processed, Action::Flag);
        assert_eq!(c.on_rejected, Action::Flag);
        assert_eq!(c.processed_keyword, "$DmarcProcessed");
        assert_eq!(c.max_message_size, 25 << 20);
        assert!(!c.watch);
    }

    #[test]
    fn password_sources() {
        let cli = parse(&["--imap", "imaps://u@h/"]).unwrap();
        let err = cli.imap.to_config(None).unwrap_err().to_string();
        assert!(err.contains("DMARC_IMAP_PASSWORD"), "{err}");

        let dir = std::env::temp_dir().join(format!("dmarc-imap-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "from-file\r\n").unwrap();
        let cli = parse(&[
            "--imap",
            "imaps://u@h/",
            "--imap-password-file",
            file.to_str().unwrap(),
        ])
        .unwrap();
        let c = cli
            .imap
            .to_config(Some("from-env".into()))
            .unwrap()
            .unwrap();
        assert_eq!(c.password, Password::new("from-file"));

        std::fs::write(&file, "a\nb\n").unwrap();
        assert!(
            cli.imap
                .to_config(None)
                .unwrap_err()
                .to_string()
                .contains("more than one line")
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(
            cli.imap
                .to_config(None)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            cli.imap
                .to_config(None)
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
    }

    #[test]
    fn contradictions_are_refused() {
        assert!(parse(&["--imap-move-to", "X"]).is_err(), "needs --imap");
        assert!(
            parse(&[
                "--imap",
                "imaps://u@h/",
                "--imap-ca-file",
                "ca.pem",
                "--imap-danger-accept-invalid-certs"
            ])
            .is_err()
        );
        let cli = parse(&["--imap", "imaps://u@h/", "--imap-insecure-plaintext"]).unwrap();
        assert!(cli.imap.to_config(Some("p".into())).is_err());
        let cli = parse(&["--imap", "imaps://u@h/INBOX", "--imap-move-to", "inbox"]).unwrap();
        assert!(cli.imap.to_config(Some("p".into())).is_err());
        assert!(parse(&["--imap", "imaps://u:p@h/"]).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1234"), Ok(1234));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("25M"), Ok(25 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        for bad in ["", "M", "0", "-1", "1T", "99999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
