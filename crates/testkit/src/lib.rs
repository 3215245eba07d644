//! Helpers shared by the tests of the dmarc crates: where the outside conformance corpora
//! are, and the small conversions their harnesses need.

use std::path::{Path, PathBuf};

/// The directory holding the outside conformance corpora.
///
/// `DMARC_CORPORA` if set, else `../shared/corpora` beside the checkout (where CI puts it).
/// Panics with instructions when it is missing: a conformance test never passes silently.
pub fn corpora() -> PathBuf {
    if let Some(dir) = std::env::var_os("DMARC_CORPORA") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.is_dir(),
            "DMARC_CORPORA={} is not a directory",
            dir.display()
        );
        return dir;
    }
    let root = workspace_root();
    let dir = root.join("../shared/corpora");
    assert!(
        dir.is_dir(),
        "the conformance corpora are missing: expected {} (../shared/corpora beside the \
         checkout), or set DMARC_CORPORA to their location",
        dir.display()
    );
    dir
}

/// A file or directory inside the corpora; panics with its path if it is missing.
pub fn corpus(rel: &str) -> PathBuf {
    let p = corpora().join(rel);
    assert!(p.exists(), "corpus file missing: {}", p.display());
    p
}

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Converts bare LF line endings to CRLF, leaving existing CRLF alone.
pub fn to_crlf(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 32);
    let mut prev = 0u8;
    for &b in input {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn crlf() {
        assert_eq!(super::to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
    }
}
pub mod daemon;
pub mod postgres;
pub mod rollout;
pub mod smtp;
