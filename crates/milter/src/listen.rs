//! Where the milter listens, in the spellings postmasters already write: Postfix's
//! `inet:HOST:PORT` and `unix:PATH`, Sendmail's `inet:PORT@HOST`, `inet6:PORT@HOST` and
//! `local:PATH`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A listening address.
///
/// ```
/// use dmarc_milter::listen::ListenAddr;
///
/// let postfix: ListenAddr = "inet:127.0.0.1:8893".parse().unwrap();
/// let sendmail: ListenAddr = "inet:8893@127.0.0.1".parse().unwrap();
/// assert_eq!(postfix, sendmail);
/// assert_eq!(postfix.to_string(), "inet:127.0.0.1:8893");
/// assert_eq!("inet6:8893@[::1]".parse::<ListenAddr>().unwrap().to_string(), "inet:[::1]:8893");
/// assert!("unix:/run/dmarc/milter.sock".parse::<ListenAddr>().is_ok());
/// assert!("tcp://localhost".parse::<ListenAddr>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// A TCP socket. The host is a name or an address (IPv6 without brackets); port 0
    /// picks a free port.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix-domain socket.
    Unix(PathBuf),
}

/// Why a listening address was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenError {
    input: String,
    why: &'static str,
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "listen address {:?}: {} (expected inet:HOST:PORT, inet:PORT@HOST, inet6:PORT@HOST or unix:PATH)",
            self.input, self.why
        )
    }
}

impl std::error::Error for ListenError {}

impl FromStr for ListenAddr {
    type Err = ListenError;

    fn from_str(input: &str) -> Result<ListenAddr, ListenError> {
        let err = |why| ListenError {
            input: input.to_owned(),
            why,
        };
        let s = input.trim();
        let (scheme, rest) = match s.split_once(':') {
            Some((scheme, rest)) if !scheme.contains(['/', '[']) => (scheme, rest),
            _ if s.starts_with('/') => ("unix", s),
            _ => return Err(err("no scheme")),
        };
        match scheme.to_ascii_lowercase().as_str() {
            "unix" | "local" => {
                if rest.is_empty() {
                    return Err(err("the socket path is empty"));
                }
                Ok(ListenAddr::Unix(PathBuf::from(rest)))
            }
            scheme @ ("inet" | "inet6") => {
                let any = if scheme == "inet" { "0.0.0.0" } else { "::" };
                let (host, port) = if let Some((port, host)) = rest.split_once('@') {
                    (host, port)
                } else if let Some(v6) = rest.strip_prefix('[') {
                    let (host, port) = v6
                        .split_once("]:")
                        .ok_or_else(|| err("an IPv6 address in brackets needs :PORT after it"))?;
                    (host, port)
                } else if let Some((host, port)) = rest.rsplit_once(':') {
                    if host.contains(':') {
                        return Err(err("write an IPv6 address in brackets, [::1]:PORT"));
                    }
                    (host, port)
                } else {
                    (any, rest)
                };
                let host = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                if host.is_empty() {
                    return Err(err("the host is empty"));
                }
                let port: u16 = port
                    .parse()
                    .map_err(|_| err("the port is not a number from 0 to 65535"))?;
                Ok(ListenAddr::Tcp {
                    host: host.to_owned(),
                    port,
                })
            }
            _ => Err(err("unknown scheme")),
        }
    }
}

impl fmt::Display for ListenAddr {
    /// Postfix's spelling (what goes in `smtpd_milters`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp { host, port } if host.contains(':') => {
                write!(f, "inet:[{host}]:{port}")
            }
            ListenAddr::Tcp { host, port } => write!(f, "inet:{host}:{port}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl serde::Serialize for ListenAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ListenAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> ListenAddr {
        ListenAddr::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn every_spelling() {
        let cases = [
            ("inet:localhost:8893", tcp("localhost", 8893)),
            ("inet:8893@localhost", tcp("localhost", 8893)),
            ("inet:[::1]:8893", tcp("::1", 8893)),
            ("inet6:8893@::1", tcp("::1", 8893)),
            ("inet6:8893@[::1]", tcp("::1", 8893)),
            ("inet:8893", tcp("0.0.0.0", 8893)),
            ("inet6:8893", tcp("::", 8893)),
            ("INET:127.0.0.1:0", tcp("127.0.0.1", 0)),
            ("unix:/run/m.sock", ListenAddr::Unix("/run/m.sock".into())),
            ("local:/run/m.sock", ListenAddr::Unix("/run/m.sock".into())),
            ("/run/m.sock", ListenAddr::Unix("/run/m.sock".into())),
            (
                "unix:relative.sock",
                ListenAddr::Unix("relative.sock".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<ListenAddr>().as_ref(), Ok(&want), "{input}");
            // Display gives Postfix's spelling, which parses back to the same.
            assert_eq!(want.to_string().parse::<ListenAddr>(), Ok(want.clone()));
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (input, why) in [
            ("inet:::1:8893", "brackets"),
            ("inet:host:99999", "port"),
            ("inet:host:", "port"),
            ("inet:@host", "port"),
            ("inet:8893@", "host is empty"),
            ("unix:", "path is empty"),
            ("tcp:1.2.3.4:5", "unknown scheme"),
            ("localhost", "no scheme"),
            ("inet:[::1]", "needs :PORT"),
        ] {
            let e = input.parse::<ListenAddr>().unwrap_err().to_string();
            assert!(e.contains(why), "{input}: {e}");
        }
    }
}
