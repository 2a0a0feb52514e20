//! The README's snippets, run as written. Each is the fenced block right
//! under a `<!-- snippet: NAME -->` marker: the nginx locations (run by nginx
//! in front of a pool: clips, HLS and DASH answer), the systemd drop-in
//! (verified by systemd-analyze with the units, its command accepted by
//! `--check`), and the commands that install the test tools (what .ci/run
//! runs).

mod common;
#[path = "front_servers/mod.rs"]
mod front_servers;

use common::{BIN, Pool, require_tool};
use front_servers::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The fenced block right under `<!-- snippet: NAME -->` in README.md.
fn snippet(name: &str) -> String {
    let readme = repo_file("README.md");
    let marker = format!("<!-- snippet: {name} -->");
    assert_eq!(
        readme.matches(&marker).count(),
        1,
        "README.md has no single '{marker}'"
    );
    let after = &readme[readme.find(&marker).unwrap() + marker.len()..];
    let mut lines = after.lines().skip_while(|l| l.trim().is_empty());
    let fence = lines.next().unwrap_or_default();
    assert!(
        fence.starts_with("```"),
        "'{marker}' must stand right above a fenced block, not '{fence}'"
    );
    let body: Vec<&str> = lines.take_while(|l| l.trim_end() != "```").collect();
    assert!(!body.is_empty(), "the block under '{marker}' is empty");
    body.join("\n") + "\n"
}

/// nginx with the README's locations in a server whose root is a media
/// folder: the checks conf-examples/nginx.conf passes (tests/front_nginx.rs)
/// for clips, HLS, DASH and URL sets, and a player's walk from the master
/// playlist to a segment.
#[test]
#[cfg_attr(
    not(all(has_nginx, has_ffmpeg, has_ffprobe)),
    ignore = "needs nginx, ffmpeg: apt-get install -y nginx ffmpeg"
)]
fn readme_nginx_snippet_serves_clips_hls_and_dash() {
    let nginx = require_tool("nginx");
    let root = media_root();
    let pool = Pool::start(&["--workers", "1", "--socket-mode", "666"]);
    let dir = tempfile::tempdir().unwrap();
    // `include fastcgi_params;` is relative to nginx.conf's folder, as in
    // Debian's /etc/nginx: the real file, which lacks SCRIPT_FILENAME.
    std::fs::copy(
        "/etc/nginx/fastcgi_params",
        dir.path().join("fastcgi_params"),
    )
    .expect("Debian's /etc/nginx/fastcgi_params");
    let mut locations = snippet("nginx");
    sub(
        &mut locations,
        "unix:/run/mp4-fcgi/mp4-fcgi.sock",
        &format!("unix:{}", pool.socket.display()),
    );
    let port = common::free_port();
    let server = format!("root {};\n{locations}", root.path().display());
    let conf = common::nginx_conf(dir.path(), port, "", &server);
    let _nginx = common::start_nginx(&nginx, dir.path(), &conf, port);

    check_clips(port, "", dir.path());
    check_extensions(port);
    check_packaged(port);
    check_url_set(port);

    // What a player asks, in order: master, media playlist, init, a segment.
    let get = |path: &str| {
        let r = request(port, "GET", path, "");
        assert_eq!(r.status, 200, "{path}: {}", r.headers);
        r
    };
    let master = String::from_utf8(get("/a.mp4/master.m3u8").body).unwrap();
    let playlist = master
        .lines()
        .find(|l| !l.starts_with('#') && l.ends_with(".m3u8"))
        .unwrap_or_else(|| panic!("no media playlist in {master}"));
    let media = String::from_utf8(get(&format!("/a.mp4/{playlist}")).body).unwrap();
    let init = media
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|l| l.split('"').next())
        .unwrap_or_else(|| panic!("no EXT-X-MAP in {media}"));
    let segment = media
        .lines()
        .find(|l| l.ends_with(".m4s"))
        .unwrap_or_else(|| panic!("no segment in {media}"));
    let init = get(&format!("/a.mp4/{init}"));
    let seg = get(&format!("/a.mp4/{segment}"));
    assert!(seg.headers.contains("content-type: video/iso.segment"));
    let joined = dir.path().join("init-and-segment.mp4");
    std::fs::write(&joined, [init.body, seg.body].concat()).unwrap();
    assert_eq!(common::decode_errors(&joined), "", "{segment}");
}

/// The README's locations are the example's: the same patterns, split and
/// params, in the same order (HLS and DASH first). A README that drifts from
/// conf-examples/nginx.conf fails here without nginx.
#[test]
fn readme_nginx_snippet_is_the_examples_routing() {
    let example = repo_file("conf-examples/nginx.conf");
    let routing = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| {
                l.starts_with("location ~")
                    || l.starts_with("fastcgi_split_path_info")
                    || l.starts_with("fastcgi_param")
            })
            .map(String::from)
            .collect()
    };
    let readme = routing(&snippet("nginx"));
    assert_eq!(
        readme.iter().filter(|l| l.starts_with("location")).count(),
        2,
        "{readme:?}"
    );
    let example_lines = routing(&example);
    let mut at = 0;
    for line in &readme {
        let found = example_lines[at..]
            .iter()
            .position(|l| l == line)
            .unwrap_or_else(|| {
                panic!("README's '{line}' is not in conf-examples/nginx.conf (in that order)")
            });
        at += found + 1;
    }
}

/// The README's drop-in for a log file, applied to the units as CI verifies
/// them: systemd-analyze accepts it (an `ExecStart=` without the empty one
/// before it, or an unknown key, fails), and its command passes `--check`
/// with the media and log folders moved to temp folders.
#[test]
#[cfg_attr(
    not(has_systemd_socket_activate),
    ignore = "needs systemd-analyze: apt-get install -y systemd"
)]
fn readme_systemd_drop_in_verifies() {
    let analyze = require_tool("systemd-analyze");
    let drop_in = snippet("systemd-log-file");
    let units = tempfile::tempdir().unwrap();
    let bin = |text: &str| text.replace("/usr/local/bin/mp4-fcgi", BIN);
    for unit in ["mp4-fcgi.socket", "mp4-fcgi.service"] {
        let text = repo_file(&format!("systemd/{unit}"));
        std::fs::write(units.path().join(unit), bin(&text)).unwrap();
    }
    let d = units.path().join("mp4-fcgi.service.d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("override.conf"), bin(&drop_in)).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .args(["mp4-fcgi.socket", "mp4-fcgi.service"].map(|u| units.path().join(u)))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = said.lines().filter(|l| l.contains("mp4-fcgi")).collect();
    assert!(
        out.status.success() && problems.is_empty(),
        "systemd-analyze verify with the README's drop-in: {said}"
    );

    // The command it sets, as the pool will run it.
    let exec = drop_in
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .next_back()
        .filter(|c| !c.is_empty())
        .expect("the drop-in sets ExecStart=");
    let tmp = tempfile::tempdir().unwrap();
    let media: PathBuf = tmp.path().join("videos");
    let logs = tmp.path().join("log");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::create_dir_all(&logs).unwrap();
    let exec = exec
        .replace("/srv/videos", media.to_str().unwrap())
        .replace("/var/log/mp4-fcgi", logs.to_str().unwrap());
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/mp4-fcgi"), "{exec}");
    let out = Command::new(BIN)
        .args(words)
        .args(["--check", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{exec} --check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The README's commands that install the test tools do what .ci/run does:
/// .ci/packages with apt, Node.js and npm from Debian, the Python packages
/// with pip (`--break-system-packages` for Debian's own Python), the players
/// with `npm ci`.
#[test]
fn readme_tool_install_is_what_ci_runs() {
    let readme = snippet("test-tools");
    let ci = repo_file(".ci/run");
    // Commands without comments, `sudo` and redirections, as word lists.
    let commands = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .map(|l| l.split(" #").next().unwrap().trim())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .flat_map(|l| l.split("||").map(str::to_string).collect::<Vec<_>>())
            .map(|c| {
                c.split_whitespace()
                    .filter(|w| *w != "sudo" && !w.starts_with('>') && !w.starts_with("2>"))
                    .map(String::from)
                    .collect()
            })
            .collect()
    };
    let ci = commands(&ci);
    let readme = commands(&readme);
    // The README's line for each thing CI installs; CI's words it must share.
    let has = |cmds: &[Vec<String>], words: &[&str]| {
        cmds.iter()
            .any(|c| words.iter().all(|w| c.iter().any(|x| x == w)))
    };
    for (what, words, ci_words) in [
        (
            "the Debian packages",
            &["apt-get", "install", "-y", "$(cat", ".ci/packages)"][..],
            &["apt-get", "install", "-y", "\"${packages[@]}\""][..],
        ),
        (
            "Node.js and npm",
            &["apt-get", "install", "-y", "nodejs", "npm"],
            &["apt-get", "install", "-y", "nodejs", "npm"],
        ),
        (
            "the Python packages",
            &[
                "python3",
                "-m",
                "pip",
                "install",
                "--break-system-packages",
                "-r",
                ".ci/python-packages",
            ],
            &[
                "python3",
                "-m",
                "pip",
                "install",
                "--break-system-packages",
                "-r",
                ".ci/python-packages",
            ],
        ),
        (
            "the players",
            &["npm", "ci", "--prefix", "tests/players"],
            &["npm", "ci", "--prefix", "tests/players"],
        ),
    ] {
        assert!(has(&readme, words), "README installs {what} with {words:?}");
        assert!(
            has(&ci, ci_words),
            ".ci/run installs {what} with {ci_words:?}"
        );
    }
    // .ci/packages is read as the README says: one package a line.
    let packages = repo_file(".ci/packages");
    assert!(packages.lines().all(|l| !l.trim().contains(' ')));
}
