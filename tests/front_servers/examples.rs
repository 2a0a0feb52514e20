//! The nginx and lighttpd examples, set up as tests/front_nginx.rs and
//! tests/front_lighttpd.rs run them (the signed-link players test too): their
//! configurations with local paths and ports, and each in front of a pool of
//! one worker.
#![allow(dead_code)]

use super::super::common::{self, Pool, require_tool};
use super::*;

/// nginx.conf from the example, its paths under `dir`, listening on
/// 127.0.0.1:`port`. `as_debian`: keep its `user www-data;`; else, as root,
/// the workers run as root and reach sockets in private temp dirs.
pub fn nginx_conf(dir: &Path, port: u16, root: &Path, socket: &Path, as_debian: bool) -> String {
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
/// [`media_root`]. Fields drop in order: the server stops before the pool.
pub struct Example {
    pub port: u16,
    _server: Server,
    pub pool: Pool,
    pub dir: tempfile::TempDir,
    _root: tempfile::TempDir,
}

/// A pool of one worker and the server `serve(dir, port, root, socket)`
/// starts in front of it.
fn start_example(serve: impl FnOnce(&Path, u16, &Path, &Path) -> Server) -> Example {
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
    let server = serve(dir.path(), port, root.path(), &pool.socket);
    Example {
        port,
        _server: server,
        pool,
        dir,
        _root: root,
    }
}

/// The nginx example with `extra` added to its server block. Its per-address
/// request rate (10 a second, bursts of 50) is raised: these tests are
/// many clients' worth of requests from 127.0.0.1 (ffmpeg reading a
/// presentation alone makes dozens), and ran into it now and then.
/// `nginx_example_limits_one_address` tests the limits as shipped.
pub fn start_nginx_example_with(extra: &str) -> Example {
    start_nginx_example_limits(extra, false)
}

/// [`start_nginx_example_with`]; `as_shipped`: keep the example's rate.
pub fn start_nginx_example_limits(extra: &str, as_shipped: bool) -> Example {
    let nginx = require_tool("nginx");
    start_example(|dir, port, root, socket| {
        let mut conf = nginx_conf(dir, port, root, socket, false);
        if !as_shipped {
            sub(&mut conf, "rate=10r/s", "rate=10000r/s");
        }
        let status = "        location = /mp4-fcgi-status {";
        sub(&mut conf, status, &format!("{extra}\n{status}"));
        common::start_nginx(&nginx, dir, &conf, port)
    })
}

/// lighttpd.conf from the example (form 1), its paths (and secdownload.lua)
/// under `dir`, listening on 127.0.0.1:`port`. `as_debian`: keep its
/// www-data user.
pub fn lighttpd_conf(dir: &Path, port: u16, root: &Path, socket: &Path, as_debian: bool) -> String {
    let d = dir.display();
    let mut conf = example("lighttpd.conf");
    let listen = format!("server.port = {port}\nserver.bind = \"127.0.0.1\"");
    sub(&mut conf, "server.port = 80", &listen);
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
    let lua = lua.display().to_string();
    sub(&mut conf, "/etc/lighttpd/secdownload.lua", &lua);
    let sock = socket.display().to_string();
    sub(&mut conf, "/run/mp4-fcgi/mp4-fcgi.sock", &sock);
    sub(&mut conf, "/srv/videos", &root.display().to_string());
    conf
}

/// lighttpd (`bin`) on `conf`, written to `dir`/lighttpd.conf, once it
/// listens on `port`.
pub fn start_lighttpd(bin: &Path, dir: &Path, conf: String, port: u16) -> Server {
    let path = dir.join("lighttpd.conf");
    std::fs::write(&path, conf).unwrap();
    let server = Server(
        Command::new(bin)
            .arg("-D")
            .arg("-f")
            .arg(&path)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    server
}

/// The lighttpd example (form 1, secdownload.lua in front), `extra` appended
/// to its configuration.
pub fn start_lighttpd_example_with(extra: &str) -> Example {
    let lighttpd = require_tool("lighttpd");
    assert!(
        Path::new("/usr/lib/lighttpd/mod_magnet.so").exists() || std::env::var("CI").is_err(),
        "mod_magnet (lighttpd-modules-lua) is required in CI"
    );
    start_example(|dir, port, root, socket| {
        let conf = lighttpd_conf(dir, port, root, socket, false) + extra;
        start_lighttpd(&lighttpd, dir, conf, port)
    })
}
