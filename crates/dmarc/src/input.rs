//! Every file named on the command line is read through here: one bounded reader
//! ([`dmarc_ingest::read_bounded`]) with a limit for each kind of file, so that no
//! argument (`/dev/zero`, a huge file by mistake) can make the process grow without bound.

use std::path::Path;

/// A message (verify, dkim verify/sign, a --batch case): 64 MiB, far above what mail
/// systems accept.
pub const MAX_MESSAGE: u64 = 64 << 20;
/// A PEM key file: 1 MiB (an RSA 8192 private key is under 7 KiB).
pub const MAX_KEY: u64 = 1 << 20;
/// A `verify --batch` cases file (JSON Lines): 64 MiB.
pub const MAX_CASES: u64 = 64 << 20;
/// A small text file (an MTA-STS policy): 1 MiB.
pub const MAX_SMALL_TEXT: u64 = 1 << 20;

/// Reads `path`, a `what`, refusing it past `limit` bytes with an error naming the file
/// and the limit.
pub fn read(path: &Path, what: &'static str, limit: u64) -> anyhow::Result<Vec<u8>> {
    Ok(dmarc_ingest::read_bounded(path, what, limit)?)
}

/// [`read`] for UTF-8 text.
pub fn read_text(path: &Path, what: &'static str, limit: u64) -> anyhow::Result<String> {
    Ok(dmarc_ingest::read_bounded_text(path, what, limit)?)
}
