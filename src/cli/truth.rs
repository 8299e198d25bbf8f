//! The demo's ground truth (`truth.json`, saved beside each generated video
//! by `scripts/make_demo.py`) and the check of a run's events against it.
//! Used by `demo`, `bench` and, included by path, the end-to-end tests.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

use faceflow::geom::BBox;
use faceflow::sink::EventRecord;

pub const DEMO_DIR: &str = "models/demo";

#[derive(Debug, Deserialize)]
pub struct Truth {
    pub fps: f32,
    pub width: u32,
    pub height: u32,
    /// Frames in the video: the end-to-end tests (which include this file)
    /// check decoding against it; the binary does not read it.
    #[allow(dead_code)]
    pub frames: u64,
    pub persons: Vec<Person>,
}

#[derive(Debug, Deserialize)]
pub struct Person {
    pub id: u32,
    pub source: String,
    /// [frame, x1, y1, x2, y2]
    pub boxes: Vec<[f32; 5]>,
}

impl Person {
    /// The box at `frame`, else at the nearest frame within `within` (the
    /// truth leaves out faces partly hidden or cut by the picture's edge,
    /// which a best face can be).
    pub fn box_near(&self, frame: u64, within: u64) -> Option<BBox> {
        self.boxes
            .iter()
            .filter(|b| (b[0] as u64).abs_diff(frame) <= within)
            .min_by_key(|b| (b[0] as u64).abs_diff(frame))
            .map(|b| BBox::new(b[1], b[2], b[3], b[4]))
    }
}

/// A truth file that could not be read or parsed, naming it.
#[derive(Debug)]
pub struct TruthError {
    pub path: PathBuf,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl fmt::Display for TruthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ground truth {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for TruthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

pub fn load_truth(path: &Path) -> Result<Truth, TruthError> {
    let error = |source: Box<dyn std::error::Error + Send + Sync>| TruthError { path: path.into(), source };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.into()))?;
    serde_json::from_str(&text).map_err(|e| error(e.into()))
}

/// How a run's events line up with the truth.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Per person: the events matched to them and the IoU of each best box.
    pub per_person: Vec<Vec<(String, f32)>>,
    /// Events that match nobody (IoU <= 0.5 with every person at their best frame).
    pub unmatched: Vec<String>,
}

impl Evaluation {
    /// Exactly one event per person, each with IoU > 0.5, and nothing else.
    pub fn passed(&self) -> bool {
        self.unmatched.is_empty() && self.per_person.iter().all(|v| v.len() == 1)
    }
}

pub fn evaluate(events: &[EventRecord], truth: &Truth) -> Evaluation {
    let mut ev = Evaluation { per_person: vec![Vec::new(); truth.persons.len()], unmatched: Vec::new() };
    for e in events {
        let b = BBox::new(e.bbox[0], e.bbox[1], e.bbox[2], e.bbox[3]);
        let best = truth
            .persons
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.box_near(e.best_frame, 10).map(|t| (i, t.iou(&b))))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((i, iou)) if iou > 0.5 => ev.per_person[i].push((e.id.clone(), iou)),
            _ => ev.unmatched.push(e.id.clone()),
        }
    }
    ev
}
