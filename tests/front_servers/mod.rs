//! What the tests/front_servers_*.rs share.
#![allow(dead_code, unused_imports)]

use super::common::{Pool, media, require_tool};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod examples;
mod links;
mod names;
pub use links::*;
pub use names::*;

pub const STATUS: &str = "/mp4-fcgi-status";

pub fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("conf-examples")
            .join(name),
    )
    .unwrap()
}

/// Replaces `from` with `to`, failing if the example no longer has `from`.
pub fn sub(text: &mut String, from: &str, to: &str) {
    assert!(
        text.contains(from),
        "the example no longer contains '{from}'"
    );
    *text = text.replace(from, to);
}

/// A temp dir other users (the front servers' www-data) can enter.
pub fn open_tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), PermissionsExt::from_mode(0o755)).unwrap();
    d
}

/// A media folder with a clip (also as .m4v, .m4a and .mov), a file that is not
/// an MP4, and the clip in protected/ (also under a name with a space).
pub fn media_root() -> tempfile::TempDir {
    // Front servers' workers and the pool's --user may be other users.
    let d = open_tempdir();
    for name in ["a.mp4", "a.m4v", "a.m4a", "a.mov"] {
        std::fs::copy(media("a.mp4"), d.path().join(name)).unwrap();
    }
    std::fs::write(d.path().join("bad.mp4"), b"not a film at all").unwrap();
    std::fs::create_dir(d.path().join("protected")).unwrap();
    for name in ["a.mp4", "my film.mp4"] {
        std::fs::copy(media("a.mp4"), d.path().join("protected").join(name)).unwrap();
    }
    d
}

pub use super::common::{Stop as Server, wait_port};

pub struct Http {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

pub fn request(port: u16, method: &str, path: &str, extra: &str) -> Http {
    request_from(Ipv4Addr::LOCALHOST, port, method, path, extra)
}

/// A request to 127.0.0.1:`port` from the local address `from` (any of
/// 127.0.0.0/8 works without setup).
pub fn request_from(from: Ipv4Addr, port: u16, method: &str, path: &str, extra: &str) -> Http {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(from, 0)),
    )
    .unwrap();
    let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    connect(fd.as_raw_fd(), &SockaddrIn::from(to)).unwrap();
    let mut s = TcpStream::from(fd);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\n{extra}\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    Http {
        status: String::from_utf8_lossy(&all[9..12]).parse().unwrap(),
        headers: String::from_utf8_lossy(&all[..end]).to_lowercase(),
        body: all[end + 4..].to_vec(),
    }
}

/// The pool's request counter, from its status page at [`STATUS`] over its socket.
pub fn requests_seen(pool: &Pool) -> u64 {
    let t = pool
        .client()
        .get(Path::new("/"), "json", &[("SCRIPT_NAME", STATUS)])
        .text();
    super::common::json_number(&t, "requests")
}

/// HLS and DASH through the front server: the outputs reach the pool as
/// `PATH_INFO` and decode clean in ffmpeg, whole and as a clip.
pub fn check_packaged(port: u16) {
    for (path, kind) in [
        ("/a.mp4/master.m3u8", "application/vnd.apple.mpegurl"),
        ("/a.m4v/manifest.mpd?start=4&end=11", "application/dash+xml"),
        ("/a.mp4/init-1.mp4", "video/mp4"),
        ("/a.mov/seg-2-2.m4s", "video/iso.segment"),
    ] {
        let r = request(port, "GET", path, "");
        assert_eq!(r.status, 200, "{path}: {}", r.headers);
        assert!(
            r.headers.contains(&format!("content-type: {kind}")),
            "{path}: {}",
            r.headers
        );
    }
    for url in ["/a.mp4/master.m3u8", "/a.mp4/manifest.mpd?start=4&end=11"] {
        let url = format!("http://127.0.0.1:{port}{url}");
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i", &url, "-map", "0", "-f", "null", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let r = request(port, "GET", "/a.mp4/seg-99-1.m4s", "");
    assert_eq!(r.status, 404, "{}", r.headers);
}

/// A URL set through the front server: `/a,.mp4,.m4v,.urlset` is a.mp4 and a.m4v.
pub fn check_url_set(port: u16) {
    let r = request(port, "GET", "/a,.mp4,.m4v,.urlset/master.m3u8", "");
    assert_eq!(r.status, 200, "{}", r.headers);
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.contains("index-f1-1.m3u8") && text.contains("index-f2-1.m3u8"),
        "{text}"
    );
    let r = request(port, "GET", "/a,.mp4,.m4v,.urlset/seg-2-f2-2.m4s", "");
    assert_eq!(r.status, 200, "{}", r.headers);
}

/// The checks every front server must pass for a clip under `prefix`.
pub fn check_clips(port: u16, prefix: &str, dir: &Path) {
    check_clips_with(port, prefix, dir, true);
}

/// `head_length`: whether the front server keeps Content-Length on HEAD
/// (Apache drops it for proxied replies without a body).
pub fn check_clips_with(port: u16, prefix: &str, dir: &Path, head_length: bool) {
    let r = request(port, "GET", &format!("{prefix}/a.mp4?start=5.5&end=12"), "");
    assert_eq!(r.status, 200, "{}", r.headers);
    require_tool("ffmpeg");
    require_tool("ffprobe");
    let out = dir.join("clip.mp4");
    std::fs::write(&out, &r.body).unwrap();
    assert_eq!(super::common::decode_errors(&out), "");
    let d = super::common::probe_duration(&out);
    assert!((d - 6.5).abs() <= 0.041, "duration {d}");
    let head = request(
        port,
        "HEAD",
        &format!("{prefix}/a.mp4?start=5.5&end=12"),
        "",
    );
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    if head_length {
        assert!(
            head.headers
                .contains(&format!("content-length: {}", r.body.len())),
            "{}",
            head.headers
        );
    } else {
        let etag = |h: &str| {
            h.lines()
                .find(|l| l.starts_with("etag:"))
                .map(str::to_string)
        };
        assert!(etag(&head.headers).is_some());
        assert_eq!(
            etag(&head.headers),
            etag(&r.headers),
            "HEAD carries the clip's ETag"
        );
    }
    let range = request(
        port,
        "GET",
        &format!("{prefix}/a.mp4?start=5.5&end=12"),
        "Range: bytes=0-99\r\n",
    );
    assert_eq!((range.status, range.body.as_slice()), (206, &r.body[..100]));
    let missing = request(port, "GET", &format!("{prefix}/nope.mp4"), "");
    assert_eq!(missing.status, 404);
    assert!(String::from_utf8_lossy(&missing.body).contains("no such file"));
    let bad = request(port, "GET", &format!("{prefix}/a.mp4?start=abc"), "");
    assert_eq!(bad.status, 400);
    assert!(String::from_utf8_lossy(&bad.body).contains("not a number"));
    let not_mp4 = request(port, "GET", &format!("{prefix}/bad.mp4"), "");
    assert_eq!(not_mp4.status, 415);
    assert!(String::from_utf8_lossy(&not_mp4.body).contains("not an MP4"));
}

/// .m4v, .m4a and .mov go to the pool like .mp4: the same trimmed clip, not the
/// whole file as a static download.
pub fn check_extensions(port: u16) {
    let want = request(port, "GET", "/a.mp4?start=2&end=4", "");
    assert_eq!(want.status, 200);
    for ext in ["m4v", "m4a", "mov"] {
        let r = request(port, "GET", &format!("/a.{ext}?start=2&end=4"), "");
        assert_eq!(r.status, 200, ".{ext}: {}", r.headers);
        assert!(
            r.body == want.body,
            ".{ext}: {} bytes, not the pool's {}-byte clip",
            r.body.len(),
            want.body.len()
        );
    }
}

/// The pool's status page through the front server answers 127.0.0.1. From
/// 127.0.0.2 (loopback too, but not on the examples' allow lists) it is refused
/// however the path is spelled, and the pool never sees those requests.
pub fn check_status_page(port: u16, pool: Option<&Pool>) {
    let ok = request(port, "GET", &format!("{STATUS}?json"), "");
    assert_eq!(ok.status, 200, "{}", ok.headers);
    let text = String::from_utf8_lossy(&ok.body);
    assert!(text.contains("\"requests\":"), "{text}");
    let seen = pool.map(requests_seen);
    let other = Ipv4Addr::new(127, 0, 0, 2);
    let r = request_from(other, port, "GET", STATUS, "");
    assert_eq!(r.status, 403, "{STATUS} from {other}");
    for path in [
        "/mp4-fcgi-status?json",
        "//mp4-fcgi-status",
        "/./mp4-fcgi-status",
        "/x/../mp4-fcgi-status",
        "/%6dp4-fcgi-status",
        "/mp4-fcgi-status/",
        "/mp4-fcgi-status/x",
        "http://localhost/mp4-fcgi-status",
    ] {
        let r = request_from(other, port, "GET", path, "");
        assert!(
            matches!(r.status, 403 | 404),
            "{path} from {other}: {}",
            r.status
        );
    }
    if let (Some(pool), Some(seen)) = (pool, seen) {
        assert_eq!(
            requests_seen(pool),
            seen + 1,
            "only our own counter read reached the pool"
        );
    }
}

/// The test starts servers as root that drop to www-data and nobody. CI runs
/// as root; elsewhere build.rs leaves `is_root` unset and the test is ignored.
pub fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the test starts the pool as root with --user: run it as root (CI does)"
    );
}

/// The shell command in the example's header comment that starts with `start`,
/// continuation lines joined.
pub fn header_command(text: &str, start: &str) -> String {
    let comments: Vec<&str> = text
        .lines()
        .map_while(|l| l.strip_prefix('#'))
        .map(str::trim)
        .collect();
    let first = comments
        .iter()
        .position(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("the example's header has no '{start} ...' command"));
    let mut cmd = String::new();
    for line in &comments[first..] {
        match line.strip_suffix('\\') {
            Some(part) => cmd.push_str(part),
            None => {
                cmd.push_str(line);
                break;
            }
        }
    }
    cmd.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The example's header commands with /run/mp4-fcgi moved under a temp dir
/// and /srv/videos the media folder: `install -d ...` has made the socket's
/// folder, `pool` is the `mp4-fcgi --listen ...` line to run as root.
pub struct AsDocumented {
    pub _tmp: tempfile::TempDir,
    pub socket: PathBuf,
    pub pool: String,
}

pub fn as_documented(example: &str, media: &Path) -> AsDocumented {
    let tmp = open_tempdir();
    let run = format!("{}/run/mp4-fcgi", tmp.path().display());
    let install = header_command(example, "install -d").replace("/run/mp4-fcgi", &run);
    let out = Command::new("sh").args(["-c", &install]).output().unwrap();
    assert!(
        out.status.success(),
        "{install}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = header_command(example, "mp4-fcgi --listen")
        .replace("/run/mp4-fcgi", &run)
        .replace("/srv/videos", media.to_str().unwrap());
    let socket = pool
        .split_whitespace()
        .find_map(|w| w.strip_prefix("unix:"))
        .expect("--listen unix:...")
        .into();
    AsDocumented {
        _tmp: tmp,
        socket,
        pool,
    }
}

/// `cmd` without `flag`, which it must have.
pub fn without(cmd: &str, flag: &str) -> String {
    assert!(cmd.contains(flag), "'{cmd}' has no '{flag}'");
    cmd.replace(flag, "")
}

/// Starts `cmd` (an `mp4-fcgi ...` line, run as we are: root) with one worker.
pub fn start_documented_pool(cmd: &str, socket: &Path) -> Pool {
    let mut words = cmd.split_whitespace();
    assert_eq!(words.next(), Some("mp4-fcgi"), "{cmd}");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pool.log");
    let child = Command::new(super::common::BIN)
        .args(words)
        .args(["--workers", "1"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pool = Pool {
        child,
        dir,
        socket: socket.to_path_buf(),
        log,
    };
    pool.wait_ready();
    // The socket accepts as soon as it is bound, before its mode and group are
    // set and the pool drops to --user; a worker's answer comes after all three.
    requests_seen(&pool);
    pool
}

/// The pool as the example's header starts it: the socket is root:www-data
/// 660 in a root:www-data 750 folder, the worker runs as nobody and the
/// master stays root (as nginx's and php-fpm's do).
pub fn check_documented_pool(pool: &Pool) {
    let www = nix::unistd::Group::from_name("www-data")
        .unwrap()
        .expect("a www-data group");
    let meta = std::fs::metadata(&pool.socket).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (0, www.gid.as_raw(), 0o660),
        "the socket"
    );
    let run = std::fs::metadata(pool.socket.parent().unwrap()).unwrap();
    assert_eq!(
        (run.uid(), run.gid(), run.mode() & 0o777),
        (0, www.gid.as_raw(), 0o750),
        "the socket's folder"
    );
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid;
    let master = (pool.pid(), 0);
    for (pid, who) in std::iter::once(master).chain(
        pool.wait_workers(1)
            .into_iter()
            .map(|w| (w, nobody.as_raw())),
    ) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .unwrap()
            .split_whitespace()
            .map(|u| u.parse::<u32>().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(uid, [who; 4], "pid {pid}'s user");
    }
}

/// Restarts the pool without `--socket-group` and `--socket-mode`: the front
/// server, as www-data, then cannot connect and answers `want` (502 or 503)
/// without the pool seeing the request.
pub fn check_without_socket_flags(doc: &AsDocumented, pool: Pool, port: u16, want: u16) {
    drop(pool);
    let bare = without(
        &without(&doc.pool, " --socket-group www-data"),
        " --socket-mode 660",
    );
    let pool = start_documented_pool(&bare, &doc.socket);
    let seen = requests_seen(&pool);
    let r = request(port, "GET", "/a.mp4?start=2&end=4", "");
    assert_eq!(r.status, want, "{}", r.headers);
    assert_eq!(requests_seen(&pool), seen + 1, "the pool saw nothing");
}
