//! The Debian package (issue 26): packaging/deb/build.sh packages the test
//! build's binary; its control data and files are checked, and its Depends
//! against dpkg-shlibdeps. Then, as root under CI or with
//! MP4_FCGI_DEB_INSTALL=1 (it changes the machine), the package is installed
//! with `dpkg -i`, serves a window and a master playlist through the
//! installed binary with the installed units' settings under
//! systemd-socket-activate, and is purged; a guard purges it, and removes the
//! user its postinst made, even when an assertion fails.

mod common;
#[path = "players_common/mod.rs"]
mod players_common;

use common::{BIN, media, require_tool};
use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const MAN_PAGES: &[&str] = &[
    "mp4-fcgi",
    "mp4-fcgi-cut",
    "mp4-fcgi-info",
    "mp4-fcgi-completions",
    "mp4-fcgi-man",
];

/// The files the package must hold: path, mode as `dpkg -c` shows it.
const FILES: &[(&str, &str)] = &[
    ("./usr/bin/mp4-fcgi", "-rwxr-xr-x"),
    ("./usr/lib/systemd/system/mp4-fcgi.service", "-rw-r--r--"),
    ("./usr/lib/systemd/system/mp4-fcgi.socket", "-rw-r--r--"),
    (
        "./usr/share/bash-completion/completions/mp4-fcgi",
        "-rw-r--r--",
    ),
    ("./usr/share/zsh/vendor-completions/_mp4-fcgi", "-rw-r--r--"),
    (
        "./usr/share/fish/vendor_completions.d/mp4-fcgi.fish",
        "-rw-r--r--",
    ),
    ("./etc/default/mp4-fcgi", "-rw-------"),
    ("./etc/logrotate.d/mp4-fcgi", "-rw-r--r--"),
    ("./usr/share/doc/mp4-fcgi/README.md", "-rw-r--r--"),
    ("./usr/share/doc/mp4-fcgi/copyright", "-rw-r--r--"),
    ("./var/log/mp4-fcgi/", "drwxr-xr-x"),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd`, asserting it succeeds; its output.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).expect("UTF-8 output")
}

/// Cargo's version as a Debian version (a SemVer pre-release sorts first with `~`).
fn deb_version() -> String {
    env!("CARGO_PKG_VERSION").replacen('-', "~", 1)
}

/// Builds the package of the test build's binary into `out`; its path.
/// `fast`: gzip -1 instead of dpkg-deb's default xz, where the compression
/// is not what is tested.
fn build_package(out: &Path, fast: bool) -> PathBuf {
    require_tool("dpkg-deb");
    // A copy: build.sh runs the binary for the pages and completions, and a
    // cargo build beside the tests may relink target/debug/mp4-fcgi meanwhile.
    let bin = out.join("mp4-fcgi");
    std::fs::copy(BIN, &bin).unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("packaging/deb/build.sh"))
        .env("MP4_FCGI_BIN", &bin)
        .env("OUT", out)
        .env_remove("SOURCE_DATE_EPOCH");
    if fast {
        cmd.env("DPKG_DEB_COMPRESSOR_TYPE", "gzip")
            .env("DPKG_DEB_COMPRESSOR_LEVEL", "1");
    }
    let printed = stdout(&mut cmd);
    let deb = PathBuf::from(printed.lines().last().expect("build.sh prints the .deb"));
    let arch = stdout(Command::new("dpkg").arg("--print-architecture"));
    assert_eq!(
        deb,
        out.join(format!("mp4-fcgi_{}_{}.deb", deb_version(), arch.trim()))
    );
    assert!(deb.is_file(), "{} was not written", deb.display());
    deb
}

/// A control field of the package.
fn field(deb: &Path, name: &str) -> String {
    stdout(Command::new("dpkg-deb").arg("--field").arg(deb).arg(name))
        .trim()
        .to_string()
}

/// The value of `key=` in a unit file.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit has no {key}=:\n{unit}"))
        .to_string()
}

/// A unit's settings: its lines that are neither comments nor blank.
fn settings(unit: &str) -> Vec<&str> {
    unit.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text
}

#[test]
fn the_package_holds_the_binary_units_pages_completions_and_conffiles() {
    let out = tempfile::tempdir().unwrap();
    let deb = build_package(out.path(), false);

    // The control data dpkg reads.
    let info = stdout(Command::new("dpkg-deb").arg("--info").arg(&deb));
    for part in [
        "control",
        "conffiles",
        "md5sums",
        "postinst",
        "prerm",
        "postrm",
    ] {
        assert!(info.contains(&format!(" {part} ")), "no {part}:\n{info}");
    }
    assert_eq!(field(&deb, "Package"), "mp4-fcgi");
    assert_eq!(field(&deb, "Version"), deb_version());
    assert!(!field(&deb, "Maintainer").is_empty());
    assert!(field(&deb, "Installed-Size").parse::<u64>().unwrap() > 0);
    let depends = field(&deb, "Depends");
    assert!(depends.starts_with("adduser, "), "{depends}");
    assert!(depends.contains(", libc6 (>= 2."), "{depends}");
    // The default build decodes thumbnails with the system's libavcodec.
    assert!(depends.contains(", libavcodec59 (>= "), "{depends}");
    let conffiles = stdout(
        Command::new("dpkg-deb")
            .arg("--info")
            .arg(&deb)
            .arg("conffiles"),
    );
    assert_eq!(
        conffiles.lines().collect::<Vec<_>>(),
        ["/etc/default/mp4-fcgi", "/etc/logrotate.d/mp4-fcgi"]
    );
    let postinst = stdout(
        Command::new("dpkg-deb")
            .arg("--info")
            .arg(&deb)
            .arg("postinst"),
    );
    assert!(postinst.contains("adduser --system --group"), "{postinst}");
    // Every systemd call of the scripts waits for systemd as PID 1, but the
    // purge of what deb-systemd-helper recorded (nothing, if it never ran).
    for script in ["postinst", "prerm", "postrm"] {
        let text = stdout(Command::new("dpkg-deb").arg("--info").arg(&deb).arg(script));
        let guarded = text.contains("[ -d /run/systemd/system ]");
        assert!(guarded || !text.contains("deb-systemd-invoke"), "{text}");
    }

    // The file list: path -> (mode, owner).
    let listing = stdout(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    let entries: Vec<(&str, &str, &str)> = listing
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[5], f[0], f[1])
        })
        .collect();
    let mode_of = |path: &str| {
        entries
            .iter()
            .find(|e| e.0 == path)
            .map(|e| e.1)
            .unwrap_or_else(|| panic!("the package has no {path}:\n{listing}"))
    };
    for (path, mode) in FILES {
        assert_eq!(mode_of(path), *mode, "{path}");
    }
    for page in MAN_PAGES {
        mode_of(&format!("./usr/share/man/man1/{page}.1.gz"));
    }
    for example in std::fs::read_dir(repo().join("conf-examples")).unwrap() {
        let example = example.unwrap();
        let name = example.file_name().into_string().unwrap();
        let path = format!("./usr/share/doc/mp4-fcgi/conf-examples/{name}");
        if example.file_type().unwrap().is_dir() {
            mode_of(&format!("{path}/"));
        } else {
            mode_of(&path);
        }
    }
    for (path, _, owner) in &entries {
        assert_eq!(*owner, "root/root", "{path}");
    }

    // What the files say.
    let root = out.path().join("root");
    // -R: the files and DEBIAN/.
    run(Command::new("dpkg-deb").arg("-R").arg(&deb).arg(&root));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let installed = read("usr/lib/systemd/system/mp4-fcgi.service");
    let ours = std::fs::read_to_string(repo().join("systemd/mp4-fcgi.service")).unwrap();
    assert!(unit_value(&installed, "ExecStart").starts_with("/usr/bin/mp4-fcgi "));
    assert_eq!(
        settings(&installed),
        settings(&ours.replace(
            "ExecStart=/usr/local/bin/mp4-fcgi ",
            "ExecStart=/usr/bin/mp4-fcgi "
        )),
        "the packaged service is systemd/'s with /usr/bin"
    );
    assert_eq!(
        read("usr/lib/systemd/system/mp4-fcgi.socket"),
        std::fs::read_to_string(repo().join("systemd/mp4-fcgi.socket")).unwrap()
    );
    for page in MAN_PAGES {
        let text = gunzip(&root.join(format!("usr/share/man/man1/{page}.1.gz")));
        assert!(text.contains(&format!("\n.TH {page} 1 ")), "{page}: {text}");
    }
    for (shell, path) in [
        ("bash", "usr/share/bash-completion/completions/mp4-fcgi"),
        ("zsh", "usr/share/zsh/vendor-completions/_mp4-fcgi"),
        ("fish", "usr/share/fish/vendor_completions.d/mp4-fcgi.fish"),
    ] {
        assert_eq!(
            read(path),
            stdout(Command::new(out.path().join("mp4-fcgi")).args(["completions", shell])),
            "{shell}"
        );
    }
    assert_eq!(
        read("etc/logrotate.d/mp4-fcgi"),
        std::fs::read_to_string(repo().join("conf-examples/logrotate.conf")).unwrap()
    );
    let defaults = read("etc/default/mp4-fcgi");
    assert!(
        defaults.lines().all(|l| l.is_empty() || l.starts_with('#')),
        "the template sets nothing:\n{defaults}"
    );
    assert!(defaults.contains("#AWS_SECRET_ACCESS_KEY="), "{defaults}");
    let readme = read("usr/share/doc/mp4-fcgi/README.md");
    assert!(
        readme.starts_with("# mp4-fcgi\n"),
        "the README is the repo's"
    );
    let copyright = read("usr/share/doc/mp4-fcgi/copyright");
    assert!(copyright.contains("\nLicense: "), "{copyright}");
    // The md5sums dpkg --verify reads match the files.
    let sums = read("DEBIAN/md5sums");
    assert!(sums.contains("  usr/bin/mp4-fcgi\n"), "{sums}");
    run(Command::new("md5sum")
        .arg("--check")
        .arg("--quiet")
        .arg(root.join("DEBIAN/md5sums"))
        .current_dir(&root));
}

#[test]
#[cfg_attr(
    not(has_dpkg_shlibdeps),
    ignore = "needs dpkg-shlibdeps: apt-get install -y dpkg-dev"
)]
fn depends_are_what_dpkg_shlibdeps_finds() {
    require_tool("dpkg-shlibdeps");
    let out = tempfile::tempdir().unwrap();
    let deb = build_package(out.path(), true);
    let root = out.path().join("root");
    // -R: the files and DEBIAN/.
    run(Command::new("dpkg-deb").arg("-R").arg(&deb).arg(&root));
    // dpkg-shlibdeps wants a source package's debian/control beside it.
    std::fs::create_dir(out.path().join("debian")).unwrap();
    std::fs::write(out.path().join("debian/control"), "").unwrap();
    let found = stdout(
        Command::new("dpkg-shlibdeps")
            .args(["-O", "-e"])
            .arg(root.join("usr/bin/mp4-fcgi"))
            .current_dir(out.path()),
    );
    let shlibs = found
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .unwrap_or_else(|| panic!("dpkg-shlibdeps said: {found}"));
    assert_eq!(field(&deb, "Depends"), format!("adduser, {shlibs}"));
}

/// The package installed: purged, and its user and group removed if the
/// test made them, when dropped (also when an assertion failed).
struct Installed {
    user_existed: bool,
    group_existed: bool,
}

impl Installed {
    fn clean(&self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "mp4-fcgi"])
            .stdin(Stdio::null())
            .output();
        if !self.user_existed {
            let _ = Command::new("userdel").arg("mp4-fcgi").output();
        }
        if !self.group_existed {
            let _ = Command::new("groupdel").arg("mp4-fcgi").output();
        }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        self.clean();
    }
}

fn getent(db: &str, key: &str) -> Option<String> {
    let out = Command::new("getent").args([db, key]).output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// dpkg's status of the package: "installed", "not-installed", ...
fn dpkg_status() -> String {
    let out = Command::new("dpkg-query")
        .args(["--show", "--showformat=${db:Status-Status}", "mp4-fcgi"])
        .output()
        .unwrap();
    match String::from_utf8_lossy(&out.stdout).trim() {
        "" => "not-installed".to_string(),
        s => s.to_string(),
    }
}

/// What on the machine is named after the package: the paths under the
/// folders it or its scripts write to, and its user and group.
fn traces() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_name().to_string_lossy().contains("mp4-fcgi") {
                found.insert(path.display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&path, found);
            }
        }
    }
    let mut found = BTreeSet::new();
    for dir in [
        "/etc",
        "/usr/bin",
        "/usr/lib/systemd",
        "/usr/lib/sysusers.d",
        "/usr/share/man",
        "/usr/share/doc",
        "/usr/share/bash-completion",
        "/usr/share/zsh",
        "/usr/share/fish",
        "/var/log",
        "/var/lib/systemd",
        "/var/lib/dpkg/info",
    ] {
        walk(Path::new(dir), &mut found);
    }
    for db in ["passwd", "group"] {
        if let Some(line) = getent(db, "mp4-fcgi") {
            found.insert(format!("{db}: {line}"));
        }
    }
    found
}

/// The uid in /proc/PID/status.
fn uid_of(pid: i32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
#[cfg_attr(
    not(all(
        deb_install,
        is_root,
        has_adduser,
        has_man,
        has_systemd_socket_activate,
        has_chromium,
        has_chromedriver
    )),
    ignore = "installs and purges the package, which changes the machine: runs as root with \
              CI=true or MP4_FCGI_DEB_INSTALL=1; needs adduser, man-db, systemd and \
              chromium (apt-get install -y adduser man-db systemd chromium chromium-driver)"
)]
fn installed_it_serves_a_film_then_purges_clean() {
    require_tool("adduser");
    require_tool("man");
    let activate = require_tool("systemd-socket-activate");
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "dpkg -i needs root"
    );
    assert_eq!(
        dpkg_status(),
        "not-installed",
        "mp4-fcgi is installed on this machine: the test would replace it, then purge it \
         (dpkg -P mp4-fcgi first)"
    );
    assert!(
        !Path::new("/usr/bin/mp4-fcgi").exists(),
        "/usr/bin/mp4-fcgi exists outside the package: the test would overwrite it"
    );
    let before = traces();
    let work = tempfile::tempdir().unwrap();
    let deb = build_package(work.path(), true);

    let installed = Installed {
        user_existed: getent("passwd", "mp4-fcgi").is_some(),
        group_existed: getent("group", "mp4-fcgi").is_some(),
    };
    run(Command::new("dpkg").arg("--install").arg(&deb));
    assert_eq!(dpkg_status(), "installed");
    // The files match the package's md5sums and conffiles.
    let verify = stdout(Command::new("dpkg").args(["--verify", "mp4-fcgi"]));
    assert!(verify.is_empty(), "{verify}");

    // The postinst made the system user and group.
    let user = getent("passwd", "mp4-fcgi").expect("the postinst adds the user mp4-fcgi");
    let f: Vec<&str> = user.split(':').collect();
    let uid: u32 = f[2].parse().unwrap();
    assert!(uid < 1000, "a system user: {user}");
    assert_eq!(f[5], "/nonexistent", "{user}");
    assert_eq!(f[6], "/usr/sbin/nologin", "{user}");
    let group = getent("group", "mp4-fcgi").expect("the postinst adds the group mp4-fcgi");
    assert_eq!(group.split(':').nth(2), Some(f[3]), "{user} / {group}");

    // The files where dpkg put them, the conffile with its mode.
    let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("/usr/bin/mp4-fcgi"), 0o755);
    assert_eq!(mode("/etc/default/mp4-fcgi"), 0o600);
    assert!(Path::new("/var/log/mp4-fcgi").is_dir());
    assert!(Path::new("/etc/logrotate.d/mp4-fcgi").is_file());
    let version = stdout(Command::new("/usr/bin/mp4-fcgi").arg("--version"));
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    // Without systemd as PID 1 the scripts leave systemd's files alone.
    if !Path::new("/run/systemd/system").exists() {
        let systemd: Vec<_> = traces()
            .into_iter()
            .filter(|p| p.starts_with("/etc/systemd") || p.starts_with("/var/lib/systemd"))
            .collect();
        assert!(systemd.is_empty(), "{systemd:?}");
    }

    // The man pages open, and man finds them by name.
    let page = stdout(
        Command::new("man")
            .args(["-l", "/usr/share/man/man1/mp4-fcgi.1.gz"])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100"),
    );
    assert!(
        page.contains("NAME") && page.contains("SYNOPSIS") && page.contains("--root"),
        "{page}"
    );
    for name in MAN_PAGES {
        let found = stdout(Command::new("man").args(["-w", name]));
        assert_eq!(found.trim(), format!("/usr/share/man/man1/{name}.1.gz"));
    }

    // The installed units' settings under systemd-socket-activate: the socket
    // unit's ListenStream moved into a temp dir (not to collide with /run),
    // the service's ExecStart with its --root pointed at a folder holding
    // a.mp4, the EnvironmentFile's settings, and the unit's user (DynamicUser=
    // takes the static user of the unit's name, the package's).
    let socket_unit = std::fs::read_to_string("/usr/lib/systemd/system/mp4-fcgi.socket").unwrap();
    let service = std::fs::read_to_string("/usr/lib/systemd/system/mp4-fcgi.service").unwrap();
    let listen = unit_value(&socket_unit, "ListenStream");
    let sock = work.path().join(Path::new(&listen).file_name().unwrap());
    let films = work.path().join("videos");
    std::fs::create_dir(&films).unwrap();
    std::fs::copy(media("a.mp4"), films.join("a.mp4")).unwrap();
    std::fs::set_permissions(work.path(), PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&films, PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(films.join("a.mp4"), PermissionsExt::from_mode(0o644)).unwrap();
    let exec = unit_value(&service, "ExecStart").replace("/srv/videos", films.to_str().unwrap());
    let mut args = exec.split_whitespace();
    assert_eq!(args.next(), Some("/usr/bin/mp4-fcgi"));
    let env_file = unit_value(&service, "EnvironmentFile");
    let env_file = std::fs::read_to_string(env_file.trim_start_matches('-')).unwrap();
    let envs = env_file
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='));
    assert_eq!(unit_value(&service, "DynamicUser"), "yes");
    let server = common::Stop(
        Command::new(activate)
            .arg("-l")
            .arg(&sock)
            .args([
                "setpriv",
                "--reuid=mp4-fcgi",
                "--regid=mp4-fcgi",
                "--clear-groups",
            ])
            .arg("/usr/bin/mp4-fcgi")
            .args(args)
            .args(["--workers", "1"])
            .envs(envs)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.path().join("pool.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(work.path().join("pool.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "no socket: {}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let connect = || common::Client::new(std::os::unix::net::UnixStream::connect(&sock).unwrap());
    let film = films.join("a.mp4");
    let window = connect().get(&film, "start=2&end=4", &[("SCRIPT_NAME", "/a.mp4")]);
    assert_eq!(window.status, 200, "{}\n{}", window.text(), log());
    assert_eq!(window.header("Content-Type"), Some("video/mp4"));
    let whole = std::fs::metadata(&film).unwrap().len() as usize;
    assert!(
        window.body.len() > 8 && window.body.len() < whole,
        "{} of {whole} bytes",
        window.body.len()
    );
    assert_eq!(&window.body[4..8], b"ftyp");
    // The installed binary reads the window it served: 2 s.
    let clip = work.path().join("clip.mp4");
    std::fs::write(&clip, &window.body).unwrap();
    let info = stdout(Command::new("/usr/bin/mp4-fcgi").arg("info").arg(&clip));
    assert!(info.contains("duration:   2.000 s"), "{info}");
    let master = connect().get(
        &film.join("master.m3u8"),
        "",
        &[("SCRIPT_NAME", "/a.mp4/master.m3u8")],
    );
    assert_eq!(master.status, 200, "{}\n{}", master.text(), log());
    let playlist = master.text();
    assert!(
        playlist.starts_with("#EXTM3U") && playlist.contains("#EXT-X-STREAM-INF"),
        "{playlist}"
    );
    // Served by the package's user.
    let master_pid = server.0.id() as i32;
    assert_eq!(uid_of(master_pid), Some(uid));
    let workers = common::children_of(master_pid);
    assert!(!workers.is_empty(), "no worker");
    for w in workers {
        assert_eq!(uid_of(w), Some(uid), "worker {w}");
    }
    drop(server);

    // One command after dpkg -i, and the demo page plays a film three ways
    // in Chromium (progressive, HLS, DASH) from the installed binary.
    let demo_root = tempfile::tempdir().unwrap();
    std::fs::copy(media("a.mp4"), demo_root.path().join("a.mp4")).unwrap();
    let port = common::free_port();
    let demo = common::Stop(
        Command::new("/usr/bin/mp4-fcgi")
            .args([
                "--listen",
                &format!("unix:{}", work.path().join("demo.sock").display()),
            ])
            .args(["--http", &format!("127.0.0.1:{port}"), "--root"])
            .arg(demo_root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::wait_port(port);
    players_common::demo::plays_three_ways(port, "a.mp4", "/a.mp4", &["a.mp4"]);
    drop(demo);

    // Purged: the files, the conffiles, the log folder; then the user the test made.
    run(Command::new("dpkg").args(["--purge", "mp4-fcgi"]));
    assert_eq!(dpkg_status(), "not-installed");
    for gone in [
        "/usr/bin/mp4-fcgi",
        "/usr/lib/systemd/system/mp4-fcgi.socket",
        "/usr/share/man/man1/mp4-fcgi.1.gz",
        "/etc/default/mp4-fcgi",
        "/etc/logrotate.d/mp4-fcgi",
        "/var/log/mp4-fcgi",
        "/usr/share/doc/mp4-fcgi",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} is left after the purge");
    }
    drop(installed);
    assert_eq!(traces(), before, "the machine as the test found it");
}
