//! The Apache example, and the systemd units under systemd-socket-activate.

mod common;
#[path = "front_servers/mod.rs"]
mod front_servers;

use common::{Pool, media, require_tool};
use front_servers::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
