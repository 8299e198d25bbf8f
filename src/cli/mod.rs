//! The subcommands, one module each; what they share: the version line and
//! writing a report as JSON.

pub mod alloc_count;
pub mod bench;
pub mod check_config;
pub mod demo;
pub mod drain;
pub mod machine;
pub mod run;
pub mod truth;

use std::path::Path;

use faceflow::board;

/// `--version`: the crate version and the board profile built in.
pub fn version_line() -> String {
    format!("faceflow {} (board {}: {})", env!("CARGO_PKG_VERSION"), board::NAME, board::DESCRIPTION)
}

/// A report as pretty JSON at `path`; a failure is logged, naming the file.
pub fn write_json(path: &Path, value: &impl serde::Serialize) {
    let written =
        serde_json::to_vec_pretty(value).map_err(std::io::Error::from).and_then(|bytes| std::fs::write(path, bytes));
    if let Err(e) = written {
        log::error!("{}: {e}", path.display());
    }
}
