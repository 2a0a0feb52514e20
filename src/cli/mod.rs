//! The `mp4-fcgi` binary: a thin command line over the engine and the pool.
//! One place owns exit codes and stderr.

mod args;
mod offline;

use args::{Cli, Command};
use clap::Parser;
use mp4_fcgi::server;
use std::process::ExitCode;

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Some(Command::Cut {
            input,
            output,
            start,
            end,
            client,
            max_moov,
            compress_moov,
        }) => {
            let _ = server::logging::init(None, None);
            offline::cut(offline::Cut {
                input,
                output,
                start,
                end,
                client,
                max_moov,
                compress_moov,
            })
        }
        Some(Command::Info {
            input,
            max_moov,
            json,
        }) => offline::info(&input, max_moov, json),
        None => {
            server::logging::init(cli.serve.log_level, cli.serve.log_file.as_deref())
                .map_err(|e| e.to_string())?;
            let config = args::config_from(cli.serve)?;
            server::run(config).map_err(|e| e.to_string())
        }
    }
}

pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`cut IN - | head`) is not a failure.
        Err(msg) if msg.contains("Broken pipe") => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("mp4-fcgi: {msg}");
            ExitCode::from(2)
        }
    }
}
