//! conf-examples/ exercised against the real front servers: each example is
//! templated into a temp dir (paths, port) and must serve trimmed clips, HEAD,
//! Range, errors with their bodies, and refuse bad links before the pool.

mod common;

use common::{Pool, media, require_tool};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// A media folder with a clip and a file that is not an MP4.
fn media_root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(media("a.mp4"), d.path().join("a.mp4")).unwrap();
    std::fs::write(d.path().join("bad.mp4"), b"not a film at all").unwrap();
    std::fs::create_dir(d.path().join("protected")).unwrap();
    std::fs::copy(media("a.mp4"), d.path().join("protected/a.mp4")).unwrap();
    // Front servers' workers may run as another user.
    std::fs::set_permissions(
        d.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    d
}

use common::{Stop as Server, wait_port};

struct Http {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

fn request(port: u16, method: &str, path: &str, extra: &str) -> Http {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
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

/// The checks every front server must pass for a clip under `prefix`.
fn check_clips(port: u16, prefix: &str, dir: &Path) {
    check_clips_with(port, prefix, dir, true);
}

/// `head_length`: whether the front server keeps Content-Length on HEAD
/// (Apache drops it for proxied replies without a body).
fn check_clips_with(port: u16, prefix: &str, dir: &Path, head_length: bool) {
    let r = request(port, "GET", &format!("{prefix}/a.mp4?start=5.5&end=12"), "");
    assert_eq!(r.status, 200, "{}", r.headers);
    if require_tool("ffmpeg").is_some() {
        let out = dir.join("clip.mp4");
        std::fs::write(&out, &r.body).unwrap();
        assert_eq!(common::decode_errors(&out), "");
        let d = common::probe_duration(&out);
        assert!((d - 6.5).abs() <= 0.041, "duration {d}");
    }
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

#[test]
fn nginx_example() {
    let (Some(nginx), Some(_)) = (require_tool("nginx"), require_tool("python3")) else {
        return;
    };
    let root = media_root();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--status-path",
        "/status",
        "--socket-mode",
        "666",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let port = common::free_port();
    let mut conf = example("nginx.conf");
    let user = if nix::unistd::Uid::effective().is_root() {
        "user root root;"
    } else {
        ""
    };
    sub(&mut conf, "user www-data;", user);
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
        &pool.socket.display().to_string(),
    );
    sub(
        &mut conf,
        "listen 80;",
        &format!("listen 127.0.0.1:{port};"),
    );
    sub(&mut conf, "/srv/videos", &root.path().display().to_string());
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let _nginx = Server(
        Command::new(nginx)
            .args(["-g", "daemon off;", "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    check_clips(port, "", dir.path());

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
    let seen = pool.counter("requests");
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
        pool.counter("requests"),
        seen + 1,
        "only the status request itself reached the pool"
    );
}

fn lighttpd_conf(dir: &Path, port: u16, root: &Path, socket: &Path) -> String {
    let d = dir.display();
    let mut conf = example("lighttpd.conf");
    sub(
        &mut conf,
        "server.port = 80",
        &format!("server.port = {port}\nserver.bind = \"127.0.0.1\""),
    );
    sub(&mut conf, "server.username = \"www-data\"\n", "");
    sub(&mut conf, "server.groupname = \"www-data\"\n", "");
    sub(&mut conf, "/run/lighttpd.pid", &format!("{d}/lighttpd.pid"));
    sub(
        &mut conf,
        "/var/log/lighttpd/error.log",
        &format!("{d}/error.log"),
    );
    let lua = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf-examples/secdownload.lua");
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

#[test]
fn lighttpd_example_with_secdownload() {
    let (Some(lighttpd), Some(_)) = (require_tool("lighttpd"), require_tool("md5sum")) else {
        return;
    };
    assert!(
        Path::new("/usr/lib/lighttpd/mod_magnet.so").exists() || std::env::var("CI").is_err(),
        "mod_magnet (lighttpd-modules-lua) is required in CI"
    );
    let root = media_root();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--status-path",
        "/status",
        "--socket-mode",
        "666",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let conf = lighttpd_conf(dir.path(), port, root.path(), &pool.socket);
    let _server = start_lighttpd(&lighttpd, dir.path(), conf, port);
    check_clips(port, "", dir.path());

    let token = |hex: &str| {
        let out = Command::new("sh")
            .args([
                "-c",
                &format!("printf '%s' 'change-this-secret/a.mp4{hex}' | md5sum"),
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..32].to_string()
    };
    let hex = format!("{:08x}", now());
    let ok = request(
        port,
        "GET",
        &format!("/dl/{}/{hex}/a.mp4?start=3&end=6", token(&hex)),
        "",
    );
    assert_eq!(ok.status, 200);
    assert_eq!(
        &ok.body[4..8],
        b"ftyp",
        "the pool answered the rewritten request"
    );
    let seen = pool.counter("requests");
    let bad = request(
        port,
        "GET",
        &format!("/dl/0000{}/{hex}/a.mp4", &token(&hex)[4..]),
        "",
    );
    assert_eq!(bad.status, 403);
    let old_hex = format!("{:08x}", now() - 7200);
    let old = request(
        port,
        "GET",
        &format!("/dl/{}/{old_hex}/a.mp4", token(&old_hex)),
        "",
    );
    assert_eq!(old.status, 410);
    assert_eq!(
        pool.counter("requests"),
        seen + 1,
        "refused links never reached the pool"
    );
}

#[test]
fn lighttpd_example_offloading_with_x_sendfile2() {
    let Some(lighttpd) = require_tool("lighttpd") else {
        return;
    };
    let root = media_root();
    let dir = tempfile::tempdir().unwrap();
    let offload = dir.path().join("offload");
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--socket-mode",
        "666",
        "--offload",
        "x-sendfile2",
        "--offload-dir",
        offload.to_str().unwrap(),
    ]);
    let port = common::free_port();
    let mut conf = lighttpd_conf(dir.path(), port, root.path(), &pool.socket);
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
    let headers: Vec<_> = std::fs::read_dir(&offload)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("mp4fcgi-"))
        .collect();
    assert_eq!(
        headers.len(),
        2,
        "one header file per window (5.5-12 and 10.5-20): {headers:?}"
    );
}

#[test]
fn lighttpd_example_spawning_the_pool_with_bin_path() {
    let Some(lighttpd) = require_tool("lighttpd") else {
        return;
    };
    let root = media_root();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let socket: PathBuf = dir.path().join("spawned.sock");
    let mut conf = lighttpd_conf(dir.path(), port, root.path(), Path::new("/unused.sock"));
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
}

#[test]
fn apache_example() {
    let Some(apache) = require_tool("apache2") else {
        return;
    };
    let root = media_root();
    let pool = Pool::start(&["--workers", "1", "--socket-mode", "666"]);
    // httpd's children run as www-data when started as root: let them reach the socket.
    std::fs::set_permissions(
        pool.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let d = dir.path().display();
    let port = common::free_port();
    let mut site = example("apache.conf");
    sub(
        &mut site,
        "<VirtualHost *:80>",
        &format!("<VirtualHost 127.0.0.1:{port}>"),
    );
    sub(
        &mut site,
        "/run/mp4-fcgi/mp4-fcgi.sock",
        &pool.socket.display().to_string(),
    );
    sub(&mut site, "/srv/videos", &root.path().display().to_string());
    std::fs::write(dir.path().join("site.conf"), site).unwrap();
    let m = "/usr/lib/apache2/modules";
    let user = if nix::unistd::Uid::effective().is_root() {
        "User www-data\nGroup www-data"
    } else {
        ""
    };
    let httpd = format!(
        "ServerRoot {d}\nDefaultRuntimeDir {d}\nPidFile {d}/httpd.pid\nErrorLog {d}/error.log\n\
         ServerName localhost\nListen 127.0.0.1:{port}\n{user}\n\
         LoadModule mpm_event_module {m}/mod_mpm_event.so\n\
         LoadModule authz_core_module {m}/mod_authz_core.so\n\
         LoadModule proxy_module {m}/mod_proxy.so\n\
         LoadModule proxy_fcgi_module {m}/mod_proxy_fcgi.so\n\
         Include {d}/site.conf\n"
    );
    std::fs::write(dir.path().join("httpd.conf"), httpd).unwrap();
    let _server = Server(
        Command::new(apache)
            .arg("-f")
            .arg(dir.path().join("httpd.conf"))
            .arg("-DFOREGROUND")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    check_clips_with(port, "", dir.path(), false);
}

/// The value of `key=` in a unit file.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
        .to_string()
}

#[test]
fn systemd_units_under_systemd_socket_activate() {
    let Some(activate) = require_tool("systemd-socket-activate") else {
        return;
    };
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
