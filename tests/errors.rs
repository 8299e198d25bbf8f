//! Bad input is refused with a clear error naming what is wrong, and one bad
//! camera does not stop the others.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use faceflow::config::Config;
use faceflow::pipeline;

fn cfg(extra: &str, cameras: &str) -> Config {
    Config::from_toml(&format!("{extra}\n{cameras}"), "test").unwrap()
}

#[test]
fn missing_model_names_the_file_and_the_fix() {
    common::require_assets();
    let c = cfg(
        "[detector]\nmodel = \"models/nope.onnx\"\n[outbox]\ndir = \"\"",
        "[[cameras]]\nname=\"a\"\nurl=\"models/demo/demo.h264\"",
    );
    let e = pipeline::run(&c, Arc::new(AtomicBool::new(false))).err().expect("must fail").to_string();
    assert!(e.contains("models/nope.onnx") && e.contains("setup.sh"), "{e}");
}

#[test]
fn wrong_model_is_refused_at_start() {
    common::require_assets();
    // A valid ONNX file that is not CenterFace: write a tiny identity graph by hand.
    let dir = common::temp_dir("wrong-model");
    let model = dir.join("identity.onnx");
    std::fs::write(&model, identity_onnx()).unwrap();
    let c = cfg(
        &format!("[detector]\nmodel = \"{}\"\n[outbox]\ndir = \"\"", model.display()),
        "[[cameras]]\nname=\"a\"\nurl=\"models/demo/demo.h264\"",
    );
    let e = pipeline::run(&c, Arc::new(AtomicBool::new(false))).err().expect("must fail").to_string();
    assert!(e.contains("identity.onnx"), "{e}");
    assert!(e.contains("CenterFace") || e.contains("input"), "{e}");
}

/// Both models have four outputs: the wrong `detector.kind` for a model is
/// caught by the outputs' sizes, named, and the key to fix is suggested.
#[test]
fn a_model_of_the_other_kind_is_refused_with_the_key_to_fix() {
    common::require_assets();
    for (kind, model, name) in
        [("blazeface", "models/centerface.onnx", "BlazeFace"), ("centerface", "models/blazeface.onnx", "CenterFace")]
    {
        let c = cfg(
            &format!("[detector]\nkind = \"{kind}\"\nmodel = \"{model}\"\n[outbox]\ndir = \"\""),
            "[[cameras]]\nname=\"a\"\nurl=\"models/demo/demo.h264\"",
        );
        let e = match pipeline::load_detector(&c) {
            Ok(_) => panic!("{model} loaded as {kind}"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(model) && e.contains(name) && e.contains("detector.kind"), "{e}");
    }
}

#[test]
fn a_missing_camera_file_does_not_stop_the_other_camera() {
    common::require_assets();
    let out = common::temp_dir("one-bad-camera");
    let c = cfg(
        &format!("[outbox]\ndir = \"{}\"", out.display()),
        "[[cameras]]\nname=\"gone\"\nurl=\"file:/nonexistent/x.h264\"\n[[cameras]]\nname=\"good\"\nurl=\"models/demo/demo.h264\"",
    );
    let r = pipeline::run(&c, Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(r.camera_errors.len(), 1);
    assert!(
        r.camera_errors[0].contains("gone") && r.camera_errors[0].contains("/nonexistent/x.h264"),
        "{:?}",
        r.camera_errors
    );
    assert!(r.events.len() >= 5, "the good camera still produced its events");
    // The failed camera says why, in the stats (and so /api/stats and /healthz).
    let gone = &r.stats.cameras[0];
    assert_eq!(gone.state(), faceflow::metrics::CameraState::Failed);
    assert!(gone.reason().contains("/nonexistent/x.h264"), "state_reason: {:?}", gone.reason());
    let h = faceflow::monitor::health(&r.stats);
    assert!(h.reasons.iter().any(|x| x.contains("camera gone: failed")), "{:?}", h.reasons);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn garbage_input_file_is_named() {
    common::require_assets();
    let dir = common::temp_dir("garbage");
    let f = dir.join("noise.h264");
    std::fs::write(&f, b"this is not video").unwrap();
    let e = faceflow::ingest::open_file(&f).err().unwrap().to_string();
    assert!(e.contains("noise.h264"), "{e}");
}

/// A minimal ONNX model: one float input "x" [1,4] -> Identity -> "y".
fn identity_onnx() -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }
    fn field(tag: u32, payload: &[u8], out: &mut Vec<u8>) {
        varint(((tag << 3) | 2) as u64, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }
    fn int(tag: u32, v: u64, out: &mut Vec<u8>) {
        varint((tag << 3) as u64, out);
        varint(v, out);
    }
    let value_info = |name: &str| {
        // TypeProto.tensor_type { elem_type = 1 (float), shape { dim { dim_value 1 } dim { dim_value 4 } } }
        let mut dims = Vec::new();
        for d in [1u64, 4] {
            let mut dim = Vec::new();
            int(1, d, &mut dim);
            field(1, &dim, &mut dims);
        }
        let mut tensor = Vec::new();
        int(1, 1, &mut tensor);
        field(2, &dims, &mut tensor);
        let mut ty = Vec::new();
        field(1, &tensor, &mut ty);
        let mut vi = Vec::new();
        field(1, name.as_bytes(), &mut vi);
        field(2, &ty, &mut vi);
        vi
    };
    let mut node = Vec::new();
    field(1, b"x", &mut node);
    field(2, b"y", &mut node);
    field(4, b"Identity", &mut node);
    let mut graph = Vec::new();
    field(1, &node, &mut graph);
    field(2, b"g", &mut graph);
    field(11, &value_info("x"), &mut graph);
    field(12, &value_info("y"), &mut graph);
    let mut opset = Vec::new();
    int(2, 13, &mut opset);
    let mut model = Vec::new();
    int(1, 8, &mut model); // ir_version
    field(7, &graph, &mut model);
    field(8, &opset, &mut model);
    model
}

/// `check-config` checks the files a config names, naming each missing one
/// with its key, and answers `--help`.
#[test]
fn check_config_names_missing_files_and_answers_help() {
    common::require_assets();
    let dir = common::temp_dir("check-config");
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        "[detector]\nmodel = \"models/nope.onnx\"\n[[cameras]]\nname = \"a\"\nurl = \"file:models/demo/demo.h264\"\n[[cameras]]\nname = \"b\"\nurl = \"file:videos/missing.h264\"\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_faceflow");
    let out = std::process::Command::new(bin).args(["check-config", cfg.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cameras[1].url: video file videos/missing.h264 does not exist"), "{err}");
    assert!(err.contains("detector.model: models/nope.onnx does not exist"), "{err}");
    assert!(!err.contains("cameras[0]"), "the demo video exists: {err}");
    let help = std::process::Command::new(bin).args(["check-config", "--help"]).output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("faceflow check-config <file.toml>"));
    let ok = dir.join("ok.toml");
    std::fs::write(&ok, "[[cameras]]\nname = \"a\"\nurl = \"file:models/demo/demo.h264\"\n").unwrap();
    let out = std::process::Command::new(bin).args(["check-config", ok.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Started from another directory, with the config elsewhere: a relative
/// model path in the config is read beside the config file, and the default
/// `models/...` files are found in the installation (here the checkout the
/// binary was built in), so the landmarks stage does not turn itself off.
#[test]
fn relative_model_paths_resolve_against_the_config_not_the_working_directory() {
    common::require_assets();
    let dir = common::temp_dir("elsewhere");
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::copy(common::root().join("models/centerface.onnx"), conf.join("detector.onnx")).unwrap();
    let cwd = dir.join("somewhere-else");
    std::fs::create_dir_all(&cwd).unwrap();
    let cfg = conf.join("faceflow.toml");
    std::fs::write(
        &cfg,
        format!(
            "[detector]\nmodel = \"detector.onnx\"\nprecision = \"fp32\"\n[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"a\"\nurl = \"file:{}\"\n",
            common::root().join("models/demo/demo.h264").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faceflow"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .current_dir(&cwd)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{so}\n{se}");
    assert!(!se.contains("not found"), "every model found: {se}");
    // Only the config's folder holds detector.onnx.
    assert!(se.contains("(detector.onnx)"), "the detector read beside the config: {se}");
    assert!(se.contains("landmarks: Face Mesh"), "the landmarks stage is on: {se}");
    assert!(so.contains(" 5 events"), "{so}");
    let _ = std::fs::remove_dir_all(&dir);
}
