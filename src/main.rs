//! The `mp4-fcgi` binary: a thin CLI over the engine and the pool.

use clap::{Args, Parser, Subcommand, ValueEnum};
use mp4_fcgi::mp4::{self, ReadAt};
use mp4_fcgi::server::{self, Config, ListenAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// FastCGI responder for MP4 pseudo-streaming: `?start=45.5&end=60` cuts a
/// seekable clip out of a stored film, starting at a key frame.
#[derive(Parser, Debug)]
#[command(name = "mp4-fcgi", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the clip the server would send for a window to a file.
    Cut {
        input: PathBuf,
        output: PathBuf,
        /// Start time in seconds (snapped back to a key frame).
        #[arg(long)]
        start: Option<f64>,
        /// End time in seconds.
        #[arg(long)]
        end: Option<f64>,
        /// `flash`: one video and one audio track, no edit lists.
        #[arg(long, value_enum)]
        client: Option<Client>,
        /// Largest moov to load, in bytes (K, M, G suffixes).
        #[arg(long, default_value = "64M", value_parser = parse_size)]
        max_moov: u64,
    },
    /// Describe a file: tracks, moov position, fragmentation.
    Info {
        input: PathBuf,
        #[arg(long, default_value = "64M", value_parser = parse_size)]
        max_moov: u64,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Client {
    Flash,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Listen on unix:/path, IPv4:PORT or [IPv6]:PORT (repeatable). Default:
    /// a socket on fd 0, else systemd's LISTEN_FDS, else 127.0.0.1:9064.
    #[arg(long, value_name = "ADDR")]
    listen: Vec<ListenAddr>,
    /// Mode of unix sockets, in octal (e.g. 660).
    #[arg(long, value_parser = parse_mode)]
    socket_mode: Option<u32>,
    /// Owner of unix sockets.
    #[arg(long)]
    socket_owner: Option<String>,
    /// Group of unix sockets.
    #[arg(long)]
    socket_group: Option<String>,
    /// Worker processes [default: number of CPUs].
    #[arg(long)]
    workers: Option<usize>,
    /// Recycle a worker after this many requests (0: never).
    #[arg(long, default_value_t = 0)]
    max_requests: u64,
    /// Seconds to let in-flight responses finish on SIGTERM.
    #[arg(long, default_value_t = 30)]
    shutdown_timeout: u64,
    /// Drop privileges to this user after binding (when started as root).
    #[arg(long)]
    user: Option<String>,
    /// Drop privileges to this group after binding.
    #[arg(long)]
    group: Option<String>,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Refuse (403) files that resolve outside this directory.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Per-worker index cache, in bytes (K, M, G suffixes).
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    cache_size: u64,
    /// Largest moov to load, in bytes.
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    max_moov: u64,
    /// Largest total of FastCGI params per request, in bytes.
    #[arg(long, default_value = "64K", value_parser = parse_size)]
    max_params: u64,
    /// Concurrent connections per worker.
    #[arg(long, default_value_t = 1024)]
    max_conns: usize,
    /// A SCRIPT_NAME that answers the pool's status (text, or JSON with ?json).
    #[arg(long)]
    status_path: Option<String>,
    /// Also serve plain HTTP/1.1 here, for development without a front server
    /// (needs --root; production goes through nginx, lighttpd or Apache).
    #[arg(long, value_name = "ADDR", requires = "root")]
    http: Option<std::net::SocketAddr>,
    /// error, warn, info, debug or trace (RUST_LOG also works).
    #[arg(long)]
    log_level: Option<log::LevelFilter>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{s}' is not a size (e.g. 65536, 64K, 64M, 1G)"))
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("'{s}' is not an octal mode (e.g. 660)"))
}

fn init_log(level: Option<log::LevelFilter>) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if let Some(level) = level {
        b.filter_level(level);
    }
    b.init();
}

fn config_from(a: ServeArgs) -> Result<Config, String> {
    let mut c = Config {
        listen: a.listen,
        socket_mode: a.socket_mode,
        socket_owner: a.socket_owner,
        socket_group: a.socket_group,
        max_requests: a.max_requests,
        shutdown_timeout: Duration::from_secs(a.shutdown_timeout),
        user: a.user,
        group: a.group,
        pid_file: a.pid_file,
        root: a.root,
        cache_size: a.cache_size,
        max_moov: a.max_moov,
        max_params: usize::try_from(a.max_params).map_err(|_| "--max-params is too large")?,
        max_conns: a.max_conns,
        status_path: a.status_path,
        http: a.http,
        ..Config::default()
    };
    if let Some(n) = a.workers {
        if n == 0 {
            return Err("--workers must be at least 1".into());
        }
        c.workers = n;
    }
    if c.max_conns == 0 {
        return Err("--max-conns must be at least 1".into());
    }
    if let Some(root) = &c.root {
        c.root = Some(
            root.canonicalize()
                .map_err(|e| format!("--root {}: {e}", root.display()))?,
        );
    }
    Ok(c)
}

fn cut(
    input: PathBuf,
    output: PathBuf,
    window: mp4::Window,
    limits: mp4::Limits,
) -> Result<(), String> {
    use std::io::Write;
    let ctx = |e: &dyn std::fmt::Display| format!("{}: {e}", input.display());
    let file = std::fs::File::open(&input).map_err(|e| ctx(&e))?;
    let index = mp4::Index::build(&file, &limits).map_err(|e| ctx(&e))?;
    let layout = index.plan(&window).map_err(|e| ctx(&e))?;
    let out = std::fs::File::create(&output).map_err(|e| format!("{}: {e}", output.display()))?;
    let mut out = std::io::BufWriter::new(out);
    let mut buf = vec![0u8; 256 << 10];
    for seg in layout.segments(0..layout.len()) {
        match seg {
            mp4::Segment::Mem(b) => out.write_all(&b),
            mp4::Segment::File { mut offset, len } => {
                let end = offset + len;
                let mut r = Ok(());
                while offset < end && r.is_ok() {
                    let n = usize::try_from(end - offset).map_or(buf.len(), |n| n.min(buf.len()));
                    r = file
                        .read_exact_at(&mut buf[..n], offset)
                        .map_err(|e| {
                            std::io::Error::new(e.kind(), format!("{}: {e}", input.display()))
                        })
                        .and_then(|()| out.write_all(&buf[..n]));
                    offset += n as u64;
                }
                r
            }
        }
        .map_err(|e| format!("{}: {e}", output.display()))?;
    }
    out.flush()
        .map_err(|e| format!("{}: {e}", output.display()))
}

fn info(input: PathBuf, limits: mp4::Limits) -> Result<(), String> {
    let ctx = |e: &dyn std::fmt::Display| format!("{}: {e}", input.display());
    let file = std::fs::File::open(&input).map_err(|e| ctx(&e))?;
    let index = mp4::Index::build(&file, &limits).map_err(|e| ctx(&e))?;
    print!("{}", index.info());
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Some(Command::Cut {
            input,
            output,
            start,
            end,
            client,
            max_moov,
        }) => {
            init_log(None);
            let window = mp4::Window {
                start,
                end,
                flash: matches!(client, Some(Client::Flash)),
            };
            cut(input, output, window, mp4::Limits { max_moov })
        }
        Some(Command::Info { input, max_moov }) => info(input, mp4::Limits { max_moov }),
        None => {
            init_log(cli.serve.log_level);
            let config = config_from(cli.serve)?;
            server::run(config).map_err(|e| e.to_string())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("mp4-fcgi: {msg}");
            ExitCode::from(2)
        }
    }
}
