//! The development listener's demo page (`--http`, `--demo`) and `--cors`.
//!
//! The page at `/` lists `/_demo/films.json` (the films under `--root`,
//! bounded, never through a symlink out of it, names escaped) and plays the
//! chosen film progressive, with hls.js and with dash.js, both served by the
//! binary under `/_demo/`: `demo_page_plays_a_film_three_ways_in_chromium`
//! clicks through it in headless Chromium, driven by chromedriver as
//! tests/players_play.rs does. `--cors` puts the CORS headers on answers of
//! both listeners and answers `OPTIONS` preflights.

mod common;
#[path = "players_common/mod.rs"]
mod players_common;

use common::dev_http::{Got, request};
use common::{Pool, free_port, media, wait_port};

use serde_json::Value;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

/// Names a page must show as text, never as markup or a broken link.
const HOSTILE: [&str; 4] = [
    "<script>.mp4",
    "a&b.mp4",
    "<img src=x onerror=\"window.pwned=1\">.mp4",
    "quote\"s & 'x' #1?.m4a",
];

/// A pool with the development listener on a free port serving `root`.
fn serve(root: &Path, extra: &[&str]) -> (Pool, u16) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["--workers", "1", "--http", &addr, "--root"];
    let root = root.to_str().unwrap();
    args.push(root);
    args.extend_from_slice(extra);
    let pool = Pool::start(&args);
    wait_port(port);
    (pool, port)
}

fn films(port: u16) -> Value {
    let g = common::dev_http::get(port, "/_demo/films.json");
    assert_eq!(
        g.header("Content-Type").as_deref(),
        Some("application/json")
    );
    serde_json::from_slice(&g.body).unwrap_or_else(|e| panic!("{e}: {}", g.text()))
}

fn names(list: &Value) -> Vec<String> {
    list["films"]
        .as_array()
        .unwrap_or_else(|| panic!("no films: {list}"))
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn demo_page_lists_films_with_hostile_names_escaped() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::copy(media("a.mp4"), r.join("a.mp4")).unwrap();
    for name in HOSTILE {
        std::fs::write(r.join(name), b"not a film").unwrap();
    }
    std::fs::create_dir_all(r.join("sub dir")).unwrap();
    std::fs::write(r.join("sub dir/é.MOV"), b"x").unwrap();
    std::fs::write(r.join("notes.txt"), b"x").unwrap();
    std::fs::write(r.join(".hidden.mp4"), b"x").unwrap();
    // Under the reserved prefix: neither listed nor served.
    std::fs::create_dir(r.join("_demo")).unwrap();
    std::fs::copy(media("a.mp4"), r.join("_demo/x.mp4")).unwrap();
    let (_pool, port) = serve(r, &[]);

    let page = common::dev_http::get(port, "/");
    assert_eq!(
        page.header("Content-Type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("Content-Security-Policy").unwrap_or_default();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(page.text().starts_with("<!doctype html>"));
    assert!(page.text().contains("/_demo/demo.js"));
    assert_eq!(common::dev_http::get(port, "/index.html").body, page.body);
    let script = common::dev_http::get(port, "/_demo/demo.js").text();
    assert!(script.contains("/_demo/films.json") && script.contains("textContent"));
    // The players come from the binary, as npm installed them for the tests.
    for (path, file) in [
        ("/_demo/hls.min.js", "hls.js/dist/hls.min.js"),
        ("/_demo/dash.all.min.js", "dashjs/dist/dash.all.min.js"),
    ] {
        let g = common::dev_http::get(port, path);
        assert!(g.body.len() > 100_000, "{path}: {} bytes", g.body.len());
        let installed = players_common::players_dir()
            .join("node_modules")
            .join(file);
        if let Ok(b) = std::fs::read(&installed) {
            assert!(g.body == b, "{path} is not {}", installed.display());
        }
        let tag = g.header("ETag").expect("an ETag");
        let again = request(port, "GET", path, &[("If-None-Match", &tag)]);
        assert_eq!(again.status, 304, "{}", again.head);
        let head = request(port, "HEAD", path, &[]);
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        assert_eq!(
            head.header("Content-Length"),
            Some(g.body.len().to_string())
        );
    }
    for path in ["/_demo/hls.js.LICENSE", "/_demo/dash.js.LICENSE.md"] {
        common::dev_http::get(port, path);
    }

    let raw = common::dev_http::get(port, "/_demo/films.json").text();
    // Safe even where the list would be read as HTML.
    assert!(!raw.contains(['<', '>', '&']), "{raw}");
    let list = films(port);
    let mut want: Vec<&str> = HOSTILE.to_vec();
    want.extend(["a.mp4", "sub dir/é.MOV"]);
    want.sort();
    assert_eq!(names(&list), want, "{list}");
    assert_eq!(list["truncated"], false);
    for film in list["films"].as_array().unwrap() {
        let url = film["url"].as_str().unwrap();
        assert!(
            url.starts_with('/')
                && url[1..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)),
            "{url}"
        );
    }
    let url_of = |name: &str| {
        list["films"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| f["url"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(url_of("<script>.mp4"), "/%3Cscript%3E.mp4");
    assert_eq!(url_of("a&b.mp4"), "/a%26b.mp4");
    assert_eq!(url_of("sub dir/é.MOV"), "/sub%20dir/%C3%A9.MOV");
    // Each URL names its file: the hostile ones reach the handler, which
    // reads them and finds no film (415), not some other name (404).
    for name in HOSTILE {
        let g = request(port, "GET", &url_of(name), &[]);
        assert_eq!(g.status, 415, "{name}: {}", g.head);
    }
    assert_eq!(request(port, "GET", "/_demo/x.mp4", &[]).status, 404);
    assert_eq!(request(port, "GET", "/a.mp4", &[]).status, 200);
}

#[test]
fn demo_off_lists_nothing_and_keeps_the_prefix() {
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(media("a.mp4"), root.path().join("a.mp4")).unwrap();
    let (_pool, port) = serve(root.path(), &["--demo", "off"]);
    let page = request(port, "GET", "/", &[]);
    assert_ne!(page.status, 200, "{}", page.head);
    assert!(!page.text().contains("<!doctype html>"));
    for path in ["/_demo/films.json", "/_demo/hls.min.js"] {
        let g = request(port, "GET", path, &[]);
        assert_eq!(g.status, 404, "{path}: {}", g.head);
        assert!(!g.text().contains("a.mp4"));
    }
    assert_eq!(request(port, "GET", "/a.mp4", &[]).status, 200);
}

#[test]
fn films_json_never_lists_what_is_outside_the_root() {
    let top = tempfile::tempdir().unwrap();
    let (root, outside) = (top.path().join("root"), top.path().join("outside"));
    std::fs::create_dir_all(root.join("1/2/3/4/5")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.mp4"), b"x").unwrap();
    std::fs::write(top.path().join("beside.mp4"), b"x").unwrap();
    std::fs::copy(media("a.mp4"), root.join("in.mp4")).unwrap();
    std::fs::write(root.join("1/2/3/4/deep.mp4"), b"x").unwrap();
    std::fs::write(root.join("1/2/3/4/5/too_deep.mp4"), b"x").unwrap();
    symlink(outside.join("secret.mp4"), root.join("out.mp4")).unwrap();
    symlink("../beside.mp4", root.join("up.mp4")).unwrap();
    symlink(&outside, root.join("outdir")).unwrap();
    symlink("..", root.join("parent")).unwrap();
    symlink(".", root.join("loop")).unwrap();
    symlink("in.mp4", root.join("in_link.mp4")).unwrap();
    symlink("missing.mp4", root.join("dangling.mp4")).unwrap();
    let (_pool, port) = serve(&root, &[]);

    let list = films(port);
    assert_eq!(
        names(&list),
        ["1/2/3/4/deep.mp4", "in.mp4", "in_link.mp4"],
        "{list}"
    );
    assert_eq!(list["truncated"], true, "a folder was left unread: {list}");
    // What is not listed, the handler refuses too.
    assert_eq!(request(port, "GET", "/out.mp4", &[]).status, 403);
    assert_eq!(request(port, "GET", "/in_link.mp4", &[]).status, 200);

    // At most 1000 films.
    let many = tempfile::tempdir().unwrap();
    for i in 0..1003 {
        std::fs::write(many.path().join(format!("f{i:04}.mp4")), b"").unwrap();
    }
    let (_pool, port) = serve(many.path(), &[]);
    let list = films(port);
    let n = names(&list);
    assert_eq!(n.len(), 1000);
    assert_eq!((n[0].as_str(), n[999].as_str()), ("f0000.mp4", "f0999.mp4"));
    assert_eq!(list["truncated"], true);
}

fn cors_of(g: &Got) -> [Option<String>; 3] {
    [
        g.header("Access-Control-Allow-Origin"),
        g.header("Vary"),
        g.header("Access-Control-Expose-Headers"),
    ]
}

#[test]
fn cors_on_both_listeners_and_preflights() {
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(media("a.mp4"), root.path().join("a.mp4")).unwrap();
    let film = root.path().join("a.mp4");
    let site = "https://example.org";
    let (pool, port) = serve(root.path(), &["--cors", site]);

    // The development listener: a film, a range of it, the page.
    for (path, range) in [
        ("/a.mp4", None),
        ("/a.mp4?start=5", Some("bytes=0-99")),
        ("/", None),
    ] {
        let mut headers = vec![("Origin", site)];
        headers.extend(range.map(|r| ("Range", r)));
        let g = request(port, "GET", path, &headers);
        assert!(g.status == 200 || g.status == 206, "{path}: {}", g.head);
        let [allow, vary, expose] = cors_of(&g);
        assert_eq!(allow.as_deref(), Some(site), "{path}: {}", g.head);
        assert_eq!(vary.as_deref(), Some("Origin"), "{}", g.head);
        let expose = expose.unwrap_or_default();
        for h in ["Content-Length", "Content-Range", "Accept-Ranges"] {
            assert!(expose.contains(h), "{expose}");
        }
        assert_eq!(g.head.matches("Access-Control-Allow-Origin").count(), 1);
    }
    let other = request(port, "GET", "/a.mp4", &[("Origin", "https://evil.example")]);
    assert_eq!(other.status, 200);
    assert_eq!(other.header("Access-Control-Allow-Origin"), None);
    let preflight = [
        ("Origin", site),
        ("Access-Control-Request-Method", "GET"),
        ("Access-Control-Request-Headers", "range"),
    ];
    let p = request(port, "OPTIONS", "/a.mp4/master.m3u8", &preflight);
    assert_eq!(p.status, 204, "{}", p.head);
    assert_eq!(
        p.header("Access-Control-Allow-Origin").as_deref(),
        Some(site)
    );
    assert_eq!(
        p.header("Access-Control-Allow-Methods").as_deref(),
        Some("GET, HEAD")
    );
    assert_eq!(
        p.header("Access-Control-Allow-Headers").as_deref(),
        Some("Range")
    );
    assert!(p.header("Access-Control-Max-Age").is_some(), "{}", p.head);

    // FastCGI: the same headers, and the preflight.
    let r = pool.client().get(&film, "", &[("HTTP_ORIGIN", site)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some(site));
    assert_eq!(r.header("Vary"), Some("Origin"));
    assert!(
        r.header("Access-Control-Expose-Headers")
            .is_some_and(|v| v.contains("Content-Range"))
    );
    let r = pool.client().get(
        &film,
        "",
        &[("REQUEST_METHOD", "OPTIONS"), ("HTTP_ORIGIN", site)],
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some(site));
    assert_eq!(r.header("Access-Control-Allow-Methods"), Some("GET, HEAD"));
    assert_eq!(r.header("Access-Control-Allow-Headers"), Some("Range"));
    drop(pool);

    // `*`: any page.
    let (pool, port) = serve(root.path(), &["--cors", "*"]);
    let g = request(port, "GET", "/a.mp4", &[("Origin", "https://any.example")]);
    assert_eq!(
        g.header("Access-Control-Allow-Origin").as_deref(),
        Some("*")
    );
    assert_eq!(g.header("Vary"), None);
    let r = pool.client().get(&film, "", &[]);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    drop(pool);

    // Several origins: each gets its own back.
    let (pool, port) = serve(
        root.path(),
        &["--cors", site, "--cors", "http://localhost:3000"],
    );
    for origin in [site, "http://localhost:3000"] {
        let g = request(port, "GET", "/a.mp4", &[("Origin", origin)]);
        assert_eq!(
            g.header("Access-Control-Allow-Origin").as_deref(),
            Some(origin)
        );
        let r = pool.client().get(
            &film,
            "",
            &[("REQUEST_METHOD", "OPTIONS"), ("HTTP_ORIGIN", origin)],
        );
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some(origin));
        // Over FastCGI too: the film, and a refusal of a later stage.
        let r = pool
            .client()
            .get(&film, "end=2", &[("HTTP_ORIGIN", origin)]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some(origin));
        let r = pool
            .client()
            .get(&film, "start=9999", &[("HTTP_ORIGIN", origin)]);
        assert_eq!(r.status, 400);
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some(origin));
        let r = pool
            .client()
            .get(&film, "start=x", &[("HTTP_ORIGIN", origin)]);
        assert_eq!(r.status, 400);
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some(origin));
    }
    let r = pool
        .client()
        .get(&film, "", &[("HTTP_ORIGIN", "https://evil.example")]);
    assert_eq!(r.header("Access-Control-Allow-Origin"), None);
    drop(pool);

    // Without --cors nothing changes: no header, OPTIONS is 405 both ways.
    let (pool, port) = serve(root.path(), &[]);
    let g = request(port, "GET", "/a.mp4", &[("Origin", site)]);
    assert_eq!(cors_of(&g), [None, None, None], "{}", g.head);
    let p = request(port, "OPTIONS", "/a.mp4", &preflight);
    assert_eq!(p.status, 405, "{}", p.head);
    let r = pool.client().get(&film, "", &[("HTTP_ORIGIN", site)]);
    assert_eq!(r.header("Access-Control-Allow-Origin"), None);
    let r = pool.client().get(
        &film,
        "",
        &[("REQUEST_METHOD", "OPTIONS"), ("HTTP_ORIGIN", site)],
    );
    assert_eq!(r.status, 405);
}

#[test]
fn cors_values_are_checked() {
    for bad in [
        &["example.org"][..],
        &["https://example.org/"],
        &["*", "https://example.org"],
    ] {
        let mut args = vec!["--check"];
        for b in bad {
            args.extend(["--cors", b]);
        }
        let out = Command::new(common::BIN).args(&args).output().unwrap();
        assert!(!out.status.success(), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--cors"), "{bad:?}: {err}");
    }
}

#[test]
#[cfg_attr(
    not(all(has_chromium, has_chromedriver)),
    ignore = "needs chromium, chromedriver: apt-get install -y chromium chromium-driver"
)]
fn demo_page_plays_a_film_three_ways_in_chromium() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("sub dir")).unwrap();
    // A name that breaks any URL not encoded (#, &, space) on a real film.
    let film = "sub dir/a&b #1.mp4";
    std::fs::copy(media("a.mp4"), root.path().join(film)).unwrap();
    for name in HOSTILE {
        std::fs::write(root.path().join(name), b"not a film").unwrap();
    }
    let (_pool, port) = serve(root.path(), &[]);
    let mut names: Vec<&str> = HOSTILE.to_vec();
    names.push(film);
    players_common::demo::plays_three_ways(port, film, "/sub%20dir/a%26b%20%231.mp4", &names);
}
