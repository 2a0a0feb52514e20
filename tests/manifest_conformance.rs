//! The manifests the server writes against RFC 8216's MUSTs
//! (`common::hls_check`) and the MPD's required attributes
//! (`common::mpd_check`): for every kind of film and URL the server
//! packages, master.m3u8, each playlist it names (the image playlist of
//! seek-bar previews as one, its tiles the master's RESOLUTION, its
//! seconds the MPD's), each variant's BANDWIDTH against the bytes of its
//! segments, and manifest.mpd, whose thumbnail set names the same sprites
//! and tiles of the same size; every sprite is a JPEG. That the checkers
//! catch what they must: tests/manifest_checkers.rs.

mod common;

use common::dev_http::{get, serve_root};
use common::{hls_check, media, mpd_check};
use std::collections::HashMap;
use std::process::Command;

/// Every violation in the manifests of `film` (its URL path) asked with
/// `query`, and how many sprites the image playlist lists; each URI they
/// name is fetched (a non-200 fails the test).
fn violations(port: u16, film: &str, query: &str) -> (Vec<String>, usize) {
    let mut v = Vec::new();
    let mut note = |at: &str, found: Vec<String>| {
        v.extend(found.into_iter().map(|e| format!("{film}/{at}: {e}")));
    };
    let master = get(port, &format!("{film}/master.m3u8{query}")).text();
    note("master.m3u8", hls_check::master(&master));
    let mpd = get(port, &format!("{film}/manifest.mpd{query}")).text();
    // The presentation's seconds, which an image playlist's EXTINFs sum to.
    let seconds = roxmltree::Document::parse(&mpd).ok().and_then(|d| {
        let total = d.root_element().attribute("mediaPresentationDuration");
        total.and_then(mpd_check::duration)
    });
    // URI → the RESOLUTION its EXT-X-IMAGE-STREAM-INF gives.
    let images: HashMap<String, Option<String>> =
        hls_check::image_streams(&master).into_iter().collect();
    let mut rates = HashMap::new();
    let mut sprites = Vec::new();
    for uri in hls_check::uris(&master) {
        let text = get(port, &format!("{film}/{uri}")).text();
        match images.get(&uri) {
            Some(tile) => note(&uri, hls_check::images(&text, tile.as_deref(), seconds)),
            None => note(&uri, hls_check::media(&text)),
        }
        let target = (text.lines())
            .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let segments = hls_check::segments(&text);
        for other in hls_check::uris(&text) {
            if !segments.iter().any(|s| s.1 == other) {
                get(port, &format!("{film}/{other}"));
            }
        }
        let mut sizes = Vec::new();
        for (_, u) in &segments {
            let body = get(port, &format!("{film}/{u}")).body;
            if images.contains_key(&uri) {
                sprites.push(u.clone());
                if !body.starts_with(b"\xff\xd8\xff") {
                    note(&uri, vec![format!("sprite {u} is not a JPEG")]);
                }
            }
            sizes.push(body.len() as u64);
        }
        let durations: Vec<f64> = segments.iter().map(|s| s.0).collect();
        rates.insert(uri, hls_check::bit_rates(&durations, &sizes, target));
    }
    // Every rendition counts, subtitles too (RFC 8216 4.3.4.2).
    note("master.m3u8", hls_check::bandwidth(&master, &rates));
    note("manifest.mpd", mpd_check::check(&mpd));
    for url in dash_urls(&mpd) {
        get(port, &format!("{film}/{url}"));
    }
    // DASH's thumbnail set: the sprites the HLS image playlist lists.
    let dash_sprites = mpd_check::image_sprites(&mpd);
    if dash_sprites != sprites {
        note(
            "manifest.mpd",
            vec![format!(
                "the image set's sprites {dash_sprites:?}, the HLS image playlist's {sprites:?}"
            )],
        );
    }
    let tiles: Vec<String> = (dash_tiles(&mpd).into_iter())
        .map(|(w, h)| format!("{w}x{h}"))
        .collect();
    let hls_tiles: Vec<String> = images.values().flatten().cloned().collect();
    if tiles != hls_tiles {
        note(
            "manifest.mpd",
            vec![format!(
                "the image set's tiles are {tiles:?}, the master's {hls_tiles:?}"
            )],
        );
    }
    for url in &dash_sprites {
        if !get(port, &format!("{film}/{url}"))
            .body
            .starts_with(b"\xff\xd8\xff")
        {
            note("manifest.mpd", vec![format!("sprite {url} is not a JPEG")]);
        }
    }
    (v, sprites.len())
}

/// One tile's size in each DASH thumbnail Representation: its @width and
/// @height divided by its thumbnail_tile layout.
fn dash_tiles(mpd: &str) -> Vec<(u64, u64)> {
    let Ok(doc) = roxmltree::Document::parse(mpd) else {
        return Vec::new();
    };
    let number = |n: roxmltree::Node, a| n.attribute(a).and_then(|x: &str| x.parse::<u64>().ok());
    (doc.descendants())
        .filter(|n| n.has_tag_name("Representation"))
        .filter_map(|rep| {
            let tile = rep.descendants().find(|p| {
                p.has_tag_name("EssentialProperty")
                    && p.attribute("schemeIdUri") == Some(mpd_check::TILE_SCHEME)
            })?;
            let (c, r) = tile.attribute("value")?.split_once('x')?;
            let (c, r): (u64, u64) = (c.parse().ok()?, r.parse().ok()?);
            Some((
                number(rep, "width")? / c.max(1),
                number(rep, "height")? / r.max(1),
            ))
        })
        .collect()
}

/// Each Representation's initialization and first segment (or its single
/// file), as a DASH player expands the MPD's SegmentTemplate.
fn dash_urls(mpd: &str) -> Vec<String> {
    let Ok(doc) = roxmltree::Document::parse(mpd) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for rep in doc
        .descendants()
        .filter(|n| n.has_tag_name("Representation"))
    {
        let id = rep.attribute("id").unwrap_or("");
        let child = |name: &str| rep.children().find(|c| c.has_tag_name(name));
        if let Some(base) = child("BaseURL").and_then(|b| b.text()) {
            urls.push(base.to_string());
        }
        let Some(t) = child("SegmentTemplate") else {
            continue;
        };
        let number = t.attribute("startNumber").unwrap_or("1");
        for (attr, with) in [("initialization", ""), ("media", number)] {
            let Some(url) = t.attribute(attr) else {
                continue;
            };
            urls.push(
                url.replace("$RepresentationID$", id)
                    .replace("$Number$", with),
            );
        }
    }
    urls
}

/// The checks of each case, all violations printed on failure; each
/// announces seek-bar previews, or (`previews` false) none does.
fn assert_conforms(port: u16, cases: &[(&str, &str)], previews: bool) {
    let mut all = Vec::new();
    for (film, query) in cases {
        let (found, sprites) = violations(port, film, query);
        all.extend(found);
        if (sprites > 0) != previews {
            all.push(format!("{film}{query}: {sprites} sprites announced"));
        }
    }
    assert!(
        all.is_empty(),
        "{} violations:\n{}",
        all.len(),
        all.join("\n")
    );
}

/// Encrypted films (cenc, cbcs, AES-128): their manifests conform, and
/// their BANDWIDTH covers the segments as sent, auxiliary boxes and
/// padding included; none announces seek-bar previews.
#[test]
fn the_encrypted_films_manifests_conform() {
    let dir = tempfile::tempdir().unwrap();
    let mut keys = String::new();
    for scheme in ["cenc", "cbcs", "aes-128"] {
        for film in ["a.mp4", "two_audio.mp4", "hevc.mp4"] {
            std::fs::copy(media(film), dir.path().join(format!("{scheme}-{film}"))).unwrap();
        }
        keys.push_str(&format!(
            "{scheme}-* {scheme} 0123456789abcdef0123456789abcdef 00112233445566778899aabbccddeeff\n"
        ));
    }
    let key_file = dir.path().join("keys");
    std::fs::write(&key_file, keys).unwrap();
    let (_pool, port) = serve_root(dir.path(), &["--keys", key_file.to_str().unwrap()]);
    let names: Vec<String> = ["cenc", "cbcs", "aes-128"]
        .iter()
        .flat_map(|s| ["a.mp4", "two_audio.mp4", "hevc.mp4"].map(|f| format!("/{s}-{f}")))
        .collect();
    let mut cases: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "")).collect();
    cases.push(("/cenc-a.mp4", "?start=3.3&end=13"));
    // Their pictures are refused (403): no previews announced.
    assert_conforms(port, &cases, false);
}

/// The films in tests/media: H.264 + AAC, two audio languages, HEVC; a
/// clip window and choices of tracks; each with its seek-bar previews.
#[test]
fn the_media_films_manifests_conform() {
    let (_pool, port) = serve_root(&media(""), &[]);
    assert_conforms(
        port,
        &[
            ("/a.mp4", ""),
            ("/a.mp4", "?start=3.3&end=13"),
            ("/two_audio.mp4", ""),
            ("/two_audio.mp4", "?lang=fr"),
            ("/two_audio.mp4", "?tracks=v1,a2"),
            ("/two_audio.mp4", "?start=2&end=8&tracks=v1,a1"),
            ("/hevc.mp4", ""),
        ],
        true,
    );
}

/// Films ffmpeg makes: a mov_text subtitle track, AV1 + Opus, VP9 + Opus,
/// each with its seek-bar previews, and a URL set of two encodes.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn the_encoded_films_manifests_conform() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let srt = dir.path().join("subs.srt");
    std::fs::write(
        &srt,
        "1\n00:00:01,000 --> 00:00:02,500\nFirst line\n\n\
         2\n00:00:12,250 --> 00:00:14,000\nLater\n",
    )
    .unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(media("a.mp4"))
        .arg("-i")
        .arg(&srt)
        .args(["-map", "0", "-map", "1", "-c", "copy", "-c:s", "mov_text"])
        .args(["-metadata:s:s:0", "language=eng"])
        .arg(dir.path().join("subs.mp4"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::encode_av1_and_vp9(dir.path(), "320x180", 8);
    common::encode(dir.path(), "lecture_360.mp4", "320x180", "150k", 50);
    common::encode(dir.path(), "lecture_720.mp4", "640x360", "600k", 50);
    let (_pool, port) = serve_root(dir.path(), &[]);
    assert_conforms(
        port,
        &[
            ("/subs.mp4", ""),
            ("/subs.mp4", "?start=3.3&end=13"),
            ("/subs.mp4", "?tracks=v1,a1"),
            ("/av1.mp4", ""),
            ("/vp9.mp4", ""),
        ],
        true,
    );
    // A URL set announces no previews (README: none for URL sets).
    assert_conforms(
        port,
        &[
            ("/lecture_,360,720,.mp4.urlset", ""),
            ("/lecture_,360,720,.mp4.urlset", "?start=4&end=16"),
        ],
        false,
    );
}

// The checkers catch real faults: a clean manifest, then one fault at a
// time, each reported.
