//! Trick play (issue 24): HLS I-frame playlists and DASH trick-mode
//! representations over one-sample key frame segments. Every key segment,
//! after its init segment, decodes in ffmpeg to exactly one key frame: the
//! source's frame (same picture) at the time the playlist says, and shown
//! at that time. The
//! manifests pass the RFC 8216 and MPD checkers; a fragmented film
//! announces none and refuses them with a reason.

mod common;

use common::dev_http::{get, request, serve_root};
use common::{Pool, hls_check, media, mpd_check};
use std::process::Command;

/// A pool with the development listener over tests/media, DASH trick
/// mode on (`--dash-trick-mode`; HLS lists I-frame playlists always).
fn pool() -> (Pool, u16) {
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let root = media("");
    let pool = Pool::start(&[
        "--http",
        &addr,
        "--root",
        root.to_str().unwrap(),
        "--workers",
        "2",
        "--dash-trick-mode",
    ]);
    common::wait_port(port);
    (pool, port)
}

/// A source video frame: presentation time, whether ffprobe calls it a key
/// frame and an I picture, and its decoded picture's MD5.
struct Frame {
    pts: f64,
    key: bool,
    intra: bool,
    md5: String,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// ffprobe's frames of the first video stream: (pts seconds, key_frame, pict_type).
fn probe_frames(path: &str) -> Vec<(f64, bool, String)> {
    let csv = run(Command::new("ffprobe").args([
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "frame=pts_time,key_frame,pict_type",
        "-of",
        "csv=p=0",
        path,
    ]));
    csv.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[0] == "1", f[2].to_string())
        })
        .collect()
}

/// The MD5 of each decoded picture of the first video stream, in
/// presentation order with its time (seconds), timestamps as the file has them.
fn picture_md5s(path: &str) -> Vec<(f64, String)> {
    let text = run(Command::new("ffmpeg").args([
        "-v",
        "error",
        "-copyts",
        "-i",
        path,
        "-map",
        "0:v:0",
        "-fps_mode",
        "passthrough",
        "-f",
        "framemd5",
        "-",
    ]));
    let tb = text
        .lines()
        .find_map(|l| l.strip_prefix("#tb 0: "))
        .and_then(|t| t.split_once('/'))
        .map(|(n, d)| n.trim().parse::<f64>().unwrap() / d.trim().parse::<f64>().unwrap())
        .expect("a time base");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            (f[2].parse::<f64>().unwrap() * tb, f[5].to_string())
        })
        .collect()
}

fn source_frames(film: &str) -> Vec<Frame> {
    let path = media(film);
    let path = path.to_str().unwrap();
    let md5s = picture_md5s(path);
    probe_frames(path)
        .into_iter()
        .map(|(pts, key, pict)| Frame {
            pts,
            key,
            intra: pict == "I",
            md5: md5s
                .iter()
                .find(|(t, _)| (t - pts).abs() < 1e-4)
                .map(|(_, m)| m.clone())
                .unwrap_or_default(),
        })
        .collect()
}

/// Checks the I-frame outputs of `film` asked with `query`, whose
/// presentation starts at `start` seconds of the source; returns how many
/// key segments were checked.
fn check_film(port: u16, film: &str, query: &str, start: f64, dir: &std::path::Path) -> usize {
    let source = source_frames(film);
    let master = get(port, &format!("/{film}/master.m3u8{query}")).text();
    let v = hls_check::master(&master);
    assert!(v.is_empty(), "{film}{query} master: {v:?}\n{master}");
    let streams = hls_check::i_frame_uris(&master);
    assert_eq!(streams, [format!("iframes-1.m3u8{query}")], "{master}");
    let line = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF:"))
        .unwrap();
    for attr in [
        "BANDWIDTH=",
        "AVERAGE-BANDWIDTH=",
        "CODECS=\"",
        "RESOLUTION=",
    ] {
        assert!(line.contains(attr), "{line}");
    }
    assert!(
        !line.contains("FRAME-RATE") && !line.contains("AUDIO="),
        "{line}"
    );

    let playlist = get(port, &format!("/{film}/{}", streams[0])).text();
    let v = hls_check::i_frames(&playlist);
    assert!(v.is_empty(), "{film}{query} I-frames: {v:?}\n{playlist}");
    assert!(
        playlist.contains(&format!("#EXT-X-MAP:URI=\"init-1.mp4{query}\"")),
        "{playlist}"
    );
    let init = get(port, &format!("/{film}/init-1.mp4{query}")).body;
    let keys = hls_check::segments(&playlist);
    assert!(keys.len() >= 2, "{playlist}");
    let (mut at, mut sizes, mut durations) = (0.0f64, Vec::new(), Vec::new());
    for (n, (extinf, uri)) in keys.iter().enumerate() {
        assert_eq!(uri, &format!("key-{}-1.m4s{query}", n + 1));
        let body = get(port, &format!("/{film}/{uri}")).body;
        let file = dir.join(format!("{film}-{}.mp4", n + 1));
        std::fs::write(&file, [init.as_slice(), &body].concat()).unwrap();
        let file = file.to_str().unwrap();
        let decoded = probe_frames(file);
        assert_eq!(decoded.len(), 1, "{film}{query} {uri}: {decoded:?}");
        let (pts, key, pict) = &decoded[0];
        assert!(*key && pict == "I", "{film}{query} {uri}: {decoded:?}");
        // Its tfdt, through the init segment's edit list, is that time too.
        assert!(
            (pts - at).abs() <= 0.001,
            "{film}{query} {uri}: at {pts}, not {at}"
        );
        // The source's frame at the playlist's time is a key frame, and
        // the same picture.
        let want = at + start;
        let frame = source
            .iter()
            .find(|f| (f.pts - want).abs() <= 0.001)
            .unwrap_or_else(|| panic!("{film}{query} {uri}: no source frame at {want:.6} s"));
        assert!(frame.key && frame.intra, "{film} frame at {want}");
        let got = picture_md5s(file);
        assert_eq!(got.len(), 1, "{uri}");
        assert_eq!(got[0].1, frame.md5, "{film}{query} {uri}: another picture");
        sizes.push(body.len() as u64);
        durations.push(*extinf);
        at += extinf;
    }
    // Every source key frame in the window is listed, and no other.
    let end = source.iter().map(|f| f.pts).fold(0.0, f64::max) + 1.0;
    let end = query
        .split("end=")
        .nth(1)
        .map_or(end, |e| e.split('&').next().unwrap().parse().unwrap());
    let listed = (source.iter())
        .filter(|f| f.key && f.pts >= start - 0.001 && f.pts < end)
        .count();
    assert_eq!(keys.len(), listed, "{film}{query}");
    // BANDWIDTH is at least every key frame's own rate.
    let declared: f64 = line
        .split("BANDWIDTH=")
        .nth(1)
        .and_then(|b| b.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    for (s, d) in sizes.iter().zip(&durations) {
        assert!(declared >= (*s as f64 * 8.0 / d).floor(), "{line}");
    }
    let target = (playlist.lines())
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .unwrap()
        .parse()
        .unwrap();
    let rates = [(
        streams[0].clone(),
        hls_check::bit_rates(&durations, &sizes, target),
    )];
    let mut all: std::collections::HashMap<_, _> = rates.into_iter().collect();
    // The variants' own rates are manifest_conformance's: only the
    // I-frame stream is weighed here.
    for uri in hls_check::uris(&master) {
        all.entry(uri).or_insert_with(Default::default);
    }
    let v = hls_check::bandwidth(&master, &all);
    assert!(v.is_empty(), "{v:?}");

    // DASH: the trick-mode set over the same key frames.
    let mpd = get(port, &format!("/{film}/manifest.mpd{query}")).text();
    let v = mpd_check::check(&mpd);
    assert!(v.is_empty(), "{film}{query} MPD: {v:?}\n{mpd}");
    let doc = roxmltree::Document::parse(&mpd).unwrap();
    let sets: Vec<_> = (doc.descendants())
        .filter(|n| n.has_tag_name("AdaptationSet"))
        .collect();
    let trick = (sets.iter())
        .find(|s| {
            s.children().any(|c| {
                c.has_tag_name("EssentialProperty")
                    && c.attribute("schemeIdUri") == Some("http://dashif.org/guidelines/trickmode")
            })
        })
        .unwrap_or_else(|| panic!("no trick-mode set\n{mpd}"));
    let main = (trick.children())
        .find(|c| c.has_tag_name("EssentialProperty"))
        .and_then(|c| c.attribute("value"))
        .unwrap();
    assert!(
        sets.iter().any(|s| s.attribute("id") == Some(main)
            && s.attribute("contentType") == Some("video")
            && s != trick),
        "the trick-mode set names no main video set: {main}"
    );
    let rep = (trick.children())
        .find(|c| c.has_tag_name("Representation"))
        .unwrap();
    assert_eq!(rep.attribute("codingDependency"), Some("false"));
    let rate: u64 = rep.attribute("maxPlayoutRate").unwrap().parse().unwrap();
    assert!(rate > 1, "{rate}");
    let template = (rep.children())
        .find(|c| c.has_tag_name("SegmentTemplate"))
        .unwrap();
    let timescale: f64 = template.attribute("timescale").unwrap().parse().unwrap();
    let media = template.attribute("media").unwrap();
    let init_url = template.attribute("initialization").unwrap();
    assert_eq!(init_url, format!("init-1.mp4{query}"));
    // The timeline's starts are the playlist's.
    let mut starts = Vec::new();
    let mut t = 0u64;
    for s in (template.descendants()).filter(|n| n.has_tag_name("S")) {
        let num = |a| s.attribute(a).map(|x: &str| x.parse::<u64>().unwrap());
        t = num("t").unwrap_or(t);
        let d = num("d").unwrap();
        for _ in 0..=num("r").unwrap_or(0) {
            starts.push(t as f64 / timescale);
            t += d;
        }
    }
    let mut at = 0.0;
    assert_eq!(starts.len(), keys.len(), "{mpd}");
    for ((d, _), s) in keys.iter().zip(&starts) {
        assert!((s - at).abs() <= 0.001, "{s} vs {at}");
        at += d;
    }
    // Its segments are the I-frame playlist's.
    for n in [1, keys.len()] {
        let url = media.replace("$Number$", &n.to_string());
        assert_eq!(url, format!("key-{n}-1.m4s{query}"));
        let a = get(port, &format!("/{film}/{url}")).body;
        let b = get(port, &format!("/{film}/{}", keys[n - 1].1)).body;
        assert_eq!(a, b);
    }
    keys.len()
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn every_key_segment_is_the_sources_key_frame_at_the_playlists_time() {
    common::require_tool("ffmpeg");
    common::require_tool("ffprobe");
    let (_pool, port) = pool();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(check_film(port, "a.mp4", "", 0.0, dir.path()), 10);
    assert_eq!(check_film(port, "hevc.mp4", "", 0.0, dir.path()), 10);
    // The clip starts on the key frame at or before 3.3 s: 2 s.
    let keys = check_film(port, "a.mp4", "?start=3.3&end=13", 2.0, dir.path());
    assert_eq!(keys, 6);
}

#[test]
fn a_fragmented_film_announces_no_i_frames_and_refuses_them() {
    let (_pool, port) = pool();
    let master = get(port, "/frag.mp4/master.m3u8").text();
    assert!(master.contains("#EXT-X-STREAM-INF"), "{master}");
    assert!(!master.contains("I-FRAME"), "{master}");
    let mpd = get(port, "/frag.mp4/manifest.mpd").text();
    assert!(!mpd.contains("trickmode"), "{mpd}");
    for uri in ["iframes-1.m3u8", "key-1-1.m4s"] {
        let got = request(port, "GET", &format!("/frag.mp4/{uri}"), &[]);
        assert!(
            matches!(got.status, 404 | 415),
            "{uri}: {}\n{}",
            got.head,
            got.text()
        );
        assert!(got.text().contains("fragmented"), "{uri}: {}", got.text());
    }
    // No key frame past the last; no I-frames of an audio track.
    for uri in ["key-11-1.m4s", "iframes-2.m3u8"] {
        let got = request(port, "GET", &format!("/a.mp4/{uri}"), &[]);
        assert_eq!(got.status, 404, "{uri}: {}", got.text());
    }
}

#[test]
fn the_checker_reports_i_frame_faults() {
    let good = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n\
                #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-I-FRAMES-ONLY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n\
                #EXTINF:2.000000,\nkey-1-1.m4s\n#EXT-X-ENDLIST\n";
    assert!(hls_check::i_frames(good).is_empty());
    let no_map = good.replace("#EXT-X-MAP:URI=\"init-1.mp4\"\n", "");
    assert!(!hls_check::i_frames(&no_map).is_empty());
    let not_i_frames = good.replace("#EXT-X-I-FRAMES-ONLY\n", "");
    assert!(!hls_check::i_frames(&not_i_frames).is_empty());
    let master = "#EXTM3U\n#EXT-X-VERSION:7\n\
                  #EXT-X-STREAM-INF:BANDWIDTH=900,CODECS=\"avc1.64001F\"\nindex-1.m3u8\n\
                  #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100,CODECS=\"avc1.64001F\",URI=\"iframes-1.m3u8\"\n";
    assert!(hls_check::master(master).is_empty());
    for bad in [
        master.replace(",URI=\"iframes-1.m3u8\"", ""),
        master.replace("BANDWIDTH=100,", ""),
        master.replace("BANDWIDTH=100,", "BANDWIDTH=100,FRAME-RATE=25.000,"),
        master.replace("iframes-1.m3u8\"\n", "iframes-1.m3u8\"\nx.m3u8\n"),
    ] {
        assert!(!hls_check::master(&bad).is_empty(), "{bad}");
    }
    let rates = |peak| {
        [
            ("index-1.m3u8".to_string(), hls_check::Rates::default()),
            (
                "iframes-1.m3u8".to_string(),
                hls_check::Rates {
                    peak,
                    average: 50.0,
                },
            ),
        ]
        .into_iter()
        .collect()
    };
    assert!(hls_check::bandwidth(master, &rates(100.0)).is_empty());
    assert!(!hls_check::bandwidth(master, &rates(101.0)).is_empty());
}

#[test]
fn a_protected_film_announces_no_i_frames_and_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    for name in ["cenc.mp4", "aes.mp4", "clear.mp4"] {
        std::fs::copy(media("a.mp4"), root.join(name)).unwrap();
    }
    let (kid, key) = (
        "0123456789abcdef0123456789abcdef",
        "00112233445566778899aabbccddeeff",
    );
    let keys = dir.path().join("keys");
    std::fs::write(
        &keys,
        format!("cenc.mp4 cenc {kid} {key}\naes.mp4 aes-128 {kid} {key}\n"),
    )
    .unwrap();
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let _pool = Pool::start(&[
        "--http",
        &addr,
        "--root",
        root.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
        "--workers",
        "1",
        "--dash-trick-mode",
    ]);
    common::wait_port(port);
    // The clear copy has them, so their absence is the protection's.
    let clear = get(port, "/clear.mp4/master.m3u8").text();
    assert!(clear.contains("#EXT-X-I-FRAME-STREAM-INF"), "{clear}");
    for film in ["cenc.mp4", "aes.mp4"] {
        let master = get(port, &format!("/{film}/master.m3u8")).text();
        assert!(master.contains("#EXT-X-STREAM-INF"), "{master}");
        assert!(!master.contains("I-FRAME"), "{film}: {master}");
        let mpd = get(port, &format!("/{film}/manifest.mpd")).text();
        assert!(!mpd.contains("trickmode"), "{film}: {mpd}");
        for uri in ["iframes-1.m3u8", "key-1-1.m4s"] {
            let got = request(port, "GET", &format!("/{film}/{uri}"), &[]);
            assert_eq!(got.status, 415, "{film}/{uri}: {}", got.text());
            assert!(got.text().contains("encrypted"), "{}", got.text());
            assert!(!got.body.windows(4).any(|w| w == b"mdat"));
        }
    }
}

/// Without `--dash-trick-mode` the MPD has no trick-mode set (ffmpeg's
/// DASH reader would take it for one more video stream); the HLS master
/// lists its I-frame playlists all the same.
#[test]
fn dash_trick_mode_is_opt_in() {
    let (_pool, port) = serve_root(&media(""), &[]);
    let mpd = get(port, "/a.mp4/manifest.mpd").text();
    assert!(!mpd.contains("trickmode") && !mpd.contains("key-"), "{mpd}");
    let master = get(port, "/a.mp4/master.m3u8").text();
    assert!(master.contains("#EXT-X-I-FRAME-STREAM-INF:"), "{master}");
}
