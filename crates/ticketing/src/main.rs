//! `ticketing`: loads settings, starts telemetry, builds the requested components, serves
//! them until SIGINT/SIGTERM. Everything else lives in the libraries.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    ticketing_common::telemetry::init(cli.common.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One plain line: which dependency, where we looked, what to do.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
