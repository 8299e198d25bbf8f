//! `faceflow check-config <file.toml>`: parse and validate a config, then
//! check the files it names; every problem printed, exit 2 if any.

use std::path::Path;
use std::process::ExitCode;

use faceflow::{board, config::Config};

pub fn main(file: &Path) -> ExitCode {
    let cfg = match Config::from_file(file) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let problems = faceflow::pipeline::check_files(&cfg);
    if problems.is_empty() {
        println!("config ok: {} camera(s), board {}", cfg.cameras.len(), board::NAME);
        return ExitCode::SUCCESS;
    }
    for p in &problems {
        eprintln!("{p}");
    }
    eprintln!("config has {} problem(s)", problems.len());
    ExitCode::from(2)
}
