//! faceflow's command line: arguments parsed here (clap derive), each
//! subcommand run by its own module under `cli/`.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Counts allocations so `bench` can report them per frame; one relaxed
// atomic add per allocation, and the hot path makes none.
#[global_allocator]
static ALLOCATOR: cli::alloc_count::CountingAllocator = cli::alloc_count::CountingAllocator;

/// Real-time, multi-camera face capture: one best face per person, posted
/// to FindFace.
#[derive(Parser)]
#[command(name = "faceflow", disable_version_flag = true)]
struct Args {
    /// Print the version and the board profile this binary was built for.
    #[arg(short = 'V', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline on the cameras of a config file.
    Run {
        /// The config file (TOML).
        #[arg(long, value_name = "file.toml")]
        config: PathBuf,
        /// Write every frame's tracks to FILE (MOTChallenge lines).
        #[arg(long, value_name = "FILE")]
        tracks: Option<PathBuf>,
        /// Write what the tracker was given to FILE (MOTChallenge lines).
        #[arg(long, value_name = "FILE")]
        detections: Option<PathBuf>,
    },
    /// Run on the built-in demo video and check the events against its
    /// ground truth.
    Demo(cli::demo::DemoArgs),
    /// Deliver what the spools hold, then exit (1 if anything is left).
    Drain {
        /// The config file (TOML).
        #[arg(long, value_name = "file.toml")]
        config: PathBuf,
        /// Give up after this many seconds; the rest stays spooled.
        #[arg(long, value_name = "s", default_value_t = 60)]
        timeout: u64,
    },
    /// Measure: batches, decoders, crowds, landmarks, capacity, events.
    Bench(Box<cli::bench::BenchArgs>),
    /// Validate a config and the files it names, then exit.
    CheckConfig {
        /// The config file (TOML).
        #[arg(value_name = "file.toml")]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    faceflow::logging::init();
    let args = Args::parse();
    if args.version {
        println!("{}", cli::version_line());
        return ExitCode::SUCCESS;
    }
    match args.command {
        Some(Command::Run { config, tracks, detections }) => cli::run::main(&config, tracks, detections),
        Some(Command::Demo(demo)) => cli::demo::main(demo),
        Some(Command::Drain { config, timeout }) => cli::drain::main(&config, timeout),
        Some(Command::Bench(bench)) => cli::bench::main(*bench),
        Some(Command::CheckConfig { file }) => cli::check_config::main(&file),
        None => {
            use clap::CommandFactory;
            eprintln!("{}", Args::command().render_help());
            ExitCode::from(2)
        }
    }
}
