//! `ticketing`: loads settings, starts telemetry, builds the requested components, serves
//! them until SIGINT/SIGTERM, then sends the last spans. Everything else lives in the
//! libraries.

mod cli;
mod events;
mod queue;

use std::process::ExitCode;

use clap::ValueEnum;
use ticketing_common::telemetry;

fn main() -> ExitCode {
    // An environment variable set to "" counts as unset (an empty secret is no secret).
    let cli: cli::Cli = ticketing_common::settings::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let component = match &cli.command {
        cli::Command::Serve { component, .. } => component
            .to_possible_value()
            .map(|value| value.get_name().to_owned()),
        _ => None,
    };
    let export = cli
        .common
        .telemetry
        .export(&telemetry::service_name(component.as_deref()));
    let started = {
        // The span exporter is a task on the runtime.
        let _entered = runtime.enter();
        telemetry::init(cli.common.log_format, export.as_ref())
    };
    let telemetry = match started {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(cli::run(cli));
    telemetry.shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One plain line: which dependency, where we looked, what to do.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
