//! Walking paths: files, directories (recursively), mbox files (streamed one message at a
//! time) and maildirs.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use dmarc_report::Limits;
use dmarc_store::Store;

use crate::{Counts, IngestError, IngestOutcome, Source, ingest_bytes, reject_with};

/// How a planned input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A file read whole and parsed by its content.
    File,
    /// An mbox file (first line `From `), read one message at a time.
    Mbox,
    /// A message file in a maildir's `cur` or `new`.
    MaildirMessage,
}

/// One input found by [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedInput {
    /// The file.
    pub path: PathBuf,
    /// How it will be read.
    pub kind: InputKind,
    /// Its size in bytes when planned (0 if unknown).
    pub size: u64,
}

/// Where [`ingest_paths`] is, after each input (or mbox message).
#[derive(Debug, Clone, Copy)]
pub struct IngestProgress<'a> {
    /// Bytes read so far over all inputs.
    pub done_bytes: u64,
    /// Bytes of all planned inputs.
    pub total_bytes: u64,
    /// Inputs finished.
    pub inputs_done: usize,
    /// Inputs planned.
    pub inputs_total: usize,
    /// The file being read.
    pub current: &'a Path,
    /// Counts so far.
    pub counts: Counts,
}

/// Deepest directory nesting followed.
const MAX_DEPTH: usize = 64;

/// Lists the inputs under `paths`, in a stable order: a file is one input; a directory is
/// walked recursively (hidden entries skipped, symbolic links to directories not
/// followed); a directory with `cur` and `new` subdirectories is a maildir, whose
/// messages in `cur` and `new` are inputs and whose subdirectories (Maildir++ folders)
/// are walked too. A file whose first bytes are `From ` is an mbox.
///
/// Fails when a path given cannot be read at all.
pub fn plan(paths: &[PathBuf]) -> Result<Vec<PlannedInput>, IngestError> {
    let mut out = Vec::new();
    for p in paths {
        // Recorded with every report: absolute, so it can be found again from anywhere.
        let p = &std::path::absolute(p).unwrap_or_else(|_| p.clone());
        let meta = std::fs::metadata(p).map_err(|source| IngestError::Io {
            path: p.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk_dir(p, 0, &mut out).map_err(|source| IngestError::Io {
                path: p.clone(),
                source,
            })?;
        } else {
            out.push(classify_file(p, meta.len()));
        }
    }
    Ok(out)
}

fn classify_file(path: &Path, size: u64) -> PlannedInput {
    let mut head = [0u8; 5];
    let is_mbox = File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"From ";
    PlannedInput {
        path: path.to_path_buf(),
        kind: if is_mbox {
            InputKind::Mbox
        } else {
            InputKind::File
        },
        size,
    }
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    let mut v: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    v.sort_by_key(|e| e.file_name());
    Ok(v)
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() && dir.join("new").is_dir()
}

fn walk_dir(dir: &Path, depth: usize, out: &mut Vec<PlannedInput>) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let maildir = is_maildir(dir);
    if maildir {
        for sub in ["new", "cur"] {
            for e in sorted_entries(&dir.join(sub))? {
                let name = e.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue;
                }
                let ft = e.file_type()?;
                if ft.is_file() || (ft.is_symlink() && e.path().is_file()) {
                    let size = e.metadata().map_or(0, |m| m.len());
                    out.push(PlannedInput {
                        path: e.path(),
                        kind: InputKind::MaildirMessage,
                        size,
                    });
                }
            }
        }
    }
    for e in sorted_entries(dir)? {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ft = e.file_type()?;
        if maildir {
            // Only Maildir++ folders (".Name" directories that are maildirs) beside
            // cur/new/tmp; the rest are the mail server's own files.
            if ft.is_dir() && name.starts_with('.') && is_maildir(&e.path()) {
                walk_dir(&e.path(), depth + 1, out)?;
            }
            continue;
        }
        if name.starts_with('.') {
            continue;
        }
        if ft.is_dir() {
            walk_dir(&e.path(), depth + 1, out)?;
        } else if ft.is_file() || (ft.is_symlink() && e.path().is_file()) {
            let size = e.metadata().map_or(0, |m| m.len());
            out.push(classify_file(&e.path(), size));
        }
    }
    Ok(())
}

/// Ingests planned inputs one after the other, calling `on_input` after each input (each
/// message, for an mbox) with the progress so far, its source and what was done with it.
/// Returns the total counts.
///
/// The reports are stored in one batch ([`Store::begin_batch`]): each stays atomic, and
/// the batch commits every [`dmarc_store::BATCH_ROWS`] report rows or five seconds and at
/// the end, also when an input fails the store (what was stored before it is kept). A run
/// that is killed loses what it stored since the batch last committed; running it again
/// stores those reports (the others are duplicates).
pub fn ingest_paths(
    store: &mut Store,
    inputs: &[PlannedInput],
    limits: &Limits,
    on_input: &mut dyn FnMut(&IngestProgress<'_>, &Source, &IngestOutcome),
) -> Result<Counts, IngestError> {
    store.begin_batch()?;
    let res = ingest_each(store, inputs, limits, on_input);
    let ended = store.end_batch();
    let counts = res?;
    ended?;
    Ok(counts)
}

fn ingest_each(
    store: &mut Store,
    inputs: &[PlannedInput],
    limits: &Limits,
    on_input: &mut dyn FnMut(&IngestProgress<'_>, &Source, &IngestOutcome),
) -> Result<Counts, IngestError> {
    let total_bytes = inputs.iter().map(|i| i.size).sum();
    let mut counts = Counts::default();
    let mut done_bytes = 0u64;
    for (n, input) in inputs.iter().enumerate() {
        let mut report = |bytes_now: u64, source: &Source, outcome: &IngestOutcome| {
            counts += outcome.counts();
            let p = IngestProgress {
                done_bytes: done_bytes + bytes_now,
                total_bytes,
                inputs_done: n,
                inputs_total: inputs.len(),
                current: &input.path,
                counts,
            };
            on_input(&p, source, outcome);
        };
        match input.kind {
            InputKind::Mbox => ingest_mbox(store, &input.path, limits, &mut report)?,
            InputKind::File | InputKind::MaildirMessage => {
                let source = if input.kind == InputKind::File {
                    Source::file(&input.path)
                } else {
                    Source::maildir_message(&input.path)
                };
                let outcome = ingest_file(store, &source, &input.path, limits)?;
                report(input.size, &source, &outcome);
            }
        }
        done_bytes += input.size;
    }
    Ok(counts)
}

/// Reads one file whole (if within the size limit) and ingests it.
fn ingest_file(
    store: &mut Store,
    source: &Source,
    path: &Path,
    limits: &Limits,
) -> Result<IngestOutcome, IngestError> {
    let item = match crate::read_bounded(path, "report file", limits.max_input_size) {
        Ok(bytes) => return ingest_bytes(store, source, &bytes, limits),
        Err(crate::ReadError::TooLarge { .. }) => {
            let too_big = format!(
                "{}: limit max_input_size exceeded: larger than {} bytes (not kept)",
                source.name, limits.max_input_size
            );
            reject_with(store, source, &source.name, "limit", &too_big, None)?
        }
        Err(crate::ReadError::Io { error: e, .. }) => {
            let msg = format!("{}: cannot read: {e}", source.location);
            reject_with(store, source, &source.name, "io", &msg, None)?
        }
    };
    Ok(IngestOutcome { items: vec![item] })
}

/// Lines are read in pieces of at most this many bytes.
const CHUNK: u64 = 64 * 1024;

/// Streams an mbox: each message (split at `From ` lines that start the file or follow a
/// blank line, `>From ` unquoted as in mboxrd) is ingested as soon as it is complete.
fn ingest_mbox(
    store: &mut Store,
    path: &Path,
    limits: &Limits,
    report: &mut dyn FnMut(u64, &Source, &IngestOutcome),
) -> Result<(), IngestError> {
    let file_source = Source::file(path);
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            let msg = format!("{}: cannot read: {e}", path.display());
            let item = reject_with(store, &file_source, &file_source.name, "io", &msg, None)?;
            report(0, &file_source, &IngestOutcome { items: vec![item] });
            return Ok(());
        }
    };
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut msg: Vec<u8> = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    let mut n = 0u64;
    let mut in_msg = false;
    let mut oversized = false;
    let mut prev_blank = true;
    let mut at_line_start = true;
    let mut consumed = 0u64;

    loop {
        line.clear();
        let got = match (&mut reader).take(CHUNK).read_until(b'\n', &mut line) {
            Ok(g) => g,
            Err(e) => {
                let msg = format!("{}: read error after {n} message(s): {e}", path.display());
                let item = reject_with(store, &file_source, &file_source.name, "io", &msg, None)?;
                report(consumed, &file_source, &IngestOutcome { items: vec![item] });
                break;
            }
        };
        if got == 0 {
            break;
        }
        consumed += got as u64;
        let starts_line = at_line_start;
        at_line_start = line.last() == Some(&b'\n');
        if starts_line && prev_blank && line.starts_with(b"From ") {
            if in_msg {
                flush_message(store, path, n, &msg, oversized, consumed, limits, report)?;
            }
            n += 1;
            in_msg = true;
            oversized = false;
            msg.clear();
            prev_blank = false;
            continue;
        }
        let mut piece: &[u8] = &line;
        if starts_line {
            prev_blank = line == b"\n" || line == b"\r\n";
            let gt = line.iter().take_while(|&&b| b == b'>').count();
            if gt > 0
                && line
                    .get(gt..)
                    .is_some_and(|rest| rest.starts_with(b"From "))
            {
                piece = line.get(1..).unwrap_or(&[]);
            }
        } else {
            prev_blank = false;
        }
        if !in_msg {
            // Text before the first "From " line cannot happen for a planned mbox (it
            // starts with one); keep it as a message of its own rather than lose it.
            n += 1;
            in_msg = true;
        }
        if oversized {
            continue;
        }
        if (msg.len() + piece.len()) as u64 > limits.max_input_size {
            oversized = true;
            msg = Vec::new();
            continue;
        }
        msg.extend_from_slice(piece);
    }
    if in_msg {
        flush_message(store, path, n, &msg, oversized, consumed, limits, report)?;
    }
    Ok(())
}

/// Ingests one complete mbox message (or records it as over the size limit).
#[allow(clippy::too_many_arguments)]
fn flush_message(
    store: &mut Store,
    path: &Path,
    n: u64,
    msg: &[u8],
    oversized: bool,
    consumed: u64,
    limits: &Limits,
    report: &mut dyn FnMut(u64, &Source, &IngestOutcome),
) -> Result<(), IngestError> {
    let source = Source::mbox_message(path, n);
    let outcome = if oversized {
        let err = format!(
            "{}: limit max_input_size exceeded: message larger than {} bytes (not kept)",
            source.name, limits.max_input_size
        );
        IngestOutcome {
            items: vec![reject_with(
                store,
                &source,
                &source.name,
                "limit",
                &err,
                None,
            )?],
        }
    } else {
        ingest_bytes(store, &source, msg, limits)?
    };
    report(consumed, &source, &outcome);
    Ok(())
}
