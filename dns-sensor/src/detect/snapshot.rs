//! The window as a file: what a restart needs to go on alerting as if it had not
//! stopped (the slots, what was reported and when, what was lost), in a format of its
//! own with a version and a checksum, written so that a crash leaves the previous
//! snapshot or the new one, never a part.
//!
//! The file: a magic line (`dns-sensor window\n`), the format's version (a
//! little-endian `u32`), the window (see [`Detector::to_snapshot`]), and the xxh3 hash
//! of everything before it (eight bytes, little-endian). A reader refuses a file
//! without the magic, of a later version, or whose hash does not match, before reading
//! any of it; then it reads every value with its bounds checked
//! ([`crate::sketch::codec`]), so that even a forged file with a good hash is refused
//! rather than half read.

use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use super::{Detector, RuleSettings, WindowBounds};
use crate::sketch::codec::{CodecError, Decoder, Encoder, FORMAT};
use crate::sketch::{Shard, SketchSettings};
use crate::Nanos;

/// What every snapshot starts with.
const MAGIC: &[u8] = b"dns-sensor window\n";

/// The format written: the counts' [`FORMAT`]. A reader takes this one and the
/// earlier ones (version 1 held no evidence: its slots are restored without).
pub const SNAPSHOT_VERSION: u32 = FORMAT;

/// The snapshot's name in the state directory.
pub const SNAPSHOT_FILE: &str = "window.snapshot";

/// Most slots read back: a window of a week in one-minute slots.
const MAX_DECODED_SLOTS: usize = 7 * 24 * 60;

/// Most reported domains read back.
const MAX_DECODED_REPORTS: usize = 1 << 24;

/// Bytes of a snapshot that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Not a snapshot of this program (another file, or one cut before its header).
    #[error("not a dns-sensor window snapshot")]
    Foreign,
    /// A snapshot of another version of the format.
    #[error("a snapshot of format version {0}, and this dns-sensor reads versions 1 to {SNAPSHOT_VERSION} only")]
    Version(u32),
    /// The checksum does not match: the file was cut short or damaged.
    #[error("damaged or cut short (its checksum does not match)")]
    Checksum,
    /// The checksum matches and a value is not what its place allows.
    #[error("unreadable: {0}")]
    Unreadable(#[from] CodecError),
}

/// A window read back from a snapshot.
#[derive(Debug)]
pub struct Restored {
    /// The window, under the rule it was restored with.
    pub detector: Detector,
    /// When the snapshot was written (wall clock, nanoseconds since the epoch).
    pub written_at: Nanos,
    /// The interval boundaries evaluated up to then (none: not one yet).
    pub evaluated_until: Option<Nanos>,
    /// As [`Detector::reconfigure`] returns it: when the restored rule's interval
    /// differs, the end of the latest slot that spans one of its boundaries.
    pub skip_before: Option<Nanos>,
}

impl Detector {
    /// The window as a snapshot's bytes, stamped `written_at`, with the boundaries
    /// evaluated up to `evaluated_until` (what the coordinator had done, so that a
    /// restart does not evaluate them again): the slot length, the latest slot start
    /// and evaluation horizon, what was lost (late shards, shed records, evicted
    /// domains), each reported domain and when, and each slot. The bounds are not
    /// written: they are recounted from the slots.
    pub fn to_snapshot(&self, written_at: Nanos, evaluated_until: Option<Nanos>) -> Vec<u8> {
        self.to_snapshot_in(SNAPSHOT_VERSION, written_at, evaluated_until)
    }

    /// [`to_snapshot`](Self::to_snapshot) in an older format `version`, for the tests
    /// of reading what an older sensor left.
    fn to_snapshot_in(
        &self,
        version: u32,
        written_at: Nanos,
        evaluated_until: Option<Nanos>,
    ) -> Vec<u8> {
        let mut e = Encoder::of_format(version);
        e.word(written_at);
        e.count(evaluated_until.map_or(0, |t| t.saturating_add(1)));
        e.word(self.slot);
        e.count(self.newest.map_or(0, |n| n.saturating_add(1)));
        e.word(self.horizon);
        e.count(self.late_shards);
        e.count(self.shed_records);
        e.count(self.evicted_domains);
        e.count(self.reports.len() as u64);
        for (domain, at) in self.reports.iter() {
            e.bytes(domain);
            e.word(at);
        }
        e.count(self.slots.len() as u64);
        for shard in self.slots.values() {
            shard.encode(&mut e);
        }
        let body = e.into_bytes();
        let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + body.len() + 8);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&body);
        let checksum = xxh3_64(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// The window a snapshot holds, under `rule` (which may differ from the one it was
    /// written under: as a reload, [`reconfigure`](Self::reconfigure)), its slots
    /// counted with `sketch`.
    pub fn from_snapshot(
        bytes: &[u8],
        rule: RuleSettings,
        sketch: &SketchSettings,
    ) -> Result<Restored, SnapshotError> {
        let Some(rest) = bytes.strip_prefix(MAGIC) else {
            return Err(SnapshotError::Foreign);
        };
        let Some((version, rest)) = rest.split_first_chunk::<4>() else {
            return Err(SnapshotError::Foreign);
        };
        let version = u32::from_le_bytes(*version);
        if !(1..=SNAPSHOT_VERSION).contains(&version) {
            return Err(SnapshotError::Version(version));
        }
        let Some((body, checksum)) = rest.split_last_chunk::<8>() else {
            return Err(SnapshotError::Checksum);
        };
        let hashed = &bytes[..bytes.len() - 8];
        if xxh3_64(hashed) != u64::from_le_bytes(*checksum) {
            return Err(SnapshotError::Checksum);
        }
        let mut d = Decoder::of_format(body, version);
        let written_at = d.word()?;
        let evaluated_until = d.count()?.checked_sub(1);
        let slot = d.word()?;
        if slot == 0 {
            return Err(CodecError::Invalid("a slot length of zero").into());
        }
        let newest = d.count()?.checked_sub(1);
        let horizon = d.word()?;
        let (late_shards, shed_records, evicted_domains) = (d.count()?, d.count()?, d.count()?);
        let mut detector = Detector::new(rule.clone());
        let reports = d.items(
            MAX_DECODED_REPORTS,
            9,
            "more reported domains than are kept",
        )?;
        for _ in 0..reports {
            let domain = d.bytes(255, "a reported domain longer than a DNS name")?;
            let at = d.word()?;
            if !detector.reports.insert(domain.into(), at) {
                return Err(CodecError::Invalid("a domain reported twice").into());
            }
        }
        let slots = d.items(MAX_DECODED_SLOTS, 12, "more slots than a window holds")?;
        for _ in 0..slots {
            let shard = Shard::decode(&mut d, sketch)?;
            let start = shard.start();
            if detector.slots.insert(start, shard).is_some() {
                return Err(CodecError::Invalid("the same slot twice").into());
            }
        }
        if !d.is_empty() {
            return Err(CodecError::Invalid("bytes after the window").into());
        }
        detector.slot = slot;
        detector.newest = newest;
        detector.horizon = horizon;
        detector.late_shards = late_shards;
        detector.shed_records = shed_records;
        detector.evicted_domains = evicted_domains;
        detector.bounds = WindowBounds::new(rule.threshold);
        let skip_before = detector.reconfigure(rule);
        Ok(Restored {
            detector,
            written_at,
            evaluated_until,
            skip_before,
        })
    }
}

/// Writes `bytes` as the snapshot in `dir`, replacing the one there only once the new
/// one is whole: written to a temporary file, synced, renamed over the old one, and
/// the directory synced, so that a crash at any point leaves one or the other.
pub fn write_snapshot(dir: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    crate::files::replace_file(dir, SNAPSHOT_FILE, bytes)
}

/// The snapshot's bytes in `dir`, `None` when there is none.
pub fn read_snapshot(dir: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(dir.join(SNAPSHOT_FILE)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::{shard, HOUR, MIN, T0};
    use crate::sketch::EvidenceSums;

    /// A window of two domains over four hours, evaluated once: one reported.
    fn window() -> Detector {
        let mut d = Detector::new(RuleSettings::default());
        for s in 0..16 {
            d.add(shard(T0 + s * 15 * MIN, "tunnel.org", s * 20, 20));
            d.add(shard(T0 + s * 15 * MIN, "quiet.org", s, 3));
        }
        assert_eq!(d.evaluate(T0 + 4 * HOUR).len(), 1);
        d
    }

    fn restore(bytes: &[u8]) -> Result<Restored, SnapshotError> {
        Detector::from_snapshot(bytes, RuleSettings::default(), &SketchSettings::default())
    }

    #[test]
    fn a_restored_window_alerts_as_the_one_written_would_have() {
        let mut written = window();
        let bytes = written.to_snapshot(T0 + 4 * HOUR + MIN, Some(T0 + 4 * HOUR));
        let restored = restore(&bytes).expect("reads back");
        assert_eq!(restored.written_at, T0 + 4 * HOUR + MIN);
        assert_eq!(restored.evaluated_until, Some(T0 + 4 * HOUR));
        assert_eq!(restored.skip_before, None);
        let mut read = restored.detector;
        assert_eq!(
            (read.slots(), read.tracked()),
            (written.slots(), written.tracked())
        );
        // New traffic on both, then the same evaluations: the report an hour ago
        // holds back the tunnel until its realert, then it comes again.
        for d in [&mut written, &mut read] {
            d.add(shard(T0 + 4 * HOUR, "tunnel.org", 1000, 20));
            d.add(shard(T0 + 4 * HOUR + 15 * MIN, "tunnel.org", 2000, 20));
        }
        let mut reported = Vec::new();
        for at in [4 * HOUR + 15 * MIN, 4 * HOUR + 30 * MIN, 5 * HOUR] {
            let (a, b) = (written.evaluate(T0 + at), read.evaluate(T0 + at));
            assert_eq!(a, b, "at +{}", at / MIN);
            reported.push(a.len());
        }
        assert_eq!(reported, [0, 0, 1]);
        assert_eq!(read.late_shards(), written.late_shards());
    }

    #[test]
    fn a_snapshot_of_the_first_format_restores_without_evidence() {
        let written = window();
        let bytes = written.to_snapshot_in(1, T0, None);
        assert!(bytes.len() < written.to_snapshot(T0, None).len());
        let read = restore(&bytes).expect("version 1 reads").detector;
        assert_eq!(
            (read.slots(), read.tracked()),
            (written.slots(), written.tracked())
        );
        for (old, new) in written.slots_from(0).zip(read.slots_from(0)) {
            for (domain, counts) in old.domains() {
                let restored = new.get(domain).expect("the domain is restored");
                assert_eq!(restored.unique_names(), counts.unique_names());
                assert_eq!(restored.requests(), counts.requests());
                assert_eq!(*restored.evidence(), EvidenceSums::default());
            }
        }
    }

    #[test]
    fn a_restore_under_a_new_interval_names_what_to_skip() {
        let bytes = window().to_snapshot(T0, None);
        let every_ten = RuleSettings {
            interval: 10 * MIN,
            ..RuleSettings::default()
        };
        let restored = Detector::from_snapshot(&bytes, every_ten, &SketchSettings::default())
            .expect("reads back");
        assert_eq!(restored.skip_before, Some(T0 + 4 * HOUR));
        assert_eq!(restored.detector.slot_length(), 10 * MIN);
    }

    #[test]
    fn foreign_later_cut_and_damaged_snapshots_are_refused() {
        let bytes = {
            let mut d = Detector::new(RuleSettings::default());
            d.add(shard(T0, "small.org", 0, 3));
            d.evaluate(T0 + 15 * MIN);
            d.to_snapshot(T0, None)
        };
        restore(&bytes).expect("the whole one reads");
        assert!(matches!(
            restore(b"\xd4\xc3\xb2\xa1 a pcap"),
            Err(SnapshotError::Foreign)
        ));
        assert!(matches!(restore(b""), Err(SnapshotError::Foreign)));
        let mut later = bytes.clone();
        later[MAGIC.len()] = 3;
        assert!(matches!(restore(&later), Err(SnapshotError::Version(3))));
        for cut in 0..bytes.len() {
            assert!(restore(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            assert!(restore(&flipped).is_err(), "flipped at {at}");
        }
        // Forged: the body cut anywhere, with a checksum that matches. Refused, not
        // half read, and never a panic.
        let body = &bytes[MAGIC.len() + 4..bytes.len() - 8];
        for cut in 0..body.len() {
            let mut forged = bytes[..MAGIC.len() + 4].to_vec();
            forged.extend_from_slice(&body[..cut]);
            let checksum = xxh3_64(&forged);
            forged.extend_from_slice(&checksum.to_le_bytes());
            assert!(
                matches!(restore(&forged), Err(SnapshotError::Unreadable(_))),
                "body cut at {cut}"
            );
        }
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("dnss-snapshot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        assert!(read_snapshot(&dir).expect("readable").is_none());
        let first = window().to_snapshot(T0, None);
        write_snapshot(&dir, &first).expect("written");
        // A temporary file a crash left behind changes nothing.
        std::fs::write(dir.join(format!("{SNAPSHOT_FILE}.tmp")), b"half").expect("left");
        assert_eq!(read_snapshot(&dir).expect("readable"), Some(first));
        let second = Detector::new(RuleSettings::default()).to_snapshot(T0 + HOUR, None);
        write_snapshot(&dir, &second).expect("written again");
        assert_eq!(read_snapshot(&dir).expect("readable"), Some(second));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("listed")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [SNAPSHOT_FILE], "only the snapshot is left");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
