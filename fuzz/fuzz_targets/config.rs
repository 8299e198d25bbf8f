//! Any text given as a config file: an error naming a key or a Config,
//! never a panic (the camera URL parsers, RTSP and V4L2, included).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cfg) = faceflow::config::Config::from_toml(text, "fuzz") {
            for cam in &cfg.cameras {
                let _ = cam.source();
                let _ = cam.redacted_url();
            }
        }
    }
});
