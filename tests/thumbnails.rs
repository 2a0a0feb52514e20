//! Thumbnails and seek-bar previews against ffmpeg, through a one-worker
//! development pool. `thumb-<ms>.jpg` is the frame shown at that time (the
//! last one whose pts is at or before it, not ffmpeg's `-ss`, the first at
//! or after) for H.264, HEVC, AV1, VP9 and an H.264 film with B-frames
//! and a 4 s GOP, by PSNR against ffmpeg's decode of that exact frame
//! scaled to the same size; `-w`/`-h` keep the aspect ratio (the pixel
//! aspect ratio applied); a clip's picture is the whole film's at the
//! clip's first key frame plus the time; each sprite tile is the key frame
//! at or before its time, where `thumbnails.vtt` places it, and the HLS and
//! DASH manifests announce the sprites (none with `--thumbnail-interval
//! 0`); a BT.709 film keeps its colours and rotated films are turned;
//! refusals, a film of noise among them, leave the worker serving.

mod common;
#[path = "thumbnails/mod.rs"]
mod refs;

use common::dev_http::{get, request, serve_root};
use common::{hls_check, media};
use refs::{Frame, Pair, key_at_or_before, par_map, shown_at};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A thumbnail as ffmpeg would make it: at least this average PSNR (dB).
const PICTURE_DB: f64 = 35.0;
/// A picture scaled down, a sprite tile: the same bar (the JPEG's 4:2:0
/// chroma is averaged over each 2x2 block; taken from one pixel, it cost
/// small pictures 6 dB).
const SMALL_DB: f64 = 35.0;

fn tools() {
    common::require_tool("ffmpeg");
    common::require_tool("ffprobe");
}

/// A JPEG the pool answers `target` with, written to `dir/name`.
fn jpeg(port: u16, target: &str, dir: &Path, name: &str) -> PathBuf {
    let got = get(port, target);
    assert_eq!(
        got.header("Content-Type").as_deref(),
        Some("image/jpeg"),
        "{target}"
    );
    assert!(
        got.body.starts_with(b"\xff\xd8\xff"),
        "{target}: not a JPEG"
    );
    let path = dir.join(name);
    std::fs::write(&path, &got.body).unwrap();
    path
}

fn copy_media(root: &Path, names: &[&str]) {
    for n in names {
        std::fs::copy(media(n), root.join(n)).unwrap();
    }
}

/// One film and the times (ms) asked of it.
struct Case {
    film: &'static str,
    ms: &'static [u32],
}

/// What one film's pictures measured: (ms, average PSNR) of each, the
/// scaled one's (Y, average), and the wrong frames' averages.
struct Measured {
    film: &'static str,
    pictures: Vec<(u32, f64)>,
    scaled: (f64, f64),
    wrong: Vec<(String, f64)>,
}

fn check_film(port: u16, root: &Path, work: &Path, case: &Case) -> Measured {
    let path = root.join(case.film);
    let (frames, (w, h)) = refs::probe(&path);
    assert!(
        frames[0].pts.abs() < 1e-3,
        "{}: starts at {}",
        case.film,
        frames[0].pts
    );
    let shown: Vec<Frame> = (case.ms.iter())
        .map(|&ms| shown_at(&frames, f64::from(ms) / 1000.0))
        .collect();
    // Wrong frames, to show the comparison fails on them: 1 s before the
    // middle time, and for each time between frames the next frame (what
    // `ffmpeg -ss` would give).
    let middle = case.ms.len() / 2;
    let t_mid = f64::from(case.ms[middle]) / 1000.0;
    let mut wrong = vec![(middle, shown_at(&frames, t_mid - 1.0).pts, "1 s before")];
    for (i, f) in shown.iter().enumerate() {
        let next = frames.iter().find(|n| n.pts > f.pts + 1e-6);
        if let Some(n) = next.filter(|_| (f64::from(case.ms[i]) / 1000.0 - f.pts).abs() > 1e-4) {
            wrong.push((i, n.pts, "the next frame"));
        }
    }
    let mut pts: Vec<f64> = shown.iter().map(|f| f.pts).collect();
    pts.extend(wrong.iter().map(|w| w.1));
    let full = refs::references(&path, &pts, (w, h), work, "full");
    let small_size = (160, ((160.0 * f64::from(h) / f64::from(w)).round()) as u32);
    let small = refs::references(&path, &[shown[middle].pts], small_size, work, "small");

    let stem = case.film.trim_end_matches(".mp4");
    let fetch = |name: String| {
        let target = format!("/{}/{name}", case.film);
        jpeg(port, &target, work, &format!("{stem}-{name}"))
    };
    let ours: Vec<PathBuf> = (case.ms.iter())
        .map(|ms| fetch(format!("thumb-{ms}.jpg")))
        .collect();
    let scaled_name = format!("thumb-{}-w160.jpg", case.ms[middle]);
    let scaled_file = fetch(scaled_name.clone());
    // Pictures of other sizes than ffmpeg's fail the psnr filter.
    let mut pairs: Vec<Pair> = (ours.iter().zip(&full))
        .map(|(o, r)| Pair::new(o, r))
        .collect();
    for (k, (i, _, _)) in wrong.iter().enumerate() {
        pairs.push(Pair::new(&ours[*i], &full[shown.len() + k]));
    }
    pairs.push(Pair::new(&scaled_file, &small[0]));
    let db = refs::psnr(&pairs);

    let pictures: Vec<(u32, f64)> = case
        .ms
        .iter()
        .copied()
        .zip(db.iter().map(|d| d.1))
        .collect();
    for (i, (ms, avg)) in pictures.iter().enumerate() {
        assert!(
            *avg >= PICTURE_DB,
            "{} thumb-{ms}.jpg: {avg:.2} dB against ffmpeg's frame at {:.3} s",
            case.film,
            shown[i].pts
        );
    }
    let mut wrongs = Vec::new();
    for (k, (i, t, what)) in wrong.iter().enumerate() {
        let avg = db[shown.len() + k].1;
        let good = pictures[*i].1;
        assert!(
            avg < 30.0 && avg < good - 8.0,
            "{} thumb-{}.jpg against {what} ({t:.3} s): {avg:.2} dB, the right one {good:.2}",
            case.film,
            case.ms[*i]
        );
        wrongs.push((format!("{}ms vs {what}", case.ms[*i]), avg));
    }
    let scaled = *db.last().unwrap();
    assert!(
        scaled.0 >= PICTURE_DB && scaled.1 >= SMALL_DB,
        "{} {scaled_name}: {scaled:?} dB (Y, average) against ffmpeg's",
        case.film
    );
    Measured {
        film: case.film,
        pictures,
        scaled,
        wrong: wrongs,
    }
}

/// Every codec, at times on frames, between frames and between key
/// frames; a frame 1 s away and the next frame (ffmpeg -ss's pick) fail.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn each_thumbnail_is_the_frame_shown_at_its_time() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let (root, work) = (dir.path().join("root"), dir.path().join("work"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    copy_media(&root, &["a.mp4", "hevc.mp4"]);
    std::thread::scope(|s| {
        s.spawn(|| common::encode_av1_and_vp9(&root, "320x180", 2));
        s.spawn(|| refs::long_gop(&root));
    });
    let long = refs::frames(&root.join("long.mp4"));
    assert!(
        long.iter().filter(|f| f.key).count() == 7,
        "long.mp4: a key frame every 4 s"
    );
    let (_pool, port) = serve_root(&root, &[]);
    let cases = [
        Case {
            film: "a.mp4",
            ms: &[
                0, 40, 1999, 2000, 2010, 3990, 5500, 5519, 5520, 13370, 19990,
            ],
        },
        Case {
            film: "hevc.mp4",
            ms: &[0, 1000, 2000, 3333, 7990, 11110, 19999],
        },
        // 2 s, a key frame every second.
        Case {
            film: "av1.mp4",
            ms: &[0, 480, 999, 1000, 1530, 1990],
        },
        Case {
            film: "vp9.mp4",
            ms: &[0, 480, 1000, 1530, 1990],
        },
        // 3990: the 100th frame of its GOP; 7999: the last before a key.
        Case {
            film: "long.mp4",
            ms: &[0, 1000, 3990, 4000, 6170, 7999, 13330, 24960],
        },
    ];
    let measured = par_map(&cases, |c| check_film(port, &root, &work, c));
    for m in &measured {
        println!(
            "{}: full size {:?}; -w160 (Y, avg) {:.2}/{:.2}; wrong frames {:?}",
            m.film,
            m.pictures
                .iter()
                .map(|(ms, db)| format!("{ms}:{db:.2}"))
                .collect::<Vec<_>>(),
            m.scaled.0,
            m.scaled.1,
            m.wrong
                .iter()
                .map(|(w, db)| format!("{w}:{db:.2}"))
                .collect::<Vec<_>>()
        );
    }
}

/// `-w`, `-h` and both: the JPEG is that size, the aspect ratio kept, the
/// pixel aspect ratio of an anamorphic film applied.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn asked_sizes_keep_the_aspect_ratio() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    copy_media(&root, &["a.mp4"]);
    // 240x180 stored, pixels 4:3 wide: shown 320x180.
    let sar = refs::encode(
        &root,
        "sar.mp4",
        "240x180",
        2,
        &[
            "-vf",
            "setsar=4/3",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "25",
        ],
    );
    let (_pool, port) = serve_root(&root, &[]);
    let asked: [(&str, &str, (u32, u32)); 11] = [
        ("a.mp4", "", (320, 180)),
        ("a.mp4", "-w160", (160, 90)),
        ("a.mp4", "-h90", (160, 90)),
        ("a.mp4", "-w100", (100, 56)),
        ("a.mp4", "-w99", (99, 56)),
        ("a.mp4", "-h50", (89, 50)),
        ("a.mp4", "-w160-h40", (71, 40)),
        ("a.mp4", "-w1000-h1000", (1000, 563)),
        ("sar.mp4", "", (320, 180)),
        ("sar.mp4", "-w160", (160, 90)),
        ("sar.mp4", "-h45", (80, 45)),
    ];
    let files: Vec<PathBuf> = (asked.iter().enumerate())
        .map(|(i, (film, fit, _))| {
            jpeg(
                port,
                &format!("/{film}/thumb-1000{fit}.jpg"),
                dir.path(),
                &format!("{i}.jpg"),
            )
        })
        .collect();
    let sizes = par_map(&files, |f| refs::size(f));
    for ((film, fit, want), got) in asked.iter().zip(&sizes) {
        assert_eq!(got, want, "{film} thumb-1000{fit}.jpg");
        // 16:9 within a pixel's rounding.
        let off = (f64::from(got.0) * 9.0 / 16.0 - f64::from(got.1)).abs();
        assert!(
            off <= 0.5 + 1e-9,
            "{film} thumb-1000{fit}.jpg: {got:?} is not 16:9"
        );
    }
    // The anamorphic film's picture is ffmpeg's frame stretched to 320x180.
    let frames = refs::frames(&sar);
    let r = refs::references(
        &sar,
        &[shown_at(&frames, 1.0).pts],
        (320, 180),
        dir.path(),
        "sar",
    );
    let (_, avg) = refs::psnr(&[Pair::new(&files[8], &r[0])])[0];
    println!("sar.mp4 thumb-1000.jpg: {avg:.2} dB");
    assert!(avg >= PICTURE_DB, "sar.mp4 thumb-1000.jpg: {avg:.2} dB");
}

/// The seconds an HLS media playlist lists.
fn listed_seconds(playlist: &str) -> f64 {
    hls_check::segments(playlist).iter().map(|(d, _)| d).sum()
}

/// `thumb-<ms>.jpg?start=S` is the whole film's picture at the clip's
/// first key frame (at or before S) plus ms; past the clip's end, 404.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn a_clips_picture_is_the_films_at_the_clip_start_plus_its_time() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    copy_media(&root, &["a.mp4", "hevc.mp4"]);
    refs::long_gop(&root);
    let (_pool, port) = serve_root(&root, &[]);
    let cases: [(&str, f64, &[u32]); 4] = [
        ("a.mp4", 5.0, &[0, 1000, 2519]),
        ("hevc.mp4", 3.0, &[1230, 4000]),
        // Key frames every 4 s: the clip starts at 4 and at 8.
        ("long.mp4", 6.0, &[0, 1500, 3990]),
        ("long.mp4", 11.5, &[10, 2020]),
    ];
    let mut pairs = Vec::new();
    for (film, start, times) in cases {
        let frames = refs::frames(&root.join(film));
        let key = key_at_or_before(&frames, start).pts;
        let query = format!("?start={start}");
        for &ms in times {
            let at = (key * 1000.0).round() as u32 + ms;
            let n = pairs.len();
            let clip = jpeg(
                port,
                &format!("/{film}/thumb-{ms}.jpg{query}"),
                dir.path(),
                &format!("clip-{n}.jpg"),
            );
            let whole = jpeg(
                port,
                &format!("/{film}/thumb-{at}.jpg"),
                dir.path(),
                &format!("whole-{n}.jpg"),
            );
            pairs.push((
                format!("{film} thumb-{ms}.jpg{query} vs thumb-{at}.jpg"),
                clip,
                whole,
            ));
        }
        // The clip ends where its playlist does.
        let query = format!("?start={start}&end={}", start + 3.0);
        let playlist = get(port, &format!("/{film}/index-1.m3u8{query}")).text();
        let ms = (listed_seconds(&playlist) * 1000.0).round() as u32;
        assert!(ms > 3000, "{film}{query}: {ms} ms\n{playlist}");
        let inside = request(
            port,
            "GET",
            &format!("/{film}/thumb-{}.jpg{query}", ms - 50),
            &[],
        );
        assert_eq!(inside.status, 200, "{film} thumb-{}.jpg{query}", ms - 50);
        let past = request(
            port,
            "GET",
            &format!("/{film}/thumb-{}.jpg{query}", ms + 10),
            &[],
        );
        assert_eq!(
            past.status,
            404,
            "{film} thumb-{}.jpg{query}: {}",
            ms + 10,
            past.text()
        );
    }
    let list: Vec<Pair> = (pairs.iter())
        .map(|(_, clip, whole)| Pair::new(clip, whole))
        .collect();
    let db: Vec<f64> = refs::psnr(&list).into_iter().map(|d| d.1).collect();
    for ((what, _, _), db) in pairs.iter().zip(&db) {
        println!("{what}: {db:.2} dB");
        assert!(*db >= 50.0, "{what}: {db:.2} dB");
    }
}

#[path = "thumbnails/sprites.rs"]
mod sprites;

/// A worker that refused a picture serves the next one: fragmented 415,
/// audio-only 404, past the end 404, no such sprite 404, a refused name
/// 404, a film whose samples are noise 415 at once; same worker after.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn refusals_leave_the_worker_serving() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    copy_media(&root, &["a.mp4", "frag.mp4", "audio.m4a"]);
    refs::garbage_copy(&media("a.mp4"), &root.join("noise.mp4"));
    let (pool, port) = serve_root(&root, &[]);
    let worker = pool.wait_workers(1);
    let good = get(port, "/a.mp4/thumb-1000.jpg").body;
    assert!(good.starts_with(b"\xff\xd8\xff"));
    let refusals: [(&str, u16); 11] = [
        ("/frag.mp4/thumb-1000.jpg", 415),
        // Not announced for a fragmented film: no such sprite.
        ("/frag.mp4/tiles-1.jpg", 404),
        ("/audio.m4a/thumb-1000.jpg", 404),
        ("/a.mp4/thumb-999999.jpg", 404),
        ("/a.mp4/thumb-20000.jpg", 404),
        ("/a.mp4/tiles-99.jpg", 404),
        ("/a.mp4/thumb-1000-w99999.jpg", 404),
        ("/a.mp4/thumb-1000-w0.jpg", 404),
        ("/noise.mp4/thumb-1000.jpg", 415),
        ("/noise.mp4/thumb-5500.jpg", 415),
        ("/noise.mp4/tiles-1.jpg", 415),
    ];
    for (target, status) in refusals {
        let t0 = Instant::now();
        let got = request(port, "GET", target, &[]);
        let took = t0.elapsed();
        assert_eq!(got.status, status, "{target}: {}\n{}", got.head, got.text());
        assert!(
            !got.body.starts_with(b"\xff\xd8"),
            "{target}: a picture with {status}"
        );
        assert!(took < Duration::from_secs(2), "{target}: {took:?}");
        let again = get(port, "/a.mp4/thumb-1000.jpg");
        assert!(
            again.body == good,
            "after {target}: another picture of a.mp4 at 1 s"
        );
    }
    // The last frame is still served: 20 s is the end, 19.999 s is not.
    get(port, "/a.mp4/thumb-19999.jpg");
    assert_eq!(
        pool.workers(),
        worker,
        "the worker was replaced:\n{}",
        pool.log_text()
    );
    assert!(!pool.log_text().contains("panicked"), "{}", pool.log_text());
}

/// A film tagged BT.709 is converted with BT.709's matrix, and rotated
/// films (the `tkhd` matrix of ffmpeg's `rotate` 90, 180 and 270) are
/// turned as ffmpeg turns them, their pictures and tiles upright.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn colour_matrix_and_rotation_are_applied() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let (root, work) = (dir.path().join("root"), dir.path().join("work"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    refs::encode(
        &root,
        "bt709.mp4",
        "320x180",
        2,
        &[
            "-vf",
            "scale=out_color_matrix=bt709",
            "-c:v",
            "libx264",
            "-qp",
            "5",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        ],
    );
    for turn in ["90", "180", "270"] {
        refs::run(
            std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-i"])
                .arg(media("a.mp4"))
                .args(["-map", "0:v", "-c", "copy", "-metadata:s:v"])
                .arg(format!("rotate={turn}"))
                .arg(root.join(format!("rot{turn}.mp4"))),
        );
    }
    let (_pool, port) = serve_root(&root, &["--thumbnail-width", "90"]);
    let mut pairs = Vec::new();
    for (film, ms, size) in [
        ("bt709.mp4", 1000, (320, 180)),
        ("rot90.mp4", 5500, (180, 320)),
        ("rot180.mp4", 5500, (320, 180)),
        ("rot270.mp4", 5500, (180, 320)),
    ] {
        let path = root.join(film);
        let shown = shown_at(&refs::frames(&path), f64::from(ms) / 1000.0);
        let ours = jpeg(
            port,
            &format!("/{film}/thumb-{ms}.jpg"),
            &work,
            &format!("{film}.jpg"),
        );
        assert_eq!(refs::size(&ours), size, "{film}: turned as ffmpeg shows it");
        let reference = refs::references(&path, &[shown.pts], size, &work, "upright");
        pairs.push(Pair::new(&ours, &reference[0]));
    }
    // The quarter-turned films' tiles are upright too: 90 wide, 160 high.
    for film in ["rot90.mp4", "rot270.mp4"] {
        let vtt = get(port, &format!("/{film}/thumbnails.vtt")).text();
        assert!(
            vtt.contains("tiles-1.jpg#xywh=90,0,90,160"),
            "{film}: {vtt}"
        );
        let sprite = jpeg(
            port,
            &format!("/{film}/tiles-1.jpg"),
            &work,
            &format!("{film}-tiles.jpg"),
        );
        assert_eq!(refs::size(&sprite), (900, 160), "{film}");
    }
    let db = refs::psnr(&pairs);
    for (pair, (y, avg)) in pairs.iter().zip(&db) {
        println!("{}: Y {y:.2} dB, average {avg:.2} dB", pair.ours.display());
        assert!(*avg >= PICTURE_DB, "{}: {avg:.2} dB", pair.ours.display());
    }
}
