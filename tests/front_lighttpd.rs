//! The lighttpd example as shipped and as Debian runs it: secdownload (a
//! film, or a whole presentation: `/dl/TOKEN/HEX-TIME/film.mp4/master.m3u8`),
//! the link generators, offloading with X-Sendfile2, spawning the pool.

mod common;
#[path = "front_servers/mod.rs"]
mod front_servers;

use common::{Pool, require_tool};
use front_servers::examples::{lighttpd_conf, start_lighttpd, start_lighttpd_example_with};
use front_servers::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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
    let x = start_lighttpd_example_with("");
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
    let x = start_lighttpd_example_with("");
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
    // A presentation link bent: other films and names, dot segments.
    let bent = bent_links(&format!("/dl/{token}/{hex}/a.mp4"));
    let bent: Vec<&str> = bent.iter().map(String::as_str).collect();
    check_protected_folder(x.port, &x.pool, &bent);
    // The link itself still opens.
    let r = request(x.port, "GET", &format!("/dl/{token}/{hex}/a.mp4"), "");
    assert_eq!(r.status, 200);
}

#[test]
#[cfg_attr(
    not(all(has_lighttpd, has_md5sum, has_ffmpeg)),
    ignore = "needs lighttpd, md5sum, ffmpeg: apt-get install -y lighttpd lighttpd-modules-lua coreutils ffmpeg"
)]
fn lighttpd_signed_presentation_links() {
    require_tool("md5sum");
    require_tool("ffmpeg");
    let x = start_lighttpd_example_with("");
    let (port, pool) = (x.port, &x.pool);
    // One token, over the film's path, for the film and everything under it.
    let link = |path: &str, hex: &str| format!("/dl/{}/{hex}/a.mp4", lighttpd_token(path, hex));
    let hex = format!("{:08x}", now());
    check_presentation(port, &link("/a.mp4", &hex));
    // Made 30 minutes ago: still open.
    check_presentation(port, &link("/a.mp4", &format!("{:08x}", now() - 1800)));
    // The token of another film; of the output's whole path; 2 hours old.
    check_link_refused(port, pool, &link("/my film.mp4", &hex), 403);
    let seen = requests_seen(pool);
    let whole = lighttpd_token("/a.mp4/master.m3u8", &hex);
    let r = request(
        port,
        "GET",
        &format!("/dl/{whole}/{hex}/a.mp4/master.m3u8"),
        "",
    );
    assert_eq!(r.status, 403);
    assert_eq!(requests_seen(pool), seen + 1);
    check_link_refused(
        port,
        pool,
        &link("/a.mp4", &format!("{:08x}", now() - 7200)),
        410,
    );
}

#[test]
#[cfg_attr(
    not(all(has_lighttpd, has_python3, has_md5sum, has_ffmpeg)),
    ignore = "needs lighttpd, python3, md5sum, ffmpeg: apt-get install -y lighttpd lighttpd-modules-lua python3 coreutils ffmpeg"
)]
fn lighttpd_link_generators_make_links_secdownload_accepts() {
    require_tool("python3");
    require_tool("ffmpeg");
    require_tool("md5sum");
    let x = start_lighttpd_example_with("");
    let port = x.port;
    let at = |t: u64| t.to_string();
    for script in ["lighttpd-link.sh", "lighttpd_link.py"] {
        // A presentation: the token covers the film, not the output's name.
        let hls = generate(script, "change-this-secret", &["/a.mp4/master.m3u8"]);
        check_presentation(port, hls.strip_suffix("/master.m3u8").unwrap());
        let made = at(now() - 7200);
        let mpd = generate(
            script,
            "change-this-secret",
            &["/a.mp4/manifest.mpd", &made],
        );
        check_link_refused(
            port,
            &x.pool,
            mpd.strip_suffix("/manifest.mpd").unwrap(),
            410,
        );
        let wrong = generate(script, "x", &["/a.mp4/seg-1-1.m4s"]);
        check_link_refused(
            port,
            &x.pool,
            wrong.strip_suffix("/seg-1-1.m4s").unwrap(),
            403,
        );
        // The film alone.
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
    for path in [
        "/a.mp4",
        "/a.mp4/master.m3u8",
        "/d/a.mov/seg-2-f1-3.m4s",
        "/a.mp4/x.m3u8",
    ] {
        assert_eq!(
            generate("lighttpd-link.sh", "s", &[path, &t]),
            generate("lighttpd_link.py", "s", &[path, &t])
        );
    }
    // A name that needs percent-encoding: the token covers the decoded path.
    let link = generate("lighttpd_link.py", "change-this-secret", &["/my film.mp4"]);
    assert!(link.ends_with("/my%20film.mp4"), "{link}");
    assert_eq!(request(port, "GET", &link, "").status, 200, "{link}");
    shell_link_refuses("lighttpd-link.sh", "/my film.mp4");
    let name = "/my film.mp4/init-1.mp4";
    let link = generate("lighttpd_link.py", "change-this-secret", &[name]);
    assert!(link.ends_with("/my%20film.mp4/init-1.mp4"), "{link}");
    assert_eq!(request(port, "GET", &link, "").status, 200, "{link}");
    shell_link_refuses("lighttpd-link.sh", name);
}

/// Every kind of output name reaches the pool, from the served folder and
/// under a protected film through the generators' links; names outside the
/// grammar are refused by secdownload.lua (the token covers them whole).
#[test]
#[cfg_attr(
    not(all(has_lighttpd, has_python3, has_md5sum)),
    ignore = "needs lighttpd, python3, md5sum: apt-get install -y lighttpd lighttpd-modules-lua python3 coreutils"
)]
fn lighttpd_routes_every_output_name() {
    require_tool("python3");
    require_tool("md5sum");
    let x = start_lighttpd_example_with("");
    let (port, pool) = (x.port, &x.pool);
    // Everything under a film goes to the pool: it tells the names apart.
    check_outputs_reach_pool(port, pool, OUTPUTS, |n| format!("/a.mp4/{n}"));
    let hex = format!("{:08x}", now());
    let base = format!("/dl/{}/{hex}/a.mp4", lighttpd_token("/a.mp4", &hex));
    let t = now().to_string();
    for script in ["lighttpd-link.sh", "lighttpd_link.py"] {
        // The film's token, whatever the output.
        let film = generate(script, "change-this-secret", &["/a.mp4", &t]);
        let link = |n: &str| {
            let link = generate(script, "change-this-secret", &[&format!("/a.mp4/{n}"), &t]);
            assert_eq!(link, format!("{film}/{n}"), "{script}");
            link
        };
        check_outputs_reach_pool(port, pool, OUTPUTS, link);
        // Other names: the token covers the whole path, as secdownload.lua's.
        for n in NOT_OUTPUTS {
            let l = generate(script, "change-this-secret", &[&format!("/a.mp4/{n}"), &t]);
            assert_ne!(l, format!("{film}/{n}"), "{script}");
        }
    }
    // A good link bent to another name: 403.
    check_names_kept_from_pool(port, pool, NOT_OUTPUTS, |n| format!("{base}/{n}"));
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
    // Media segments too: their moof and mdat header from a header file,
    // their samples from the film, byte for byte what the pool streams.
    let film = root.path().join("a.mp4");
    for (output, query) in [
        ("/seg-2-1.m4s", ""),
        ("/seg-1-2.m4s", ""),
        ("/seg-1-1.m4s", "start=5&end=12"),
        ("/key-3-1.m4s", ""),
    ] {
        let info = [("PATH_INFO", output)];
        let streamed = pool.client().get(&film, query, &info);
        assert_eq!(streamed.status, 200, "{output}: {}", streamed.text());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = pool.client().get(&film, query, &info);
            if r.header("X-Sendfile2").is_some() {
                assert!(r.body.is_empty(), "{output}: the front server sends it");
                break;
            }
            assert!(r.body == streamed.body, "{output}: streamed meanwhile");
            assert!(Instant::now() < deadline, "{output}: never offloaded");
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = request(port, "GET", &format!("/a.mp4{output}?{query}"), "");
        assert_eq!(r.status, 200, "{output}");
        assert!(r.body == streamed.body, "{output}: lighttpd's bytes differ");
        assert!(!r.headers.contains("x-sendfile2"), "lighttpd consumed it");
        let r = request(
            port,
            "GET",
            &format!("/a.mp4{output}?{query}"),
            "Range: bytes=100-999\r\n",
        );
        assert_eq!(r.status, 206, "{output}");
        assert!(r.body == streamed.body[100..1000], "{output}: range");
    }
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
