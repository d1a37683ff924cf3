//! The spool: batches acknowledged by the server before they are filed into the
//! database, kept durable in append-only files beside it (`DIR/spool/`).
//!
//! `parley serve` answers a post once its batch is validated, its duplicates counted and
//! its record written and synced here (one `fsync` for every batch posted meanwhile: a
//! group commit); a background filer then files the spooled batches into the database
//! in large groups (`Store::ingest_deferred_group`) and deletes their segment.
//! [`DuckStore::open`] files whatever an earlier process left here before anything else
//! reads the store, so an acknowledged batch is never lost nor missed by a read, even
//! after a `kill -9`. Filing a segment twice (a crash after the database committed but
//! before the segment was deleted) changes nothing: every event of it is then a
//! duplicate.
//!
//! A segment is a sequence of records, each `{"spool":SEQ,"workspace":WS,"lines":N}`,
//! the batch's N event lines, and `{"end":SEQ}`; a record cut short by a crash (never
//! acknowledged, since the sync comes first) is dropped when the segment is read. The
//! server appends to `current.ndjson`; the filer renames it to a numbered segment
//! (`{n:020}.ndjson`) before filing it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::{DuckStore, Store, StoreError};

/// The spool's directory under a data dir.
pub const SPOOL_DIR: &str = "spool";
const CURRENT: &str = "current.ndjson";

/// The segment being appended to.
pub struct Spool {
    dir: PathBuf,
    current: File,
    /// Bytes written to `current` since it was opened.
    written: u64,
    next_seq: u64,
    next_segment: u64,
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(std::io::Error::new(
        e.kind(),
        format!("spool {}: {e}", path.display()),
    ))
}

/// Syncs a directory, so that a rename or a new file in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

impl Spool {
    /// Opens the spool of the data dir `data` for appending. Segments left by an
    /// earlier process must have been filed first ([`DuckStore::open`] does).
    pub fn open(data: &Path) -> Result<Spool, StoreError> {
        let dir = data.join(SPOOL_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let next_segment = numbered(&dir)?.last().map_or(0, |(n, _)| n + 1);
        let path = dir.join(CURRENT);
        let current = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        let written = current.metadata().map_err(|e| io(&path, e))?.len();
        sync_dir(&dir)?;
        Ok(Spool {
            dir,
            current,
            written,
            next_seq: 1,
            next_segment,
        })
    }

    /// Appends a batch's record (not yet durable: see [`Spool::sync`]).
    pub fn append(&mut self, workspace: &str, lines: &[&str]) -> Result<(), StoreError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut record = serde_json::to_string(&serde_json::json!({
            "spool": seq, "workspace": workspace, "lines": lines.len()
        }))
        .expect("a JSON object");
        record.push('\n');
        for line in lines {
            record.push_str(line);
            record.push('\n');
        }
        record.push_str(&format!("{{\"end\":{seq}}}\n"));
        self.current
            .write_all(record.as_bytes())
            .map_err(|e| io(&self.dir, e))?;
        self.written += record.len() as u64;
        Ok(())
    }

    /// Bytes in the current segment.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Makes every record appended so far durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.current.sync_data().map_err(|e| io(&self.dir, e))
    }

    /// Closes the current segment for filing (numbered, synced) and starts a new one;
    /// `None` when it holds nothing.
    pub fn rotate(&mut self) -> Result<Option<PathBuf>, StoreError> {
        if self.written == 0 {
            return Ok(None);
        }
        self.sync()?;
        let from = self.dir.join(CURRENT);
        let to = self.dir.join(format!("{:020}.ndjson", self.next_segment));
        self.next_segment += 1;
        std::fs::rename(&from, &to).map_err(|e| io(&from, e))?;
        self.current = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&from)
            .map_err(|e| io(&from, e))?;
        self.written = 0;
        sync_dir(&self.dir)?;
        Ok(Some(to))
    }
}

/// The numbered segments of a spool directory, in order.
fn numbered(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = entry.map_err(|e| io(dir, e))?.path();
        let n = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ndjson"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = n {
            found.push((n, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The whole records of a segment, in order: (workspace, the batch's lines joined by
/// newlines). A record cut short at the end is left out.
pub fn read_segment(path: &Path) -> Result<Vec<(String, String)>, StoreError> {
    let file = File::open(path).map_err(|e| io(path, e))?;
    let mut lines = BufReader::new(file).lines();
    let mut records = Vec::new();
    while let Some(head) = lines.next() {
        let head = head.map_err(|e| io(path, e))?;
        let Ok(head) = serde_json::from_str::<serde_json::Value>(&head) else {
            break;
        };
        let (Some(seq), Some(ws), Some(n)) = (
            head["spool"].as_u64(),
            head["workspace"].as_str(),
            head["lines"].as_u64(),
        ) else {
            break;
        };
        let mut batch = String::new();
        let mut whole = true;
        for _ in 0..n {
            match lines.next() {
                Some(Ok(line)) => {
                    batch.push_str(&line);
                    batch.push('\n');
                }
                _ => {
                    whole = false;
                    break;
                }
            }
        }
        let end = lines.next().and_then(Result::ok);
        if !whole || end.as_deref() != Some(format!("{{\"end\":{seq}}}").as_str()) {
            break;
        }
        records.push((ws.to_string(), batch));
    }
    Ok(records)
}

/// Files a segment's records into `store` (consecutive records of one workspace in one
/// group), then deletes it. Returns the workspaces it filed into.
pub fn file_segment(store: &DuckStore, path: &Path) -> Result<Vec<String>, StoreError> {
    let records = read_segment(path)?;
    let mut workspaces: Vec<String> = Vec::new();
    let mut start = 0;
    while start < records.len() {
        let ws = &records[start].0;
        let end = records[start..]
            .iter()
            .position(|(w, _)| w != ws)
            .map_or(records.len(), |k| start + k);
        let mut bodies: Vec<&[u8]> = records[start..end]
            .iter()
            .map(|(_, b)| b.as_bytes())
            .collect();
        let mut inputs: Vec<&mut dyn BufRead> =
            bodies.iter_mut().map(|b| b as &mut dyn BufRead).collect();
        // Each batch was validated before it was acknowledged; one refused now would
        // mean a build that validates differently, and it must not block the others.
        for outcome in store.ingest_deferred_group(ws, &mut inputs)? {
            if let Err(e) = outcome {
                return Err(StoreError::Corrupt {
                    id: format!("spool {}", path.display()),
                    reason: e.to_string(),
                });
            }
        }
        if !workspaces.contains(ws) {
            workspaces.push(ws.clone());
        }
        start = end;
    }
    std::fs::remove_file(path).map_err(|e| io(path, e))?;
    Ok(workspaces)
}

/// Files every segment an earlier process left in `data`'s spool (the current one
/// last), in order; returns how many records there were.
pub fn replay(store: &DuckStore, data: &Path) -> Result<usize, StoreError> {
    let dir = data.join(SPOOL_DIR);
    if !dir.is_dir() {
        return Ok(0);
    }
    let mut segments: Vec<PathBuf> = numbered(&dir)?.into_iter().map(|(_, p)| p).collect();
    let current = dir.join(CURRENT);
    if current.exists() {
        segments.push(current);
    }
    let mut records = 0;
    for path in segments {
        records += read_segment(&path)?.len();
        file_segment(store, &path)?;
    }
    Ok(records)
}
