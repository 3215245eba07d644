//! The one bounded reader for files named on a command line or in a configuration: a
//! message, a key, a password file, a list of cases, a report. Nothing is read past the
//! limit, whatever the file is (`/dev/zero`, a FIFO, a file growing while it is read).

use std::fmt;
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Why a file could not be read within its limit. Its text names the file, and for a
/// file too large, the limit and what it is for.
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be opened or read.
    Io {
        /// The file.
        path: PathBuf,
        /// What it is (`"message"`, `"key file"`, ...).
        what: &'static str,
        /// The error.
        error: std::io::Error,
    },
    /// The file is larger than `limit` bytes.
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What it is.
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io { path, what, error } => {
                write!(f, "cannot read the {what} {}: {error}", path.display())
            }
            ReadError::TooLarge { path, what, limit } => write!(
                f,
                "the {what} {} is larger than {limit} bytes, the limit for a {what}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io { error, .. } => Some(error),
            ReadError::TooLarge { .. } => None,
        }
    }
}

/// Reads the whole of `path`, a `what` (for the messages), refusing it when it is larger
/// than `limit` bytes: at once when its size says so, else after reading one byte more
/// than the limit (a device or pipe has no size).
pub fn read_bounded(path: &Path, what: &'static str, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io = |error| ReadError::Io {
        path: path.to_path_buf(),
        what,
        error,
    };
    let too_large = || ReadError::TooLarge {
        path: path.to_path_buf(),
        what,
        limit,
    };
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > limit {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(buf)
}

/// [`read_bounded`] for a text file: the bytes must be UTF-8.
pub fn read_bounded_text(path: &Path, what: &'static str, limit: u64) -> Result<String, ReadError> {
    let bytes = read_bounded(path, what, limit)?;
    String::from_utf8(bytes).map_err(|e| ReadError::Io {
        path: path.to_path_buf(),
        what,
        error: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_device_fails_fast_with_the_limit_named() {
        let e = read_bounded(Path::new("/dev/zero"), "key file", 1024).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the key file /dev/zero is larger than 1024 bytes, the limit for a key file"
        );
    }

    #[test]
    fn within_the_limit_and_at_it() {
        let dir = std::env::temp_dir().join(format!("bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_bounded(&p, "message", 5).unwrap(), b"12345");
        assert!(matches!(
            read_bounded(&p, "message", 4),
            Err(ReadError::TooLarge { limit: 4, .. })
        ));
        let e = read_bounded(&dir.join("missing"), "message", 4).unwrap_err();
        assert!(e.to_string().starts_with("cannot read the message "), "{e}");
        std::fs::write(&p, b"\xff").unwrap();
        assert!(read_bounded_text(&p, "password file", 4).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
