//! Signed presentation links in a browser: through the nginx and lighttpd
//! examples (set up as tests/front_nginx.rs and tests/front_lighttpd.rs do),
//! hls.js plays a link to a protected film's master.m3u8 and dash.js one to
//! its manifest.mpd, both made by the shipped generators; a wrong or expired
//! token stops either player at that first playlist, with the examples' 403
//! and 410, and a segment the good link played is refused under a wrong token.
//! The players' page is served by the same front server (no example sends
//! CORS headers, and the pool sends them only on its dev HTTP listener).

mod common;
#[path = "front_servers/mod.rs"]
mod front_servers;
#[path = "players_common/mod.rs"]
mod players_common;

use common::require_tool;
use front_servers::examples::{Example, start_lighttpd_example_with, start_nginx_example_with};
use front_servers::{check_link_refused, generate, now, request, requests_seen};
use players_common::{check_clean, players_dir, players_installed, run_player, time_after};
use serde_json::{Value, json};

const SECRET: &str = "change-this-secret";

/// A link a generator made, for `secret`, to `output` of protected/a.mp4;
/// `expired`: made (lighttpd) or expiring (nginx) so that it is refused as old.
type Link<'a> = &'a dyn Fn(&str, &str, bool) -> String;

/// The links' film path up to the output: `/s/TOKEN/EXPIRES/protected/a.mp4`.
fn base<'a>(link: &'a str, output: &str) -> &'a str {
    link.strip_suffix(&format!("/{output}"))
        .unwrap_or_else(|| panic!("{link} does not end in /{output}"))
}

/// Plays from 0 past 2 s, seeks to 10 s and plays on, without an error;
/// the 20 s film whole.
fn check_play_seek(name: &str, r: &Value) {
    check_clean(name, r, &[(1, 2.0)]);
    let ctx = || format!("{name}: {r:#}");
    assert!(time_after(r, 1) > 2.0, "did not play past 2 s: {}", ctx());
    let (seeked, later) = (time_after(r, 2), time_after(r, 3));
    assert!(seeked >= 9.95, "seek to 10 s gave {seeked}: {}", ctx());
    assert!(
        later > seeked + 0.5,
        "not playing after the seek: {}",
        ctx()
    );
    let duration = r["duration"].as_f64().unwrap_or(f64::NAN);
    assert!((duration - 20.0).abs() < 0.25, "duration: {}", ctx());
}

/// A player stopped at the first playlist `url`: a fatal error naming it
/// (hls.js gives the HTTP status too), no media appended, no time played.
fn check_refused(name: &str, kind: &str, r: &Value, url: &str, status: u16) {
    let ctx = || format!("{name}: {r:#}");
    assert!(r["harnessError"].is_null(), "{}", ctx());
    let first = &r["errors"][0];
    assert_eq!(first["fatal"], true, "a fatal player error: {}", ctx());
    if kind == "hls" {
        assert_eq!(first["details"], "manifestLoadError", "{}", ctx());
        assert_eq!(first["url"], url, "{}", ctx());
        assert_eq!(first["code"], status, "{}", ctx());
    } else {
        let details = first["details"].as_str().unwrap_or("");
        assert!(details.contains(url), "the manifest's URL: {}", ctx());
    }
    assert!(
        r["videoData"] == false && r["audioData"] == false,
        "{}",
        ctx()
    );
    assert_eq!(time_after(r, -1), 0.0, "{}", ctx());
}

/// The URL of the last media segment the player loaded.
fn last_segment(kind: &str, r: &Value) -> String {
    let last = match kind {
        "hls" => &r["buffers"]["frag:main"]["last"]["url"],
        _ => &r["buffers"]["video"]["last"]["url"],
    };
    let url = last.as_str().unwrap_or_else(|| panic!("no segment: {r:#}"));
    assert!(url.contains("/seg-"), "{url}");
    url.to_string()
}

fn one_line(r: &Value) -> String {
    let times: Vec<String> = r["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| format!("{}: {}", s["op"], s["currentTime"]))
        .collect();
    let errors: Vec<String> = r["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("{} {} {}", e["details"], e["code"], e["url"]))
        .collect();
    format!(
        "{}: currentTime [{}]; errors {errors:?}; aborted {}",
        r["player"],
        times.join(", "),
        r["aborted"]
    )
}

/// hls.js on the master playlist and dash.js on the MPD, each through a
/// good link (played, seeked), a wrong and an expired one (refused).
fn check_links(front: &str, x: &Example, link: Link) {
    let origin = format!("http://127.0.0.1:{}", x.port);
    let page = format!("{origin}/players/");
    let play =
        json!([{"play": true}, {"waitUntil": 2.5, "timeout": 15}, {"seek": 10}, {"wait": 2}]);
    for (kind, output) in [("hls", "master.m3u8"), ("dash", "manifest.mpd")] {
        let name = format!("{front}, {kind}");
        let good = link(SECRET, output, false);
        let seen = requests_seen(&x.pool);
        let r = run_player(&page, kind, &format!("{origin}{good}"), play.clone());
        println!("{name}, good link: {}", one_line(&r));
        check_play_seek(&name, &r);
        assert!(
            requests_seen(&x.pool) > seen + 5,
            "{name}: the pool served it"
        );
        // The segment the player loaded last, its token bent: refused.
        let segment = last_segment(kind, &r);
        let path = segment.strip_prefix(&origin).expect("on the origin");
        assert_eq!(request(x.port, "GET", path, "").status, 200, "{path}");
        let wrong = base(&link("not-the-secret", output, false), output).to_string();
        let bent = path.replacen(base(&good, output), &wrong, 1);
        assert_ne!(bent, path);
        assert_eq!(request(x.port, "GET", &bent, "").status, 403, "{bent}");

        for (what, secret, old, status) in [
            ("wrong token", "not-the-secret", false, 403),
            ("expired", SECRET, true, 410),
        ] {
            let bad = link(secret, output, old);
            let url = format!("{origin}{bad}");
            let seen = requests_seen(&x.pool);
            let r = run_player(&page, kind, &url, json!([{"play": true}, {"wait": 1}]));
            println!("{name}, {what}: {}", one_line(&r));
            check_refused(&format!("{name}, {what}"), kind, &r, &url, status);
            assert_eq!(requests_seen(&x.pool), seen + 1, "{name}, {what}: pool");
            // Directly: the playlists, init and media segments, the film.
            check_link_refused(x.port, &x.pool, base(&bad, output), status);
        }
    }
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_python3, has_chromium, has_chromedriver)),
    ignore = "needs nginx, python3, chromium, chromedriver: apt-get install -y nginx python3 chromium chromium-driver"
)]
fn players_links_nginx() {
    require_tool("python3");
    if !players_installed() {
        return;
    }
    let page = format!(
        "location /players/ {{ alias {}/; }}",
        players_dir().display()
    );
    let x = start_nginx_example_with(&page);
    // nginx_link.py's second argument is the link's lifetime in seconds.
    let link = |secret: &str, output: &str, expired: bool| {
        let path = format!("/protected/a.mp4/{output}");
        let lifetime = if expired { "-600" } else { "600" };
        generate("nginx_link.py", secret, &[&path, lifetime])
    };
    check_links("nginx", &x, &link);
}

#[test]
#[cfg_attr(
    not(all(has_lighttpd, has_python3, has_chromium, has_chromedriver)),
    ignore = "needs lighttpd, python3, chromium, chromedriver: apt-get install -y lighttpd lighttpd-modules-lua python3 chromium chromium-driver"
)]
fn players_links_lighttpd() {
    require_tool("python3");
    if !players_installed() {
        return;
    }
    let page = format!(
        "\nserver.modules += ( \"mod_alias\" )\n$HTTP[\"url\"] =^ \"/players/\" {{\n  \
         alias.url = ( \"/players/\" => \"{}/\" )\n  \
         mimetype.assign = ( \".html\" => \"text/html\", \".js\" => \"text/javascript\" )\n}}\n",
        players_dir().display()
    );
    let x = start_lighttpd_example_with(&page);
    // lighttpd_link.py's second argument is the link's creation time; the
    // example opens a link for an hour.
    let link = |secret: &str, output: &str, expired: bool| {
        let made = if expired { now() - 7200 } else { now() };
        generate(
            "lighttpd_link.py",
            secret,
            &[&format!("/a.mp4/{output}"), &made.to_string()],
        )
    };
    check_links("lighttpd", &x, &link);
}
