//! Outbox retention: faces are biometric data, so the outbox keeps them no
//! longer and no bigger than configured. Events (a record and its JPEGs)
//! are removed oldest first past `outbox.max_age_h` or `outbox.max_bytes`,
//! and with `outbox.keep = "until_delivered"` as soon as no remote sink's
//! spool still holds them. The spools are never touched here: an event not
//! yet delivered stays in its spool whatever happens to the outbox copy.
//!
//! The sink thread owns the index (no locks): it is built by one scan of
//! the outbox at start, grown as events are written, and enforced after
//! every write (bytes) and at most once a second (age, delivery).

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::OutboxStats;

/// Something holding events not yet delivered: a remote sink's spool.
pub(crate) trait PendingIds {
    /// Adds the ids of the events still to deliver.
    fn pending_ids(&self, out: &mut HashSet<String>);
}

pub(crate) use crate::config::Keep;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Events older than this go (None: no age limit).
    pub max_age: Option<Duration>,
    /// The outbox is kept at or below this many bytes (None: no limit).
    pub max_bytes: Option<u64>,
    pub keep: Keep,
}

impl Policy {
    /// The `[outbox]` section's retention.
    pub fn of(cfg: &crate::config::OutboxConfig) -> Policy {
        Policy {
            max_age: (cfg.max_age_h > 0.0).then(|| Duration::from_secs_f64(cfg.max_age_h * 3600.0)),
            max_bytes: (cfg.max_bytes > 0).then_some(cfg.max_bytes),
            keep: cfg.keep,
        }
    }
}

/// The three files an event may have, the record first: it is written
/// last and removed first, so a record on disk means its JPEGs are whole.
const SUFFIXES: [&str; 3] = [".json", "_face.jpg", "_frame.jpg"];

#[derive(Debug)]
struct Kept {
    camera: Box<str>,
    id: Box<str>,
    written_unix_ms: u64,
    bytes: u64,
    files: u32,
    /// Every remote sink's spool took it (false: a spool write failed, so
    /// delivery cannot be told from the spools and only age/size remove it).
    spooled: bool,
}

/// Why events were removed, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pruned {
    pub by_age: u64,
    pub by_size: u64,
    pub delivered: u64,
}

pub(crate) struct OutboxRetention {
    dir: PathBuf,
    policy: Policy,
    /// Oldest first.
    index: VecDeque<Kept>,
    bytes: u64,
    files: u64,
    last_maintained: Option<Instant>,
    /// Reused between passes: ids some spool still holds.
    pending: HashSet<String>,
    stats: Arc<OutboxStats>,
}

impl OutboxRetention {
    /// Indexes what the outbox holds (removing torn `.tmp` leftovers of a
    /// crash) and publishes its size.
    pub fn open(dir: &Path, policy: Policy, stats: Arc<OutboxStats>) -> std::io::Result<OutboxRetention> {
        let mut index = Vec::new();
        let cameras = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::with_index(dir, policy, stats, VecDeque::new()))
            }
            Err(e) => return Err(e),
        };
        for cam in cameras {
            let cam = cam?;
            if !cam.file_type()?.is_dir() {
                continue;
            }
            let camera: Box<str> = cam.file_name().to_string_lossy().into();
            let mut by_id: std::collections::HashMap<String, Kept> = std::collections::HashMap::new();
            for f in std::fs::read_dir(cam.path())? {
                let f = f?;
                let name = f.file_name().to_string_lossy().into_owned();
                if name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(f.path());
                    continue;
                }
                let Some(id) = SUFFIXES.iter().find_map(|s| name.strip_suffix(s)) else { continue };
                let meta = f.metadata()?;
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                let k = by_id.entry(id.to_string()).or_insert_with(|| Kept {
                    camera: camera.clone(),
                    id: id.into(),
                    written_unix_ms: mtime,
                    bytes: 0,
                    files: 0,
                    spooled: true,
                });
                k.written_unix_ms = k.written_unix_ms.max(mtime);
                k.bytes += meta.len();
                k.files += 1;
            }
            index.extend(by_id.into_values());
        }
        index.sort_by(|a, b| (a.written_unix_ms, &a.id).cmp(&(b.written_unix_ms, &b.id)));
        Ok(Self::with_index(dir, policy, stats, index.into()))
    }

    fn with_index(dir: &Path, policy: Policy, stats: Arc<OutboxStats>, index: VecDeque<Kept>) -> OutboxRetention {
        let r = OutboxRetention {
            dir: dir.to_path_buf(),
            policy,
            bytes: index.iter().map(|k| k.bytes).sum(),
            files: index.iter().map(|k| k.files as u64).sum(),
            index,
            last_maintained: None,
            pending: HashSet::new(),
            stats,
        };
        r.publish();
        r
    }

    fn publish(&self) {
        self.stats.bytes.store(self.bytes, Ordering::Relaxed);
        self.stats.files.store(self.files, Ordering::Relaxed);
        self.stats.events.store(self.index.len() as u64, Ordering::Relaxed);
    }

    /// Notes an event the outbox just wrote, then keeps within `max_bytes`.
    pub fn written(&mut self, camera: &str, id: &str, now_unix_ms: u64, spooled: bool) {
        let base = self.dir.join(camera);
        let (mut bytes, mut files) = (0, 0);
        for s in SUFFIXES {
            if let Ok(m) = std::fs::metadata(base.join(format!("{id}{s}"))) {
                bytes += m.len();
                files += 1;
            }
        }
        self.index.push_back(Kept {
            camera: camera.into(),
            id: id.into(),
            written_unix_ms: now_unix_ms,
            bytes,
            files,
            spooled,
        });
        self.bytes += bytes;
        self.files += files as u64;
        let by_size = self.prune_to_size();
        self.publish();
        if by_size > 0 {
            log::debug!("outbox: removed {by_size} oldest events to stay within max_bytes");
        }
    }

    fn prune_to_size(&mut self) -> u64 {
        let Some(max) = self.policy.max_bytes else { return 0 };
        let mut n = 0;
        while self.bytes > max {
            let Some(k) = self.index.pop_front() else { break };
            self.remove(&k);
            n += 1;
        }
        n
    }

    /// Age and delivery rules, at most once a second (`force` for tests
    /// and shutdown).
    pub(crate) fn maintain<'a, P: PendingIds + ?Sized + 'a>(
        &mut self,
        now_unix_ms: u64,
        spools: impl IntoIterator<Item = &'a P>,
        force: bool,
    ) -> Pruned {
        let now = Instant::now();
        if !force && self.last_maintained.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return Pruned::default();
        }
        self.last_maintained = Some(now);
        let mut pruned = Pruned::default();
        if let Some(age) = self.policy.max_age {
            let cutoff = now_unix_ms.saturating_sub(age.as_millis() as u64);
            while self.index.front().is_some_and(|k| k.written_unix_ms < cutoff) {
                let k = self.index.pop_front().expect("front checked");
                self.remove(&k);
                pruned.by_age += 1;
            }
        }
        if self.policy.keep == Keep::UntilDelivered && !self.index.is_empty() {
            self.pending.clear();
            for s in spools {
                s.pending_ids(&mut self.pending);
            }
            let mut kept = VecDeque::with_capacity(self.index.len());
            for k in std::mem::take(&mut self.index) {
                if k.spooled && !self.pending.contains(&*k.id) {
                    self.remove(&k);
                    pruned.delivered += 1;
                } else {
                    kept.push_back(k);
                }
            }
            self.index = kept;
        }
        pruned.by_size = self.prune_to_size();
        self.publish();
        if pruned.by_age > 0 {
            log::info!("outbox: removed {} events older than max_age_h", pruned.by_age);
        }
        pruned
    }

    /// Removes an event's files, the record first; counts what went.
    fn remove(&mut self, k: &Kept) {
        let base = self.dir.join(&*k.camera);
        let mut removed_bytes = 0;
        let mut removed_files = 0;
        for s in SUFFIXES {
            let p = base.join(format!("{}{s}", k.id));
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(&p) {
                Ok(()) => {
                    removed_bytes += len;
                    removed_files += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("outbox: removing {}: {e}", p.display()),
            }
        }
        self.bytes = self.bytes.saturating_sub(k.bytes);
        self.files = self.files.saturating_sub(k.files as u64);
        self.stats.pruned_events.fetch_add(1, Ordering::Relaxed);
        self.stats.pruned_files.fetch_add(removed_files, Ordering::Relaxed);
        self.stats.pruned_bytes.fetch_add(removed_bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("faceflow-retention-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn files(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d.join("cam"))
            .map(|rd| rd.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// An event as the outbox writes it: record, face and frame.
    fn write(d: &Path, r: &mut OutboxRetention, id: &str, t: u64, spooled: bool) {
        std::fs::create_dir_all(d.join("cam")).unwrap();
        for (suffix, len) in [(".json", 1000), ("_face.jpg", 1000), ("_frame.jpg", 5000)] {
            std::fs::write(d.join(format!("cam/{id}{suffix}")), vec![0u8; len]).unwrap();
        }
        r.written("cam", id, t, spooled);
    }

    /// A spool stand-in: the ids it still holds.
    struct Held(HashSet<String>);
    impl PendingIds for Held {
        fn pending_ids(&self, out: &mut HashSet<String>) {
            out.extend(self.0.iter().cloned());
        }
    }
    const NONE: [&Held; 0] = [];

    #[test]
    fn size_and_age_remove_whole_events_oldest_first_and_are_counted() {
        let d = dir("size-age");
        let stats = Arc::new(OutboxStats::default());
        let policy = Policy { max_age: Some(Duration::from_secs(3600)), max_bytes: Some(14_000), keep: Keep::Always };
        let mut r = OutboxRetention::open(&d, policy, stats.clone()).unwrap();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            write(&d, &mut r, id, 1_000 + i as u64, true);
        }
        // 7000 bytes an event: the third write pushes "a" out, whole.
        assert_eq!(files(&d).iter().filter(|f| f.starts_with('a')).count(), 0, "{:?}", files(&d));
        assert_eq!(files(&d).iter().filter(|f| f.starts_with('b')).count(), 3);
        assert_eq!(stats.pruned_events.load(Ordering::Relaxed), 1);
        assert_eq!(stats.pruned_files.load(Ordering::Relaxed), 3);
        assert_eq!(stats.pruned_bytes.load(Ordering::Relaxed), 7000);
        assert_eq!(stats.bytes.load(Ordering::Relaxed), 14_000);
        assert_eq!(stats.events.load(Ordering::Relaxed), 2);
        // An hour after "b" was written (but not "c"), "b" goes.
        let p = r.maintain(1_002 + 3_600_000, NONE, true);
        assert_eq!(p, Pruned { by_age: 1, by_size: 0, delivered: 0 });
        assert!(files(&d).iter().all(|f| f.starts_with('c')), "{:?}", files(&d));
        // A restart indexes what is there (and drops torn temporaries).
        std::fs::write(d.join("cam/x.tmp"), b"torn").unwrap();
        let stats2 = Arc::new(OutboxStats::default());
        let r2 = OutboxRetention::open(&d, policy, stats2.clone()).unwrap();
        assert_eq!(stats2.events.load(Ordering::Relaxed), 1);
        assert_eq!(stats2.files.load(Ordering::Relaxed), 3);
        assert_eq!(stats2.bytes.load(Ordering::Relaxed), 7000);
        assert!(!d.join("cam/x.tmp").exists());
        drop(r2);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn until_delivered_keeps_what_a_spool_still_holds() {
        let d = dir("delivered");
        let stats = Arc::new(OutboxStats::default());
        let policy = Policy { max_age: None, max_bytes: None, keep: Keep::UntilDelivered };
        let mut r = OutboxRetention::open(&d, policy, stats.clone()).unwrap();
        let mut spool = Held(["a", "b"].iter().map(|s| s.to_string()).collect());
        write(&d, &mut r, "a", 1, true);
        write(&d, &mut r, "b", 2, true);
        // "c"'s spool write failed: only age or size may remove it.
        write(&d, &mut r, "c", 3, false);
        assert_eq!(r.maintain(10, [&spool], true), Pruned::default());
        // "a" is delivered: its outbox copy goes, the others stay.
        spool.0.remove("a");
        assert_eq!(r.maintain(10, [&spool], true).delivered, 1);
        assert!(files(&d).iter().all(|f| !f.starts_with('a')), "{:?}", files(&d));
        assert_eq!(files(&d).len(), 6);
        // Throttled: a second pass within the second does nothing.
        spool.0.remove("b");
        assert_eq!(r.maintain(10, [&spool], false), Pruned::default());
        assert_eq!(r.maintain(10, [&spool], true).delivered, 1);
        assert!(files(&d).iter().all(|f| f.starts_with('c')));
        assert_eq!(stats.events.load(Ordering::Relaxed), 1);
        let _ = std::fs::remove_dir_all(&d);
    }
}
