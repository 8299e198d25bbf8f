//! The config's parsing and validation, key by key.

use super::camera::v4l2_source;
use super::*;

const GOOD: &str = r#"
[detector]
model = "m.onnx"
[[cameras]]
name = "door"
url = "file:a.h264"
[[cameras]]
name = "hall"
url = "b.mp4"
detection_skip_frames = 2
"#;

#[test]
fn good_config_parses() {
    let c = Config::from_toml(GOOD, "t.toml").unwrap();
    assert_eq!(c.cameras.len(), 2);
    assert_eq!(c.cameras[1].detection_skip_frames, 2);
    assert_eq!(c.tracker.max_frames_lost, 100);
    assert_eq!(c.tracker.max_frames_per_track, 900);
    assert_eq!(c.cameras[0].source().unwrap(), SourceKind::File("a.h264".into()));
}

#[test]
fn unknown_key_is_named() {
    let t = GOOD.replace("detection_skip_frames = 2", "detection_skip_frame = 2");
    let e = Config::from_toml(&t, "t.toml").unwrap_err();
    let s = e.to_string();
    assert!(s.contains("cameras[1].detection_skip_frame"), "{s}");
    assert!(s.contains("unknown field"), "{s}");
}

#[test]
fn detector_kind_picks_the_default_model_and_a_wrong_kind_is_named() {
    let t = GOOD.replace("model = \"m.onnx\"", "kind = \"blazeface\"");
    let c = Config::from_toml(&t, "t.toml").unwrap();
    assert_eq!(c.detector.kind, DetectorKind::BlazeFace);
    assert_eq!(c.detector.model_path(), PathBuf::from("models/blazeface.onnx"));
    let c = Config::from_toml(GOOD, "t.toml").unwrap();
    assert_eq!(c.detector.kind, DetectorKind::CenterFace);
    assert_eq!(c.detector.model_path(), PathBuf::from("m.onnx"), "an explicit model wins");
    let t = GOOD.replace("model = \"m.onnx\"", "kind = \"yunet\"");
    let e = Config::from_toml(&t, "t.toml").unwrap_err().to_string();
    assert!(e.contains("detector.kind") && e.contains("yunet"), "{e}");
}

#[test]
fn preprocess_and_precision_pick_the_model_file() {
    let with = |d: &str| Config::from_toml(&GOOD.replace("model = \"m.onnx\"", d), "t.toml");
    let path = |d: &str| with(d).unwrap().detector.model_path();
    let (w, h) = (crate::board::DETECTOR_WIDTH, crate::board::DETECTOR_HEIGHT);
    assert_eq!(path("preprocess = \"cpu\"\nprecision = \"fp32\""), PathBuf::from("models/centerface.onnx"));
    assert_eq!(
        path("preprocess = \"model\"\nprecision = \"int8\""),
        PathBuf::from(format!("models/centerface-int8-i420-{w}x{h}.onnx"))
    );
    assert_eq!(
        path("preprocess = \"model\"\nprecision = \"fp16\""),
        PathBuf::from(format!("models/centerface-fp16-i420-{w}x{h}.onnx"))
    );
    let e = with("kind = \"blazeface\"\npreprocess = \"model\"").unwrap_err().to_string();
    assert!(e.contains("detector.preprocess") && e.contains("BlazeFace"), "{e}");
    let e = with("preprocess = \"gpu\"").unwrap_err().to_string();
    assert!(e.contains("detector.preprocess") && e.contains("gpu"), "{e}");
}

#[test]
fn unknown_table_key_is_named() {
    let t = GOOD.replace("model = \"m.onnx\"", "model = \"m.onnx\"\nthreshold = 3");
    let e = Config::from_toml(&t, "t.toml").unwrap_err().to_string();
    assert!(e.contains("detector.threshold"), "{e}");
}

#[test]
fn bad_values_are_named() {
    let cases = [
        ("[validation]\nmin_confidence = 1.5\n", "validation.min_confidence"),
        ("[tracker]\nmax_frames_per_track = 0\n", "tracker.max_frames_per_track"),
        ("[outbox]\njpeg_quality = 0\n", "outbox.jpeg_quality"),
        ("[outbox]\nmax_age_h = -1\n", "outbox.max_age_h"),
        ("[outbox]\nkeep = \"until_delivered\"\n", "outbox.keep"),
        ("[outbox]\ngroup = \"no-such-group-faceflow\"\n", "outbox.group"),
        ("[monitor]\nbind = \"0.0.0.0:8080\"\n", "monitor.token"),
        ("[[cameras]]\nname = \"c\"\nurl = \"c.mp4\"\nmax_face_px = 20\nmin_face_px = 40\n", "cameras[0].max_face_px"),
        ("[[cameras]]\nname = \"c\"\nurl = \"c.mp4\"\ndetect_roi = [0, 0, 10]\n", "cameras[0].detect_roi"),
        ("[[cameras]]\nname = \"c\"\nurl = \"c.mp4\"\ndetect_tiles = \"auto\"\n", "cameras[0].detect_tiles"),
        ("[[cameras]]\nname = \"c\"\nurl = \"c.mp4\"\ndetect_tiles = [5, 5]\n", "cameras[0].detect_tiles"),
    ];
    for (extra, key) in cases {
        let t = format!("{extra}{GOOD}");
        let e = Config::from_toml(&t, "t.toml").unwrap_err();
        assert_eq!(e.key, key, "{e}");
    }
    let e = Config::from_toml(&GOOD.replace("\"hall\"", "\"door\""), "t").unwrap_err();
    assert_eq!(e.key, "cameras[1].name");
    let e = Config::from_toml(&GOOD.replace("b.mp4", "ftp://x/y"), "t").unwrap_err();
    assert_eq!(e.key, "cameras[1].url");
    let e = Config::from_toml("", "t").unwrap_err();
    assert_eq!(e.key, "cameras");
}

#[test]
fn v4l2_urls_parse_with_defaults_and_named_errors() {
    assert_eq!(
        v4l2_source("/dev/video2?width=640&height=480&format=yuyv").unwrap(),
        SourceKind::V4l2 { device: "/dev/video2".into(), width: 640, height: 480, format: V4l2Format::Yuyv }
    );
    assert_eq!(
        v4l2_source("///dev/video0").unwrap(),
        SourceKind::V4l2 { device: "/dev/video0".into(), width: 1280, height: 720, format: V4l2Format::Mjpeg }
    );
    assert!(v4l2_source("/dev/video0?format=h264").unwrap_err().to_string().contains("mjpeg or yuyv"));
    assert!(v4l2_source("/dev/video0?fps=30").unwrap_err().to_string().contains("unknown V4L2 option `fps`"));
    assert!(v4l2_source("/dev/video0?width=9000").unwrap_err().to_string().contains("outside"));
    assert!(v4l2_source("video0").unwrap_err().to_string().contains("/dev path"));
}

#[test]
fn rtsp_credentials_are_taken_out_of_the_url() {
    let cam = |extra: &str| {
        let t = format!("[[cameras]]\nname = \"c\"\nurl = \"rtsp://u%40x:p%3Aw@10.0.0.5:554/live\"\n{extra}");
        Config::from_toml(&t, "t").map(|c| c.cameras[0].clone())
    };
    let c = cam("").unwrap();
    let SourceKind::Rtsp { url, username, password } = c.source().unwrap() else { panic!("rtsp") };
    assert_eq!(url, "rtsp://10.0.0.5:554/live");
    assert_eq!(username.as_deref(), Some("u@x"));
    assert_eq!(password.unwrap().expose(), "p:w");
    assert_eq!(c.redacted_url(), "rtsp://***@10.0.0.5:554/live");
    // Config keys win over the URL's.
    let c = cam("username = \"other\"\npassword = \"k\"\ntransport = \"udp\"").unwrap();
    let SourceKind::Rtsp { username, password, .. } = c.source().unwrap() else { panic!("rtsp") };
    assert_eq!((username.as_deref(), password.unwrap().expose()), (Some("other"), "k"));
    assert_eq!(c.transport, RtspTransport::Udp);
    let e = Config::from_toml("[[cameras]]\nname = \"c\"\nurl = \"rtsp://h/x\"\npassword = \"k\"\n", "t").unwrap_err();
    assert_eq!(e.key, "cameras[0].url");
    assert!(e.to_string().contains("no username"), "{e}");
    let e =
        Config::from_toml("[[cameras]]\nname = \"c\"\nurl = \"rtsp://h/x\"\ntransport = \"quic\"\n", "t").unwrap_err();
    assert!(e.to_string().contains("cameras[0].transport"), "{e}");
}

#[test]
fn wrong_type_is_named() {
    let t = GOOD.replace("detection_skip_frames = 2", "detection_skip_frames = \"two\"");
    let e = Config::from_toml(&t, "t.toml").unwrap_err().to_string();
    assert!(e.contains("cameras[1].detection_skip_frames"), "{e}");
}

#[test]
fn secrets_never_print_and_findface_needs_camera_ids() {
    let t = format!("[findface]\nurl = \"http://127.0.0.1:1/api\"\ntoken = \"tok-SECRET\"\n{GOOD}");
    let e = Config::from_toml(&t, "t").unwrap_err();
    assert_eq!(e.key, "cameras[0].findface_camera");
    let t = t
        .replace("url = \"file:a.h264\"", "url = \"file:a.h264\"\nfindface_camera = 1")
        .replace("url = \"b.mp4\"", "url = \"b.mp4\"\nfindface_camera = 2");
    let c = Config::from_toml(&t, "t").unwrap();
    let dump = format!("{c:?}");
    assert!(!dump.contains("tok-SECRET"), "{dump}");
    assert_eq!(c.findface.unwrap().token.expose(), "tok-SECRET");
}

#[test]
fn urls_are_redacted() {
    assert_eq!(redact_url("rtsp://admin:s3cret@10.0.0.5:554/live"), "rtsp://***@10.0.0.5:554/live");
    assert_eq!(redact_url("rtsp://cam/live@x"), "rtsp://cam/live@x");
    assert_eq!(redact_url("file:a.h264"), "file:a.h264");
}

#[test]
fn rfc3339_times_parse_to_unix_ms() {
    assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339_ms("2026-11-30T08:15:00Z"), Some(1_796_026_500_000));
    assert_eq!(parse_rfc3339_ms("2026-11-30T09:15:00.250+01:00"), Some(1_796_026_500_250));
    // 12:00 at UTC-00:30 is 12:30 UTC.
    assert_eq!(parse_rfc3339_ms("2000-02-29T12:00:00-00:30"), Some(951_825_600_000 + 30 * 60_000));
    for bad in ["2026-13-01T00:00:00Z", "yesterday", "2026-11-30 08:15", "2026-11-30T08:15:00"] {
        assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
    }
    let t = GOOD.replace("[[cameras]]", "[[cameras]]\nstart_time = \"soon\"");
    let e = Config::from_toml(&t, "t").unwrap_err();
    assert!(e.to_string().contains("start_time"), "{e}");
}

#[test]
fn bus_sections_parse_with_defaults_and_name_what_is_wrong() {
    let cam = "[[cameras]]\nname = \"a\"\nurl = \"a.h264\"\n";
    let c = Config::from_toml(
        &format!("[mqtt]\nurl = \"mqtt://broker.lan\"\n[redis]\nurl = \"redis://r.lan\"\n{cam}"),
        "t",
    )
    .unwrap();
    let m = c.mqtt.as_ref().unwrap();
    assert_eq!(
        (m.qos, m.topic_prefix.as_str(), m.max_message_bytes, m.home_assistant),
        (1, "faceflow", 1_000_000, true)
    );
    assert_eq!(crate::config::broker_address(&m.url).unwrap(), ("broker.lan".to_string(), 1883, false));
    assert_eq!(crate::config::broker_address("mqtts://b:9000").unwrap(), ("b".to_string(), 9000, true));
    let r = c.redis.as_ref().unwrap();
    assert_eq!((r.stream.as_str(), r.maxlen), ("faceflow:events", 100_000));
    assert!(c.has_remote_sink());
    for (section, key, why) in [
        ("[mqtt]\nurl = \"http://b\"", "mqtt.url", "mqtt:// or mqtts://"),
        ("[mqtt]\nurl = \"mqtt://u:SECRET@b\"", "mqtt.url", "must not hold credentials"),
        ("[mqtt]\nurl = \"mqtt://b\"\nqos = 3", "mqtt.qos", "0, 1 or 2"),
        ("[mqtt]\nurl = \"mqtt://b\"\nnode = \"a/b\"", "mqtt.node", "one topic level"),
        ("[mqtt]\nurl = \"mqtt://b\"\ntopic_prefix = \"x/#\"", "mqtt.topic_prefix", "without + or #"),
        ("[mqtt]\nurl = \"mqtt://b\"\nmax_message_bytes = 1000", "mqtt.max_message_bytes", "at least 65536"),
        ("[mqtt]\nurl = \"mqtt://b\"\npassword = \"p\"", "mqtt.password", "mqtt.username"),
        ("[redis]\nurl = \"redis://:SECRET@r\"", "redis.url", "must not hold credentials"),
        ("[redis]\nurl = \"http://r\"", "redis.url", "redis://host"),
    ] {
        let e = Config::from_toml(&format!("{section}\n{cam}"), "t").unwrap_err();
        assert_eq!(e.key, key, "{section}: {e}");
        assert!(e.message.contains(why), "{section}: {e}");
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }
}

#[test]
fn cuda_conv_search_is_the_configs_or_the_boards_and_a_wrong_value_is_named() {
    let with = |line: &str| Config::from_toml(&GOOD.replace("model = \"m.onnx\"", line), "t.toml");
    let search = |line: &str| with(line).unwrap().detector.cuda_conv_search.resolved();
    assert_eq!(search("cuda_conv_search = \"heuristic\""), ConvSearch::Heuristic);
    assert_eq!(search("cuda_conv_search = \"exhaustive\""), ConvSearch::Exhaustive);
    let board =
        if crate::board::CUDA_CONV_SEARCH == "heuristic" { ConvSearch::Heuristic } else { ConvSearch::Exhaustive };
    assert_eq!(search("model = \"m.onnx\""), board);
    let e = with("cuda_conv_search = \"fastest\"").unwrap_err().to_string();
    assert!(e.contains("cuda_conv_search"), "{e}");
}

#[test]
fn landmark_providers_are_the_configs_or_the_boards_and_a_wrong_name_is_named() {
    let with = |line: &str| Config::from_toml(&format!("[landmarks]\n{line}\n{GOOD}"), "t.toml");
    let c = with("").unwrap();
    assert_eq!(c.landmarks.providers(), crate::board::LANDMARK_EXECUTION_PROVIDERS);
    let c = with("execution_providers = [\"cuda\", \"cpu\"]").unwrap();
    assert_eq!(c.landmarks.providers(), ["cuda", "cpu"]);
    let e = with("execution_providers = [\"gpu\"]").unwrap_err().to_string();
    assert!(e.contains("landmarks.execution_providers") && e.contains("\"gpu\""), "{e}");
}

#[test]
fn hardware_decode_is_on_unless_a_camera_turns_it_off() {
    let c = Config::from_toml(&GOOD.replace("detection_skip_frames = 2", "hardware_decode = false"), "t.toml").unwrap();
    assert!(c.cameras[0].hardware_decode);
    assert!(!c.cameras[1].hardware_decode);
}
