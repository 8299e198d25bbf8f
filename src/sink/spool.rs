//! Durable on-disk spool for outgoing events, one per remote sink.
//!
//! Each event is one file `<seq>.ev`: magic `FFEV`, version, payload length,
//! CRC-32 of the payload, then the postcard-encoded [`SpoolRecord`] (record
//! and JPEGs). It is written to a temporary name, fsynced, renamed and the
//! directory fsynced before [`Spool::put`] returns: from then on the event
//! survives a crash or power loss. Sent events are deleted; permanently
//! refused ones move to `dead/` with a `.reason` file; files that fail the
//! checks on replay (torn, corrupt) move to `corrupt/` and are reported,
//! never crash the program. Disk use is capped: past `max_bytes` the oldest
//! queued event is dropped, counted and logged; `dead/` keeps at most
//! `dead_letters_max` events, the oldest pruned first (counted). Files are
//! owner-only (0600 in 0700 directories): they hold faces.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::record::EventRecord;
use crate::detect::Keypoints;
use crate::face::quality::QualityParts;
use crate::private_files::Access;

const MAGIC: &[u8; 4] = b"FFEV";
/// 2: records carry event kind, zone, dwell and head pose.
/// 3: and `merged_track_ids`.
/// 4: and `sequence`, `final`, `repeat_of`, `emitted_unix_ms`.
/// 5: and `mesh` (versions 2 to 4 still read).
const VERSION: u8 = 5;
const HEADER: usize = 4 + 1 + 4 + 4;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpoolRecord {
    pub record: EventRecord,
    pub face_jpeg: Vec<u8>,
    pub frame_jpeg: Vec<u8>,
}

/// CRC-32 (IEEE 802.3), table-driven.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *e = c;
        }
        t
    });
    let mut c = !0u32;
    for &b in data {
        c = t[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Why a spool file could not be read back as a record.
#[derive(Debug)]
pub enum RecordError {
    /// Shorter than its header, or than the payload its header announces.
    Torn {
        expected: usize,
        got: usize,
    },
    BadMagic,
    UnknownVersion(u8),
    ChecksumMismatch,
    /// Framed and checksummed, but not a record of its version.
    Undecodable {
        version: u8,
        source: postcard::Error,
    },
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Torn { expected, got } => write!(f, "torn: {got} bytes where {expected} were written"),
            RecordError::BadMagic => f.write_str("not a spool record (bad magic)"),
            RecordError::UnknownVersion(v) => write!(f, "unknown spool record version {v}"),
            RecordError::ChecksumMismatch => f.write_str("checksum mismatch"),
            RecordError::Undecodable { version, source } => {
                write!(f, "undecodable version {version} payload: {source}")
            }
        }
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecordError::Undecodable { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A spool that cannot be opened or written: which spool, what it was
/// doing, and the I/O error (or the record that could not be encoded).
#[derive(Debug)]
pub struct SpoolError {
    pub dir: PathBuf,
    pub doing: String,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl std::fmt::Display for SpoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "spool {}: {}: {}", self.dir.display(), self.doing, self.source)
    }
}

impl std::error::Error for SpoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

pub fn encode(rec: &SpoolRecord) -> Result<Vec<u8>, postcard::Error> {
    let payload = postcard::to_allocvec(rec)?;
    Ok(wrap_payload(&payload))
}

/// A spool file around `payload`: magic, version, length and CRC-32.
/// Public for the fuzzer, which feeds arbitrary payloads past the CRC.
pub fn wrap_payload(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn decode(bytes: &[u8]) -> Result<SpoolRecord, RecordError> {
    if bytes.len() < HEADER {
        return Err(RecordError::Torn { expected: HEADER, got: bytes.len() });
    }
    if &bytes[..4] != MAGIC {
        return Err(RecordError::BadMagic);
    }
    if !(2..=VERSION).contains(&bytes[4]) {
        return Err(RecordError::UnknownVersion(bytes[4]));
    }
    let len = u32::from_le_bytes(bytes[5..9].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(bytes[9..13].try_into().unwrap());
    let payload = &bytes[HEADER..];
    if payload.len() != len {
        return Err(RecordError::Torn { expected: HEADER + len, got: bytes.len() });
    }
    if crc32(payload) != crc {
        return Err(RecordError::ChecksumMismatch);
    }
    let version = bytes[4];
    if version < VERSION {
        return decode_old(version, payload).map_err(|source| RecordError::Undecodable { version, source });
    }
    postcard::from_bytes(payload).map_err(|source| RecordError::Undecodable { version, source })
}

/// Versions 2 to 4: the version 2 record, version 3's `merged_track_ids`
/// after it, version 4's four fields after those, then the two JPEGs
/// (postcard writes fields in order).
fn decode_old(version: u8, payload: &[u8]) -> Result<SpoolRecord, postcard::Error> {
    let (r, rest) = postcard::take_from_bytes::<EventRecordV2>(payload)?;
    let (merged, rest) = if version >= 3 { postcard::take_from_bytes::<Vec<u32>>(rest)? } else { (Vec::new(), rest) };
    let mut record = r.into_record(merged);
    let rest = if version >= 4 {
        let (v4, rest) = postcard::take_from_bytes::<(u32, bool, Option<u32>, u64)>(rest)?;
        (record.sequence, record.is_final, record.repeat_of, record.emitted_unix_ms) = v4;
        rest
    } else {
        rest
    };
    let (face_jpeg, rest) = postcard::take_from_bytes::<Vec<u8>>(rest)?;
    let (frame_jpeg, _) = postcard::take_from_bytes::<Vec<u8>>(rest)?;
    Ok(SpoolRecord { record, face_jpeg, frame_jpeg })
}

/// The fields of a version 2 record, in their order.
#[derive(Deserialize, Serialize)]
struct EventRecordV2 {
    id: String,
    kind: String,
    zone: Option<String>,
    dwell_ms: Option<u64>,
    yaw_deg: Option<f32>,
    pitch_deg: Option<f32>,
    attentive: Option<bool>,
    camera: String,
    track_id: u32,
    part: u32,
    first_unix_ms: u64,
    last_unix_ms: u64,
    best_unix_ms: u64,
    first_frame: u64,
    last_frame: u64,
    best_frame: u64,
    frame_width: u32,
    frame_height: u32,
    bbox: [f32; 4],
    keypoints: Keypoints,
    confidence: f32,
    quality: f32,
    quality_parts: QualityParts,
    frames: u32,
    movement_px: f32,
    moving_share: f32,
}

impl EventRecordV2 {
    fn into_record(self, merged_track_ids: Vec<u32>) -> EventRecord {
        EventRecord {
            id: self.id,
            kind: self.kind,
            zone: self.zone,
            dwell_ms: self.dwell_ms,
            yaw_deg: self.yaw_deg,
            pitch_deg: self.pitch_deg,
            attentive: self.attentive,
            camera: self.camera,
            track_id: self.track_id,
            part: self.part,
            first_unix_ms: self.first_unix_ms,
            last_unix_ms: self.last_unix_ms,
            best_unix_ms: self.best_unix_ms,
            first_frame: self.first_frame,
            last_frame: self.last_frame,
            best_frame: self.best_frame,
            frame_width: self.frame_width,
            frame_height: self.frame_height,
            bbox: self.bbox,
            keypoints: self.keypoints,
            confidence: self.confidence,
            quality: self.quality,
            quality_parts: self.quality_parts,
            frames: self.frames,
            movement_px: self.movement_px,
            moving_share: self.moving_share,
            merged_track_ids,
            sequence: 0,
            is_final: true,
            repeat_of: None,
            emitted_unix_ms: 0,
            mesh: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum EntryState {
    Queued { not_before: Instant },
    InFlight,
}

#[derive(Debug, Clone)]
struct Entry {
    state: EntryState,
    bytes: u64,
    attempts: u32,
    /// The event's id, so the outbox can ask whether it is still pending.
    id: Box<str>,
}

#[derive(Default, Debug)]
pub struct SpoolCounters {
    pub written: AtomicU64,
    pub delivered: AtomicU64,
    pub dead: AtomicU64,
    pub corrupt: AtomicU64,
    pub dropped_full: AtomicU64,
    pub retries: AtomicU64,
    pub write_errors: AtomicU64,
    /// Dead letters removed to keep `dead/` within its bound.
    pub dead_pruned: AtomicU64,
}

struct Index {
    entries: BTreeMap<u64, Entry>,
    next_seq: u64,
    bytes: u64,
    closed: bool,
}

/// Dead letters kept per spool unless configured (`sender.dead_letters_max`).
pub(crate) use crate::limits::DEAD_LETTERS_MAX as DEFAULT_DEAD_LETTERS_MAX;

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    dead_letters_max: AtomicU64,
    index: Mutex<Index>,
    wake: Condvar,
    pub counters: SpoolCounters,
}

/// One event handed to a sender worker.
pub struct Lease {
    pub seq: u64,
    pub attempts: u32,
    pub record: SpoolRecord,
}

fn fsync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Spool {
    /// Opens (creating) the spool and replays what a previous run left.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        for sub in ["", "dead", "corrupt"] {
            Access::PRIVATE.create_dir_all(&dir.join(sub)).map_err(|e| SpoolError {
                dir: dir.to_path_buf(),
                doing: format!("creating {}", dir.join(sub).display()),
                source: e.into(),
            })?;
        }
        let spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            dead_letters_max: AtomicU64::new(DEFAULT_DEAD_LETTERS_MAX as u64),
            index: Mutex::new(Index { entries: BTreeMap::new(), next_seq: 1, bytes: 0, closed: false }),
            wake: Condvar::new(),
            counters: SpoolCounters::default(),
        };
        spool.replay()?;
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many refused events `dead/` keeps; the oldest beyond it go.
    pub(crate) fn set_dead_letters_max(&self, n: usize) {
        self.dead_letters_max.store(n as u64, Ordering::Relaxed);
        self.prune_dead();
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:016}.ev"))
    }

    fn error(
        &self,
        doing: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> SpoolError {
        SpoolError { dir: self.dir.clone(), doing: doing.into(), source: source.into() }
    }

    fn replay(&self) -> Result<(), SpoolError> {
        let mut found = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(|e| self.error("listing it", e))? {
            let Ok(e) = e else { continue };
            let p = e.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            if name.ends_with(".tmp") {
                // Never renamed into place: the event was not acknowledged.
                let _ = fs::remove_file(&p);
                continue;
            }
            if let Some(seq) = name.strip_suffix(".ev").and_then(|s| s.parse::<u64>().ok()) {
                found.push((seq, p));
            }
        }
        found.sort();
        let mut idx = crate::sync::lock(&self.index);
        let now = Instant::now();
        for (seq, p) in found {
            let check = fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|b| decode(&b).map(|r| (b.len() as u64, r.record.id)).map_err(|e| e.to_string()));
            match check {
                Ok((bytes, id)) => {
                    let queued = EntryState::Queued { not_before: now };
                    idx.entries.insert(seq, Entry { state: queued, bytes, attempts: 0, id: id.into() });
                    idx.bytes += bytes;
                }
                Err(why) => {
                    let dest = self.dir.join("corrupt").join(p.file_name().unwrap());
                    let _ = fs::rename(&p, &dest);
                    self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                    log::error!(
                        "spool {}: {} is unreadable ({why}); moved to {}",
                        self.dir.display(),
                        p.display(),
                        dest.display()
                    );
                }
            }
            idx.next_seq = idx.next_seq.max(seq + 1);
        }
        if !idx.entries.is_empty() {
            log::info!("spool {}: replaying {} event(s) left by a previous run", self.dir.display(), idx.entries.len());
        }
        Ok(())
    }

    /// Writes an event durably. Returns once it is on disk (fsynced).
    pub fn put(&self, rec: &SpoolRecord) -> Result<u64, SpoolError> {
        let bytes = encode(rec).map_err(|e| self.error(format!("encoding event {}", rec.record.id), e))?;
        let size = bytes.len() as u64;
        let seq = {
            let mut idx = crate::sync::lock(&self.index);
            let s = idx.next_seq;
            idx.next_seq += 1;
            s
        };
        let path = self.path(seq);
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = Access::PRIVATE.create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            fsync_dir(&self.dir);
            Ok(())
        };
        while let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
            // A full disk gets the cap's policy: the oldest queued event goes
            // (counted, logged), the newest is kept. Other errors go back to
            // the caller, which retries.
            if e.kind() == std::io::ErrorKind::StorageFull && self.evict_oldest(seq, "the disk is full") {
                continue;
            }
            return Err(self.error(format!("writing event {}", rec.record.id), e));
        }
        self.counters.written.fetch_add(1, Ordering::Relaxed);
        let mut idx = crate::sync::lock(&self.index);
        let queued = EntryState::Queued { not_before: Instant::now() };
        idx.entries.insert(seq, Entry { state: queued, bytes: size, attempts: 0, id: rec.record.id.as_str().into() });
        idx.bytes += size;
        // Disk cap: drop the oldest queued events (never one being sent).
        let over = idx.bytes > self.max_bytes;
        drop(idx);
        if over {
            let why = format!("over its {} byte cap", self.max_bytes);
            while crate::sync::lock(&self.index).bytes > self.max_bytes && self.evict_oldest(seq, &why) {}
        }
        self.wake.notify_one();
        Ok(seq)
    }

    /// Waits up to `wait` for an event that is due, and leases it.
    /// Drops the oldest queued event other than `keep` (never one being
    /// sent), counted in `dropped_full`; false if there is none.
    fn evict_oldest(&self, keep: u64, why: &str) -> bool {
        let mut idx = crate::sync::lock(&self.index);
        let victim = idx
            .entries
            .iter()
            .find(|(s, e)| **s != keep && matches!(e.state, EntryState::Queued { .. }))
            .map(|(s, e)| (*s, e.bytes));
        let Some((vseq, vbytes)) = victim else { return false };
        idx.entries.remove(&vseq);
        idx.bytes -= vbytes;
        drop(idx);
        let _ = fs::remove_file(self.path(vseq));
        self.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
        log::warn!("spool {}: {why}; dropped the oldest queued event (#{vseq}) to make room", self.dir.display());
        true
    }

    pub fn take(&self, wait: Duration) -> Option<Lease> {
        let deadline = Instant::now() + wait;
        let mut idx = crate::sync::lock(&self.index);
        loop {
            let now = Instant::now();
            let due = idx
                .entries
                .iter()
                .find(|(_, e)| matches!(e.state, EntryState::Queued { not_before } if not_before <= now))
                .map(|(s, _)| *s);
            if let Some(seq) = due {
                let e = idx.entries.get_mut(&seq).unwrap();
                e.state = EntryState::InFlight;
                let attempts = e.attempts;
                drop(idx);
                match fs::read(self.path(seq))
                    .map_err(|e| e.to_string())
                    .and_then(|b| decode(&b).map_err(|e| e.to_string()))
                {
                    Ok(record) => return Some(Lease { seq, attempts, record }),
                    Err(why) => {
                        let p = self.path(seq);
                        let _ = fs::rename(&p, self.dir.join("corrupt").join(p.file_name().unwrap()));
                        self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                        log::error!(
                            "spool {}: event #{seq} became unreadable ({why}); moved to corrupt/",
                            self.dir.display()
                        );
                        self.forget(seq);
                        idx = crate::sync::lock(&self.index);
                        continue;
                    }
                }
            }
            if idx.closed || now >= deadline {
                return None;
            }
            let next_due = idx
                .entries
                .values()
                .filter_map(|e| match e.state {
                    EntryState::Queued { not_before } => Some(not_before),
                    _ => None,
                })
                .min()
                .unwrap_or(deadline)
                .min(deadline);
            let wait = next_due.saturating_duration_since(now).max(Duration::from_millis(1));
            idx = crate::sync::wait_timeout(&self.wake, idx, wait);
        }
    }

    fn forget(&self, seq: u64) {
        let mut idx = crate::sync::lock(&self.index);
        if let Some(e) = idx.entries.remove(&seq) {
            idx.bytes -= e.bytes;
        }
    }

    /// The event was delivered: remove it.
    pub fn done(&self, seq: u64) {
        let _ = fs::remove_file(self.path(seq));
        fsync_dir(&self.dir);
        self.forget(seq);
        self.counters.delivered.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_all();
    }

    /// Try again after `delay`.
    pub fn retry(&self, seq: u64, delay: Duration) {
        let mut idx = crate::sync::lock(&self.index);
        if let Some(e) = idx.entries.get_mut(&seq) {
            e.attempts += 1;
            e.state = EntryState::Queued { not_before: Instant::now() + delay };
        }
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        drop(idx);
        self.wake.notify_one();
    }

    /// Permanently refused: keep it in `dead/` with the reason beside it.
    pub fn dead(&self, seq: u64, reason: &str) {
        let p = self.path(seq);
        let dest = self.dir.join("dead").join(p.file_name().unwrap());
        let _ = fs::rename(&p, &dest);
        if let Ok(mut f) = Access::PRIVATE.create(&dest.with_extension("reason")) {
            let _ = f.write_all(reason.as_bytes());
        }
        fsync_dir(&self.dir);
        self.forget(seq);
        self.counters.dead.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_all();
        self.prune_dead();
    }

    /// Keeps `dead/` within `dead_letters_max` events, oldest removed first.
    fn prune_dead(&self) {
        let dead = self.dir.join("dead");
        let Ok(list) = fs::read_dir(&dead) else { return };
        let mut seqs: Vec<u64> =
            list.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".ev")?.parse().ok()).collect();
        let max = self.dead_letters_max.load(Ordering::Relaxed) as usize;
        if seqs.len() <= max {
            return;
        }
        seqs.sort_unstable();
        let excess = seqs.len() - max;
        for seq in &seqs[..excess] {
            let p = dead.join(format!("{seq:016}.ev"));
            let _ = fs::remove_file(&p);
            let _ = fs::remove_file(p.with_extension("reason"));
            self.counters.dead_pruned.fetch_add(1, Ordering::Relaxed);
        }
        log::warn!(
            "spool {}: dead/ holds more than {max} refused events; removed the {excess} oldest",
            self.dir.display()
        );
    }

    /// Events not yet delivered (queued or in flight).
    pub fn pending(&self) -> usize {
        crate::sync::lock(&self.index).entries.len()
    }

    pub fn bytes(&self) -> u64 {
        crate::sync::lock(&self.index).bytes
    }

    pub(crate) fn is_closed(&self) -> bool {
        crate::sync::lock(&self.index).closed
    }

    /// Wakes every waiting worker and makes `take` return `None` from now on.
    pub fn close(&self) {
        crate::sync::lock(&self.index).closed = true;
        self.wake.notify_all();
    }

    /// Waits until nothing is pending or `timeout` passes; true if drained.
    pub(crate) fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut idx = crate::sync::lock(&self.index);
        while !idx.entries.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            idx = crate::sync::wait_timeout(&self.wake, idx, (deadline - now).min(Duration::from_millis(100)));
        }
        true
    }
}

impl super::retention::PendingIds for Spool {
    /// Every event not yet delivered (queued or in flight).
    fn pending_ids(&self, out: &mut std::collections::HashSet<String>) {
        out.extend(crate::sync::lock(&self.index).entries.values().map(|e| e.id.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample(id: &str) -> SpoolRecord {
        SpoolRecord {
            record: EventRecord {
                id: id.into(),
                kind: "face".into(),
                zone: None,
                dwell_ms: None,
                yaw_deg: Some(3.0),
                pitch_deg: Some(-2.0),
                attentive: Some(true),
                camera: "cam".into(),
                track_id: 3,
                part: 0,
                first_unix_ms: 1,
                last_unix_ms: 2,
                best_unix_ms: 2,
                first_frame: 0,
                last_frame: 9,
                best_frame: 4,
                frame_width: 640,
                frame_height: 480,
                bbox: [1.0, 2.0, 3.0, 4.0],
                keypoints: [[0.0; 2]; 5],
                confidence: 0.9,
                quality: 0.8,
                quality_parts: QualityParts::default(),
                frames: 10,
                movement_px: 50.0,
                moving_share: 0.9,
                merged_track_ids: vec![1, 3],
                sequence: 0,
                is_final: true,
                repeat_of: None,
                emitted_unix_ms: 7,
                mesh: None,
            },
            face_jpeg: vec![0xFF, 0xD8, 1, 2, 3],
            frame_jpeg: vec![0xFF, 0xD8, 4, 5, 6, 7],
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ff-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn every_flipped_or_missing_byte_is_detected() {
        let bytes = encode(&sample("a")).unwrap();
        assert_eq!(decode(&bytes).unwrap(), sample("a"));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(decode(&b).is_err(), "flip at {i} undetected");
            assert!(decode(&bytes[..i]).is_err(), "truncation at {i} undetected");
        }
    }

    #[test]
    fn survives_restart_and_quarantines_corrupt_files() {
        let d = dir("restart");
        let c;
        {
            let s = Spool::open(&d, 1 << 20).unwrap();
            s.put(&sample("a")).unwrap();
            s.put(&sample("b")).unwrap();
            c = s.put(&sample("c")).unwrap();
            // A torn write of `c` (as after a crash mid-write of a rewrite).
            let p = s.path(c);
            let b = fs::read(&p).unwrap();
            fs::write(&p, &b[..b.len() / 2]).unwrap();
            fs::write(d.join("0000000000000099.tmp"), b"half").unwrap();
        }
        let s = Spool::open(&d, 1 << 20).unwrap();
        assert_eq!(s.pending(), 2);
        assert_eq!(s.counters.corrupt.load(Ordering::Relaxed), 1);
        assert_eq!(fs::read_dir(d.join("corrupt")).unwrap().count(), 1);
        assert!(!d.join("0000000000000099.tmp").exists());
        let l1 = s.take(Duration::ZERO).unwrap();
        let l2 = s.take(Duration::ZERO).unwrap();
        assert_eq!((l1.record.record.id.as_str(), l2.record.record.id.as_str()), ("a", "b"));
        assert!(s.take(Duration::ZERO).is_none(), "both in flight");
        s.done(l1.seq);
        s.retry(l2.seq, Duration::from_millis(30));
        assert!(s.take(Duration::ZERO).is_none(), "retry not yet due");
        let again = s.take(Duration::from_secs(2)).unwrap();
        assert_eq!(again.attempts, 1);
        s.dead(again.seq, "400 BAD_PARAM camera");
        assert_eq!(s.pending(), 0);
        assert_eq!(fs::read_dir(d.join("dead")).unwrap().count(), 2, "record and reason");
        // New sequence numbers never reuse old ones.
        assert!(s.put(&sample("d")).unwrap() > c);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn cap_drops_the_oldest_and_counts_it() {
        let d = dir("cap");
        let one = encode(&sample("x")).unwrap().len() as u64;
        let s = Spool::open(&d, one * 3).unwrap();
        for id in ["a", "b", "c", "d", "e"] {
            s.put(&sample(id)).unwrap();
        }
        assert_eq!(s.pending(), 3);
        assert_eq!(s.counters.dropped_full.load(Ordering::Relaxed), 2);
        let ids: Vec<String> = (0..3).map(|_| s.take(Duration::ZERO).unwrap().record.record.id).collect();
        assert_eq!(ids, ["c", "d", "e"]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn dead_letters_stay_within_their_bound_oldest_first_and_ids_are_known() {
        use super::super::retention::PendingIds;
        use std::os::unix::fs::PermissionsExt;
        let d = dir("dead-bound");
        let s = Spool::open(&d, 1 << 20).unwrap();
        s.set_dead_letters_max(2);
        for id in ["a", "b", "c", "d"] {
            s.put(&sample(id)).unwrap();
        }
        let mut ids = std::collections::HashSet::new();
        s.pending_ids(&mut ids);
        assert_eq!(ids.len(), 4);
        assert!(ids.contains("c"));
        for _ in 0..3 {
            let l = s.take(Duration::ZERO).unwrap();
            s.dead(l.seq, "refused");
        }
        let mut dead: Vec<String> =
            fs::read_dir(d.join("dead")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        dead.sort();
        assert_eq!(
            dead,
            ["0000000000000002.ev", "0000000000000002.reason", "0000000000000003.ev", "0000000000000003.reason"]
        );
        assert_eq!(s.counters.dead.load(Ordering::Relaxed), 3);
        assert_eq!(s.counters.dead_pruned.load(Ordering::Relaxed), 1);
        ids.clear();
        s.pending_ids(&mut ids);
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), ["d"]);
        // Faces inside: owner-only.
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&d.join("dead")), 0o700);
        assert_eq!(mode(&s.path(4)), 0o600);
        assert_eq!(mode(&d.join("dead/0000000000000003.reason")), 0o600);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn version_2_files_still_read() {
        let mut rec = sample("old");
        rec.record.merged_track_ids.clear();
        rec.record.emitted_unix_ms = 0; // version 2 had no such field
        let r = &rec.record;
        let v2 = (
            EventRecordV2 {
                id: r.id.clone(),
                kind: r.kind.clone(),
                zone: r.zone.clone(),
                dwell_ms: r.dwell_ms,
                yaw_deg: r.yaw_deg,
                pitch_deg: r.pitch_deg,
                attentive: r.attentive,
                camera: r.camera.clone(),
                track_id: r.track_id,
                part: r.part,
                first_unix_ms: r.first_unix_ms,
                last_unix_ms: r.last_unix_ms,
                best_unix_ms: r.best_unix_ms,
                first_frame: r.first_frame,
                last_frame: r.last_frame,
                best_frame: r.best_frame,
                frame_width: r.frame_width,
                frame_height: r.frame_height,
                bbox: r.bbox,
                keypoints: r.keypoints,
                confidence: r.confidence,
                quality: r.quality,
                quality_parts: r.quality_parts,
                frames: r.frames,
                movement_px: r.movement_px,
                moving_share: r.moving_share,
            },
            rec.face_jpeg.clone(),
            rec.frame_jpeg.clone(),
        );
        let mut bytes = wrap_payload(&postcard::to_allocvec(&v2).unwrap());
        bytes[4] = 2;
        // The CRC covers the payload only: the patched version byte keeps it valid.
        assert_eq!(decode(&bytes).unwrap(), rec);
        // Version 3: the same with merged_track_ids after the record.
        let v3 = (&v2.0, vec![4u32, 9], &v2.1, &v2.2);
        let mut bytes = wrap_payload(&postcard::to_allocvec(&v3).unwrap());
        bytes[4] = 3;
        assert_eq!(decode(&bytes).unwrap().record.merged_track_ids, vec![4, 9]);
        // Version 4: and sequence, final, repeat_of, emitted_unix_ms; no mesh.
        let v4 = (&v2.0, vec![4u32, 9], (2u32, false, Some(1u32), 77u64), &v2.1, &v2.2);
        let mut bytes = wrap_payload(&postcard::to_allocvec(&v4).unwrap());
        bytes[4] = 4;
        let r4 = decode(&bytes).unwrap();
        assert_eq!((r4.record.sequence, r4.record.is_final, r4.record.repeat_of), (2, false, Some(1)));
        assert_eq!((r4.record.emitted_unix_ms, r4.record.mesh.as_ref()), (77, None));
        assert_eq!(r4.frame_jpeg, rec.frame_jpeg);
        // Version 5 carries the mesh.
        let mut new = sample("mesh");
        new.record.mesh = Some(crate::sink::MeshRecord {
            roll_deg: 1.0,
            eye_aspect: 0.3,
            eyes_part: 1.0,
            presence: 0.99,
            gaze_yaw_deg: Some(-4.0),
            gaze_pitch_deg: None,
            points: vec![[1.0, 2.0, 3.0]; 478],
        });
        assert_eq!(decode(&encode(&new).unwrap()).unwrap(), new);
        assert_eq!(decode(&encode(&sample("new")).unwrap()).unwrap().record.merged_track_ids, vec![1, 3]);
    }
}
