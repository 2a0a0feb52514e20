//! The nginx and lighttpd examples started as tests/front_nginx.rs and
//! tests/front_lighttpd.rs start them for their signed-link tests
//! (`start_nginx_example_with`, `start_lighttpd_example`), for other test
//! files; those two still keep their own copies.
#![allow(dead_code)]

use super::super::common::{self, Pool, require_tool};
use super::*;

/// nginx.conf from the example, its paths under `dir`, listening on
/// 127.0.0.1:`port`; as root, the workers run as root and reach sockets in
/// private temp dirs.
pub fn nginx_conf(dir: &Path, port: u16, root: &Path, socket: &Path) -> String {
    let d = dir.display();
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
    let sock = socket.display().to_string();
    sub(&mut conf, "/run/mp4-fcgi/mp4-fcgi.sock", &sock);
    sub(
        &mut conf,
        "listen 80;",
        &format!("listen 127.0.0.1:{port};"),
    );
    sub(&mut conf, "/srv/videos", &root.display().to_string());
    conf
}

/// A front server from an example in front of a pool of one worker, serving
/// [`media_root`].
pub struct Example {
    pub port: u16,
    pub pool: Pool,
    pub dir: tempfile::TempDir,
    _server: Server,
    _root: tempfile::TempDir,
}

fn one_worker_pool() -> Pool {
    Pool::start(&[
        "--workers",
        "1",
        "--status-path",
        STATUS,
        "--socket-mode",
        "666",
    ])
}

/// The nginx example with `extra` added to its server block and its
/// per-address request rate raised (10 a second is less than one test's
/// players and ffmpeg ask from 127.0.0.1).
pub fn start_nginx_example_with(extra: &str) -> Example {
    let nginx = require_tool("nginx");
    let root = media_root();
    let pool = one_worker_pool();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut conf = nginx_conf(dir.path(), port, root.path(), &pool.socket);
    sub(&mut conf, "rate=10r/s", "rate=10000r/s");
    let status = "        location = /mp4-fcgi-status {";
    sub(&mut conf, status, &format!("{extra}\n{status}"));
    let server = common::start_nginx(&nginx, dir.path(), &conf, port);
    Example {
        port,
        pool,
        dir,
        _server: server,
        _root: root,
    }
}

/// lighttpd.conf from the example (form 1), its paths (and secdownload.lua)
/// under `dir`, listening on 127.0.0.1:`port`, without its www-data user.
pub fn lighttpd_conf(dir: &Path, port: u16, root: &Path, socket: &Path) -> String {
    let d = dir.display();
    let mut conf = example("lighttpd.conf");
    let listen = format!("server.port = {port}\nserver.bind = \"127.0.0.1\"");
    sub(&mut conf, "server.port = 80", &listen);
    sub(&mut conf, "server.username = \"www-data\"\n", "");
    sub(&mut conf, "server.groupname = \"www-data\"\n", "");
    sub(&mut conf, "/run/lighttpd.pid", &format!("{d}/lighttpd.pid"));
    sub(
        &mut conf,
        "/var/log/lighttpd/error.log",
        &format!("{d}/error.log"),
    );
    // lighttpd reads the script per request, as its own user.
    let lua = dir.join("secdownload.lua");
    std::fs::write(&lua, example("secdownload.lua")).unwrap();
    let lua = lua.display().to_string();
    sub(&mut conf, "/etc/lighttpd/secdownload.lua", &lua);
    let sock = socket.display().to_string();
    sub(&mut conf, "/run/mp4-fcgi/mp4-fcgi.sock", &sock);
    sub(&mut conf, "/srv/videos", &root.display().to_string());
    conf
}

/// The lighttpd example (form 1, secdownload.lua in front), `extra` appended
/// to its configuration.
pub fn start_lighttpd_example_with(extra: &str) -> Example {
    let lighttpd = require_tool("lighttpd");
    assert!(
        Path::new("/usr/lib/lighttpd/mod_magnet.so").exists() || std::env::var("CI").is_err(),
        "mod_magnet (lighttpd-modules-lua) is required in CI"
    );
    let root = media_root();
    let pool = one_worker_pool();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let conf = lighttpd_conf(dir.path(), port, root.path(), &pool.socket) + extra;
    let path = dir.path().join("lighttpd.conf");
    std::fs::write(&path, conf).unwrap();
    let server = Server(
        Command::new(lighttpd)
            .arg("-D")
            .arg("-f")
            .arg(&path)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    Example {
        port,
        pool,
        dir,
        _server: server,
        _root: root,
    }
}
