//! The monitor: the HTTP server (`http`: stats API, panel, MJPEG previews,
//! `/healthz`), Prometheus text (`prometheus`), process figures
//! (`process`: CPU, memory, file descriptors) and the 60-sample series
//! behind the sparklines (`history`). It reads the stages' counters
//! (`metrics`) and the handles in [`Feeds`]; it owns no stage's state.

pub mod history;
pub mod http;
pub mod process;
pub mod prometheus;

use std::sync::{Arc, Mutex};

use crate::metrics::{CameraState, Stats};
use crate::sink::gallery::Gallery;
use crate::sink::spool::Spool;
use crate::track::preview::Preview;

/// What the monitor shows beside the counters, each written by its stage:
/// the latest annotated frame per camera (detect and track threads), the
/// newest best faces and their delivery (sink and senders), and the remote
/// sinks' spools (registered at start).
pub struct Feeds {
    pub previews: Arc<Vec<Preview>>,
    pub gallery: Arc<Gallery>,
    pub spools: Mutex<Vec<(String, Arc<Spool>)>>,
}

impl Feeds {
    /// Feeds for `cameras` cameras, keeping `recent_faces` best faces each
    /// for the panel (0: none).
    pub fn new(cameras: usize, recent_faces: usize) -> Arc<Feeds> {
        Arc::new(Feeds {
            previews: Arc::new((0..cameras).map(|_| Preview::default()).collect()),
            gallery: Arc::new(Gallery::new(cameras, recent_faces)),
            spools: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn register_spool(&self, name: impl Into<String>, spool: Arc<Spool>) {
        crate::sync::lock(&self.spools).push((name.into(), spool));
    }
}

/// What `/healthz` says.
pub struct Health {
    /// `ok`, `degraded` (some camera failed, degraded or overloaded) or
    /// `failing` (every camera failed, or a stage is stalled).
    pub status: &'static str,
    pub reasons: Vec<String>,
    pub cameras_failed: usize,
    pub cameras_degraded: usize,
    /// Cameras losing frames because detection cannot keep up: they are
    /// still served, at a lower detect rate (see `detect::overload`).
    pub cameras_overloaded: usize,
}

pub fn health(s: &Stats) -> Health {
    let mut reasons = s.stalls.reasons();
    let stalled = !reasons.is_empty();
    let (mut failed, mut degraded, mut overloaded) = (0, 0, 0);
    for (name, c) in s.camera_names.iter().zip(&s.cameras) {
        let st = c.state();
        if matches!(st, CameraState::Failed | CameraState::Degraded) {
            if st == CameraState::Failed {
                failed += 1;
            } else {
                degraded += 1;
            }
            let why = c.reason();
            reasons.push(if why.is_empty() {
                format!("camera {name}: {}", st.as_str())
            } else {
                format!("camera {name}: {}: {why}", st.as_str())
            });
        }
        if c.load.overloaded() && st == CameraState::Streaming {
            overloaded += 1;
            let l = &c.load;
            reasons.push(format!(
                "camera {name}: overloaded: {:.1} of {:.1} fps detected, {:.0}% of frames lost",
                l.detect_fps(),
                l.wanted_fps(),
                l.lost_share() * 100.0
            ));
        }
    }
    let all_failed = failed == s.cameras.len() && failed > 0;
    let status = if stalled || all_failed {
        "failing"
    } else if failed + degraded + overloaded > 0 {
        "degraded"
    } else {
        "ok"
    };
    Health { status, reasons, cameras_failed: failed, cameras_degraded: degraded, cameras_overloaded: overloaded }
}
