use std::path::PathBuf;
use std::time::Duration;

/// Where the pool listens when no `--listen`, fd 0 socket or `LISTEN_FDS` is given.
/// (Not port 9000: php-fpm takes it.)
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9064";

/// One `--listen` address.
#[derive(Clone, Debug, PartialEq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp(std::net::SocketAddr),
}

impl std::str::FromStr for ListenAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path, e.g. unix:/run/mp4-fcgi.sock".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        s.parse().map(ListenAddr::Tcp).map_err(|_| {
            format!("'{s}' is not unix:/path, IPv4:PORT or [IPv6]:PORT (e.g. 127.0.0.1:9064)")
        })
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            ListenAddr::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// Where URL sets (`/films/a_,360,720,.mp4.urlset/master.m3u8`) are served
/// (`--url-sets`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UrlSets {
    /// Nowhere: 403, whatever the front server passes.
    Off,
    /// Wherever the front server routes them, unless it passes
    /// `MP4_FCGI_URL_SETS=0` (nginx-vod-module serves them in every `vod`
    /// location).
    #[default]
    On,
    /// Only where the front server passes `MP4_FCGI_URL_SETS=1`
    /// (`fastcgi_param` in the location that routes them).
    Param,
}

impl std::str::FromStr for UrlSets {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(UrlSets::Off),
            "on" => Ok(UrlSets::On),
            "param" => Ok(UrlSets::Param),
            _ => Err(format!("--url-sets '{s}' is not off, on or param")),
        }
    }
}

/// The FastCGI param by which the front server allows (`1`) or refuses
/// (`0`) URL sets in a location.
pub const URL_SETS_PARAM: &str = "MP4_FCGI_URL_SETS";

/// Most films one URL set may name (nginx-vod-module allows 32).
pub const MAX_SET_FILMS: usize = 8;

/// Which web pages may read the answers (`--cors`): the
/// `Access-Control-Allow-Origin` of answers and of `OPTIONS` preflights.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cors {
    /// No CORS header, and `OPTIONS` is refused (405) like any other method.
    #[default]
    Off,
    /// Any page (`*`).
    Any,
    /// Pages of these origins (`https://example.org`): the request's
    /// `Origin` is echoed when it is one of them, with `Vary: Origin`.
    Origins(std::sync::Arc<[Box<str>]>),
}

impl Cors {
    /// `--cors` values: `*`, or origins (`scheme://host[:port]`).
    pub fn from_values(values: &[String]) -> Result<Cors, String> {
        if values.is_empty() {
            return Ok(Cors::Off);
        }
        if values.iter().any(|v| v == "*") {
            if values.len() > 1 {
                return Err("--cors '*' allows every origin: give it alone".into());
            }
            return Ok(Cors::Any);
        }
        for v in values {
            let rest = v
                .strip_prefix("https://")
                .or_else(|| v.strip_prefix("http://"));
            let ok = rest.is_some_and(|host| {
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            });
            if !ok {
                return Err(format!(
                    "--cors '{v}' is not an origin: scheme://host[:port] with no path \
                     (e.g. https://example.org), or '*'"
                ));
            }
        }
        // Browsers send the scheme and host in lower case.
        Ok(Cors::Origins(
            values
                .iter()
                .map(|v| v.to_ascii_lowercase().into())
                .collect(),
        ))
    }

    pub fn is_on(&self) -> bool {
        *self != Cors::Off
    }

    /// The `Access-Control-Allow-Origin` for a request from `origin` (its
    /// `Origin` header; `None` when the answer is made without it): `*`, the
    /// origin itself when it is allowed, or, unknown, the one origin allowed.
    pub fn allow_origin(&self, origin: Option<&[u8]>) -> Option<&str> {
        match (self, origin) {
            (Cors::Off, _) => None,
            (Cors::Any, _) => Some("*"),
            (Cors::Origins(list), Some(o)) => list.iter().find(|a| a.as_bytes() == o).map(|a| &**a),
            (Cors::Origins(list), None) => match &list[..] {
                [only] => Some(only),
                _ => None,
            },
        }
    }
}

/// The validated configuration of the pool (built once by the CLI).
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: Vec<ListenAddr>,
    pub socket_mode: Option<u32>,
    pub socket_owner: Option<String>,
    pub socket_group: Option<String>,
    pub workers: usize,
    /// Recycle a worker after this many requests (0: never).
    pub max_requests: u64,
    pub shutdown_timeout: Duration,
    /// Close a connection when no byte moved either way for this long.
    pub idle_timeout: Duration,
    /// Close a connection whose request does not arrive whole within this.
    pub request_timeout: Duration,
    /// A request whose answer begins later than this is logged and counted
    /// as slow (0: never).
    pub slow_request_time: Duration,
    pub user: Option<String>,
    pub group: Option<String>,
    pub pid_file: Option<PathBuf>,
    /// Files must resolve inside this directory (symlinks included).
    pub root: Option<PathBuf>,
    /// Per-worker index cache budget in bytes.
    pub cache_size: u64,
    pub max_moov: u64,
    /// Total PARAMS bytes accepted per request.
    pub max_params: usize,
    /// Concurrent connections per worker.
    pub max_conns: usize,
    /// Requests in flight per peer (`REMOTE_ADDR`) and worker; beyond it,
    /// 503 (0: no share).
    pub max_per_peer: usize,
    /// Bytes responses in flight may hold per worker beyond the caches.
    pub max_inflight: usize,
    /// Answers' moov compressed (`cmov`), except for client=flash.
    pub compress_moov: bool,
    pub status_path: Option<String>,
    /// Development HTTP/1.1 listener (`--http`), serving files under `root`.
    pub http: Option<std::net::SocketAddr>,
    /// `--offload x-sendfile2`: header files go here.
    pub offload_dir: Option<PathBuf>,
    /// Byte budget of `offload_dir`.
    pub offload_size: u64,
    /// `--origin`: films are objects of a store, not local files.
    pub origin: Option<crate::origin::Settings>,
    /// An object's identity is trusted this long before it is checked again.
    pub origin_revalidate: Duration,
    /// `Cache-Control` of 200/206 answers.
    pub cache_control: Option<String>,
    /// HLS/DASH: the target segment duration in seconds.
    pub segment_duration: f64,
    /// `--segment-duration` not given: a steady GOP sets the segments' length.
    pub fit_key_frames: bool,
    /// `--max-segment-samples`.
    pub max_segment_samples: u64,
    /// `--default-language` (ISO 639-2/T): HLS/DASH's default renditions.
    pub default_language: Option<[u8; 3]>,
    /// `--dash-trick-mode`.
    pub dash_trick_mode: bool,
    /// `--thumbnail-interval`, `--thumbnail-tiles`, `--thumbnail-width`:
    /// the seek-bar previews announced (`None`: none).
    pub tiles: Option<crate::mp4::cmaf::thumbs::Tiles>,
    /// Where URL sets are served.
    pub url_sets: UrlSets,
    /// `--demo`: the development listener serves the demo page at `/` and
    /// its files under [`DEMO_PREFIX`].
    pub demo: bool,
    /// `--cors`: which pages may read the answers.
    pub cors: Cors,
    /// `--keys`: which films are encrypted, and how.
    pub keys: KeyFile,
}

/// The key file (`--keys`) and what it said when last read: read at
/// start and again by the master on SIGHUP, before it forks the new
/// workers, which inherit it.
#[derive(Clone, Debug, Default)]
pub struct KeyFile {
    pub path: Option<PathBuf>,
    keys: std::sync::Arc<std::sync::RwLock<std::sync::Arc<crate::protect::Keys>>>,
}

impl KeyFile {
    /// Reads `path`; an error names the file and the line.
    pub fn open(path: PathBuf) -> Result<KeyFile, String> {
        let k = KeyFile {
            path: Some(path),
            keys: Default::default(),
        };
        k.reload()?;
        Ok(k)
    }

    /// Reads the file again; on error the keys stay as they were.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("--keys {}: {e}", path.display()))?;
        let keys = crate::protect::Keys::parse(&text)
            .map_err(|e| format!("--keys {}: {e}", path.display()))?;
        if let Ok(mut k) = self.keys.write() {
            *k = std::sync::Arc::new(keys);
        }
        Ok(())
    }

    /// The keys as last read.
    pub fn get(&self) -> std::sync::Arc<crate::protect::Keys> {
        self.keys.read().map(|k| k.clone()).unwrap_or_default()
    }
}

/// The development listener's own files (`--demo`): requests under this
/// prefix never reach a film, whether the demo is on or off.
pub const DEMO_PREFIX: &str = "/_demo/";

impl Config {
    /// Most bytes the indexes of one URL set's films may hold together:
    /// half of `--cache-size`, so a set's indexes stay cached side by side
    /// and leave room for other films.
    pub fn set_index_budget(&self) -> u64 {
        self.cache_size / 2
    }

    /// Sets `--cors` from its values (none: off).
    pub fn set_cors(&mut self, values: &[String]) -> Result<(), String> {
        self.cors = Cors::from_values(values)?;
        Ok(())
    }

    /// What the packager is told besides the window.
    pub fn cmaf_settings(&self) -> crate::mp4::cmaf::Settings {
        crate::mp4::cmaf::Settings {
            segment_duration: self.segment_duration,
            fit_key_frames: self.fit_key_frames,
            max_segment_samples: self.max_segment_samples,
            default_language: self.default_language,
            dash_trick_mode: self.dash_trick_mode,
            tiles: self.tiles,
        }
    }
}

impl Config {
    /// `--max-per-peer` when not given: a 16th of `--max-conns` (64 of the
    /// default 1024), at least 4. One address then holds at most a 16th of
    /// each worker, so it takes 16 addresses to fill the pool, while a player
    /// has a few requests in flight and even a large NAT of players far fewer
    /// than 64 per worker.
    pub fn default_max_per_peer(max_conns: usize) -> usize {
        (max_conns / 16).max(4)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: Vec::new(),
            socket_mode: None,
            socket_owner: None,
            socket_group: None,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_requests: 0,
            shutdown_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            slow_request_time: Duration::from_secs(2),
            user: None,
            group: None,
            pid_file: None,
            root: None,
            cache_size: 64 << 20,
            max_moov: 64 << 20,
            max_params: 64 << 10,
            max_conns: 1024,
            max_per_peer: Config::default_max_per_peer(1024),
            max_inflight: 512 << 20,
            compress_moov: false,
            status_path: None,
            http: None,
            offload_dir: None,
            offload_size: 1 << 30,
            origin: None,
            origin_revalidate: Duration::from_secs(60),
            cache_control: None,
            segment_duration: 6.0,
            fit_key_frames: true,
            max_segment_samples: crate::mp4::cmaf::MAX_SEGMENT_SAMPLES,
            default_language: None,
            dash_trick_mode: false,
            tiles: crate::picture::BUILT.then_some(crate::mp4::cmaf::thumbs::Tiles {
                interval: 10.0,
                columns: 10,
                rows: 1,
                width: 160,
            }),
            url_sets: UrlSets::On,
            demo: true,
            cors: Cors::Off,
            keys: KeyFile::default(),
        }
    }
}
