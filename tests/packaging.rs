//! HLS and DASH packaged on the fly (issue 15), judged by ffmpeg: every
//! manifest decodes clean with the source's frame count, a track's init and
//! media segments hold exactly the source's samples, every `#EXTINF` is its
//! segment's real duration, and two pools number segments alike.

mod common;
mod decoded;

use common::dev_http::{get, request};
use common::{Pool, cut, media};
use decoded::{
    decode_errors, every_source_frame, ffmpeg_packaged, ffprobe_json, frames, packets, same_frames,
};
use std::process::Command;

/// A pool with the development listener over tests/media.
fn pool(extra: &[&str]) -> (Pool, u16) {
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let root = media("");
    let mut args = vec![
        "--http",
        &addr,
        "--root",
        root.to_str().unwrap(),
        "--workers",
        "2",
    ];
    args.extend_from_slice(extra);
    let pool = Pool::start(&args);
    common::wait_port(port);
    (pool, port)
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn ffmpeg_decodes_hls_and_dash_of_every_film_with_every_frame() {
    common::require_tool("ffmpeg");
    let (_pool, port) = pool(&[]);
    let dir = tempfile::tempdir().unwrap();
    for film in [
        "a.mp4",
        "a_faststart.mp4",
        "hevc.mp4",
        "two_audio.mp4",
        "audio.m4a",
    ] {
        let source = frames(media(film).to_str().unwrap());
        for manifest in ["master.m3u8", "manifest.mpd"] {
            let url = format!("http://127.0.0.1:{port}/{film}/{manifest}");
            let errors = decode_errors(&url);
            assert!(errors.is_empty(), "{url}: {errors}");
            let got = frames(&url);
            // Exactly what ffmpeg decodes from its own packaging of the film.
            let theirs = frames(&ffmpeg_packaged(dir.path(), &media(film), manifest));
            same_frames(&url, &got, &theirs);
            every_source_frame(&url, &got, &source);
        }
    }
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn a_clip_is_its_own_presentation_from_its_key_frame() {
    common::require_tool("ffmpeg");
    let (_pool, port) = pool(&[]);
    let dir = tempfile::tempdir().unwrap();
    for (film, start, end) in [("a.mp4", "3.3", "13"), ("two_audio.mp4", "7", "15.5")] {
        // The same window from its key frame, progressive and without edits.
        let reference = dir.path().join(format!("{film}-{start}.mp4"));
        cut(
            &media(film),
            &reference,
            &["--start", start, "--end", end, "--client", "flash"],
        )
        .unwrap();
        let expected = frames(reference.to_str().unwrap());
        let query = format!("?start={start}&end={end}");
        for manifest in ["master.m3u8", "manifest.mpd"] {
            let url = format!("http://127.0.0.1:{port}/{film}/{manifest}{query}");
            let errors = decode_errors(&url);
            assert!(errors.is_empty(), "{url}: {errors}");
            let got = frames(&url);
            // flash keeps one audio track; compare the video and first audio.
            let video = |v: &[(String, u64)]| v.iter().find(|(k, _)| k == "video").cloned();
            assert_eq!(video(&got), video(&expected), "{url}");
            let body = get(port, &format!("/{film}/{manifest}{query}")).text();
            let uris =
                body.matches(&query).count() + body.matches(&query.replace('&', "&amp;")).count();
            assert!(uris >= 2, "{url}: every URL carries the window:\n{body}");
        }
    }
}

/// `(init, [segment URIs], [EXTINF])` of a media playlist.
fn media_playlist(text: &str) -> (String, Vec<String>, Vec<f64>) {
    let init = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("EXT-X-MAP")
        .to_string();
    let mut uris = Vec::new();
    let mut extinf = Vec::new();
    for l in text.lines() {
        if let Some(d) = l.strip_prefix("#EXTINF:") {
            extinf.push(d.trim_end_matches(',').parse().unwrap());
        } else if !l.starts_with('#') && !l.is_empty() {
            uris.push(l.to_string());
        }
    }
    (init, uris, extinf)
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn segments_hold_exactly_the_source_samples_and_extinf_is_their_duration() {
    common::require_tool("ffmpeg");
    let (_pool, port) = pool(&[]);
    let dir = tempfile::tempdir().unwrap();
    for film in ["a.mp4", "hevc.mp4", "two_audio.mp4", "frag.mp4"] {
        let master = get(port, &format!("/{film}/master.m3u8")).text();
        // The media playlists (I-frame playlists are tests/trick_play.rs's,
        // the image playlist tests/thumbnails.rs's).
        let playlists: Vec<&str> = master
            .lines()
            .filter(|l| !l.starts_with("#EXT-X-I-FRAME-STREAM-INF"))
            .filter(|l| !l.starts_with("#EXT-X-IMAGE-STREAM-INF"))
            .filter_map(|l| {
                l.split("URI=\"")
                    .nth(1)
                    .map(|u| u.trim_end_matches('"'))
                    .or_else(|| (!l.starts_with('#') && !l.is_empty()).then_some(l))
            })
            .collect();
        assert!(playlists.len() >= 2, "{master}");
        for (stream, playlist) in playlists.iter().enumerate() {
            let text = get(port, &format!("/{film}/{playlist}")).text();
            let (init, uris, extinf) = media_playlist(&text);
            assert_eq!(uris.len(), extinf.len());
            let track: usize = init[5..init.len() - 4].parse().unwrap();
            let init_bytes = get(port, &format!("/{film}/{init}")).body;
            let mut all = init_bytes.clone();
            let mut total = 0.0;
            for (k, uri) in uris.iter().enumerate() {
                assert_eq!(*uri, format!("seg-{}-{track}.m4s", k + 1), "numbering");
                let seg = get(port, &format!("/{film}/{uri}"));
                assert_eq!(
                    seg.header("Content-Type").as_deref(),
                    Some("video/iso.segment")
                );
                // One segment alone, after its init, lasts what #EXTINF says.
                let one = dir.path().join(format!("{film}-{track}-{k}.mp4"));
                std::fs::write(&one, [init_bytes.as_slice(), &seg.body].concat()).unwrap();
                let p = ffprobe_json(
                    &["-show_entries", "stream=time_base:packet=duration,pts"],
                    one.to_str().unwrap(),
                );
                let tb: Vec<f64> = p["streams"][0]["time_base"]
                    .as_str()
                    .unwrap()
                    .split('/')
                    .map(|x| x.parse().unwrap())
                    .collect();
                let pk = p["packets"].as_array().unwrap();
                let durations: Vec<i64> =
                    pk.iter().filter_map(|p| p["duration"].as_i64()).collect();
                let frame = durations.iter().copied().max().unwrap() as f64 * tb[0] / tb[1];
                // From the first frame shown to the end of the last (a
                // first frame may have no duration of its own in ffprobe).
                let first = pk.iter().filter_map(|p| p["pts"].as_i64()).min().unwrap();
                let last = pk
                    .iter()
                    .filter_map(|p| Some(p["pts"].as_i64()? + p["duration"].as_i64()?))
                    .max()
                    .unwrap();
                let real = (last - first) as f64 * tb[0] / tb[1];
                assert!(
                    (real - extinf[k]).abs() <= frame + 1e-6,
                    "{film} track {track} segment {}: EXTINF {} but {real} s of samples",
                    k + 1,
                    extinf[k]
                );
                total += extinf[k];
                all.extend_from_slice(&seg.body);
            }
            let joined = dir.path().join(format!("{film}-{track}.mp4"));
            std::fs::write(&joined, &all).unwrap();
            let got = packets(joined.to_str().unwrap(), None);
            let source = packets(media(film).to_str().unwrap(), Some(track - 1));
            assert_eq!(
                got.len(),
                source.len(),
                "{film} track {track}: every sample once"
            );
            for (i, (g, s)) in got.iter().zip(&source).enumerate() {
                assert_eq!((g.0, &g.1), (s.0, &s.1), "{film} track {track} sample {i}");
                // The last sample's duration ffprobe reports for the source
                // is what its edit list leaves of it.
                if let (Some(a), Some(b), false) = (g.2, s.2, i + 1 == source.len()) {
                    assert_eq!(a, b, "{film} track {track} sample {i} duration");
                }
            }
            let duration = common::probe_duration(&media(film));
            assert!(
                (total - duration).abs() < 0.1,
                "{film} track {track} (stream {stream}): EXTINF add up to {total}, film {duration}"
            );
        }
    }
}

#[test]
fn two_pools_number_segments_alike_and_tag_them_alike() {
    let (_a, pa) = pool(&[]);
    let (_b, pb) = pool(&[]);
    for film in ["a.mp4", "two_audio.mp4", "hevc.mp4"] {
        for q in ["", "?start=5&end=17.5", "?start=9.75"] {
            for name in [
                "master.m3u8",
                "manifest.mpd",
                "index-1.m3u8",
                "index-2.m3u8",
            ] {
                let t = format!("/{film}/{name}{q}");
                let (x, y) = (get(pa, &t), get(pb, &t));
                assert_eq!(x.text(), y.text(), "{t}");
                assert_eq!(x.header("ETag"), y.header("ETag"), "{t}");
                assert!(x.header("ETag").unwrap().starts_with('"'), "strong");
            }
            let t = format!("/{film}/seg-2-1.m4s{q}");
            let (x, y) = (get(pa, &t), get(pb, &t));
            assert!(x.body == y.body, "{t}: bodies differ");
            assert_eq!(x.header("ETag"), y.header("ETag"), "{t}");
        }
    }
}

#[test]
fn segments_answer_range_head_and_conditionals_with_cache_control() {
    let (_pool, port) = pool(&[
        "--cache-control",
        "public, max-age=600",
        "--segment-duration",
        "4",
    ]);
    let whole = get(port, "/a.mp4/seg-1-1.m4s");
    assert_eq!(
        whole.header("Cache-Control").as_deref(),
        Some("public, max-age=600")
    );
    let len = whole.body.len();
    assert_eq!(whole.header("Content-Length"), Some(len.to_string()));
    let etag = whole.header("ETag").unwrap();
    let r = request(
        port,
        "GET",
        "/a.mp4/seg-1-1.m4s",
        &[("Range", "bytes=100-199")],
    );
    assert_eq!(r.status, 206);
    assert!(r.body == whole.body[100..200]);
    let h = request(port, "HEAD", "/a.mp4/seg-1-1.m4s", &[]);
    assert_eq!((h.status, h.body.len()), (200, 0));
    assert_eq!(h.header("Content-Length"), Some(len.to_string()));
    let c = request(
        port,
        "GET",
        "/a.mp4/seg-1-1.m4s",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(c.status, 304);
    // Other outputs of the same film have other tags.
    let m = get(port, "/a.mp4/master.m3u8");
    assert_ne!(m.header("ETag").unwrap(), etag);
    assert_eq!(
        m.header("Content-Type").as_deref(),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(
        get(port, "/a.mp4/manifest.mpd")
            .header("Content-Type")
            .as_deref(),
        Some("application/dash+xml")
    );
    assert_eq!(
        get(port, "/a.mp4/init-1.mp4")
            .header("Content-Type")
            .as_deref(),
        Some("video/mp4")
    );
    // --segment-duration 4 with key frames every 2 s: 5 segments of 4 s.
    let (_, uris, extinf) = media_playlist(&get(port, "/a.mp4/index-1.m3u8").text());
    assert_eq!(uris.len(), 5, "{extinf:?}");
    assert!(extinf.iter().all(|d| (d - 4.0).abs() < 1e-3), "{extinf:?}");
    // The film itself is still the film.
    let film = get(port, "/a_faststart.mp4");
    assert!(film.body == std::fs::read(media("a_faststart.mp4")).unwrap());
}

#[test]
fn what_cannot_be_packaged_is_refused_with_a_reason() {
    let (pool, port) = pool(&[]);
    for (target, status, reason) in [
        ("/a.mp4/seg-99-1.m4s", 404, "no segment 99"),
        ("/a.mp4/seg-1-7.m4s", 404, "no video or audio track 7"),
        ("/a.mp4/index-9.m3u8", 404, "no video or audio track 9"),
        ("/a.mp4/init-9.mp4", 404, "no video or audio track 9"),
        ("/a.mp4/other.txt", 404, "no such HLS/DASH output"),
        ("/a.mp4/seg-0-1.m4s", 404, "no such HLS/DASH output"),
        ("/a.mp4/master.m3u8?client=flash", 400, "client=flash"),
        ("/a.mp4/master.m3u8?start=99", 400, "past the end"),
        ("/frag.mp4/seg-99-1.m4s", 404, "no segment 99"),
    ] {
        let g = request(port, "GET", target, &[]);
        assert_eq!(g.status, status, "{target}: {}", g.text());
        assert!(g.text().contains(reason), "{target}: {}", g.text());
    }
    assert!(pool.log_text().contains("no segment 99"));
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn a_url_set_is_one_presentation_of_several_films() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let films = dir.path().join("films");
    std::fs::create_dir(&films).unwrap();
    common::encode(&films, "lecture_360.mp4", "320x180", "150k", 50);
    common::encode(&films, "lecture_720.mp4", "640x360", "600k", 50);
    common::encode(&films, "lecture_odd.mp4", "320x180", "150k", 60);
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let root = dir.path().to_str().unwrap();
    let _pool = Pool::start(&["--http", &addr, "--root", root, "--workers", "1"]);
    common::wait_port(port);
    let set = "/films/lecture_,360,720,.mp4.urlset";

    let master = get(port, &format!("{set}/master.m3u8")).text();
    let variants: Vec<&str> = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
        .collect();
    assert_eq!(variants.len(), 2, "{master}");
    assert!(
        variants[0].contains("RESOLUTION=320x180") && variants[1].contains("RESOLUTION=640x360")
    );
    let bandwidth = |l: &str| -> u64 {
        l.split("BANDWIDTH=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        bandwidth(variants[1]) > 2 * bandwidth(variants[0]),
        "{master}"
    );
    assert!(
        master.contains("CODECS=\"avc1.") && master.contains(",mp4a.40.2\""),
        "{master}"
    );
    assert!(master.contains("index-f1-1.m3u8") && master.contains("index-f2-1.m3u8"));
    assert!(
        master.contains("URI=\"index-f1-2.m3u8\""),
        "audio from the first film:\n{master}"
    );
    let playlist = get(port, &format!("{set}/index-f2-1.m3u8")).text();
    assert!(playlist.contains("init-f2-1.mp4") && playlist.contains("seg-1-f2-1.m4s"));

    // Both variants decode whole, with every frame, over HLS and DASH.
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let url = format!("http://127.0.0.1:{port}{set}/{manifest}");
        let errors = decode_errors(&url);
        assert!(errors.is_empty(), "{url}: {errors}");
        let got = frames(&url);
        let video: Vec<u64> = got
            .iter()
            .filter(|(k, _)| k == "video")
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(video, vec![500, 500], "{url}: {got:?}");
    }
    let mpd = get(port, &format!("{set}/manifest.mpd")).text();
    assert_eq!(mpd.matches("<Representation id=\"f").count(), 3, "{mpd}");

    // A clip of the set, and the same segment of one film alone and in the set.
    let clip = get(port, &format!("{set}/master.m3u8?start=4&end=12")).text();
    assert!(clip.contains("index-f2-1.m3u8?start=4&end=12"), "{clip}");
    let alone = get(port, "/films/lecture_720.mp4/seg-2-1.m4s").body;
    let in_set = get(port, &format!("{set}/seg-2-f2-1.m4s")).body;
    assert!(alone == in_set, "the set's film 2 is lecture_720.mp4");

    // Films whose key frames do not line up are refused, with the reason.
    let odd = request(
        port,
        "GET",
        "/films/lecture_,360,odd,.mp4.urlset/master.m3u8",
        &[],
    );
    assert_eq!(odd.status, 415, "{}", odd.text());
    assert!(
        odd.text().contains("key frames at the same times"),
        "{}",
        odd.text()
    );
    // Names that are no output of a set.
    for (target, status) in [
        (set.to_string(), 404),
        (format!("{set}/index-1.m3u8"), 404),
        (format!("{set}/seg-1-f3-1.m4s"), 404),
        ("/films/lecture_360.mp4/init-f1-1.mp4".to_string(), 404),
        (
            "/films/lecture_,360,none,.mp4.urlset/master.m3u8".to_string(),
            404,
        ),
    ] {
        let g = request(port, "GET", &target, &[]);
        assert_eq!(g.status, status, "{target}: {}", g.text());
    }
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn sparse_key_frames_make_longer_segments_and_mp3_is_packaged() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    // Key frames every 10 s; every frame a key frame; MP3 audio.
    common::encode(dir.path(), "gop10.mp4", "160x90", "100k", 250);
    common::encode(dir.path(), "intra.mp4", "160x90", "300k", 1);
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=160x90:rate=25:duration=20")
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=20",
        ])
        .args([
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-g", "50", "-c:a", "libmp3lame", "-b:a", "64k"])
        .arg(dir.path().join("mp3.mp4"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let root = dir.path().to_str().unwrap();
    let _pool = Pool::start(&["--http", &addr, "--root", root, "--workers", "1"]);
    common::wait_port(port);

    let (_, _, gop10) = media_playlist(&get(port, "/gop10.mp4/index-1.m3u8").text());
    assert_eq!(gop10.len(), 2, "segments of the 10 s GOPs: {gop10:?}");
    assert!(gop10.iter().all(|d| (d - 10.0).abs() < 0.05), "{gop10:?}");
    let (_, _, intra) = media_playlist(&get(port, "/intra.mp4/index-1.m3u8").text());
    assert!(
        intra.iter().all(|d| (d - 6.0).abs() < 0.05 || *d < 6.0),
        "{intra:?}"
    );
    assert_eq!(intra.len(), 4, "{intra:?}");

    let master = get(port, "/mp3.mp4/master.m3u8").text();
    assert!(
        master.contains("mp4a.6B") || master.contains("mp4a.40.34"),
        "{master}"
    );
    for film in ["gop10.mp4", "intra.mp4", "mp3.mp4"] {
        let url = format!("http://127.0.0.1:{port}/{film}/master.m3u8");
        let errors = decode_errors(&url);
        assert!(errors.is_empty(), "{url}: {errors}");
        let source = frames(dir.path().join(film).to_str().unwrap());
        every_source_frame(&url, &frames(&url), &source);
    }
}

/// AV1 and VP9 films (what ffmpeg's libaom and libvpx write, with Opus
/// audio) are packaged: the CODECS string comes from `av1C`/`vpcC` and
/// begins as ffmpeg's own DASH packaging writes it, and ffmpeg decodes
/// every frame of the source from the HLS and DASH outputs.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn av1_and_vp9_films_are_packaged_with_their_codec_strings() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    common::encode_av1_and_vp9(dir.path(), "160x90", 4);
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let root = dir.path().to_str().unwrap();
    let _pool = Pool::start(&["--http", &addr, "--root", root, "--workers", "1"]);
    common::wait_port(port);
    for (film, fourcc) in [("av1.mp4", "av01."), ("vp9.mp4", "vp09.")] {
        let master = get(port, &format!("/{film}/master.m3u8")).text();
        let ours = master
            .split("CODECS=\"")
            .nth(1)
            .and_then(|c| c.split([',', '"']).next())
            .unwrap_or_default()
            .to_string();
        assert!(ours.starts_with(fourcc), "{master}");
        assert!(master.contains("opus"), "{master}");
        let theirs_mpd = ffmpeg_packaged(dir.path(), &dir.path().join(film), "manifest.mpd");
        let mpd = std::fs::read_to_string(theirs_mpd).unwrap();
        let theirs = mpd
            .split("codecs=\"")
            .find(|c| c.starts_with(fourcc))
            .and_then(|c| c.split('"').next())
            .unwrap_or_default();
        assert!(
            !theirs.is_empty() && ours.starts_with(theirs),
            "ours {ours}, ffmpeg's {theirs}"
        );
        let source = frames(dir.path().join(film).to_str().unwrap());
        for manifest in ["master.m3u8", "manifest.mpd"] {
            let url = format!("http://127.0.0.1:{port}/{film}/{manifest}");
            let errors = decode_errors(&url);
            assert!(errors.is_empty(), "{url}: {errors}");
            let got = frames(&url);
            assert_eq!(got.len(), source.len(), "{url}: {got:?}");
            // Every video frame. The last Opus frame ends 13.5 ms after the
            // film (its edit list hides the pre-skip): ffmpeg's DASH reader
            // drops it, from ffmpeg's own DASH packaging too (200 of 201).
            for ((kind, n), (_, source_n)) in got.iter().zip(&source) {
                let short = if kind == "audio" && manifest == "manifest.mpd" {
                    1
                } else {
                    0
                };
                assert!(
                    *n <= *source_n && source_n - n <= short,
                    "{url}: {kind} frames {n}, source {source_n}"
                );
            }
        }
    }
}
