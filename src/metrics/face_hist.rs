//! Last-hour histograms of the faces a camera sees: their width in pixels
//! and their quality score, in fixed buckets. This is the installer's
//! "move the camera closer" signal: the panel draws them per camera and
//! says so when most faces fall under FindFace's 50 px minimum or the
//! quality threshold. Recording is two relaxed atomic adds (plus a slot
//! reset once per window): no lock, no allocation, so the track thread
//! records every tracked face of every frame.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Upper edges of the face-width buckets, px; the last bucket is open.
pub(crate) const WIDTH_EDGES: [f32; 9] = [20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 140.0, 200.0];
/// Quality buckets: ten of 0.1 each over [0, 1].
pub(crate) const QUALITY_BUCKETS: usize = 10;
/// FindFace does not extract faces under 50 px by default
/// (../shared/findface-api.md).
pub(crate) const FINDFACE_MIN_WIDTH_PX: f32 = 50.0;

/// The hour is kept as six ten-minute slots; a slot is cleared when the
/// clock comes round to it again, so the figures cover the last 50 to 60
/// minutes.
const SLOTS: usize = 6;
const SLOT_S: u64 = 600;

/// One histogram over a rolling hour. `B` buckets.
pub struct HourHistogram<const B: usize> {
    counts: [[AtomicU64; B]; SLOTS],
    /// Which ten-minute window (seconds / SLOT_S, plus one; 0 = never) each
    /// slot holds.
    window: [AtomicU64; SLOTS],
}

impl<const B: usize> Default for HourHistogram<B> {
    fn default() -> Self {
        HourHistogram {
            counts: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            window: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl<const B: usize> HourHistogram<B> {
    /// Counts one value in `bucket` at `now_s` (seconds on any monotonic
    /// clock). One writer per histogram (the track thread of the camera);
    /// readers may see a slot being cleared, never a torn count.
    pub fn record(&self, bucket: usize, now_s: u64) {
        let w = now_s / SLOT_S + 1;
        let i = (w % SLOTS as u64) as usize;
        if self.window[i].load(Ordering::Relaxed) != w {
            for c in &self.counts[i] {
                c.store(0, Ordering::Relaxed);
            }
            self.window[i].store(w, Ordering::Relaxed);
        }
        self.counts[i][bucket.min(B - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts per bucket over the slots of the last hour at `now_s`.
    pub(crate) fn last_hour(&self, now_s: u64) -> [u64; B] {
        let w = now_s / SLOT_S + 1;
        let mut out = [0u64; B];
        for (i, slot) in self.counts.iter().enumerate() {
            let sw = self.window[i].load(Ordering::Relaxed);
            if sw == 0 || sw + (SLOTS as u64) <= w {
                continue; // never used, or older than the hour
            }
            for (o, c) in out.iter_mut().zip(slot) {
                *o += c.load(Ordering::Relaxed);
            }
        }
        out
    }
}

/// A camera's face widths and qualities.
pub struct FaceHistograms {
    pub width: HourHistogram<{ WIDTH_EDGES.len() + 1 }>,
    pub quality: HourHistogram<QUALITY_BUCKETS>,
    /// The quality the hint compares with (f32 bits): the camera's
    /// `realtime_min_quality`, the mark of a face good enough to post.
    threshold: AtomicU32,
}

impl Default for FaceHistograms {
    fn default() -> Self {
        FaceHistograms {
            width: HourHistogram::default(),
            quality: HourHistogram::default(),
            threshold: AtomicU32::new(0.7f32.to_bits()),
        }
    }
}

impl FaceHistograms {
    pub(crate) fn set_quality_threshold(&self, q: f32) {
        self.threshold.store(q.to_bits(), Ordering::Relaxed);
    }

    /// One tracked face: its box width (px) and quality (0..1).
    pub fn record(&self, width_px: f32, quality: f32, now_s: u64) {
        let wb = WIDTH_EDGES.iter().position(|&e| width_px < e).unwrap_or(WIDTH_EDGES.len());
        let qb = ((quality.clamp(0.0, 1.0) * QUALITY_BUCKETS as f32) as usize).min(QUALITY_BUCKETS - 1);
        self.width.record(wb, now_s);
        self.quality.record(qb, now_s);
    }

    /// The panel's view: counts, bucket labels, and a hint in words when
    /// most faces are too small for FindFace or under the quality threshold.
    pub fn json(&self, now_s: u64) -> serde_json::Value {
        let min_quality = f32::from_bits(self.threshold.load(Ordering::Relaxed));
        let widths = self.width.last_hour(now_s);
        let qualities = self.quality.last_hour(now_s);
        let total: u64 = widths.iter().sum();
        let small: u64 =
            widths[..WIDTH_EDGES.iter().position(|&e| e >= FINDFACE_MIN_WIDTH_PX).unwrap_or(0) + 1].iter().sum();
        let low_q_buckets =
            ((min_quality.clamp(0.0, 1.0) * QUALITY_BUCKETS as f32).floor() as usize).min(QUALITY_BUCKETS);
        let low: u64 = qualities[..low_q_buckets].iter().sum();
        let mut hints = Vec::new();
        if total > 0 && small * 2 > total {
            hints.push(format!(
                "{}% of faces are under {FINDFACE_MIN_WIDTH_PX:.0} px wide, FindFace's minimum: move the camera closer or zoom in",
                small * 100 / total
            ));
        }
        if total > 0 && low * 2 > total {
            hints.push(format!(
                "{}% of faces score under quality {min_quality:.1}: check focus, light and the angle to the faces",
                low * 100 / total
            ));
        }
        let mut width_labels: Vec<String> = Vec::with_capacity(WIDTH_EDGES.len() + 1);
        let mut lo = 0.0;
        for e in WIDTH_EDGES {
            width_labels.push(format!("{lo:.0}-{e:.0}"));
            lo = e;
        }
        width_labels.push(format!("{lo:.0}+"));
        serde_json::json!({
            "faces": total,
            "width_px": {"labels": width_labels, "counts": widths.to_vec()},
            "quality": {
                "labels": (0..QUALITY_BUCKETS).map(|i| format!("{:.1}", i as f32 / QUALITY_BUCKETS as f32)).collect::<Vec<_>>(),
                "counts": qualities.to_vec(),
                "threshold": min_quality,
            },
            "under_findface_min": small,
            "under_quality_threshold": low,
            "hints": hints,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faces_land_in_their_buckets_and_age_out_after_an_hour() {
        let h = FaceHistograms::default();
        h.record(10.0, 0.05, 0); // <20 px, quality bucket 0
        h.record(49.9, 0.55, 30); // 40-50
        h.record(50.0, 0.99, 60); // 50-60
        h.record(500.0, 1.0, 700); // open bucket, next slot
        let w = h.width.last_hour(700);
        assert_eq!(w, [1, 0, 0, 1, 1, 0, 0, 0, 0, 1]);
        let q = h.quality.last_hour(700);
        assert_eq!((q[0], q[5], q[9]), (1, 1, 2));
        // 55 min later the first slot still counts; past the hour it is gone.
        assert_eq!(h.width.last_hour(3300).iter().sum::<u64>(), 4);
        assert_eq!(h.width.last_hour(3600).iter().sum::<u64>(), 1, "the first window aged out");
        assert_eq!(h.width.last_hour(4300).iter().sum::<u64>(), 0);
        // Recording into a reused slot clears it first.
        h.record(25.0, 0.3, 3605);
        assert_eq!(h.width.last_hour(3605), [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn the_hint_names_small_faces_and_low_quality() {
        let h = FaceHistograms::default();
        h.set_quality_threshold(0.7);
        for _ in 0..6 {
            h.record(35.0, 0.4, 10);
        }
        for _ in 0..4 {
            h.record(120.0, 0.9, 10);
        }
        let v = h.json(20);
        assert_eq!(v["faces"], 10);
        assert_eq!(v["under_findface_min"], 6);
        assert_eq!(v["under_quality_threshold"], 6);
        let hints = v["hints"].as_array().unwrap();
        assert_eq!(hints.len(), 2, "{v}");
        assert!(hints[0].as_str().unwrap().contains("60% of faces are under 50 px"), "{v}");
        // Mostly big, good faces: no hint.
        let g = FaceHistograms::default();
        g.set_quality_threshold(0.7);
        g.record(30.0, 0.2, 0);
        for _ in 0..3 {
            g.record(90.0, 0.8, 0);
        }
        assert!(g.json(1)["hints"].as_array().unwrap().is_empty());
    }
}
