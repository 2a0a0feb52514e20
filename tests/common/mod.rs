//! Shared test harness: tools, media, a running pool, a FastCGI client.
#![allow(dead_code)]

pub mod boxes;
pub mod dev_http;
mod fcgi_client;
pub mod hls_check;
pub mod mpd_check;
pub mod webdriver;

#[allow(unused_imports)] // each test binary uses its own part of `common`
pub use fcgi_client::{Client, Reply, parse_cgi};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mp4-fcgi");

/// A tool the test needs, on PATH or in /usr/sbin or /sbin. The test also
/// carries `#[cfg_attr(not(has_<tool>), ignore = "needs <tool>: ...")]`, set
/// by build.rs, so it only gets here without the tool under CI=true (build.rs
/// then sets every cfg), with `--ignored`, or when the tool went away after
/// the build: then it fails, saying how to install it.
pub fn require_tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "'{name}' is not installed; the test tools are: \
                 sudo apt-get install -y $(cat .ci/packages) (.ci/run installs them in CI)"
            )
        })
}

pub fn media(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/media")
        .join(name)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// What `ffmpeg -v error -i F -f null -` prints: empty means decoder-clean.
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether ffprobe can open the file at all.
pub fn ffprobe_opens(path: &Path) -> bool {
    Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// ffprobe's container duration in seconds.
pub fn probe_duration(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(-1.0)
}

/// One stream as ffprobe sees it.
#[derive(Debug)]
pub struct StreamInfo {
    pub codec_type: String,
    pub start_time: f64,
    pub duration: f64,
}

pub fn probe_streams(path: &Path) -> Vec<StreamInfo> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,start_time,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some(StreamInfo {
                codec_type: f.first()?.to_string(),
                start_time: f.get(1)?.parse().unwrap_or(f64::NAN),
                duration: f.get(2)?.parse().unwrap_or(f64::NAN),
            })
        })
        .collect()
}

/// Whether the first video packet is a key frame.
pub fn first_video_packet_is_key(path: &Path) -> bool {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=flags",
            "-of",
            "csv=p=0",
            "-read_intervals",
            "%+#1",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .trim_start()
        .starts_with('K')
}

/// `mp4-fcgi cut`.
pub fn cut(input: &Path, output: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(BIN)
        .arg("cut")
        .arg(input)
        .arg(output)
        .args(args)
        .output()
        .expect("mp4-fcgi runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A running pool, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Pool {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Pool {
    /// Starts `mp4-fcgi --listen unix:DIR/pool.sock ARGS...` and waits until it accepts.
    pub fn start(args: &[&str]) -> Pool {
        Pool::start_env(args, &[])
    }

    /// [`Pool::start`] with environment variables set.
    pub fn start_env(args: &[&str], envs: &[(&str, &str)]) -> Pool {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("pool.sock");
        let log = dir.path().join("pool.log");
        let child = Command::new(BIN)
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .args(args)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("mp4-fcgi starts");
        let pool = Pool {
            child,
            dir,
            socket,
            log,
        };
        pool.wait_ready();
        pool
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "pool did not start: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// A counter from the status page (`--status-path /status` required).
    pub fn counter(&self, key: &str) -> u64 {
        let r = self
            .client()
            .get(Path::new("/"), "json", &[("SCRIPT_NAME", "/status")]);
        json_number(&r.text(), key)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn client(&self) -> Client<std::os::unix::net::UnixStream> {
        Client::new(std::os::unix::net::UnixStream::connect(&self.socket).expect("connect"))
    }

    /// The workers' pids (children of the master).
    pub fn workers(&self) -> Vec<i32> {
        children_of(self.pid())
    }

    /// Waits until the master has `n` workers; their pids.
    pub fn wait_workers(&self, n: usize) -> Vec<i32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let w = self.workers();
            if w.len() == n {
                return w;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} workers, have {w:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the master to exit; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGTERM);
            if self.wait_exit(Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// The number after `"key":` in the status page's JSON.
pub fn json_number(t: &str, key: &str) -> u64 {
    let tag = format!("\"{key}\":");
    let at = t
        .find(&tag)
        .unwrap_or_else(|| panic!("the status page has no \"{key}\": {t}"))
        + tag.len();
    t[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn children_of(pid: i32) -> Vec<i32> {
    let list =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    list.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

pub fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Waits until something accepts on 127.0.0.1:`port`.
pub fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child server stopped with SIGTERM (so it can stop its own children),
/// then SIGKILL, when dropped.
pub struct Stop(pub Child);

impl Drop for Stop {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(None) = self.0.try_wait() {
            if Instant::now() > deadline {
                let _ = self.0.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.wait();
    }
}

/// A deterministic PRNG for damage and load patterns.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A complete nginx.conf for tests: one worker (as root when we are root,
/// so it reads temp dirs), logs and temp paths under `dir`, `server_body`
/// inside a server listening on 127.0.0.1:`port`.
pub fn nginx_conf(dir: &Path, port: u16, http_extra: &str, server_body: &str) -> String {
    let d = dir.display();
    let user = if nix::unistd::Uid::effective().is_root() {
        "user root root;"
    } else {
        ""
    };
    format!(
        "{user}\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/b; fastcgi_temp_path {d}/f;\n\
          proxy_temp_path {d}/p; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;\n {http_extra}\n\
          server {{\n  listen 127.0.0.1:{port};\n  {server_body}\n }}\n}}\n"
    )
}

/// Starts nginx on `conf` in the foreground; stopped when dropped.
pub fn start_nginx(bin: &Path, dir: &Path, conf: &str, port: u16) -> Stop {
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(bin)
        .args(["-g", "daemon off;", "-p"])
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    wait_port(port);
    Stop(child)
}

/// Encodes `name` (20 s, key frame every `gop` frames at 25 fps) at `size`.
pub fn encode(dir: &Path, name: &str, size: &str, rate: &str, gop: u32) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=25:duration=20"))
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=20",
        ])
        .args([
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-pix_fmt", "yuv420p", "-sc_threshold", "0", "-b:v", rate])
        .arg("-g")
        .arg(gop.to_string())
        .args([
            "-keyint_min",
            &gop.to_string(),
            "-c:a",
            "aac",
            "-b:a",
            "48k",
        ])
        .arg(dir.join(name))
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An AV1 (libaom) and a VP9 (libvpx) film with Opus audio, as ffmpeg
/// writes them: `av1.mp4` and `vp9.mp4` in `dir`, `size` pixels,
/// `seconds` long, a key frame every second.
pub fn encode_av1_and_vp9(dir: &Path, size: &str, seconds: u32) {
    let films: [(&str, &[&str]); 2] = [
        (
            "av1.mp4",
            &["-c:v", "libaom-av1", "-cpu-used", "8", "-row-mt", "1"],
        ),
        (
            "vp9.mp4",
            &[
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
            ],
        ),
    ];
    for (name, codec) in films {
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={size}:rate=25:duration={seconds}"))
            .args(["-f", "lavfi", "-i"])
            .arg(format!(
                "sine=frequency=440:sample_rate=48000:duration={seconds}"
            ))
            .args(codec)
            .args(["-g", "25", "-b:v", "300k", "-c:a", "libopus", "-b:a", "48k"])
            .arg(dir.join(name))
            .output()
            .expect("ffmpeg runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
