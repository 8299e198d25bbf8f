//! The Face Mesh and Iris ONNX sessions, each over buffers bound once for
//! every batch size it will run (see `detect::bound`): a batch of faces is
//! one mesh inference, then one iris inference over both eyes of each.
//!
//! Mesh: input N x 3 x 192 x 192 RGB 0..1; outputs N x 1404 (468 x, y, z
//! in crop pixels) and N x 1 (face-presence logit). Iris: N x 3 x 64 x 64;
//! outputs N x 213 (71 eye-contour points) and N x 15 (5 iris points).

use std::path::Path;

use super::align::Roi;
use super::{Points, IRIS_POINTS, MESH_POINTS};
use crate::detect::bound::BoundSession;
use crate::detect::model::run_shape;
use crate::detect::{runtime, DetectError, Detection};
use crate::pool::I420;

pub(crate) const MESH_SIDE: usize = 192;
/// Most faces in one batch (bounds the iris packing table).
pub(crate) const MAX_IRIS_FACES: usize = 64;
pub(crate) const IRIS_SIDE: usize = 64;
const MESH_VALUES: usize = MESH_POINTS * 3;
const IRIS_VALUES: usize = IRIS_POINTS * 3;
const CONTOUR_VALUES: usize = 71 * 3;

pub struct LandmarkModel {
    mesh: BoundSession,
    /// Output indices of the mesh's points and presence.
    mesh_out: (usize, usize),
    iris: Option<(BoundSession, usize)>,
    rois: Vec<Roi>,
    pad: bool,
}

/// Loads a session on the first of `providers` that registers and binds it
/// for every batch size up to `max`.
fn bind(
    lib: &Path,
    model: &Path,
    providers: &[&str],
    side: usize,
    max: usize,
    pad: bool,
) -> Result<BoundSession, DetectError> {
    let env = runtime::environment(lib)?;
    let (session, reopen) = runtime::open(env, model, providers, crate::config::ConvSearch::Board)?;
    let sizes: Vec<usize> = (1..=max).filter(|&n| run_shape(n, max, pad) == n).collect();
    BoundSession::new(session, reopen.per_shape(), [3, side, side], max, &sizes)
        .map_err(|e| DetectError::load_caused(format!("landmark model {}", model.display()), e))
}

/// The output whose per-item length is `len`.
fn output_of(s: &BoundSession, len: usize, model: &Path) -> Result<usize, DetectError> {
    s.output_item_lens().iter().position(|&l| l == len).ok_or_else(|| {
        DetectError::load(format!(
            "{}: no output of {len} values per face (it has {:?}): not MediaPipe's model?",
            model.display(),
            s.output_item_lens()
        ))
    })
}

impl LandmarkModel {
    /// The mesh model, and the iris model when `iris` is given, on the
    /// first of `providers` that registers, bound for batches up to
    /// `max_batch` faces (`pad`: only powers of two run, for accelerators).
    pub fn load(
        runtime_lib: &Path,
        mesh: &Path,
        iris: Option<&Path>,
        providers: &[&str],
        max_batch: usize,
        pad: bool,
    ) -> Result<Self, DetectError> {
        if max_batch > MAX_IRIS_FACES {
            return Err(DetectError::load(format!("landmark batch {max_batch} is over {MAX_IRIS_FACES}")));
        }
        let m = bind(runtime_lib, mesh, providers, MESH_SIDE, max_batch, pad)?;
        let mesh_out = (output_of(&m, MESH_VALUES, mesh)?, output_of(&m, 1, mesh)?);
        let iris = match iris {
            Some(p) => {
                let s = bind(runtime_lib, p, providers, IRIS_SIDE, 2 * max_batch, pad)?;
                output_of(&s, CONTOUR_VALUES, p)?;
                let k = output_of(&s, IRIS_VALUES, p)?;
                Some((s, k))
            }
            None => None,
        };
        let rois = vec![Roi { cx: 0.0, cy: 0.0, size: 1.0, angle: 0.0, flip: false }; 2 * max_batch];
        Ok(LandmarkModel { mesh: m, mesh_out, iris, rois, pad })
    }

    pub fn max_batch(&self) -> usize {
        self.mesh.max_batch()
    }

    pub(crate) fn has_iris(&self) -> bool {
        self.iris.is_some()
    }

    /// Puts face `i` of the next batch in place: its aligned crop.
    pub fn set_face(&mut self, i: usize, frame: &I420<'_>, det: &Detection) {
        let roi = Roi::face(det);
        self.rois[i] = roi;
        roi.sample(frame, MESH_SIDE, self.mesh.input_item_mut(i));
    }

    /// Runs the first `n` faces set: their points (mesh, then the irises
    /// of the faces `iris(i)` asks for, when the iris model is loaded) in
    /// frame pixels and their presence probabilities. `frame_of(i)` gives
    /// face i's frame again, for the eye crops. Returns how many faces had
    /// their irises read.
    pub fn run<'f>(
        &mut self,
        n: usize,
        frame_of: impl Fn(usize) -> I420<'f>,
        iris_for: impl Fn(usize) -> bool,
        points: &mut [Points],
        presence: &mut [f32],
    ) -> Result<usize, DetectError> {
        let shape = run_shape(n, self.max_batch(), self.pad);
        self.mesh.run(shape)?;
        let (pk, sk) = self.mesh_out;
        for i in 0..n {
            let raw = &self.mesh.output(pk, n)[i * MESH_VALUES..(i + 1) * MESH_VALUES];
            let roi = self.rois[i];
            for (j, p) in points[i][..MESH_POINTS].iter_mut().enumerate() {
                *p = roi.point_to_frame([raw[3 * j], raw[3 * j + 1], raw[3 * j + 2]], MESH_SIDE);
            }
            let logit = self.mesh.output(sk, n)[i];
            presence[i] = 1.0 / (1.0 + (-logit).exp());
        }
        let Some((iris, ik)) = self.iris.as_mut() else { return Ok(0) };
        use super::idx::*;
        // Eye crops packed: slot pair k holds the k-th face asking.
        let mut asking = [0usize; MAX_IRIS_FACES];
        let mut m = 0;
        for i in (0..n).filter(|&i| iris_for(i)) {
            asking[m] = i;
            m += 1;
        }
        if m == 0 {
            return Ok(0);
        }
        for (k, &i) in asking[..m].iter().enumerate() {
            let p = &points[i];
            // The iris model was trained on the eye at the picture's right
            // (the person's left): eye A goes in mirrored. (Its eye contour
            // fits the mesh's corners about twice as closely this way on
            // the demo's faces, for both eyes.)
            let a = Roi::eye(p[EYE_A_OUTER], p[EYE_A_INNER], true);
            let b = Roi::eye(p[EYE_B_INNER], p[EYE_B_OUTER], false);
            let frame = frame_of(i);
            a.sample(&frame, IRIS_SIDE, iris.input_item_mut(2 * k));
            b.sample(&frame, IRIS_SIDE, iris.input_item_mut(2 * k + 1));
            self.rois[2 * k] = a;
            self.rois[2 * k + 1] = b;
        }
        let shape = run_shape(2 * m, iris.max_batch(), self.pad);
        iris.run(shape)?;
        for (k, &i) in asking[..m].iter().enumerate() {
            for e in 0..2 {
                let raw = &iris.output(*ik, 2 * m)[(2 * k + e) * IRIS_VALUES..(2 * k + e + 1) * IRIS_VALUES];
                let roi = self.rois[2 * k + e];
                for j in 0..IRIS_POINTS {
                    points[i][MESH_POINTS + e * IRIS_POINTS + j] =
                        roi.point_to_frame([raw[3 * j], raw[3 * j + 1], raw[3 * j + 2]], IRIS_SIDE);
                }
            }
        }
        Ok(m)
    }

    /// The raw mesh outputs of item 0 of the last run (the model-check test).
    pub fn raw_mesh(&self) -> (&[f32], f32) {
        (&self.mesh.output(self.mesh_out.0, 1)[..MESH_VALUES], self.mesh.output(self.mesh_out.1, 1)[0])
    }

    /// The mesh input of item `i`, to set it directly (the model-check test).
    pub fn mesh_input_mut(&mut self, i: usize) -> &mut [f32] {
        self.mesh.input_item_mut(i)
    }

    /// Runs the mesh alone on the first `n` inputs as set.
    pub fn run_mesh_raw(&mut self, n: usize) -> Result<(), DetectError> {
        self.mesh.run(run_shape(n, self.max_batch(), self.pad))
    }
}
