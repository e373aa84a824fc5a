//! The spool: slots that wait for ClickHouse, kept in the state directory
//! (`fleet-spool/`), so that a restart, a crash or the end of a replay while ClickHouse
//! is down does not lose them. The next run sends them first.
//!
//! One file a slot, `SLOT_START.rows` (nanoseconds, 20 digits, so names sort by time),
//! holding the insert's body as it would be sent: JSONEachRow, names as hashes and
//! escaped samples only. A slot spooled twice (a replay run again) keeps the newer,
//! which is what the table keeps too. A file is written whole or not at all
//! ([`replace_file`]), and read back only if every line is a row of the table: a file
//! that is not is skipped with a log line naming it, and left for the operator.

use std::path::{Path, PathBuf};

use super::rows::SlotRow;
use crate::files::{read_text_limited, replace_file, shown};

/// The spool's folder in the state directory.
pub const SPOOL_DIR: &str = "fleet-spool";

/// What a spooled slot's file ends with.
const SUFFIX: &str = ".rows";

/// A slot's rows on their way to ClickHouse.
pub(super) struct Batch {
    /// Start of the slot.
    pub slot_start: u64,
    /// Rows in `body`.
    pub rows: usize,
    /// The insert's body, JSONEachRow.
    pub body: String,
    /// Its file in the spool, once written there.
    pub file: Option<PathBuf>,
}

/// The spool in a state directory.
pub(super) struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// The spool in `state_directory`, made if missing.
    pub fn open(state_directory: &Path) -> std::io::Result<Self> {
        let dir = state_directory.join(SPOOL_DIR);
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// Writes `batch` into the spool unless it is there already.
    pub fn keep(&self, batch: &mut Batch) -> std::io::Result<()> {
        if batch.file.is_none() {
            let name = format!("{:020}{SUFFIX}", batch.slot_start);
            batch.file = Some(replace_file(&self.dir, &name, batch.body.as_bytes())?);
        }
        Ok(())
    }

    /// Removes `batch`'s file, if it has one (sent, or dropped).
    pub fn forget(batch: &Batch) {
        if let Some(file) = &batch.file {
            if let Err(e) = std::fs::remove_file(file) {
                log::warn!("fleet: spool: removing {}: {e}", shown(file));
            }
        }
    }

    /// The slots kept, oldest first, each at most `limit` bytes; a file that cannot be
    /// read or holds anything but the table's rows is skipped and logged.
    pub fn load(&self, limit: u64) -> std::io::Result<Vec<Batch>> {
        let mut files: Vec<(u64, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let start = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(SUFFIX))
                .filter(|n| n.len() == 20)
                .and_then(|n| n.parse::<u64>().ok());
            match start {
                Some(start) => files.push((start, path)),
                // Temporary files of a write a crash cut short, and anything else.
                None => log::debug!("fleet: spool: {} is not a slot", shown(&path)),
            }
        }
        files.sort_unstable();
        let mut batches = Vec::with_capacity(files.len());
        for (slot_start, path) in files {
            match read_rows(&path, limit) {
                Ok((body, rows)) => batches.push(Batch {
                    slot_start,
                    rows,
                    body,
                    file: Some(path),
                }),
                Err(why) => log::warn!("fleet: spool: {} is skipped: {why}", shown(&path)),
            }
        }
        Ok(batches)
    }
}

/// The body of a spooled slot and its rows, if every line is a row.
fn read_rows(path: &Path, limit: u64) -> Result<(String, usize), String> {
    let body = read_text_limited(path, limit).map_err(|e| e.to_string())?;
    let mut rows = 0;
    for (i, line) in body.lines().enumerate() {
        serde_json::from_str::<SlotRow>(line)
            .map_err(|e| format!("line {}: not a row of the table: {e}", i + 1))?;
        rows += 1;
    }
    if rows == 0 {
        return Err("no rows".into());
    }
    Ok((body, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::rows::json_lines;

    fn row(domain: &str) -> SlotRow {
        SlotRow {
            sensor: "dc1".into(),
            slot_start: 60,
            slot_end: 120,
            domain: domain.into(),
            requests: 3,
            responses: 3,
            bytes_in: 90,
            bytes_out: 300,
            names: vec![1, 2, 3],
            names_estimated: 0,
            names_estimate: 0,
            client_addresses: vec!["192.0.2.1".into()],
            client_queries: vec![3],
            qtypes: vec![1],
            qtype_queries: vec![3],
            samples: vec!["a.pirate.sea".into()],
            clients: 1,
            shape_names: 3,
            shape_bytes: 3,
            shape_labels: 3,
            shape_longest_labels: 3,
            nxdomain: 0,
            failures: 0,
            version: 9,
        }
    }

    fn batch(slot_start: u64, domains: &[&str]) -> Batch {
        let rows: Vec<SlotRow> = domains.iter().map(|d| row(d)).collect();
        Batch {
            slot_start,
            rows: rows.len(),
            body: json_lines(&rows),
            file: None,
        }
    }

    fn state_directory(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dns-sensor-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("directory");
        dir
    }

    #[test]
    fn kept_slots_come_back_oldest_first_and_go_once_forgotten() {
        let dir = state_directory("round-trip");
        let spool = Spool::open(&dir).expect("spool");
        let (mut newer, mut older) = (batch(2_000, &["b.sea", "c.sea"]), batch(1_000, &["a.sea"]));
        spool.keep(&mut newer).expect("kept");
        spool.keep(&mut older).expect("kept");
        let loaded = spool.load(1 << 20).expect("loaded");
        let read: Vec<(u64, usize, &str)> = loaded
            .iter()
            .map(|b| (b.slot_start, b.rows, b.body.as_str()))
            .collect();
        assert_eq!(
            read,
            [
                (1_000, 1, older.body.as_str()),
                (2_000, 2, newer.body.as_str())
            ]
        );
        Spool::forget(&loaded[0]);
        let left = spool.load(1 << 20).expect("loaded");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].slot_start, 2_000);
        std::fs::remove_dir_all(&dir).expect("removed");
    }

    #[test]
    fn a_file_that_is_not_rows_is_skipped_and_left_alone() {
        let dir = state_directory("bad");
        let spool = Spool::open(&dir).expect("spool");
        let mut good = batch(1_000, &["a.sea"]);
        spool.keep(&mut good).expect("kept");
        let bad = dir.join(SPOOL_DIR).join(format!("{:020}.rows", 500));
        std::fs::write(&bad, "{\"domain\": \"x'); DROP TABLE t;--\"}\n").expect("write");
        let cut = dir.join(SPOOL_DIR).join(format!("{:020}.rows.tmp", 700));
        std::fs::write(&cut, "{\"sens").expect("write");
        let loaded = spool.load(1 << 20).expect("loaded");
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].slot_start, 1_000);
        assert!(bad.exists() && cut.exists());
        let too_big = spool.load(10).expect("loaded");
        assert!(too_big.is_empty());
        std::fs::remove_dir_all(&dir).expect("removed");
    }
}
