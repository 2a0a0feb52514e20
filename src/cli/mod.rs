//! The `mp4-fcgi` binary: a thin command line over the engine and the pool.
//! One place owns exit codes and stderr.

mod args;
mod man;
mod offline;

use args::{Cli, Command};
use clap::Parser;
use mp4_fcgi::server;
use std::io::{self, Write};
use std::process::ExitCode;

/// Standard output of the commands. A reader that went away (`mp4-fcgi info
/// F | head -1`) ends the program at once and silently, killed by SIGPIPE as
/// cat and head are (status 141 in the shell): Rust ignores SIGPIPE, and the
/// pool relies on that for its sockets, so the commands write through this.
pub struct Stdout(io::StdoutLock<'static>);

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        end_on_closed_pipe(self.0.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        end_on_closed_pipe(self.0.flush())
    }
}

/// `r`, unless it says the reader went away: then the end, by SIGPIPE.
fn end_on_closed_pipe<T>(r: io::Result<T>) -> io::Result<T> {
    use nix::sys::signal::{SigHandler, SigSet, Signal, raise, signal};
    if let Err(e) = &r
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        // SAFETY: the default action replaces SIG_IGN; no handler runs.
        let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
        let _ = SigSet::from(Signal::SIGPIPE).thread_unblock();
        let _ = raise(Signal::SIGPIPE);
        std::process::exit(128 + Signal::SIGPIPE as i32);
    }
    r
}

/// Standard output, through [`Stdout`].
pub fn to_stdout_writer() -> Stdout {
    Stdout(io::stdout().lock())
}

/// Runs `f` on standard output, then flushes it.
pub fn to_stdout(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), String> {
    let mut out = to_stdout_writer();
    f(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| format!("standard output: {e}"))
}

/// A line on stderr; if stderr is gone there is no one to tell.
pub fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "{line}");
}

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
            // clap_complete panics on a write error; ours end before.
            to_stdout(|out| {
                clap_complete::generate(shell, &mut cmd, "mp4-fcgi", out);
                Ok(())
            })
        }
        Some(Command::Man { page }) => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let roff = man::page(cmd, page.as_deref()).map_err(|e| e.to_string())?;
            to_stdout(|out| out.write_all(roff.as_bytes()))
        }
        None if cli.serve.check => {
            let log_file = cli.serve.log_file.clone();
            let config = args::config_from(cli.serve).map_err(|e| Failure::Check(e).to_string())?;
            match server::check(&config, log_file.as_deref()) {
                Ok(summary) => {
                    to_stdout(|out| writeln!(out, "mp4-fcgi: the configuration is good: {summary}"))
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let printed = e.print();
            // --help and --version go to stdout (usage errors to stderr).
            if !e.use_stderr() {
                let _ = end_on_closed_pipe(printed);
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            say(format_args!("mp4-fcgi: {msg}"));
            if msg.starts_with(CHECK_PREFIX) {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}
