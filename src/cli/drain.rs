//! `faceflow drain`: deliver what the spools hold with the config's sinks,
//! then exit: 0 when nothing is left, 1 when some is, 2 on a bad config.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use faceflow::{config::Config, pipeline};

pub fn main(config: &Path, timeout_s: u64) -> ExitCode {
    let cfg = match Config::from_file(config) {
        Ok(cfg) => cfg,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(2);
        }
    };
    match pipeline::drain(&cfg, Duration::from_secs(timeout_s)) {
        Ok(0) => {
            println!("drain: every spooled event delivered");
            ExitCode::SUCCESS
        }
        Ok(n) => {
            println!("drain: {n} event(s) still undelivered");
            ExitCode::from(1)
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(2)
        }
    }
}
