//! The nginx example as shipped and as Debian runs it: clips, HLS/DASH,
//! the protected folder, its signed links (a film, or a whole presentation:
//! `/s/TOKEN/EXPIRES/protected/film.mp4/master.m3u8`) and their generators,
//! against the real pool; and hls.js playing a signed presentation.

mod common;
#[path = "front_servers/mod.rs"]
mod front_servers;
#[path = "players_common/mod.rs"]
mod players_common;

use common::require_tool;
use front_servers::examples::{nginx_conf, start_nginx_example_limits, start_nginx_example_with};
use front_servers::*;
use serde_json::json;

const SECRET: &str = "change-this-secret";

/// secure_link's token: base64url(md5("EXPIRES<film's path> SECRET")), no "=".
fn token(expires: u64, film: &str, secret: &str) -> String {
    python(
        "import base64,hashlib,sys;print(base64.urlsafe_b64encode(hashlib.md5(sys.argv[1].encode()).digest()).decode().rstrip('='))",
        &format!("{expires}{film} {secret}"),
    )
}

/// A presentation link's path up to the film: `/s/TOKEN/EXPIRES/protected/a.mp4`.
fn signed(expires: u64, secret: &str) -> String {
    let film = "/protected/a.mp4";
    format!("/s/{}/{expires}{film}", token(expires, film, secret))
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_python3, has_ffmpeg, has_ffprobe)),
    ignore = "needs nginx, python3, ffmpeg, ffprobe: apt-get install -y nginx python3 ffmpeg"
)]
fn nginx_example() {
    require_tool("python3");
    let x = start_nginx_example_with("");
    let (port, pool) = (x.port, &x.pool);
    check_clips(port, "", x.dir.path());
    check_extensions(port);
    check_status_page(port, Some(pool));
    check_packaged(port);
    check_url_set(port);

    // secure_link in front: the pool never sees refused links.
    let token = |expires: u64| token(expires, "/protected/a.mp4", SECRET);
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
#[cfg_attr(
    not(all(has_nginx, has_python3)),
    ignore = "needs nginx, python3: apt-get install -y nginx python3"
)]
fn nginx_protected_folder_refuses_every_other_spelling() {
    require_tool("python3");
    let x = start_nginx_example_with("");
    // Direct URLs of the film and its outputs, and a good link bent.
    let bent = bent_links(&signed(now() + 600, SECRET));
    let bent: Vec<&str> = bent.iter().map(String::as_str).collect();
    check_protected_folder(x.port, &x.pool, &bent);
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_python3, has_ffmpeg)),
    ignore = "needs nginx, python3, ffmpeg: apt-get install -y nginx python3 ffmpeg"
)]
fn nginx_signed_presentation_links() {
    require_tool("python3");
    require_tool("ffmpeg");
    let x = start_nginx_example_with("");
    let (port, pool) = (x.port, &x.pool);
    // One token, over the film's path, for the film and everything under it.
    let later = now() + 600;
    let base = signed(later, SECRET);
    check_presentation(port, &base);
    let clip = request(port, "GET", &format!("{base}?start=3&end=6"), "");
    assert_eq!((clip.status, &clip.body[4..8]), (200, &b"ftyp"[..]));
    // A URL set in the folder: the token covers the set's name.
    let set = "/protected/a,.mp4,.urlset";
    let link = format!("/s/{}/{later}{set}/master.m3u8", token(later, set, SECRET));
    assert_eq!(request(port, "GET", &link, "").status, 200, "{link}");
    check_link_refused(port, pool, &signed(later, "not-the-secret"), 403);
    check_link_refused(port, pool, &signed(now() - 600, SECRET), 410);
    // The token of another film; the film's ?md5= token for one of its outputs.
    let other = token(later, "/protected/my film.mp4", SECRET);
    check_link_refused(
        port,
        pool,
        &format!("/s/{other}/{later}/protected/a.mp4"),
        403,
    );
    let seen = requests_seen(pool);
    let tok = token(later, "/protected/a.mp4", SECRET);
    let query = format!("/protected/a.mp4/index-1.m3u8?md5={tok}&expires={later}");
    assert_eq!(request(port, "GET", &query, "").status, 403, "{query}");
    assert_eq!(requests_seen(pool), seen + 1);
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_python3, has_md5sum, has_basenc, has_ffmpeg)),
    ignore = "needs nginx, python3, md5sum, basenc, ffmpeg: apt-get install -y nginx python3 coreutils ffmpeg"
)]
fn nginx_link_generators_make_links_nginx_accepts() {
    require_tool("python3");
    require_tool("ffmpeg");
    require_tool("md5sum");
    require_tool("basenc");
    let x = start_nginx_example_with("");
    let port = x.port;
    for script in ["nginx-link.sh", "nginx_link.py"] {
        // A presentation: token and expiry in the path.
        let hls = generate(script, SECRET, &["/protected/a.mp4/master.m3u8"]);
        let base = hls.strip_suffix("/master.m3u8").unwrap();
        assert!(base.starts_with("/s/"), "{script}: {hls}");
        check_presentation(port, base);
        let mpd = generate(script, SECRET, &["/protected/a.mp4/manifest.mpd", "-600"]);
        let old = mpd.strip_suffix("/manifest.mpd").unwrap();
        check_link_refused(port, &x.pool, old, 410);
        let wrong = generate(script, "x", &["/protected/a.mp4/seg-1-1.m4s"]);
        check_link_refused(
            port,
            &x.pool,
            wrong.strip_suffix("/seg-1-1.m4s").unwrap(),
            403,
        );
        // The film alone: the token in the query.
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
    let name = "/protected/my film.mp4/index-1.m3u8";
    let link = generate("nginx_link.py", SECRET, &[name]);
    assert!(
        link.ends_with("/protected/my%20film.mp4/index-1.m3u8"),
        "{link}"
    );
    assert_eq!(request(port, "GET", &link, "").status, 200, "{link}");
    shell_link_refuses("nginx-link.sh", name);
}

/// Every kind of output name reaches the pool, from the served folder, in a
/// URL set, and under a protected film through the generators' presentation
/// links; names outside the grammar stop at nginx.
#[test]
#[cfg_attr(
    not(all(has_nginx, has_python3, has_md5sum, has_basenc)),
    ignore = "needs nginx, python3, md5sum, basenc: apt-get install -y nginx python3 coreutils"
)]
fn nginx_routes_every_output_name() {
    require_tool("python3");
    require_tool("md5sum");
    require_tool("basenc");
    let x = start_nginx_example_with("");
    let (port, pool) = (x.port, &x.pool);
    check_outputs_reach_pool(port, pool, OUTPUTS, |n| format!("/a.mp4/{n}"));
    let set = |n: &str| format!("/a,.mp4,.m4v,.urlset/{n}");
    check_outputs_reach_pool(port, pool, SET_OUTPUTS, set);
    // Not a file: nginx's 404. A name ending in .mp4 is a clip's path to
    // nginx (the next location), and the pool's 404.
    let not_clips: Vec<&str> = NOT_OUTPUTS
        .iter()
        .copied()
        .filter(|n| !n.ends_with(".mp4"))
        .collect();
    check_names_kept_from_pool(port, pool, &not_clips, |n| format!("/a.mp4/{n}"));

    for script in ["nginx-link.sh", "nginx_link.py"] {
        // A presentation link: the token over the film's path, whatever the name.
        let link = |film: &str, n: &str| {
            let link = generate(script, SECRET, &[&format!("{film}/{n}")]);
            let rest = link.strip_prefix("/s/").unwrap_or_else(|| panic!("{link}"));
            let (tok, rest) = rest.split_once('/').unwrap();
            let (expires, path) = rest.split_once('/').unwrap();
            let expires: u64 = expires.parse().unwrap();
            assert_eq!(tok, token(expires, film, SECRET), "{script}: {link}");
            // nginx_link.py percent-encodes the commas of a URL set.
            let path = path.replace("%2C", ",");
            assert_eq!(
                format!("/{path}"),
                format!("{film}/{n}"),
                "{script}: {link}"
            );
            link
        };
        check_outputs_reach_pool(port, pool, OUTPUTS, |n| link("/protected/a.mp4", n));
        let set = |n: &str| link("/protected/a,.mp4,.urlset", n);
        check_outputs_reach_pool(port, pool, SET_OUTPUTS, set);
        // Other names: the film's token in the query covers the whole path.
        for n in NOT_OUTPUTS {
            let l = generate(script, SECRET, &[&format!("/protected/a.mp4/{n}")]);
            assert!(l.starts_with(&format!("/protected/a.mp4/{n}?md5=")), "{l}");
        }
    }
    // A good presentation link bent to another name: nginx's 403.
    let base = signed(now() + 600, SECRET);
    check_names_kept_from_pool(port, pool, NOT_OUTPUTS, |n| format!("{base}/{n}"));
}

/// The caching edge routes the same output names as nginx.conf (tested above).
#[test]
fn nginx_cache_routes_the_same_names() {
    let hls = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with(r"location ~ \.(mp4|m4v|m4a|mov|urlset)/"))
            .map(String::from)
            .collect()
    };
    let shipped = hls(&example("nginx.conf"));
    assert_eq!(shipped.len(), 1, "{shipped:?}");
    assert_eq!(hls(&example("nginx-cache.conf")), shipped);
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_python3, has_chromium, has_chromedriver)),
    ignore = "needs nginx, python3, chromium, chromedriver: apt-get install -y nginx python3 chromium chromium-driver"
)]
fn nginx_hls_js_plays_a_signed_presentation() {
    require_tool("python3");
    if !players_common::players_installed() {
        return;
    }
    // The players' page on the example's origin, as a site would serve it.
    let players = players_common::players_dir();
    let page = format!("location /players/ {{ alias {}/; }}", players.display());
    let x = start_nginx_example_with(&page);
    let origin = format!("http://127.0.0.1:{}", x.port);
    let play = |base: &str, script| {
        let url = format!("{origin}{base}/master.m3u8");
        players_common::run_player(&format!("{origin}/players/"), "hls", &url, script)
    };
    let seen = requests_seen(&x.pool);
    let script =
        json!([{"play": true}, {"waitUntil": 1.0, "timeout": 15}, {"seek": 12}, {"wait": 1.5}]);
    let r = play(&signed(now() + 600, SECRET), script);
    players_common::check_clean("hls.js, signed", &r, &[(1, 1.0), (3, 12.2)]);
    assert!(
        requests_seen(&x.pool) > seen + 5,
        "playlists and segments reached the pool"
    );
    // A wrong token: refused at the master playlist, nothing plays.
    let r = play(
        &signed(now() + 600, "not-the-secret"),
        json!([{"play": true}, {"wait": 1}]),
    );
    assert!(
        r["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{r:#}"
    );
    assert_eq!(r["videoData"], false, "{r:#}");
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

/// The example's per-address limits as shipped: beyond a burst of 50
/// requests at once, one address gets 429 while another is served.
#[test]
#[cfg_attr(not(has_nginx), ignore = "needs nginx: apt-get install -y nginx")]
fn nginx_example_limits_one_address() {
    let x = start_nginx_example_limits("", true);
    let statuses: Vec<u16> = (0..150)
        .map(|_| request(x.port, "GET", "/a.mp4?end=1", "").status)
        .collect();
    assert!(statuses[..50].iter().all(|&s| s == 200), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let other = std::net::Ipv4Addr::new(127, 0, 0, 2);
    assert_eq!(
        request_from(other, x.port, "GET", "/a.mp4?end=1", "").status,
        200
    );
}
