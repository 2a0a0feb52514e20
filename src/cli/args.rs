//! The command line: flags, validated once into a server [`Config`].

use clap::{Args, Parser, Subcommand, ValueEnum};
use mp4_fcgi::server::{self, Config, ListenAddr};
use std::path::PathBuf;
use std::time::Duration;

/// FastCGI responder for MP4 pseudo-streaming: `?start=45.5&end=60` cuts a
/// seekable clip out of a stored film, starting at a key frame.
#[derive(Parser, Debug)]
#[command(name = "mp4-fcgi", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write the clip the server would send for a window to a file.
    Cut(CutArgs),
    /// Describe a file: tracks, moov position, fragmentation.
    Info {
        input: PathBuf,
        #[arg(long, default_value = "64M", value_parser = parse_moov_size)]
        max_moov: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print a shell completion script, e.g. `mp4-fcgi completions bash >
    /// /etc/bash_completion.d/mp4-fcgi`.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), or a subcommand's.
    ///
    /// Read it with `mp4-fcgi man | man -l -`. Install it with `mkdir -p
    /// /usr/local/share/man/man1 && mp4-fcgi man >
    /// /usr/local/share/man/man1/mp4-fcgi.1` (and `mp4-fcgi man cut >
    /// .../mp4-fcgi-cut.1` for each subcommand).
    Man {
        /// The subcommand whose page to print (mp4-fcgi-SUBCOMMAND(1)).
        #[arg(value_name = "SUBCOMMAND", value_parser = super::man::SUBCOMMANDS)]
        page: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct CutArgs {
    pub input: PathBuf,
    /// The output file, or - for standard output.
    pub output: PathBuf,
    /// Start time in seconds (snapped back to a key frame); the same
    /// grammar as the server's `start`.
    #[arg(long, allow_hyphen_values = true)]
    pub start: Option<String>,
    /// End time in seconds.
    #[arg(long, allow_hyphen_values = true)]
    pub end: Option<String>,
    /// `flash`: one video and one audio track, no edit lists (so the clip is
    /// shown from its key frame).
    #[arg(long)]
    pub client: Option<String>,
    /// The tracks to keep, as the server's `tracks=`: v<N> and a<N>, the
    /// N-th video and audio track (e.g. v1,a2).
    #[arg(long)]
    pub tracks: Option<String>,
    /// Keep the audio tracks in this language, as the server's `lang=`
    /// (BCP 47 `fr` or ISO 639-2 `fra`).
    #[arg(long)]
    pub lang: Option<String>,
    /// Largest moov to load, in bytes (K, M, G suffixes).
    #[arg(long, default_value = "64M", value_parser = parse_moov_size)]
    pub max_moov: u64,
    /// Write the moov compressed (cmov), as --compress-moov does.
    #[arg(long)]
    pub compress_moov: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Where `cut` and `info` find a source named by an s3:// or http(s):// URL
/// (keys from the environment or ~/.aws, as the server reads them).
#[derive(Args, Debug)]
pub struct StoreArgs {
    /// S3 endpoint URL for s3:// sources (else AWS_ENDPOINT_URL; else AWS).
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// S3 region (else AWS_REGION, AWS_DEFAULT_REGION or ~/.aws/config).
    #[arg(long)]
    s3_region: Option<String>,
    /// S3 bucket addressing: path or virtual.
    #[arg(long, value_enum)]
    s3_addressing: Option<Addressing>,
    /// Seconds a request to the store may take, retries included.
    #[arg(long, default_value_t = 10.0)]
    origin_timeout: f64,
}

impl StoreArgs {
    /// The origin settings for `url` (the store, without the object's key).
    pub fn settings(&self, url: String) -> Result<mp4_fcgi::origin::Settings, String> {
        Ok(mp4_fcgi::origin::Settings {
            url,
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            addressing: addressing(self.s3_addressing),
            timeout: Duration::try_from_secs_f64(self.origin_timeout)
                .map_err(|_| "--origin-timeout must be a number of seconds")?,
            ..mp4_fcgi::origin::Settings::default()
        })
    }
}

fn addressing(a: Option<Addressing>) -> mp4_fcgi::origin::Addressing {
    match a {
        None => mp4_fcgi::origin::Addressing::Auto,
        Some(Addressing::Path) => mp4_fcgi::origin::Addressing::Path,
        Some(Addressing::Virtual) => mp4_fcgi::origin::Addressing::Virtual,
    }
}

/// How S3 buckets are addressed.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Addressing {
    Path,
    Virtual,
}

/// How the body reaches the front server.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum OffloadMode {
    /// lighttpd `"x-sendfile" => "enable"`: answer with an `X-Sendfile2`
    /// header naming a header file and the film's byte ranges.
    #[value(name = "x-sendfile2")]
    XSendfile2,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Check the configuration (flags, --root, socket folders, users, the
    /// offload folder) and exit: 0 if the pool would start, 1 with the reason
    /// if not. Like nginx -t.
    #[arg(long)]
    pub check: bool,
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
    /// Seconds to let in-flight responses finish on SIGTERM or SIGHUP.
    #[arg(long, default_value_t = 30)]
    shutdown_timeout: u64,
    /// Seconds a connection may move no byte either way before it is closed:
    /// idle between requests, or a download its peer stopped reading.
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,
    /// Seconds a request may take to arrive whole (its FastCGI params or
    /// HTTP head) before the connection is closed.
    #[arg(long, default_value_t = 10)]
    request_timeout: u64,
    /// Seconds after which a request still waiting for its answer (an index
    /// build, a plan) is logged and counted as slow; 0: never.
    #[arg(long, default_value_t = 2.0)]
    slow_request_time: f64,
    /// Run the workers as this user (started as root; the master stays root to
    /// reopen logs and remove its socket, as nginx's does).
    #[arg(long)]
    user: Option<String>,
    /// Run the workers in this group (default: the user's).
    #[arg(long)]
    group: Option<String>,
    /// Write the master's pid to this file (removed when the pool stops).
    #[arg(long, value_name = "PATH")]
    pid_file: Option<PathBuf>,
    /// Refuse (403) files that resolve outside this directory.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Per-worker index cache, in bytes (K, M, G suffixes); a quarter more
    /// keeps the generated heads of popular windows.
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    cache_size: u64,
    /// Largest moov to load, in bytes (at most 1G).
    #[arg(long, default_value = "64M", value_parser = parse_moov_size)]
    max_moov: u64,
    /// Write each answer's moov compressed (cmov), as mod_h264_streaming
    /// did, except for client=flash. Off by default: browsers cannot read it.
    #[arg(long)]
    compress_moov: bool,
    /// Largest total of FastCGI params per request, in bytes.
    #[arg(long, default_value = "64K", value_parser = parse_size)]
    max_params: u64,
    /// Concurrent connections per worker.
    #[arg(long, default_value_t = 1024)]
    max_conns: usize,
    /// Requests in flight per client address (REMOTE_ADDR, which front
    /// servers send; an IPv6 /64 is one address) and worker; beyond it, 503
    /// with Retry-After. Requests without REMOTE_ADDR are not limited. 0: no
    /// limit [default: a 16th of --max-conns, at least 4].
    #[arg(long, value_name = "N")]
    max_per_peer: Option<usize>,
    /// Bytes the responses in flight may hold per worker beyond the caches
    /// (generated bytes, indexes too big to cache); beyond it, 503.
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    max_inflight: u64,
    /// A SCRIPT_NAME that answers the pool's status: text, JSON with ?json,
    /// every worker too with ?full (?json&full), OpenMetrics (Prometheus) with
    /// ?openmetrics.
    #[arg(long)]
    status_path: Option<String>,
    /// Also serve plain HTTP/1.1 here, for development without a front server
    /// (needs --root, the folder it serves, or --origin; production goes
    /// through nginx, lighttpd or Apache).
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// With --http: a page at / that lists the films under --root and plays
    /// one progressive, with HLS (hls.js) or with DASH (dash.js), its
    /// players served by the binary itself under /_demo/ (no CDN). Off: no
    /// page, no file names listed. /_demo/ is reserved either way: a film
    /// there is not served by --http.
    #[arg(long, default_value = "on", value_name = "on|off", value_parser = ["on", "off"])]
    demo: String,
    /// Let web pages of this origin (e.g. https://example.org; repeatable)
    /// or of any origin (*) read the answers, on --http and FastCGI alike:
    /// Access-Control-Allow-Origin and -Expose-Headers on answers, and
    /// OPTIONS preflights answered (else 405). Off by default.
    #[arg(long, value_name = "ORIGIN")]
    cors: Vec<String>,
    /// Let the front server send the body: x-sendfile2 (lighttpd). The clip's
    /// generated bytes are written once under --offload-dir.
    #[arg(long, value_enum, requires = "offload_dir")]
    offload: Option<OffloadMode>,
    /// Folder for offloaded header files; the front server must read it and
    /// list it in x-sendfile-docroot.
    #[arg(long, value_name = "DIR", requires = "offload")]
    offload_dir: Option<PathBuf>,
    /// Byte budget of --offload-dir (K, M, G suffixes).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    offload_size: u64,
    /// Read films from object storage instead of local files:
    /// s3://BUCKET[/PREFIX] (any S3-compatible store) or http(s)://HOST/PREFIX/
    /// (any server that answers Range). The key is the prefix plus SCRIPT_NAME.
    #[arg(long, value_name = "URL")]
    origin: Option<String>,
    /// S3 endpoint URL (else AWS_ENDPOINT_URL; else AWS itself).
    #[arg(long, value_name = "URL", requires = "origin")]
    s3_endpoint: Option<String>,
    /// S3 region (else AWS_REGION or AWS_DEFAULT_REGION).
    #[arg(long, requires = "origin")]
    s3_region: Option<String>,
    /// S3 bucket addressing: path (https://endpoint/bucket/key) or virtual
    /// (https://bucket.endpoint/key) [default: path with an endpoint, else virtual].
    #[arg(long, value_enum, requires = "origin")]
    s3_addressing: Option<Addressing>,
    /// Seconds an origin request may take, retries included; then 504.
    #[arg(long, default_value_t = 10.0)]
    origin_timeout: f64,
    /// Bytes per origin read of a body (K, M suffixes); a stream holds at
    /// most two.
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    origin_chunk: u64,
    /// Seconds an object's identity is trusted before a conditional request
    /// checks it again.
    #[arg(long, default_value_t = 60.0)]
    origin_revalidate: f64,
    /// Cache-Control of 200/206/304 answers (e.g. "public, max-age=86400"),
    /// for CDNs and caching front servers. None by default.
    #[arg(long, value_name = "VALUE")]
    cache_control: Option<String>,
    /// HLS/DASH: encrypt the films this key file names (one line per film
    /// pattern: PATTERN cenc|cbcs|aes-128 KEY-ID KEY [options], or
    /// PATTERN SCHEME derive SECRET for a key per film; see the README).
    /// Read again on SIGHUP. Keys are never logged.
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
    /// HLS/DASH: segments are cut at the key frame nearest each multiple of
    /// this many seconds (1 to 60). Default: 6, or for a film whose key
    /// frames come at a steady interval, the largest multiple of it up to 6
    /// (a 4 s GOP makes even 4 s segments).
    #[arg(long, value_name = "SECONDS")]
    segment_duration: Option<f64>,
    /// HLS/DASH: most samples one media segment may hold (a film with too
    /// few key frames for it is refused with 415); 1024 to 4194304.
    #[arg(long, default_value_t = mp4_fcgi::mp4::cmaf::MAX_SEGMENT_SAMPLES, value_name = "N")]
    max_segment_samples: u64,
    /// HLS/DASH: the default audio rendition is the first in this language
    /// (a BCP 47 tag or ISO 639 code: fr, fra, pt-BR; compared by language,
    /// not region), and a subtitle track in it is shown by default when no
    /// audio is. Default: the first enabled audio track (tkhd), else the
    /// first.
    #[arg(long, value_name = "LANG", value_parser = parse_language)]
    default_language: Option<[u8; 3]>,
    /// DASH: also list each video's key frames as a trick-mode adaptation
    /// set (DASH-IF, for fast-forward on TV players). Off by default:
    /// ffmpeg's DASH reader takes the set for one more video stream. HLS
    /// always lists its I-frame playlists.
    #[arg(long)]
    dash_trick_mode: bool,
    /// HLS/DASH seek-bar previews: a picture every SECONDS, tiled into
    /// sprites (tiles-<n>.jpg) that the master playlist, the MPD and
    /// thumbnails.vtt announce; 0: none announced (thumb-<ms>.jpg still
    /// serves). At least 1.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    thumbnail_interval: f64,
    /// How the previews' sprites are tiled: COLUMNSxROWS, at most 100 tiles.
    #[arg(long, default_value = "10x1", value_name = "CxR")]
    thumbnail_tiles: String,
    /// Width of each preview tile in pixels (its height keeps the video's
    /// aspect ratio).
    #[arg(long, default_value_t = 160, value_name = "PIXELS")]
    thumbnail_width: u32,
    /// Where URL sets (/films/a_,360,720,.mp4.urlset/master.m3u8) are served:
    /// on (wherever the front server routes them, unless it passes the
    /// FastCGI param MP4_FCGI_URL_SETS=0), param (only where it passes
    /// MP4_FCGI_URL_SETS=1), or off (403). A set names at most 8 films whose
    /// indexes fit in half of --cache-size.
    #[arg(long, default_value = "on", value_name = "on|param|off",
          value_parser = ["on", "param", "off"])]
    url_sets: String,
    /// error, warn, info, debug or trace (RUST_LOG also works).
    #[arg(long)]
    pub log_level: Option<log::LevelFilter>,
    /// Append log lines to this file instead of stderr; SIGUSR1 reopens it.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
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

/// `--max-moov`: under 4 GiB so every box of a new moov has a 32-bit size.
fn parse_moov_size(s: &str) -> Result<u64, String> {
    parse_size(s).and_then(|n| {
        if n <= 1 << 30 {
            Ok(n)
        } else {
            Err(format!("'{s}' is more than 1G"))
        }
    })
}

/// `--default-language`: a known language's tag or code, as its ISO
/// 639-2/T code.
fn parse_language(s: &str) -> Result<[u8; 3], String> {
    mp4_fcgi::mp4::tracks::primary_language(s)
        .filter(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(isolang::Language::from_639_3)
                .is_some()
        })
        .ok_or_else(|| {
            format!("'{s}' is not a language's BCP 47 tag or ISO 639 code (e.g. fr, fra, pt-BR)")
        })
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("'{s}' is not an octal mode (e.g. 660)"))
}

pub fn config_from(a: ServeArgs) -> Result<Config, String> {
    let mut c = Config {
        listen: a.listen,
        socket_mode: a.socket_mode,
        socket_owner: a.socket_owner,
        socket_group: a.socket_group,
        max_requests: a.max_requests,
        shutdown_timeout: Duration::from_secs(a.shutdown_timeout),
        idle_timeout: Duration::from_secs(a.idle_timeout.max(1)),
        request_timeout: Duration::from_secs(a.request_timeout.max(1)),
        slow_request_time: Duration::try_from_secs_f64(a.slow_request_time)
            .map_err(|_| "--slow-request-time must be a number of seconds")?,
        user: a.user,
        group: a.group,
        pid_file: a.pid_file,
        root: a.root,
        cache_size: a.cache_size,
        max_moov: a.max_moov,
        max_params: usize::try_from(a.max_params).map_err(|_| "--max-params is too large")?,
        max_conns: a.max_conns,
        max_per_peer: a
            .max_per_peer
            .unwrap_or_else(|| Config::default_max_per_peer(a.max_conns)),
        max_inflight: usize::try_from(a.max_inflight).unwrap_or(usize::MAX),
        compress_moov: a.compress_moov,
        status_path: a.status_path,
        http: a.http,
        offload_size: a.offload_size,
        ..Config::default()
    };
    if let Some(n) = a.workers {
        if n == 0 || n > server::MAX_WORKERS {
            return Err(format!(
                "--workers must be from 1 to {}",
                server::MAX_WORKERS
            ));
        }
        c.workers = n;
    }
    c.workers = c.workers.min(server::MAX_WORKERS);
    if let Some(p) = &c.status_path
        && !p.starts_with('/')
    {
        return Err(format!(
            "--status-path '{p}' must start with / (it is matched against SCRIPT_NAME)"
        ));
    }
    if c.max_conns == 0 {
        return Err("--max-conns must be at least 1".into());
    }
    if let (Some(OffloadMode::XSendfile2), Some(dir)) = (a.offload, a.offload_dir) {
        std::fs::create_dir_all(&dir)
            .and_then(|()| dir.canonicalize())
            .map(|d| c.offload_dir = Some(d))
            .map_err(|e| format!("--offload-dir {}: {e}", dir.display()))?;
    }
    let seconds = |v: f64, flag: &str| {
        Duration::try_from_secs_f64(v).map_err(|_| format!("{flag} must be a number of seconds"))
    };
    c.origin_revalidate = seconds(a.origin_revalidate, "--origin-revalidate")?;
    c.cache_control = a.cache_control;
    if let Some(path) = a.keys {
        c.keys = server::KeyFile::open(path)?;
    }
    if let Some(d) = a.segment_duration {
        if !(1.0..=60.0).contains(&d) {
            return Err("--segment-duration must be between 1 and 60 seconds".into());
        }
        c.segment_duration = d;
        c.fit_key_frames = false;
    }
    if !(1024..=mp4_fcgi::mp4::cmaf::MAX_SEGMENT_SAMPLES_LIMIT).contains(&a.max_segment_samples) {
        return Err(format!(
            "--max-segment-samples must be between 1024 and {}",
            mp4_fcgi::mp4::cmaf::MAX_SEGMENT_SAMPLES_LIMIT
        ));
    }
    c.max_segment_samples = a.max_segment_samples;
    c.default_language = a.default_language;
    c.dash_trick_mode = a.dash_trick_mode;
    c.tiles = tiles(a.thumbnail_interval, &a.thumbnail_tiles, a.thumbnail_width)?;
    c.url_sets = a.url_sets.parse()?;
    c.demo = a.demo == "on";
    c.set_cors(&a.cors)?;
    if let Some(cc) = &c.cache_control
        && (cc.is_empty() || cc.bytes().any(|b| b < 0x20 || b == 0x7f))
    {
        return Err("--cache-control must be one line of text".into());
    }
    if let Some(url) = a.origin {
        if c.root.is_some() || c.offload_dir.is_some() {
            return Err(
                "--origin reads films from a store: --root and --offload apply to local files"
                    .into(),
            );
        }
        if a.origin_chunk < 64 << 10 || a.origin_chunk > 64 << 20 {
            return Err("--origin-chunk must be from 64K to 64M".into());
        }
        let settings = mp4_fcgi::origin::Settings {
            url,
            endpoint: a.s3_endpoint,
            region: a.s3_region,
            addressing: addressing(a.s3_addressing),
            timeout: seconds(a.origin_timeout, "--origin-timeout")?.max(Duration::from_millis(100)),
            chunk: a.origin_chunk,
        };
        // Fails on a malformed URL now, not in every worker.
        mp4_fcgi::origin::Origin::new(&settings)?;
        c.origin = Some(settings);
    } else if c.http.is_some() && c.root.is_none() {
        return Err("--http needs --root (the folder it serves) or --origin".into());
    }
    if let Some(root) = &c.root {
        let real = root
            .canonicalize()
            .map_err(|e| format!("--root {}: {e}", root.display()))?;
        if !real.is_dir() {
            return Err(format!("--root {}: not a directory", root.display()));
        }
        c.root = Some(real);
    }
    Ok(c)
}

/// The seek-bar previews' tiles from their three options (`None`: off, or
/// a build without thumbnails).
fn tiles(
    interval: f64,
    layout: &str,
    width: u32,
) -> Result<Option<mp4_fcgi::mp4::cmaf::thumbs::Tiles>, String> {
    use mp4_fcgi::mp4::cmaf::thumbs::{MAX_SIDE, MAX_TILES, Tiles};
    if interval == 0.0 || !mp4_fcgi::picture::BUILT {
        return Ok(None);
    }
    if !(1.0..=3600.0).contains(&interval) {
        return Err("--thumbnail-interval must be 0 or between 1 and 3600 seconds".into());
    }
    let grid = layout
        .split_once('x')
        .and_then(|(c, r)| Some((c.parse::<u32>().ok()?, r.parse::<u32>().ok()?)))
        .filter(|&(c, r)| c > 0 && r > 0 && c.saturating_mul(r) <= MAX_TILES);
    let Some((columns, rows)) = grid else {
        return Err(format!(
            "--thumbnail-tiles must be COLUMNSxROWS (10x1, 5x5), at most {MAX_TILES} tiles"
        ));
    };
    if !(16..=MAX_SIDE / columns.max(1)).contains(&width) {
        return Err(format!(
            "--thumbnail-width must be at least 16, and the sprite (width × columns) at \
             most {MAX_SIDE} pixels wide"
        ));
    }
    Ok(Some(Tiles {
        interval,
        columns,
        rows,
        width,
    }))
}
