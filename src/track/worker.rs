//! The track thread: one ByteTracker, one best-face selector and the zones
//! of each camera, fed by the detect thread's ring; finished events (best
//! faces, zone crossings) go on to the sink thread. Best faces are copied
//! into the keep store, so tracks never hold frames that capture needs.
//! Candidate best faces go to the landmarks stage and come back scored
//! with their mesh; a track that ends waits (at most `landmarks.wait_ms`)
//! for its faces still there, so its event has them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::board;
use crate::config::AttentionConfig;
use crate::detect::worker::ToTrack;
use crate::detect::Detection;
use crate::face::attention::{head_pose, on_screen, HeadPose};
use crate::face::event::{BestFaceSelector, FaceEvent, PipelineEvent};
use crate::face::keep::KeepStore;
use crate::face::zones::{CameraZones, Crossing, ZoneEvent};
use crate::landmarks::worker::LandmarkClient;
use crate::metrics::stall::StallWatch;
use crate::metrics::{inc, Stats};
use crate::pool::FrameRef;
use crate::ring::{Backoff, Consumer, Producer};
use crate::track::preview::{PreviewBox, PreviewFrame};
use crate::track::{ByteTracker, TrackState, MAX_TRACKS};

/// The track thread: one ByteTracker and one best-face selector per camera.
/// It has no stop flag on purpose: it runs until the detector's ring is
/// finished, so every open track is closed into an event on shutdown.
pub(crate) struct TrackWorker {
    pub input: Consumer<ToTrack>,
    pub out: Producer<PipelineEvent>,
    pub trackers: Vec<ByteTracker>,
    pub selectors: Vec<BestFaceSelector>,
    pub zones: Vec<CameraZones>,
    /// Where best faces are held until their events leave.
    pub keep: KeepStore,
    /// Per camera: where to write each frame's tracks and detections
    /// (MOTChallenge lines), when asked for (`faceflow run --tracks`).
    pub mot: Vec<MotWriter>,
    pub attention: AttentionConfig,
    pub stats: Arc<Stats>,
    /// Each camera's preview for the panel (boxes drawn on its frames).
    pub previews: Arc<Vec<super::preview::Preview>>,
    /// Minimum time between two preview frames of a camera.
    pub preview_interval: Duration,
    /// The landmarks stage, when it runs, and how long an ending track
    /// waits for its results.
    pub landmarks: Option<LandmarkClient>,
    pub landmark_wait: Duration,
    /// Per camera: settle each frame's landmarks before the next frame
    /// (files read at full speed: the same file gives the same events
    /// whatever the machine's timing); live cameras go on meanwhile.
    pub settle_each_frame: Vec<bool>,
}

type Faces = heapless::Vec<FaceEvent, { 2 * MAX_TRACKS }>;

/// Longest wait for an ending track's landmarks on a live camera.
const LIVE_WAIT: Duration = Duration::from_millis(50);

fn publish_landmark_counters(selectors: &[BestFaceSelector], stats: &Stats) {
    let late: u64 = selectors.iter().map(|s| s.counters.landmarks_late).sum();
    let not_face: u64 = selectors.iter().map(|s| s.counters.not_face).sum();
    stats.stages.landmark.late.store(late, Ordering::Relaxed);
    stats.stages.landmark.not_face.store(not_face, Ordering::Relaxed);
}

/// Applies the landmark results ready now; `deliver(camera, faces)` sends
/// the events they made (realtime posts). Returns how many were applied.
fn apply_results(
    lm: &mut LandmarkClient,
    selectors: &mut [BestFaceSelector],
    keep: &mut KeepStore,
    faces: &mut Faces,
    mut deliver: impl FnMut(usize, &mut Faces),
) -> usize {
    let mut n = 0;
    while let Some(r) = lm.poll() {
        let cam = r.camera as usize;
        selectors[cam].apply_landmarks(keep, r, |ev| {
            let _ = faces.push(ev);
        });
        if !faces.is_empty() {
            deliver(cam, faces);
        }
        n += 1;
    }
    n
}

/// Which tracks a wait is for.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// These tracks of this camera, ending now.
    Ending(usize, &'a [u32]),
    /// Every track of a camera (its stream ended).
    Camera(usize),
    /// The requests of a camera's frame just seen (no irises).
    Frame(usize),
    /// Every track (the pipeline is finishing).
    All,
}

/// Waits (at most `wait`) until `scope`'s tracks the results it needs are in,
/// applying results as they come; the landmarks thread runs partial
/// batches meanwhile. Returns false on a timeout.
fn wait_for_results(
    lm: &mut LandmarkClient,
    selectors: &mut [BestFaceSelector],
    keep: &mut KeepStore,
    faces: &mut Faces,
    wait: Duration,
    scope: Scope<'_>,
    mut deliver: impl FnMut(usize, &mut Faces),
) -> bool {
    // Best faces judged without landmarks (the stage was full) are asked
    // for again as the queue empties.
    // Ending tracks' best faces get their irises read (gaze) too.
    let gaze = lm.has_iris();
    let ask = |lm: &mut LandmarkClient, selectors: &mut [BestFaceSelector]| match scope {
        Scope::Ending(cam, ids) => selectors[cam].request_missing(lm, Some(ids), true),
        Scope::Camera(cam) => selectors[cam].request_missing(lm, None, true),
        Scope::Frame(cam) => selectors[cam].request_missing(lm, None, false),
        Scope::All => selectors.iter_mut().for_each(|s| s.request_missing(lm, None, true)),
    };
    let done = |selectors: &[BestFaceSelector]| match scope {
        Scope::Ending(cam, ids) => selectors[cam].settled(Some(ids), gaze),
        Scope::Camera(cam) => selectors[cam].settled(None, gaze),
        Scope::Frame(cam) => selectors[cam].settled(None, false),
        Scope::All => selectors.iter().all(|s| s.settled(None, gaze)),
    };
    ask(lm, selectors);
    if done(selectors) {
        return true;
    }
    let deadline = std::time::Instant::now() + wait;
    let mut backoff = Backoff::default();
    lm.set_flush(true);
    let ok = loop {
        if apply_results(lm, selectors, keep, faces, &mut deliver) > 0 {
            ask(lm, selectors);
            backoff.reset();
        } else {
            backoff.snooze();
        }
        if done(selectors) {
            break true;
        }
        if std::time::Instant::now() >= deadline {
            break false;
        }
    };
    lm.set_flush(false);
    ok
}

type Crossings = heapless::Vec<ZoneEvent, { 4 * MAX_TRACKS }>;

/// Where finished events leave the track thread: the ring to the sink.
/// Events are never dropped: the push waits for the sink (`never` stop); a
/// wait that lasts is reported as a stall.
struct Outlet {
    out: Producer<PipelineEvent>,
    stats: Arc<Stats>,
    attention: AttentionConfig,
    never: AtomicBool,
}

impl Outlet {
    /// Sends a camera's staged best faces (attention set, zone filters
    /// applied) and zone crossings, in the order they were staged.
    fn send(&mut self, cam: usize, zones: &CameraZones, faces: &mut Faces, crossings: &mut Crossings) {
        let (stats, att) = (&*self.stats, &self.attention);
        let cs = &stats.cameras[cam];
        faces.reverse();
        while let Some(mut ev) = faces.pop() {
            // Where the irises were read, attention is where the eyes
            // look; else where the head points.
            let looking = match ev.geometry.and_then(|g| g.gaze) {
                Some((yaw_deg, pitch_deg)) => Some(HeadPose { yaw_deg, pitch_deg }),
                None => ev.pose,
            };
            ev.attentive = looking.is_some_and(|p| on_screen(&p, att.max_yaw_deg, att.max_pitch_deg));
            if !zones.admits(&ev.bbox) {
                inc(&cs.zone_filtered);
                log::debug!(
                    "camera {cam} track {}: best face outside the include zones or inside an exclude zone",
                    ev.track_id
                );
                continue;
            }
            let mut watch = StallWatch::new("track", Some(cam as u8), "room in the ring to the sink");
            let _ = self.out.push_wait_with(PipelineEvent::Face(ev), &self.never, || watch.waiting(stats));
            watch.done(stats);
        }
        crossings.reverse();
        while let Some(z) = crossings.pop() {
            match z.crossing {
                Crossing::Enter => inc(&cs.zone_enters),
                Crossing::Exit => {
                    inc(&cs.zone_exits);
                    cs.dwell_ms_total.fetch_add(z.dwell_ms, Ordering::Relaxed);
                }
            }
            let mut watch = StallWatch::new("track", Some(cam as u8), "room in the ring to the sink");
            let _ = self.out.push_wait_with(PipelineEvent::Zone(z), &self.never, || watch.waiting(stats));
            watch.done(stats);
        }
    }
}

/// The track thread's state while it runs: what `TrackWorker` was given,
/// plus the per-frame staging (fixed capacity: a frame can end or split at
/// most every track it has, twice).
struct Running {
    trackers: Vec<ByteTracker>,
    selectors: Vec<BestFaceSelector>,
    zones: Vec<CameraZones>,
    keep: KeepStore,
    mot: Vec<MotWriter>,
    stats: Arc<Stats>,
    previews: Arc<Vec<super::preview::Preview>>,
    preview_interval: Duration,
    lm: Option<LandmarkClient>,
    landmark_wait: Duration,
    settle_each_frame: Vec<bool>,
    epoch: std::time::Instant,
    faces: Faces,
    crossings: Crossings,
    outlet: Outlet,
}

impl TrackWorker {
    pub fn run(self) {
        board::pin_current_thread(board::Role::Track);
        let mut input = self.input;
        let stats = self.stats;
        stats.keep_capacity.store(self.keep.capacity() as u64, Ordering::Relaxed);
        let mut run = Running {
            trackers: self.trackers,
            selectors: self.selectors,
            zones: self.zones,
            keep: self.keep,
            mot: self.mot,
            stats: stats.clone(),
            previews: self.previews,
            preview_interval: self.preview_interval,
            lm: self.landmarks,
            landmark_wait: self.landmark_wait,
            settle_each_frame: self.settle_each_frame,
            epoch: std::time::Instant::now(),
            faces: heapless::Vec::new(),
            crossings: heapless::Vec::new(),
            outlet: Outlet { out: self.out, stats, attention: self.attention, never: AtomicBool::new(false) },
        };
        let mut backoff = Backoff::default();
        loop {
            let Some(msg) = input.try_pop() else {
                if input.is_finished() {
                    break;
                }
                backoff.snooze();
                continue;
            };
            backoff.reset();
            let t0 = std::time::Instant::now();
            run.apply_ready_landmarks();
            match msg {
                ToTrack::Frame { frame, dets } => run.frame(&frame, dets.as_deref()),
                ToTrack::CameraEnded(cam) => run.camera_ended(cam as usize),
            }
            if run.lm.is_some() {
                publish_landmark_counters(&run.selectors, &run.stats);
            }
            run.stats.stages.track.record_us(t0.elapsed().as_micros() as u64);
        }
        run.finish();
    }
}

impl Running {
    /// Waits (at most `wait`) for the landmark results `scope` needs; false
    /// on a timeout (or true at once without the landmarks stage).
    fn wait_for_landmarks(&mut self, wait: Duration, scope: Scope<'_>) -> bool {
        let Some(lm) = self.lm.as_mut() else { return true };
        let (zones, crossings, outlet) = (&self.zones, &mut self.crossings, &mut self.outlet);
        wait_for_results(lm, &mut self.selectors, &mut self.keep, &mut self.faces, wait, scope, |c, f| {
            outlet.send(c, &zones[c], f, crossings)
        })
    }

    fn apply_ready_landmarks(&mut self) {
        let Some(lm) = self.lm.as_mut() else { return };
        let (zones, crossings, outlet) = (&self.zones, &mut self.crossings, &mut self.outlet);
        apply_results(lm, &mut self.selectors, &mut self.keep, &mut self.faces, |c, f| {
            outlet.send(c, &zones[c], f, crossings)
        });
        self.stats.stages.landmark.queued.store(lm.queued() as u64, Ordering::Relaxed);
    }

    fn send(&mut self, cam: usize) {
        self.outlet.send(cam, &self.zones[cam], &mut self.faces, &mut self.crossings);
    }

    fn settles_each_frame(&self, cam: usize) -> bool {
        self.settle_each_frame.get(cam).copied().unwrap_or(false)
    }

    /// One frame of a camera, with its detections (None: not detected,
    /// the tracks are only predicted).
    fn frame(&mut self, frame: &FrameRef, dets: Option<&[Detection]>) {
        let meta = *frame.meta();
        let cam = meta.camera as usize;
        self.follow_frame_size(cam, meta.width, meta.height);
        self.selectors[cam].set_picture(meta.width, meta.height);
        match dets {
            Some(d) => self.trackers[cam].update(d),
            None => self.trackers[cam].predict_only(),
        };
        // Tracks ending here wait for their landmarks (their best faces
        // judged without, asked for now).
        let ended = self.trackers[cam].last_update().ended.clone();
        if self.lm.is_some() {
            // A live camera's ending track waits only briefly: the track
            // thread serves every camera, and a long wait would delay the
            // others' frames and posts.
            let wait =
                if self.settles_each_frame(cam) { self.landmark_wait } else { self.landmark_wait.min(LIVE_WAIT) };
            if !self.wait_for_landmarks(wait, Scope::Ending(cam, &ended)) && wait == self.landmark_wait {
                log::warn!(
                    "camera {}: landmarks for ending tracks took over {} ms; their events go without them",
                    self.stats.camera_names[cam],
                    wait.as_millis()
                );
            }
        }
        let faces = &mut self.faces;
        let upd = self.trackers[cam].last_update();
        self.selectors[cam].observe_with(&mut self.keep, frame, dets.unwrap_or(&[]), upd, self.lm.as_mut(), |ev| {
            let _ = faces.push(ev);
        });
        if self.lm.is_some() && self.settles_each_frame(cam) {
            self.send(cam);
            self.wait_for_landmarks(self.landmark_wait, Scope::Frame(cam));
        }
        self.observe_tracks(frame, dets);
        self.publish_preview(frame);
        self.send(cam);
        self.account_keep_store(cam);
    }

    /// A new frame size (a camera that changed resolution): the tracker and
    /// the zones carry over, rescaled.
    fn follow_frame_size(&mut self, cam: usize, width: u32, height: u32) {
        let before = self.trackers[cam].picture();
        if self.trackers[cam].set_picture(width, height) {
            let (ow, oh) = before.unwrap_or_default();
            self.zones[cam].rescale(width as f32 / ow, height as f32 / oh);
            log::info!(
                "camera {}: frame size changed from {ow}x{oh} to {width}x{height}; {} tracks and the zones carried over",
                self.stats.camera_names[cam],
                self.trackers[cam].tracks().len()
            );
        }
    }

    /// What the frame's tracks tell beyond best faces: MOT lines, stitch
    /// and face-size counters, attention, zone crossings.
    fn observe_tracks(&mut self, frame: &FrameRef, dets: Option<&[Detection]>) {
        let meta = *frame.meta();
        let cam = meta.camera as usize;
        let (tracker, selector, cz) = (&self.trackers[cam], &self.selectors[cam], &mut self.zones[cam]);
        let upd = tracker.last_update();
        if let (Some(m), Some(d)) = (self.mot.get_mut(cam), dets) {
            m.frame(meta.seq, d, &upd.matched);
        }
        let cs = &self.stats.cameras[cam];
        cs.tracks_stitched.store(selector.counters.stitched, Ordering::Relaxed);
        let now_s = self.stats.started.elapsed().as_secs();
        for &(width, q) in selector.frame_faces() {
            cs.face_hist.record(width, q, now_s);
        }
        let d = dets.unwrap_or(&[]);
        let att = &self.outlet.attention;
        let crossings = &mut self.crossings;
        for &(id, di) in upd.matched.iter() {
            let det = &d[di];
            if let Some(p) = head_pose(&det.keypoints) {
                inc(&cs.posed_faces);
                if on_screen(&p, att.max_yaw_deg, att.max_pitch_deg) {
                    inc(&cs.attentive_faces);
                }
            }
            if !cz.is_empty() {
                cz.observe(id, &det.bbox, meta.captured_unix_ms, meta.pts_ms, meta.seq, |z| {
                    let _ = crossings.push(z);
                });
            }
        }
        for &id in upd.ended.iter() {
            cz.track_ended(id, meta.captured_unix_ms, meta.seq, |z| {
                let _ = crossings.push(z);
            });
        }
    }

    /// The panel's preview of this camera, when one is wanted now: the
    /// frame (a reference, not a copy) and its tracked boxes.
    fn publish_preview(&self, frame: &FrameRef) {
        let meta = frame.meta();
        let cam = meta.camera as usize;
        let pv = &self.previews[cam];
        let now_ns = self.epoch.elapsed().as_nanos() as u64;
        if !pv.wanted(now_ns, self.preview_interval.as_nanos() as u64) {
            return;
        }
        let (tracker, selector) = (&self.trackers[cam], &self.selectors[cam]);
        let mut boxes = heapless::Vec::new();
        for t in tracker.tracks().iter().filter(|t| t.activated && t.state == TrackState::Tracked) {
            let best = selector.best_frame_of(t.id) == Some(meta.seq);
            let _ = boxes.push(PreviewBox { bbox: t.bbox(), track_id: t.id, best });
        }
        pv.publish(now_ns, PreviewFrame { frame: frame.clone(), boxes });
    }

    /// Keep-store figures; a full store is logged on its first refusal and
    /// every hundredth (a capacity problem, not a per-frame one).
    fn account_keep_store(&self, cam: usize) {
        let refused = self.keep.refused[cam];
        let cs = &self.stats.cameras[cam];
        let before = cs.keep_refused.load(Ordering::Relaxed);
        if refused > before {
            if before == 0 || refused / 100 > before / 100 {
                log::warn!(
                    "camera {}: the keep store is full ({} best faces held, the board's capacity); a better face was not kept ({refused} so far)",
                    self.stats.camera_names[cam],
                    self.keep.in_use()
                );
            }
            cs.keep_refused.store(refused, Ordering::Relaxed);
        }
        self.stats.keep_in_use.store(self.keep.in_use() as u64, Ordering::Relaxed);
    }

    /// A camera's stream ended: its tracks end, with their landmarks.
    fn camera_ended(&mut self, cam: usize) {
        self.wait_for_landmarks(self.landmark_wait, Scope::Camera(cam));
        let upd = self.trackers[cam].finish();
        let faces = &mut self.faces;
        let mut push = |ev| {
            let _ = faces.push(ev);
        };
        self.selectors[cam].end_tracks(&upd.ended, &mut push);
        self.selectors[cam].end_all(&mut push);
        let now_ms = crate::clock::Clocks::unix_ms(&crate::clock::RealClocks::default());
        let crossings = &mut self.crossings;
        for &id in upd.ended.iter() {
            self.zones[cam].track_ended(id, now_ms, 0, |z| {
                let _ = crossings.push(z);
            });
        }
        self.send(cam);
        self.keep.forget_camera(cam);
    }

    /// The detector's ring is finished: every open track becomes its event.
    fn finish(mut self) {
        // Everything ends at once here: more to wait for.
        self.wait_for_landmarks(4 * self.landmark_wait, Scope::All);
        publish_landmark_counters(&self.selectors, &self.stats);
        for cam in 0..self.selectors.len() {
            let faces = &mut self.faces;
            self.selectors[cam].end_all(|ev| {
                let _ = faces.push(ev);
            });
            self.send(cam);
        }
        let rejected: u64 = self
            .selectors
            .iter()
            .map(|s| {
                let c = s.counters;
                c.rejected_confidence
                    + c.rejected_movement
                    + c.rejected_moving_share
                    + c.rejected_size
                    + c.rejected_not_face
            })
            .sum();
        self.stats.stages.rejected.store(rejected, Ordering::Relaxed);
    }
}

/// MOTChallenge lines for one camera: `frame,id,x,y,w,h,score,-1,-1,-1`
/// (frames 1-based; detections have id -1). Buffered; a write error is
/// logged once and the output given up, never the pipeline.
#[derive(Default)]
pub(crate) struct MotWriter {
    tracks: Option<std::io::BufWriter<std::fs::File>>,
    detections: Option<std::io::BufWriter<std::fs::File>>,
}

impl MotWriter {
    /// Errors name the file.
    pub fn create(tracks: Option<&std::path::Path>, detections: Option<&std::path::Path>) -> std::io::Result<Self> {
        let open = |p: Option<&std::path::Path>| {
            p.map(|p| {
                std::fs::File::create(p)
                    .map(std::io::BufWriter::new)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: cannot create: {e}", p.display())))
            })
            .transpose()
        };
        Ok(MotWriter { tracks: open(tracks)?, detections: open(detections)? })
    }

    fn frame(&mut self, seq: u64, dets: &[crate::detect::Detection], matched: &[(u32, usize)]) {
        use std::io::Write;
        let f = seq + 1;
        let line = |w: &mut std::io::BufWriter<std::fs::File>, id: i64, d: &crate::detect::Detection| {
            let b = &d.bbox;
            writeln!(w, "{f},{id},{:.1},{:.1},{:.1},{:.1},{:.3},-1,-1,-1", b.x1, b.y1, b.width(), b.height(), d.score)
        };
        if let Some(w) = self.tracks.as_mut() {
            let r = matched.iter().try_for_each(|&(id, di)| line(w, id as i64, &dets[di]));
            if let Err(e) = r {
                log::error!("--tracks: {e}; no more track output");
                self.tracks = None;
            }
        }
        if let Some(w) = self.detections.as_mut() {
            if let Err(e) = dets.iter().try_for_each(|d| line(w, -1, d)) {
                log::error!("--detections: {e}; no more detection output");
                self.detections = None;
            }
        }
    }
}
