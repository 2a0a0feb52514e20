//! Seek-bar previews (tests/thumbnails.rs): sprites of 5x2 tiles 160 px
//! wide, one every 2 s. Each tile, cropped where `thumbnails.vtt` places
//! it, is ffmpeg's key frame at or before the cue's start; tiles past the
//! end are black; the cues cover the film without gap; `images.m3u8`
//! lists every sprite for its seconds; master.m3u8 and manifest.mpd
//! announce them, and nothing does with `--thumbnail-interval 0`.

use super::common::dev_http::{get, request, serve_root};
use super::common::{hls_check, mpd_check, probe_duration};
use super::refs::{self, Pair, Reference, key_at_or_before};
use super::{SMALL_DB, copy_media, jpeg, tools};
use std::path::{Path, PathBuf};

const TILES: [&str; 6] = [
    "--thumbnail-interval",
    "2",
    "--thumbnail-tiles",
    "5x2",
    "--thumbnail-width",
    "160",
];
const INTERVAL_MS: u64 = 2000;
const COLUMNS: u64 = 5;
const ROWS: u64 = 2;
const TILE_W: u64 = 160;
const TILE_H: u64 = 90;

/// One cue of `thumbnails.vtt`: its times (ms), sprite and region.
#[derive(Debug)]
struct Cue {
    start: u64,
    end: u64,
    sprite: u64,
    query: String,
    xywh: [u64; 4],
}

fn ms(stamp: &str) -> u64 {
    let f: Vec<&str> = stamp.split([':', '.']).collect();
    assert_eq!(f.len(), 4, "hh:mm:ss.ttt: {stamp}");
    let n: Vec<u64> = f.iter().map(|x| x.parse().expect(stamp)).collect();
    ((n[0] * 60 + n[1]) * 60 + n[2]) * 1000 + n[3]
}

fn cues(vtt: &str) -> Vec<Cue> {
    assert!(vtt.starts_with("WEBVTT\n"), "{vtt}");
    let blocks: Vec<&str> = vtt
        .split("\n\n")
        .skip(1)
        .filter(|b| !b.trim().is_empty())
        .collect();
    (blocks.iter())
        .map(|b| {
            let (times, payload) = b.trim().split_once('\n').expect("a cue: times and payload");
            let (a, z) = times.split_once(" --> ").expect(times);
            let rest = payload.strip_prefix("tiles-").expect(payload);
            let (n, rest) = rest.split_once(".jpg").expect(payload);
            let (query, xywh) = rest.split_once("#xywh=").expect(payload);
            let v: Vec<u64> = xywh.split(',').map(|x| x.parse().expect(payload)).collect();
            Cue {
                start: ms(a),
                end: ms(z),
                sprite: n.parse().expect(payload),
                query: query.to_string(),
                xywh: v.try_into().expect(payload),
            }
        })
        .collect()
}

/// The cues of `film` (`duration_ms` long) checked: contiguous from 0 to
/// the end, each its interval, each region a tile inside its sprite.
fn check_cues(film: &str, list: &[Cue], duration_ms: u64, query: &str) {
    let per = COLUMNS * ROWS;
    assert_eq!(
        list.len() as u64,
        duration_ms.div_ceil(INTERVAL_MS),
        "{film}: {list:?}"
    );
    for (k, c) in list.iter().enumerate() {
        let k = k as u64;
        assert_eq!(c.start, k * INTERVAL_MS, "{film} cue {k}: {c:?}");
        assert_eq!(
            c.end,
            (c.start + INTERVAL_MS).min(duration_ms),
            "{film} cue {k}: {c:?}"
        );
        assert_eq!(c.sprite, k / per + 1, "{film} cue {k}: {c:?}");
        assert_eq!(c.query, query, "{film} cue {k}");
        let place = k % per;
        let want = [
            (place % COLUMNS) * TILE_W,
            (place / COLUMNS) * TILE_H,
            TILE_W,
            TILE_H,
        ];
        assert_eq!(c.xywh, want, "{film} cue {k}");
        let [x, y, w, h] = c.xywh;
        assert!(
            x + w <= COLUMNS * TILE_W && y + h <= ROWS * TILE_H,
            "{film} cue {k}: {c:?}"
        );
    }
    assert_eq!(
        list.last().unwrap().end,
        duration_ms,
        "{film}: the cues stop short"
    );
}

/// One tile to compare: its sprite's file, its region and the reference.
struct Tile {
    what: String,
    sprite: PathBuf,
    xywh: [u64; 4],
    reference: Option<PathBuf>,
}

fn crop([x, y, w, h]: [u64; 4]) -> String {
    format!("crop={w}:{h}:{x}:{y}")
}

/// Fetches every sprite of `film` (asked with `query`, the clip starting
/// `offset` s into the film) and lists its tiles: the cues' regions with
/// ffmpeg's key frame at or before each, and the black rest.
fn tiles(port: u16, root: &Path, work: &Path, film: &str, query: &str, offset: f64) -> Vec<Tile> {
    let path = root.join(film);
    let frames = refs::frames(&path);
    let duration_ms = ((probe_duration(&path) - offset) * 1000.0).round() as u64;
    let vtt = get(port, &format!("/{film}/thumbnails.vtt{query}")).text();
    let list = cues(&vtt);
    check_cues(film, &list, duration_ms, query);
    let sprites = list.last().unwrap().sprite;
    let stem = film.trim_end_matches(".mp4");
    let files: Vec<PathBuf> = (1..=sprites)
        .map(|n| {
            let name = format!("{stem}-{}-tiles-{n}.jpg", query.len());
            jpeg(port, &format!("/{film}/tiles-{n}.jpg{query}"), work, &name)
        })
        .collect();
    for f in &files {
        let want = ((COLUMNS * TILE_W) as u32, (ROWS * TILE_H) as u32);
        assert_eq!(refs::size(f), want, "{}", f.display());
    }
    let keys: Vec<f64> = (list.iter())
        .map(|c| key_at_or_before(&frames, offset + c.start as f64 / 1000.0).pts)
        .collect();
    let tag = format!("tiles{}", query.len());
    let made = refs::references(&path, &keys, (TILE_W as u32, TILE_H as u32), work, &tag);
    let mut out: Vec<Tile> = (list.iter().zip(made).zip(&keys))
        .map(|((c, reference), key)| Tile {
            what: format!("{film}{query} tile at {} ms (key {key:.2} s)", c.start),
            sprite: files[c.sprite as usize - 1].clone(),
            xywh: c.xywh,
            reference: Some(reference),
        })
        .collect();
    let per = COLUMNS * ROWS;
    for k in list.len() as u64..sprites * per {
        let place = k % per;
        out.push(Tile {
            what: format!("{film}{query} tile {k}, past the end"),
            sprite: files.last().unwrap().clone(),
            xywh: [
                (place % COLUMNS) * TILE_W,
                (place / COLUMNS) * TILE_H,
                TILE_W,
                TILE_H,
            ],
            reference: None,
        });
    }
    out
}

/// The sprites' announcements: the master's image stream, `images.m3u8`
/// and the MPD's thumbnail set, each as served through its checker (the
/// image playlist's seconds the film's), then their sprites, tiles and
/// seconds.
fn check_announced(port: u16, film: &str, duration: f64) {
    let sprites = (duration / 20.0).ceil() as usize;
    let master = get(port, &format!("/{film}/master.m3u8")).text();
    let v = hls_check::master(&master);
    assert!(v.is_empty(), "{film} master: {v:?}\n{master}");
    // RESOLUTION is one tile's, as EXT-X-TILES says it.
    let tile = format!("{TILE_W}x{TILE_H}");
    let streams = hls_check::image_streams(&master);
    assert_eq!(
        streams,
        [("images.m3u8".to_string(), Some(tile.clone()))],
        "{film}: {master}"
    );
    let line = (master.lines())
        .find(|l| l.starts_with("#EXT-X-IMAGE-STREAM-INF:"))
        .unwrap_or_else(|| panic!("{film}: no image stream\n{master}"));
    for attr in ["CODECS=\"jpeg\"", "BANDWIDTH="] {
        assert!(line.contains(attr), "{film}: {line}");
    }
    let images = get(port, &format!("/{film}/images.m3u8")).text();
    let v = hls_check::images(&images, Some(&tile), Some(duration));
    assert!(v.is_empty(), "{film} images.m3u8: {v:?}\n{images}");
    let listed = hls_check::segments(&images);
    let uris: Vec<String> = (1..=sprites).map(|n| format!("tiles-{n}.jpg")).collect();
    assert_eq!(
        listed.iter().map(|(_, u)| u.clone()).collect::<Vec<_>>(),
        uris,
        "{images}"
    );
    let tiles_lines = images
        .matches(&format!(
            "#EXT-X-TILES:RESOLUTION={tile},LAYOUT={COLUMNS}x{ROWS},DURATION=2"
        ))
        .count();
    assert_eq!(tiles_lines, sprites, "{images}");

    let mpd = get(port, &format!("/{film}/manifest.mpd")).text();
    let v = mpd_check::check(&mpd);
    assert!(v.is_empty(), "{film} MPD: {v:?}\n{mpd}");
    // The same sprites as the HLS image playlist's.
    assert_eq!(mpd_check::image_sprites(&mpd), uris, "{film}: {mpd}");
    let doc = roxmltree::Document::parse(&mpd).unwrap();
    let set = (doc.descendants())
        .find(|n| n.has_tag_name("AdaptationSet") && n.attribute("contentType") == Some("image"))
        .unwrap_or_else(|| panic!("{film}: no image set\n{mpd}"));
    let template = set
        .children()
        .find(|c| c.has_tag_name("SegmentTemplate"))
        .expect("a template");
    assert_eq!(template.attribute("media"), Some("tiles-$Number$.jpg"));
    let seconds = template
        .attribute("duration")
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / template
            .attribute("timescale")
            .unwrap()
            .parse::<f64>()
            .unwrap();
    assert_eq!(seconds, 20.0, "{film}: one sprite's seconds");
    let rep = set
        .children()
        .find(|c| c.has_tag_name("Representation"))
        .expect("a representation");
    // The whole sprite's size (DASH-IF IOP 6.2.6).
    let (w, h) = ((TILE_W * COLUMNS).to_string(), (TILE_H * ROWS).to_string());
    assert_eq!(
        (rep.attribute("width"), rep.attribute("height")),
        (Some(w.as_str()), Some(h.as_str()))
    );
    let prop = (rep.descendants())
        .find(|c| c.attribute("schemeIdUri") == Some(mpd_check::TILE_SCHEME))
        .unwrap_or_else(|| panic!("{film}: no thumbnail_tile property\n{mpd}"));
    assert_eq!(prop.attribute("value"), Some("5x2"));
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn sprites_tile_key_frames_where_the_cues_say() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let (root, work) = (dir.path().join("root"), dir.path().join("work"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    copy_media(&root, &["a.mp4"]);
    // 25 s, key frames every 4 s: two sprites, half the tiles an earlier
    // key frame's, the second sprite 3 tiles and 7 black.
    refs::long_gop(&root);
    let (_pool, port) = serve_root(&root, &TILES);
    for film in ["a.mp4", "long.mp4"] {
        check_announced(port, film, probe_duration(&root.join(film)));
    }
    let mut all = tiles(port, &root, &work, "a.mp4", "", 0.0);
    all.extend(tiles(port, &root, &work, "long.mp4", "", 0.0));
    // A clip: its tiles from its own start, the key frame at 4 s.
    all.extend(tiles(port, &root, &work, "a.mp4", "?start=5", 4.0));
    let pairs: Vec<Pair> = (all.iter())
        .map(|t| Pair {
            ours: t.sprite.clone(),
            crop: Some(crop(t.xywh)),
            reference: match &t.reference {
                Some(r) => Reference::File(r.clone()),
                None => Reference::Black(TILE_W as u32, TILE_H as u32),
            },
        })
        .chain([Pair {
            // Not any other key frame: a.mp4's first tile against its second's.
            ours: all[0].sprite.clone(),
            crop: Some(crop(all[0].xywh)),
            reference: Reference::File(all[1].reference.clone().unwrap()),
        }])
        .collect();
    let mut db = refs::psnr(&pairs);
    let (_, off) = db.pop().unwrap();
    let mut lowest = f64::INFINITY;
    for (t, (y, avg)) in all.iter().zip(&db) {
        assert!(
            *y >= super::PICTURE_DB && *avg >= SMALL_DB,
            "{}: {y:.2} dB Y, {avg:.2} dB average",
            t.what
        );
        lowest = lowest.min(*avg);
    }
    println!(
        "{} tiles, lowest average {lowest:.2} dB: {:?}; \
         a.mp4's first tile against the key frame at 2 s {off:.2} dB",
        all.len(),
        db.iter()
            .map(|(_, a)| format!("{a:.1}"))
            .collect::<Vec<_>>()
    );
    assert!(
        off < 25.0,
        "a.mp4's first tile against the key frame at 2 s: {off:.2} dB"
    );
}

#[test]
fn no_interval_announces_no_sprites() {
    let (_pool, port) = serve_root(&super::media(""), &["--thumbnail-interval", "0"]);
    let master = get(port, "/a.mp4/master.m3u8").text();
    assert!(!master.contains("IMAGE"), "{master}");
    let mpd = get(port, "/a.mp4/manifest.mpd").text();
    assert!(
        !mpd.contains("image") && !mpd.contains("thumbnail"),
        "{mpd}"
    );
    for name in ["thumbnails.vtt", "images.m3u8", "tiles-1.jpg"] {
        let got = request(port, "GET", &format!("/a.mp4/{name}"), &[]);
        assert_eq!(got.status, 404, "{name}: {}", got.text());
    }
    // Thumbnails themselves are still made.
    let got = get(port, "/a.mp4/thumb-1000.jpg");
    assert!(got.body.starts_with(b"\xff\xd8\xff"));
}
