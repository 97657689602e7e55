//! `ticketing`: loads settings, starts telemetry, builds the requested components, serves
//! them until SIGINT/SIGTERM. Everything else lives in the libraries.

mod cli;
mod events;

use std::process::ExitCode;

fn main() -> ExitCode {
    // An environment variable set to "" counts as unset (an empty secret is no secret).
    let cli: cli::Cli = ticketing_common::settings::parse();
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
