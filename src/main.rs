//! sumatra-server: a record store server for the Sumatra reproducibility tool.

// The project page's template data is one `json!` literal of many keys.
#![recursion_limit = "256"]

mod cli;
mod commands;
mod deadline;
mod error;
mod files;
#[cfg(test)]
mod fuzz_tests;
mod http;
mod lineage;
mod metrics;
mod password;
mod query;
mod record;
mod results;
mod store;
mod token;
mod transfer;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error::Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sumatra-server: error: {e}");
            ExitCode::FAILURE
        }
    }
}
