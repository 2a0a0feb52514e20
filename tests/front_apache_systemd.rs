//! The Apache example (clips, HLS/DASH, the protected folder and its signed
//! links: `/s/TOKEN/EXPIRES/protected/film.mp4/master.m3u8`, their generators),
//! and the systemd units under systemd-socket-activate.

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
    // The modules the example's header says to enable, beyond Debian's defaults.
    let enable = header_command(&example("apache.conf"), "a2enmod");
    let mods: String = enable
        .split_whitespace()
        .skip(1)
        .map(|n| format!("LoadModule {n}_module {m}/mod_{n}.so\n"))
        .collect();
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
         LoadModule authz_host_module {m}/mod_authz_host.so\n{mods}\
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

/// The Apache example in front of a pool of one worker.
struct ApacheExample {
    port: u16,
    _server: Server,
    pool: Pool,
    dir: tempfile::TempDir,
    _root: tempfile::TempDir,
}

fn start_apache_example() -> ApacheExample {
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
    let server = start_apache(&apache, dir.path(), port, root.path(), &pool.socket);
    ApacheExample {
        port,
        _server: server,
        pool,
        dir,
        _root: root,
    }
}

const SECRET: &str = "change-this-secret";

/// The example's token: md5hex("EXPIRES<film's path> SECRET").
fn token(expires: u64, film: &str, secret: &str) -> String {
    let out = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            let text = format!("{expires}{film} {secret}");
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..32].to_string()
}

/// A link's path up to the film: `/s/TOKEN/EXPIRES/protected/a.mp4`.
fn signed(expires: u64, secret: &str) -> String {
    let film = "/protected/a.mp4";
    format!("/s/{}/{expires}{film}", token(expires, film, secret))
}

#[test]
#[cfg_attr(
    not(all(has_apache2, has_ffmpeg, has_ffprobe)),
    ignore = "needs apache2, ffmpeg, ffprobe: apt-get install -y apache2 ffmpeg"
)]
fn apache_example() {
    let x = start_apache_example();
    let port = x.port;
    check_clips_with(port, "", x.dir.path(), false);
    check_extensions(port);
    check_status_page(port, Some(&x.pool));
    check_packaged(port);
}

#[test]
#[cfg_attr(
    not(all(has_apache2, has_md5sum)),
    ignore = "needs apache2, md5sum: apt-get install -y apache2 coreutils"
)]
fn apache_protected_folder_refuses_every_other_spelling() {
    require_tool("md5sum");
    let x = start_apache_example();
    let bent = bent_links(&signed(now() + 600, SECRET));
    let bent: Vec<&str> = bent.iter().map(String::as_str).collect();
    // Apache's core refuses these before the site's rules: 404, not 403.
    let core_404 = [
        "/%2Fprotected/a.mp4",
        "/protected%2Fa.mp4",
        "/protected/a.mp4%00",
    ];
    check_protected_folder_with(x.port, &x.pool, &bent, &core_404);
}

#[test]
#[cfg_attr(
    not(all(has_apache2, has_md5sum, has_ffmpeg)),
    ignore = "needs apache2, md5sum, ffmpeg: apt-get install -y apache2 coreutils ffmpeg"
)]
fn apache_signed_presentation_links() {
    require_tool("md5sum");
    require_tool("ffmpeg");
    let x = start_apache_example();
    let (port, pool) = (x.port, &x.pool);
    let later = now() + 600;
    let base = signed(later, SECRET);
    check_presentation(port, &base);
    let clip = request(port, "GET", &format!("{base}?start=3&end=6"), "");
    assert_eq!((clip.status, &clip.body[4..8]), (200, &b"ftyp"[..]));
    check_link_refused(port, pool, &signed(later, "not-the-secret"), 403);
    check_link_refused(port, pool, &signed(now() - 600, SECRET), 410);
    let other = token(later, "/protected/my film.mp4", SECRET);
    check_link_refused(
        port,
        pool,
        &format!("/s/{other}/{later}/protected/a.mp4"),
        403,
    );
    // The clock is the server's, not a header the client sends.
    let seen = requests_seen(pool);
    let past = now() - 600;
    let old = format!("{}/master.m3u8", signed(past, SECRET));
    let now_header = format!("MP4-Link-Now: {}\r\n", past - 600);
    assert_eq!(request(port, "GET", &old, &now_header).status, 410);
    assert_eq!(requests_seen(pool), seen + 1);
}

#[test]
#[cfg_attr(
    not(all(has_apache2, has_python3, has_md5sum, has_ffmpeg)),
    ignore = "needs apache2, python3, md5sum, ffmpeg: apt-get install -y apache2 python3 coreutils ffmpeg"
)]
fn apache_link_generators_make_links_apache_accepts() {
    require_tool("python3");
    require_tool("ffmpeg");
    require_tool("md5sum");
    let x = start_apache_example();
    let port = x.port;
    for script in ["apache-link.sh", "apache_link.py"] {
        let link = generate(script, SECRET, &["/protected/a.mp4"]);
        let r = request(port, "GET", &format!("{link}?start=3&end=6"), "");
        assert_eq!((r.status, &r.body[4..8]), (200, &b"ftyp"[..]), "{link}");
        let expires: u64 = link.split('/').nth(3).unwrap().parse().unwrap();
        assert!(expires.abs_diff(now() + 3600) <= 5, "{script}: {link}");
        let hls = generate(script, SECRET, &["/protected/a.mp4/master.m3u8"]);
        let base = hls.strip_suffix("/master.m3u8").unwrap();
        assert!(base.starts_with("/s/"), "{script}: {hls}");
        check_presentation(port, base);
        let mpd = generate(script, SECRET, &["/protected/a.mp4/manifest.mpd", "-600"]);
        check_link_refused(
            port,
            &x.pool,
            mpd.strip_suffix("/manifest.mpd").unwrap(),
            410,
        );
        let wrong = generate(script, "x", &["/protected/a.mp4/init-1.mp4"]);
        check_link_refused(
            port,
            &x.pool,
            wrong.strip_suffix("/init-1.mp4").unwrap(),
            403,
        );
    }
    // A name that needs percent-encoding: the token covers the decoded path.
    let name = "/protected/my film.mp4/index-1.m3u8";
    let link = generate("apache_link.py", SECRET, &[name]);
    assert!(
        link.ends_with("/protected/my%20film.mp4/index-1.m3u8"),
        "{link}"
    );
    assert_eq!(request(port, "GET", &link, "").status, 200, "{link}");
    shell_link_refuses("apache-link.sh", name);
    // Not a film: no link the example would accept.
    shell_link_refuses("apache-link.sh", "/protected/a.txt");
    shell_link_refuses("apache-link.sh", "/film.mp4/master.m3u8");
}

/// Every kind of output name reaches the pool, from the served folder and
/// under a protected film through the generators' links; names outside the
/// grammar are refused at the link (Apache's 403; the generators exit 2).
#[test]
#[cfg_attr(
    not(all(has_apache2, has_python3, has_md5sum)),
    ignore = "needs apache2, python3, md5sum: apt-get install -y apache2 python3 coreutils"
)]
fn apache_routes_every_output_name() {
    require_tool("python3");
    require_tool("md5sum");
    let x = start_apache_example();
    let (port, pool) = (x.port, &x.pool);
    // Everything under a film goes to the pool: it tells the names apart.
    check_outputs_reach_pool(port, pool, OUTPUTS, |n| format!("/a.mp4/{n}"));
    for script in ["apache-link.sh", "apache_link.py"] {
        // The film's token, whatever the output.
        let link = |n: &str| {
            let link = generate(script, SECRET, &[&format!("/protected/a.mp4/{n}")]);
            let expires: u64 = link.split('/').nth(3).unwrap().parse().unwrap();
            let film = signed(expires, SECRET);
            assert_eq!(link, format!("{film}/{n}"), "{script}");
            link
        };
        check_outputs_reach_pool(port, pool, OUTPUTS, link);
        // Other names are not a film under /protected/ (those ending in .mp4
        // are: a link to that path, which the pool answers 404).
        for n in NOT_OUTPUTS.iter().filter(|n| !n.ends_with(".mp4")) {
            generator_refuses(script, &format!("/protected/a.mp4/{n}"));
        }
    }
    // A good link bent to another name: 403.
    let base = signed(now() + 600, SECRET);
    check_names_kept_from_pool(port, pool, NOT_OUTPUTS, |n| format!("{base}/{n}"));
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
