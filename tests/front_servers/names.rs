//! The names the pool serves under a film (`Resource::parse`), one of each
//! kind, and names just outside that grammar: every example and link
//! generator passes the former to the pool and keeps the latter from it.
#![allow(dead_code)]

use super::*;

/// One output name of each kind. a.mp4's tracks are 1 (video) and 2 (audio):
/// track 3 (subtitles) and the key of a clear film are the pool's 404. The
/// pictures (a thumbnail with each choice of size, a sprite of the seek-bar
/// previews) and their playlists are the pool's 200: a.mp4 lasts 20 s.
pub const OUTPUTS: &[&str] = &[
    "master.m3u8",
    "manifest.mpd",
    "index-1.m3u8",
    "init-1.mp4",
    "seg-1-1.m4s",
    "subs-3.m3u8",
    "subs-1-3.vtt",
    "subs-3.vtt",
    "iframes-1.m3u8",
    "key-1-1.m4s",
    "encryption.key",
    "thumb-1000.jpg",
    "thumb-1000-w160.jpg",
    "thumb-1000-h90.jpg",
    "thumb-1000-w160-h90.jpg",
    "tiles-1.jpg",
    "images.m3u8",
    "thumbnails.vtt",
];

/// The same kinds with a URL set's tracks (`f<film>-<id>`).
pub const SET_OUTPUTS: &[&str] = &[
    "index-f1-1.m3u8",
    "init-f1-1.mp4",
    "seg-1-f2-1.m4s",
    "subs-f1-3.m3u8",
    "subs-1-f1-3.vtt",
    "subs-f1-3.vtt",
    "iframes-f1-1.m3u8",
    "key-1-f2-1.m4s",
];

/// Names close to outputs that the pool has no output for.
pub const NOT_OUTPUTS: &[&str] = &[
    "seg-1.m4s",
    "index-1.mp4",
    "other.m3u8",
    "subs-3.m4s",
    "subs-1-2-3.vtt",
    "subs.vtt",
    "iframes-1.m4s",
    "key-1.m4s",
    "key-1-1.mp4",
    "encryption.keys",
    "Encryption.key",
    "thumb-1.png",
    "thumb--1.jpg",
    "thumb-1-x5.jpg",
    "thumb-1-h5-w5.jpg",
    "thumb-1-w.jpg",
    "tiles-.jpg",
    "tiles-1-w5.jpg",
    "images.m3u",
    "thumbnail.vtt",
];

/// The content type of a thumbnail output (a JPEG or a playlist of them),
/// which a.mp4 has: the pool answers these 200, nothing else.
fn picture_type(name: &str) -> Option<&'static str> {
    match name {
        "images.m3u8" => Some("application/vnd.apple.mpegurl"),
        "thumbnails.vtt" => Some("text/vtt"),
        n if n.ends_with(".jpg") => Some("image/jpeg"),
        _ => None,
    }
}

/// Each `url(name)` reaches the pool: its request counter grows by one per
/// request, and the answer is the pool's (200, or 404/415 for what the film
/// lacks), not a refusal of the front server's. The thumbnails' outputs are
/// the pool's 200 with their content type (a JPEG's body starts FF D8 FF).
pub fn check_outputs_reach_pool(
    port: u16,
    pool: &Pool,
    names: &[&str],
    url: impl Fn(&str) -> String,
) {
    for name in names {
        let url = url(name);
        let seen = requests_seen(pool);
        let r = request(port, "GET", &url, "");
        assert!(matches!(r.status, 200 | 404 | 415), "{url}: {}", r.headers);
        if let Some(kind) = picture_type(name) {
            assert_eq!(r.status, 200, "{url}: {}", r.headers);
            assert!(
                r.headers.contains(&format!("content-type: {kind}")),
                "{url}: {}",
                r.headers
            );
            assert!(
                kind != "image/jpeg" || r.body.starts_with(&[0xff, 0xd8, 0xff]),
                "{url}: not a JPEG"
            );
        }
        // This request and the counter's own read.
        assert_eq!(
            requests_seen(pool),
            seen + 2,
            "{url} did not reach the pool"
        );
    }
}

/// Each `url(name)` is answered by the front server itself (403 or 404)
/// and never reaches the pool.
pub fn check_names_kept_from_pool(
    port: u16,
    pool: &Pool,
    names: &[&str],
    url: impl Fn(&str) -> String,
) {
    for name in names {
        let url = url(name);
        let seen = requests_seen(pool);
        let r = request(port, "GET", &url, "");
        assert!(matches!(r.status, 403 | 404), "{url}: {}", r.headers);
        assert_eq!(requests_seen(pool), seen + 1, "{url} reached the pool");
    }
}

/// The link generator `script` (shell or Python) refuses `path` (exit 2).
pub fn generator_refuses(script: &str, path: &str) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conf-examples/links")
        .join(script);
    let runner = if script.ends_with(".py") {
        "python3"
    } else {
        "sh"
    };
    let out = Command::new(runner)
        .arg(file)
        .arg(path)
        .env("MP4_LINK_SECRET", "change-this-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{script} refuses {path:?}");
}
