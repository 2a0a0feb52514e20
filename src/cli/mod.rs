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
        Some(Command::Cut(c)) => {
            let _ = server::logging::init(None, None);
            offline::cut(&c)
        }
        Some(Command::Info {
            input,
            max_moov,
            json,
            store,
        }) => offline::info(&input, max_moov, json, &store),
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "mp4-fcgi", &mut std::io::stdout());
            Ok(())
        }
        Some(Command::Man) => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| e.to_string())
        }
        None if cli.serve.check => {
            let config = args::config_from(cli.serve).map_err(|e| Failure::Check(e).to_string())?;
            match server::check(&config) {
                Ok(summary) => {
                    println!("mp4-fcgi: the configuration is good: {summary}");
                    Ok(())
                }
                Err(why) => Err(Failure::Check(why).to_string()),
            }
        }
        None => {
            server::logging::init(cli.serve.log_level, cli.serve.log_file.as_deref())
                .map_err(|e| e.to_string())?;
            let config = args::config_from(cli.serve)?;
            server::run(config).map_err(|e| e.to_string())
        }
    }
}

/// Failures with an exit status of their own.
enum Failure {
    /// `--check` found the configuration wanting: 1, as `nginx -t`.
    Check(String),
}

const CHECK_PREFIX: &str = "the configuration is not good: ";

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Check(why) => write!(f, "{CHECK_PREFIX}{why}"),
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
            if msg.starts_with(CHECK_PREFIX) {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}
