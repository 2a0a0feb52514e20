//! conf-examples/ exercised against the real front servers: each example is
//! templated into a temp dir (paths, port) and must serve trimmed clips, HEAD,
//! Range, errors with their bodies, the same four extensions, the pool's status
//! page to this machine only, and refuse bad links (and the protected files by
//! any other URL) before the pool. The `*_as_debian_runs_it` tests start the
//! pool with the command in the example's header, the front server as www-data.

mod common;

use common::{Pool, media, require_tool};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The status page's path in every example (and the systemd unit).
const STATUS: &str = "/mp4-fcgi-status";

fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("conf-examples")
            .join(name),
    )
    .unwrap()
}

/// Replaces `from` with `to`, failing if the example no longer has `from`.
fn sub(text: &mut String, from: &str, to: &str) {
    assert!(
        text.contains(from),
        "the example no longer contains '{from}'"
    );
    *text = text.replace(from, to);
}

/// A temp dir other users (the front servers' www-data) can enter.
fn open_tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), PermissionsExt::from_mode(0o755)).unwrap();
    d
}

/// A media folder with a clip (also as .m4v, .m4a and .mov), a file that is not
/// an MP4, and the clip in protected/ (also under a name with a space).
fn media_root() -> tempfile::TempDir {
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

use common::{Stop as Server, wait_port};

struct Http {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

fn request(port: u16, method: &str, path: &str, extra: &str) -> Http {
    request_from(Ipv4Addr::LOCALHOST, port, method, path, extra)
}

/// A request to 127.0.0.1:`port` from the local address `from` (any of
/// 127.0.0.0/8 works without setup).
fn request_from(from: Ipv4Addr, port: u16, method: &str, path: &str, extra: &str) -> Http {
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
fn requests_seen(pool: &Pool) -> u64 {
    let t = pool
        .client()
        .get(Path::new("/"), "json", &[("SCRIPT_NAME", STATUS)])
        .text();
    common::json_number(&t, "requests")
}

/// HLS and DASH through the front server: the outputs reach the pool as
/// `PATH_INFO` and decode clean in ffmpeg, whole and as a clip.
fn check_packaged(port: u16) {
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
fn check_url_set(port: u16) {
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
fn check_clips(port: u16, prefix: &str, dir: &Path) {
    check_clips_with(port, prefix, dir, true);
}

/// `head_length`: whether the front server keeps Content-Length on HEAD
/// (Apache drops it for proxied replies without a body).
fn check_clips_with(port: u16, prefix: &str, dir: &Path, head_length: bool) {
    let r = request(port, "GET", &format!("{prefix}/a.mp4?start=5.5&end=12"), "");
    assert_eq!(r.status, 200, "{}", r.headers);
    require_tool("ffmpeg");
    require_tool("ffprobe");
    let out = dir.join("clip.mp4");
    std::fs::write(&out, &r.body).unwrap();
    assert_eq!(common::decode_errors(&out), "");
    let d = common::probe_duration(&out);
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
fn check_extensions(port: u16) {
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
fn check_status_page(port: u16, pool: Option<&Pool>) {
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

/// URLs that name protected/a.mp4 (or would, on a case-insensitive
/// filesystem) without a link.
const DIRECT: &[&str] = &[
    "/protected/a.mp4",
    "/protected/a.mp4?start=30",
    "/protected/a.mp4?start=3&end=6",
    "/protected/",
    "/protected",
    "//protected/a.mp4",
    "/protected//a.mp4",
    "/./protected/a.mp4",
    "/protected/./a.mp4",
    "/x/../protected/a.mp4",
    "/a.mp4/../protected/a.mp4",
    "/dl/../protected/a.mp4",
    "/protected/../protected/a.mp4",
    "/%70rotected/a.mp4",
    "/%70%72%6F%74%65%63%74%65%64/%61.mp4",
    "/%2Fprotected/a.mp4",
    "/protected%2Fa.mp4",
    "/%2e/protected/a.mp4",
    "/protected/a.mp4%3Fstart=30",
    "/Protected/a.mp4",
    "/PROTECTED/a.mp4?start=30",
    "/protected/a.m4v",
    "/protected/my%20film.mp4",
    "http://localhost/protected/a.mp4",
    "/%50rotected/a.mp4",
    "/protected/a.mp4;x=1",
    "/protected/%2e%2e/protected/a.mp4",
    "/protected/a.mp4/master.m3u8",
    "/Protected/a.mp4/seg-1-1.m4s",
];

/// Spellings a server may also reject as malformed (400): above the root, a NUL.
const DIRECT_OR_MALFORMED: &[&str] = &[
    "/../protected/a.mp4",
    "/%2e%2e/protected/a.mp4",
    "/protected/a.mp4%00",
];

/// Every spelling in [`DIRECT`] (and `extra`) is refused by the front server
/// itself: 403, and the pool's counter shows none of them reached it.
fn check_protected_folder(port: u16, pool: &Pool, extra: &[&str]) {
    let seen = requests_seen(pool);
    for path in DIRECT_OR_MALFORMED {
        let r = request(port, "GET", path, "");
        assert!(matches!(r.status, 400 | 403), "{path}: {}", r.headers);
    }
    for path in DIRECT.iter().chain(extra) {
        for method in ["GET", "HEAD"] {
            let r = request(port, method, path, "");
            // nginx sends the folder's bare name to the folder (auto_redirect).
            if *path == "/protected" && r.status == 301 {
                let to = r.headers.lines().find(|l| l.starts_with("location:"));
                assert!(
                    to.is_some_and(|l| l.ends_with("/protected/")),
                    "{}",
                    r.headers
                );
                continue;
            }
            assert_eq!(r.status, 403, "{method} {path}: {}", r.headers);
        }
    }
    assert_eq!(
        requests_seen(pool),
        seen + 1,
        "only our own counter read reached the pool"
    );
}

/// The shell link generator refuses a path it would have to percent-encode
/// (exit 2), rather than make a link that does not match.
fn shell_link_refuses(script: &str, path: &str) {
    let refused = Command::new("sh")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("conf-examples/links")
                .join(script),
        )
        .arg(path)
        .env("MP4_LINK_SECRET", "change-this-secret")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{script} refuses {path:?}");
}

/// Runs a link generator from conf-examples/links/ with MP4_LINK_SECRET=`secret`.
fn generate(script: &str, secret: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conf-examples/links")
        .join(script);
    let runner = if script.ends_with(".py") {
        "python3"
    } else {
        "sh"
    };
    let out = Command::new(runner)
        .arg(&path)
        .args(args)
        .env("MP4_LINK_SECRET", secret)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn python(code: &str, arg: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", code, arg])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The test starts servers as root that drop to www-data and nobody. CI runs
/// as root; elsewhere build.rs leaves `is_root` unset and the test is ignored.
fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the test starts the pool as root with --user: run it as root (CI does)"
    );
}

/// The shell command in the example's header comment that starts with `start`,
/// continuation lines joined.
fn header_command(text: &str, start: &str) -> String {
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
struct AsDocumented {
    _tmp: tempfile::TempDir,
    socket: PathBuf,
    pool: String,
}

fn as_documented(example: &str, media: &Path) -> AsDocumented {
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
fn without(cmd: &str, flag: &str) -> String {
    assert!(cmd.contains(flag), "'{cmd}' has no '{flag}'");
    cmd.replace(flag, "")
}

/// Starts `cmd` (an `mp4-fcgi ...` line, run as we are: root) with one worker.
fn start_documented_pool(cmd: &str, socket: &Path) -> Pool {
    let mut words = cmd.split_whitespace();
    assert_eq!(words.next(), Some("mp4-fcgi"), "{cmd}");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pool.log");
    let child = Command::new(common::BIN)
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
/// 660 in a root:www-data 750 folder, and master and worker run as nobody.
fn check_documented_pool(pool: &Pool) {
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
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    for pid in std::iter::once(pool.pid()).chain(pool.wait_workers(1)) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .unwrap()
            .split_whitespace()
            .map(|u| u.parse::<u32>().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(uid, [nobody.uid.as_raw(); 4], "pid {pid} runs as nobody");
    }
}

/// Restarts the pool without `--socket-group` and `--socket-mode`: the front
/// server, as www-data, then cannot connect and answers `want` (502 or 503)
/// without the pool seeing the request.
fn check_without_socket_flags(doc: &AsDocumented, pool: Pool, port: u16, want: u16) {
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

/// nginx.conf from the example, its paths under `dir`, listening on
/// 127.0.0.1:`port`. `as_debian`: keep its `user www-data;`; else, as root,
/// the workers run as root and reach sockets in private temp dirs.
fn nginx_conf(dir: &Path, port: u16, root: &Path, socket: &Path, as_debian: bool) -> String {
    let d = dir.display();
    let mut conf = example("nginx.conf");
    if !as_debian {
        let user = if nix::unistd::Uid::effective().is_root() {
            "user root root;"
        } else {
            ""
        };
        sub(&mut conf, "user www-data;", user);
    }
    sub(&mut conf, "worker_processes auto;", "worker_processes 1;");
    sub(
        &mut conf,
        "pid /run/nginx.pid;",
        &format!("pid {d}/nginx.pid;"),
    );
    sub(
        &mut conf,
        "error_log /var/log/nginx/error.log;",
        &format!("error_log {d}/error.log;"),
    );
    let temps = format!(
        "access_log off; client_body_temp_path {d}/b; fastcgi_temp_path {d}/f; proxy_temp_path {d}/p; \
         uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;"
    );
    sub(&mut conf, "access_log /var/log/nginx/access.log;", &temps);
    sub(
        &mut conf,
        "/run/mp4-fcgi/mp4-fcgi.sock",
        &socket.display().to_string(),
    );
    sub(
        &mut conf,
        "listen 80;",
        &format!("listen 127.0.0.1:{port};"),
    );
    sub(&mut conf, "/srv/videos", &root.display().to_string());
    conf
}

/// The nginx example in front of a pool of one worker.
struct NginxExample {
    port: u16,
    _nginx: Server,
    pool: Pool,
    dir: tempfile::TempDir,
    _root: tempfile::TempDir,
}

fn start_nginx_example() -> NginxExample {
    let nginx = require_tool("nginx");
    let root = media_root();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--status-path",
        STATUS,
        "--socket-mode",
        "666",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let conf = nginx_conf(dir.path(), port, root.path(), &pool.socket, false);
    let nginx = common::start_nginx(&nginx, dir.path(), &conf, port);
    NginxExample {
        port,
        _nginx: nginx,
        pool,
        dir,
        _root: root,
    }
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_python3, has_ffmpeg, has_ffprobe)),
    ignore = "needs nginx, python3, ffmpeg, ffprobe: apt-get install -y nginx python3 ffmpeg"
)]
fn nginx_example() {
    require_tool("python3");
    let x = start_nginx_example();
    let (port, pool) = (x.port, &x.pool);
    check_clips(port, "", x.dir.path());
    check_extensions(port);
    check_status_page(port, Some(pool));
    check_packaged(port);
    check_url_set(port);

    // secure_link in front: the pool never sees refused links.
    let token = |expires: u64| {
        python(
            "import base64,hashlib,sys;print(base64.urlsafe_b64encode(hashlib.md5(sys.argv[1].encode()).digest()).decode().rstrip('='))",
            &format!("{expires}/protected/a.mp4 change-this-secret"),
        )
    };
    let later = now() + 600;
    let ok = request(
        port,
        "GET",
        &format!(
            "/protected/a.mp4?md5={}&expires={later}&start=3",
            token(later)
        ),
        "",
    );
    assert_eq!(ok.status, 200);
    let seen = requests_seen(pool);
    let bare = request(port, "GET", "/protected/a.mp4", "");
    assert_eq!(bare.status, 403, "no link, no clip");
    let bad = request(
        port,
        "GET",
        &format!("/protected/a.mp4?md5=AAAA{}&expires={later}", token(later)),
        "",
    );
    assert_eq!(bad.status, 403);
    let past = now() - 600;
    let old = request(
        port,
        "GET",
        &format!("/protected/a.mp4?md5={}&expires={past}", token(past)),
        "",
    );
    assert_eq!(old.status, 410);
    assert_eq!(
        requests_seen(pool),
        seen + 1,
        "only the status request itself reached the pool"
    );
}

#[test]
#[cfg_attr(not(has_nginx), ignore = "needs nginx: apt-get install -y nginx")]
fn nginx_protected_folder_refuses_every_other_spelling() {
    let x = start_nginx_example();
    check_protected_folder(x.port, &x.pool, &[]);
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_python3, has_md5sum, has_basenc)),
    ignore = "needs nginx, python3, md5sum, basenc: apt-get install -y nginx python3 coreutils"
)]
fn nginx_link_generators_make_links_nginx_accepts() {
    require_tool("python3");
    require_tool("md5sum");
    require_tool("basenc");
    let x = start_nginx_example();
    let port = x.port;
    for script in ["nginx-link.sh", "nginx_link.py"] {
        let link = generate(script, "change-this-secret", &["/protected/a.mp4"]);
        let expires: u64 = link.rsplit("expires=").next().unwrap().parse().unwrap();
        assert!(
            expires.abs_diff(now() + 3600) <= 5,
            "{script}: expires is the expiry time, now + 3600 s: {link}"
        );
        let r = request(port, "GET", &format!("{link}&start=3&end=6"), "");
        assert_eq!((r.status, &r.body[4..8]), (200, &b"ftyp"[..]), "{link}");
        let seen = requests_seen(&x.pool);
        let wrong = generate(script, "not-the-secret", &["/protected/a.mp4"]);
        assert_eq!(request(port, "GET", &wrong, "").status, 403, "{wrong}");
        let expired = generate(script, "change-this-secret", &["/protected/a.mp4", "-600"]);
        assert_eq!(request(port, "GET", &expired, "").status, 410, "{expired}");
        assert_eq!(requests_seen(&x.pool), seen + 1, "refused before the pool");
    }
    // A name that needs percent-encoding: the token covers the decoded path.
    let link = generate(
        "nginx_link.py",
        "change-this-secret",
        &["/protected/my film.mp4"],
    );
    assert!(link.starts_with("/protected/my%20film.mp4?"), "{link}");
    assert_eq!(request(port, "GET", &link, "").status, 200, "{link}");
    shell_link_refuses("nginx-link.sh", "/protected/my film.mp4");
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_ffmpeg, has_ffprobe, is_root)),
    ignore = "needs root, nginx, ffmpeg, ffprobe (it starts the pool as root with --user): run as root; apt-get install -y nginx ffmpeg"
)]
fn nginx_example_as_debian_runs_it() {
    let nginx = require_tool("nginx");
    require_root();
    let root = media_root();
    let text = example("nginx.conf");
    let doc = as_documented(&text, root.path());
    let pool = start_documented_pool(&doc.pool, &doc.socket);
    check_documented_pool(&pool);
    let dir = open_tempdir();
    let port = common::free_port();
    let conf = nginx_conf(dir.path(), port, root.path(), &doc.socket, true);
    assert!(conf.contains("user www-data;"));
    let _nginx = common::start_nginx(&nginx, dir.path(), &conf, port);
    check_clips(port, "", dir.path());
    check_status_page(port, Some(&pool));
    check_without_socket_flags(&doc, pool, port, 502);
}

/// lighttpd.conf from the example, its paths (and secdownload.lua) under `dir`,
/// listening on 127.0.0.1:`port`. `as_debian`: keep its www-data user.
fn lighttpd_conf(dir: &Path, port: u16, root: &Path, socket: &Path, as_debian: bool) -> String {
    let d = dir.display();
    let mut conf = example("lighttpd.conf");
    sub(
        &mut conf,
        "server.port = 80",
        &format!("server.port = {port}\nserver.bind = \"127.0.0.1\""),
    );
    if !as_debian {
        sub(&mut conf, "server.username = \"www-data\"\n", "");
        sub(&mut conf, "server.groupname = \"www-data\"\n", "");
    }
    sub(&mut conf, "/run/lighttpd.pid", &format!("{d}/lighttpd.pid"));
    sub(
        &mut conf,
        "/var/log/lighttpd/error.log",
        &format!("{d}/error.log"),
    );
    // lighttpd reads the script per request, as its own user.
    let lua = dir.join("secdownload.lua");
    std::fs::write(&lua, example("secdownload.lua")).unwrap();
    sub(
        &mut conf,
        "/etc/lighttpd/secdownload.lua",
        &lua.display().to_string(),
    );
    sub(
        &mut conf,
        "/run/mp4-fcgi/mp4-fcgi.sock",
        &socket.display().to_string(),
    );
    sub(&mut conf, "/srv/videos", &root.display().to_string());
    conf
}

/// Switches the lighttpd example from its first form to form `n`.
fn use_form(conf: &mut String, n: u32) {
    let span = |conf: &str, n: u32| {
        let start = conf.find(&format!("## form {n} begin")).unwrap();
        let end = conf.find(&format!("## form {n} end")).unwrap();
        start..end
    };
    let form1 = span(conf, 1);
    let off: String = conf[form1.clone()]
        .lines()
        .map(|l| format!("#{l}\n"))
        .collect();
    conf.replace_range(form1, &off);
    let form = span(conf, n);
    let on: String = conf[form.clone()]
        .lines()
        .map(|l| {
            format!(
                "{}\n",
                l.strip_prefix('#')
                    .filter(|_| !l.starts_with("##"))
                    .unwrap_or(l)
            )
        })
        .collect();
    conf.replace_range(form, &on);
}

fn start_lighttpd(bin: &Path, dir: &Path, conf: String, port: u16) -> Server {
    std::fs::write(dir.join("lighttpd.conf"), conf).unwrap();
    let s = Server(
        Command::new(bin)
            .arg("-D")
            .arg("-f")
            .arg(dir.join("lighttpd.conf"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    s
}

/// The lighttpd example (form 1, secdownload.lua in front) and a pool of one worker.
struct LighttpdExample {
    port: u16,
    _server: Server,
    pool: Pool,
    dir: tempfile::TempDir,
    _root: tempfile::TempDir,
}

fn start_lighttpd_example() -> LighttpdExample {
    let lighttpd = require_tool("lighttpd");
    assert!(
        Path::new("/usr/lib/lighttpd/mod_magnet.so").exists() || std::env::var("CI").is_err(),
        "mod_magnet (lighttpd-modules-lua) is required in CI"
    );
    let root = media_root();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--status-path",
        STATUS,
        "--socket-mode",
        "666",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let conf = lighttpd_conf(dir.path(), port, root.path(), &pool.socket, false);
    let server = start_lighttpd(&lighttpd, dir.path(), conf, port);
    LighttpdExample {
        port,
        _server: server,
        pool,
        dir,
        _root: root,
    }
}

/// secdownload.lua's token for `path` (inside protected/) and `hex`.
fn lighttpd_token(path: &str, hex: &str) -> String {
    let out = Command::new("sh")
        .args([
            "-c",
            &format!("printf '%s' 'change-this-secret{path}{hex}' | md5sum"),
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..32].to_string()
}

#[test]
#[cfg_attr(
    not(all(has_lighttpd, has_md5sum, has_ffmpeg, has_ffprobe)),
    ignore = "needs lighttpd, md5sum, ffmpeg, ffprobe: apt-get install -y lighttpd lighttpd-modules-lua coreutils ffmpeg"
)]
fn lighttpd_example_with_secdownload() {
    require_tool("md5sum");
    let x = start_lighttpd_example();
    let (port, pool) = (x.port, &x.pool);
    check_clips(port, "", x.dir.path());
    check_extensions(port);
    check_status_page(port, Some(pool));
    check_packaged(port);

    let hex = format!("{:08x}", now());
    let ok = request(
        port,
        "GET",
        &format!(
            "/dl/{}/{hex}/a.mp4?start=3&end=6",
            lighttpd_token("/a.mp4", &hex)
        ),
        "",
    );
    assert_eq!(ok.status, 200);
    assert_eq!(
        &ok.body[4..8],
        b"ftyp",
        "the pool answered the rewritten request"
    );
    let seen = requests_seen(pool);
    let bad = request(
        port,
        "GET",
        &format!(
            "/dl/0000{}/{hex}/a.mp4",
            &lighttpd_token("/a.mp4", &hex)[4..]
        ),
        "",
    );
    assert_eq!(bad.status, 403);
    let old_hex = format!("{:08x}", now() - 7200);
    let old = request(
        port,
        "GET",
        &format!("/dl/{}/{old_hex}/a.mp4", lighttpd_token("/a.mp4", &old_hex)),
        "",
    );
    assert_eq!(old.status, 410);
    assert_eq!(
        requests_seen(pool),
        seen + 1,
        "refused links never reached the pool"
    );
}

#[test]
#[cfg_attr(
    not(all(has_lighttpd, has_md5sum)),
    ignore = "needs lighttpd, md5sum: apt-get install -y lighttpd lighttpd-modules-lua coreutils"
)]
fn lighttpd_protected_folder_refuses_every_other_spelling() {
    require_tool("md5sum");
    let x = start_lighttpd_example();
    // A good link, bent: other paths, the token or time mangled, dot segments.
    let hex = format!("{:08x}", now());
    let token = lighttpd_token("/a.mp4", &hex);
    let bent = [
        format!("/dl/{token}/{hex}/a.mp4/"),
        format!("/dl/{token}/{hex}/./a.mp4/../b.mp4"),
        format!("/dl/{token}/{hex}/../a.mp4"),
        format!("/dl/{token}/{hex}//a.mp4x"),
        format!("/dl/{token}/{hex}"),
        format!("/dl/{token}/0{hex}/a.mp4"),
        format!("/dl/{token}0/{hex}/a.mp4"),
        format!("/DL/{token}/{hex}/a.mp4"),
        format!("/dl/{token}/{hex}/protected/a.mp4"),
        "/dl/".to_string(),
        "/dl".to_string(),
    ];
    let bent: Vec<&str> = bent.iter().map(String::as_str).collect();
    check_protected_folder(x.port, &x.pool, &bent);
    // The link itself still opens.
    let r = request(x.port, "GET", &format!("/dl/{token}/{hex}/a.mp4"), "");
    assert_eq!(r.status, 200);
}

#[test]
#[cfg_attr(
    not(all(has_lighttpd, has_python3, has_md5sum)),
    ignore = "needs lighttpd, python3, md5sum: apt-get install -y lighttpd lighttpd-modules-lua python3 coreutils"
)]
fn lighttpd_link_generators_make_links_secdownload_accepts() {
    require_tool("python3");
    require_tool("md5sum");
    let x = start_lighttpd_example();
    let port = x.port;
    let at = |t: u64| t.to_string();
    for script in ["lighttpd-link.sh", "lighttpd_link.py"] {
        let link = generate(script, "change-this-secret", &["/a.mp4"]);
        let r = request(port, "GET", &format!("{link}?start=3&end=6"), "");
        assert_eq!((r.status, &r.body[4..8]), (200, &b"ftyp"[..]), "{link}");
        // hex-time is the creation time: made 30 minutes ago, still open.
        let made = generate(script, "change-this-secret", &["/a.mp4", &at(now() - 1800)]);
        assert_eq!(request(port, "GET", &made, "").status, 200, "{made}");
        let seen = requests_seen(&x.pool);
        let wrong = generate(script, "not-the-secret", &["/a.mp4"]);
        assert_eq!(request(port, "GET", &wrong, "").status, 403, "{wrong}");
        let old = generate(script, "change-this-secret", &["/a.mp4", &at(now() - 7200)]);
        assert_eq!(request(port, "GET", &old, "").status, 410, "{old}");
        assert_eq!(requests_seen(&x.pool), seen + 1, "refused before the pool");
    }
    // Both make the same link for the same time.
    let t = at(now());
    assert_eq!(
        generate("lighttpd-link.sh", "s", &["/a.mp4", &t]),
        generate("lighttpd_link.py", "s", &["/a.mp4", &t])
    );
    // A name that needs percent-encoding: the token covers the decoded path.
    let link = generate("lighttpd_link.py", "change-this-secret", &["/my film.mp4"]);
    assert!(link.ends_with("/my%20film.mp4"), "{link}");
    assert_eq!(request(port, "GET", &link, "").status, 200, "{link}");
    shell_link_refuses("lighttpd-link.sh", "/my film.mp4");
}

#[test]
#[cfg_attr(
    not(all(has_lighttpd, has_ffmpeg, has_ffprobe, is_root)),
    ignore = "needs root, lighttpd, ffmpeg, ffprobe (it starts the pool as root with --user): run as root; apt-get install -y lighttpd lighttpd-modules-lua ffmpeg"
)]
fn lighttpd_example_as_debian_runs_it() {
    let lighttpd = require_tool("lighttpd");
    require_root();
    let root = media_root();
    let text = example("lighttpd.conf");
    let doc = as_documented(&text, root.path());
    let pool = start_documented_pool(&doc.pool, &doc.socket);
    check_documented_pool(&pool);
    let dir = open_tempdir();
    // lighttpd opens its error log as www-data, like Debian's /var/log/lighttpd.
    let www = nix::unistd::User::from_name("www-data").unwrap().unwrap();
    nix::unistd::chown(dir.path(), Some(www.uid), Some(www.gid)).unwrap();
    let port = common::free_port();
    let conf = lighttpd_conf(dir.path(), port, root.path(), &doc.socket, true);
    assert!(conf.contains("server.username = \"www-data\""));
    let _server = start_lighttpd(&lighttpd, dir.path(), conf, port);
    check_clips(port, "", dir.path());
    check_status_page(port, Some(&pool));
    check_without_socket_flags(&doc, pool, port, 503);
}

#[test]
#[cfg_attr(
    not(all(has_lighttpd, has_ffmpeg, has_ffprobe)),
    ignore = "needs lighttpd, ffmpeg, ffprobe: apt-get install -y lighttpd lighttpd-modules-lua ffmpeg"
)]
fn lighttpd_example_offloading_with_x_sendfile2() {
    let lighttpd = require_tool("lighttpd");
    let root = media_root();
    let dir = tempfile::tempdir().unwrap();
    let offload = dir.path().join("offload");
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--socket-mode",
        "666",
        "--status-path",
        STATUS,
        "--offload",
        "x-sendfile2",
        "--offload-dir",
        offload.to_str().unwrap(),
    ]);
    let port = common::free_port();
    let mut conf = lighttpd_conf(dir.path(), port, root.path(), &pool.socket, false);
    use_form(&mut conf, 3);
    sub(
        &mut conf,
        "/var/cache/mp4-fcgi",
        &offload.display().to_string(),
    );
    let _server = start_lighttpd(&lighttpd, dir.path(), conf, port);
    check_clips(port, "", dir.path());

    // Byte for byte what `cut` writes, whole and in ranges, sent by lighttpd
    // from the header file and the film.
    let want = dir.path().join("want.mp4");
    common::cut(
        &root.path().join("a.mp4"),
        &want,
        &["--start", "10.5", "--end", "20"],
    )
    .unwrap();
    let want = std::fs::read(&want).unwrap();
    let r = request(port, "GET", "/a.mp4?start=10.5&end=20", "");
    assert_eq!(r.status, 200);
    assert!(r.body == want, "offloaded clip differs from `cut`");
    assert!(
        r.headers
            .contains(&format!("content-length: {}", want.len())),
        "{}",
        r.headers
    );
    assert!(!r.headers.contains("x-sendfile2"), "lighttpd consumed it");
    let half = want.len() / 2;
    for (range, lo, hi) in [
        ("bytes=0-99".to_string(), 0, 100),
        (format!("bytes=1000-{half}"), 1000, half + 1),
        ("bytes=-5000".to_string(), want.len() - 5000, want.len()),
    ] {
        let r = request(
            port,
            "GET",
            "/a.mp4?start=10.5&end=20",
            &format!("Range: {range}\r\n"),
        );
        assert_eq!(r.status, 206, "{range}");
        assert!(r.body == want[lo..hi], "{range}: bytes differ");
    }
    // Header files are written by a chore off the event loop: the last
    // window's may land a moment after its answers.
    let headers = || -> Vec<String> {
        std::fs::read_dir(&offload)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("mp4fcgi-"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while headers().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let headers = headers();
    assert_eq!(
        headers.len(),
        2,
        "one header file per window (5.5-12 and 10.5-20): {headers:?}"
    );
    check_extensions(port);
    check_status_page(port, Some(&pool));
}

#[test]
#[cfg_attr(
    not(all(has_lighttpd, has_ffmpeg, has_ffprobe)),
    ignore = "needs lighttpd, ffmpeg, ffprobe: apt-get install -y lighttpd lighttpd-modules-lua ffmpeg"
)]
fn lighttpd_example_spawning_the_pool_with_bin_path() {
    let lighttpd = require_tool("lighttpd");
    let root = media_root();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let socket: PathBuf = dir.path().join("spawned.sock");
    let mut conf = lighttpd_conf(
        dir.path(),
        port,
        root.path(),
        Path::new("/unused.sock"),
        false,
    );
    use_form(&mut conf, 2);
    sub(
        &mut conf,
        "/run/lighttpd/mp4-fcgi.sock",
        &socket.display().to_string(),
    );
    sub(
        &mut conf,
        "/usr/local/bin/mp4-fcgi --root /",
        &format!("{} --workers 1 --root /", common::BIN),
    );
    let _server = start_lighttpd(&lighttpd, dir.path(), conf, port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = request(port, "GET", "/a.mp4?start=2&end=4", "");
        if r.status == 200 {
            assert_eq!(&r.body[4..8], b"ftyp");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "spawned pool never answered: {}",
            r.status
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    check_clips(port, "", dir.path());
    check_extensions(port);
    check_status_page(port, None);
}

/// Apache with the example as its only site, listening on 127.0.0.1:`port`;
/// its children run as www-data when we are root.
fn start_apache(bin: &Path, dir: &Path, port: u16, root: &Path, socket: &Path) -> Server {
    let d = dir.display();
    let mut site = example("apache.conf");
    sub(
        &mut site,
        "<VirtualHost *:80>",
        &format!("<VirtualHost 127.0.0.1:{port}>"),
    );
    sub(
        &mut site,
        "/run/mp4-fcgi/mp4-fcgi.sock",
        &socket.display().to_string(),
    );
    sub(&mut site, "/srv/videos", &root.display().to_string());
    std::fs::write(dir.join("site.conf"), site).unwrap();
    let m = "/usr/lib/apache2/modules";
    let user = if nix::unistd::Uid::effective().is_root() {
        "User www-data\nGroup www-data"
    } else {
        ""
    };
    // What Debian's apache2.conf and default mods give the site.
    let httpd = format!(
        "ServerRoot {d}\nDefaultRuntimeDir {d}\nPidFile {d}/httpd.pid\nErrorLog {d}/error.log\n\
         ServerName localhost\nListen 127.0.0.1:{port}\n{user}\n\
         LoadModule mpm_event_module {m}/mod_mpm_event.so\n\
         LoadModule authz_core_module {m}/mod_authz_core.so\n\
         LoadModule authz_host_module {m}/mod_authz_host.so\n\
         LoadModule proxy_module {m}/mod_proxy.so\n\
         LoadModule proxy_fcgi_module {m}/mod_proxy_fcgi.so\n\
         Include {d}/site.conf\n"
    );
    std::fs::write(dir.join("httpd.conf"), httpd).unwrap();
    let server = Server(
        Command::new(bin)
            .arg("-f")
            .arg(dir.join("httpd.conf"))
            .arg("-DFOREGROUND")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    server
}

#[test]
#[cfg_attr(
    not(all(has_apache2, has_ffmpeg, has_ffprobe)),
    ignore = "needs apache2, ffmpeg, ffprobe: apt-get install -y apache2 ffmpeg"
)]
fn apache_example() {
    let apache = require_tool("apache2");
    let root = media_root();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--socket-mode",
        "666",
        "--status-path",
        STATUS,
    ]);
    // httpd's children run as www-data when started as root: let them reach the socket.
    std::fs::set_permissions(pool.dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let dir = open_tempdir();
    let port = common::free_port();
    let _server = start_apache(&apache, dir.path(), port, root.path(), &pool.socket);
    check_clips_with(port, "", dir.path(), false);
    check_extensions(port);
    check_status_page(port, Some(&pool));
    check_packaged(port);
}

#[test]
#[cfg_attr(
    not(all(has_apache2, has_ffmpeg, has_ffprobe, is_root)),
    ignore = "needs root, apache2, ffmpeg, ffprobe (it starts the pool as root with --user): run as root; apt-get install -y apache2 ffmpeg"
)]
fn apache_example_as_debian_runs_it() {
    let apache = require_tool("apache2");
    require_root();
    let root = media_root();
    let doc = as_documented(&example("apache.conf"), root.path());
    let pool = start_documented_pool(&doc.pool, &doc.socket);
    check_documented_pool(&pool);
    let dir = open_tempdir();
    let port = common::free_port();
    let _server = start_apache(&apache, dir.path(), port, root.path(), &doc.socket);
    check_clips_with(port, "", dir.path(), false);
    check_status_page(port, Some(&pool));
    check_without_socket_flags(&doc, pool, port, 503);
}

/// The value of `key=` in a unit file.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
        .to_string()
}

#[test]
#[cfg_attr(
    not(has_systemd_socket_activate),
    ignore = "needs systemd-socket-activate: apt-get install -y systemd"
)]
fn systemd_units_under_systemd_socket_activate() {
    let activate = require_tool("systemd-socket-activate");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let socket_unit = std::fs::read_to_string(root.join("mp4-fcgi.socket")).unwrap();
    let service = std::fs::read_to_string(root.join("mp4-fcgi.service")).unwrap();
    assert_eq!(unit_value(&service, "Type"), "notify");
    let dir = tempfile::tempdir().unwrap();
    let media_dir = media_root();
    // The socket unit's ListenStream and the service's ExecStart, moved into a temp dir.
    let listen = unit_value(&socket_unit, "ListenStream");
    let sock = dir.path().join(Path::new(&listen).file_name().unwrap());
    let exec = unit_value(&service, "ExecStart")
        .replace("/usr/local/bin/mp4-fcgi", common::BIN)
        .replace("/srv/videos", media_dir.path().to_str().unwrap());
    let mut args = exec.split_whitespace();
    let child = Server(
        Command::new(activate)
            .arg("-l")
            .arg(&sock)
            .arg(args.next().unwrap())
            .args(args)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = common::Client::new(std::os::unix::net::UnixStream::connect(&sock).unwrap());
    let r = c.get(&media_dir.path().join("a.mp4"), "start=3&end=5", &[]);
    assert_eq!(r.status, 200);
    // The service's --root and --status-path took effect.
    let outside = c.get(&media("a.mp4"), "", &[]);
    assert_eq!(outside.status, 403);
    let status_path = exec
        .split("--status-path ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let s = c.get(Path::new("/"), "", &[("SCRIPT_NAME", status_path)]);
    assert!(s.text().contains("requests:"), "{}", s.text());
    // ExecReload's signal recycles the workers and the socket keeps serving.
    assert_eq!(
        unit_value(&service, "ExecReload"),
        "/bin/kill -HUP $MAINPID"
    );
    // SAFETY: signalling our child, which exec'd into mp4-fcgi.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    let mut c = common::Client::new(std::os::unix::net::UnixStream::connect(&sock).unwrap());
    assert_eq!(
        c.get(&media_dir.path().join("a.mp4"), "end=2", &[]).status,
        200
    );
}
