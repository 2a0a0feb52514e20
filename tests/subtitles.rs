//! Subtitle tracks (`tx3g`, what ffmpeg writes from an `.srt` as
//! `mov_text`) in HLS and DASH as WebVTT: every cue of the source, at its
//! time, in the segment that shows it; a clip's cues shifted to its start.

mod common;

use common::dev_http::{get, serve_root};
use common::media;
use std::path::Path;
use std::process::Command;

const SRT: &str = "1\n00:00:01,000 --> 00:00:02,500\nFirst line\n\n\
2\n00:00:05,500 --> 00:00:07,000\nAcross a cut & 3 < 4\n\n\
3\n00:00:12,250 --> 00:00:14,000\nLater,\ntwo lines\n";

/// The cues of WebVTT text: (start, end, text).
fn cues(vtt: &str) -> Vec<(String, String, String)> {
    assert!(vtt.starts_with("WEBVTT\n"), "{vtt}");
    vtt.split("\n\n")
        .filter_map(|block| {
            let mut lines = block.lines();
            let timing = lines.find(|l| l.contains(" --> "))?;
            let (a, b) = timing.split_once(" --> ")?;
            Some((a.into(), b.into(), lines.collect::<Vec<_>>().join("\n")))
        })
        .collect()
}

/// `dir/name`: tests/media/a.mp4 with `srt` as a subtitle track in
/// `codec` (mov_text, ttml), English, ffmpeg's `extra` arguments added.
fn film_with(dir: &Path, name: &str, srt: &str, codec: &str, extra: &[&str]) {
    let subs = dir.join(format!("{name}.srt"));
    std::fs::write(&subs, srt).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(media("a.mp4"))
        .arg("-i")
        .arg(&subs)
        .args(["-map", "0", "-map", "1", "-c", "copy", "-c:s", codec])
        .args(["-metadata:s:s:0", "language=eng"])
        .args(extra)
        .arg(dir.join(name))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The English subtitle group is in the master playlist; the track's id,
/// from the MPD.
fn english_subtitles(port: u16, film: &str) -> String {
    let master = get(port, &format!("/{film}/master.m3u8")).text();
    assert!(
        master.contains("TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\""),
        "{master}"
    );
    let mpd = get(port, &format!("/{film}/manifest.mpd")).text();
    mpd.split("subs-")
        .nth(1)
        .and_then(|s| s.split(".vtt").next())
        .unwrap()
        .to_string()
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn subtitles_are_webvtt_in_hls_and_dash() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    film_with(dir.path(), "subs.mp4", SRT, "mov_text", &[]);
    let (_pool, port) = serve_root(dir.path(), &[]);

    let master = get(port, "/subs.mp4/master.m3u8").text();
    assert!(
        master.contains("TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\"")
            && master.contains("SUBTITLES=\"subs\""),
        "{master}"
    );
    let uri = master
        .split("TYPE=SUBTITLES")
        .nth(1)
        .and_then(|l| l.split("URI=\"").nth(1))
        .and_then(|u| u.split('"').next())
        .unwrap();
    let list = get(port, &format!("/subs.mp4/{uri}")).text();
    let video = get(port, "/subs.mp4/index-1.m3u8").text();
    let extinf = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("#EXTINF"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        extinf(&list),
        extinf(&video),
        "subtitle segments follow the video's"
    );
    let mut seen = Vec::new();
    for seg in list.lines().filter(|l| l.starts_with("subs-")) {
        let got = get(port, &format!("/subs.mp4/{seg}"));
        assert_eq!(
            got.header("Content-Type").as_deref(),
            Some("text/vtt; charset=utf-8")
        );
        for c in cues(&got.text()) {
            if !seen.contains(&c) {
                seen.push(c);
            }
        }
    }
    let want = [
        ("00:00:01.000", "00:00:02.500", "First line"),
        (
            "00:00:05.500",
            "00:00:07.000",
            "Across a cut &amp; 3 &lt; 4",
        ),
        ("00:00:12.250", "00:00:14.000", "Later,\ntwo lines"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, t)| (a.to_string(), b.to_string(), t.to_string()))
        .collect();
    assert_eq!(seen, want, "every cue once, at its time, in HLS");

    // DASH: the whole track, one file.
    let mpd = get(port, "/subs.mp4/manifest.mpd").text();
    assert!(
        mpd.contains("contentType=\"text\" mimeType=\"text/vtt\" lang=\"en\"")
            && mpd.contains("<BaseURL>subs-3.vtt</BaseURL>"),
        "{mpd}"
    );
    assert_eq!(cues(&get(port, "/subs.mp4/subs-3.vtt").text()), want);

    // A clip from its key frame (2 s, for start=3.3) to 13 s: every cue
    // shifted by 2 s, the one showing at the key frame from 0, the last cut
    // at the clip's end.
    let clip = cues(&get(port, "/subs.mp4/subs-3.vtt?start=3.3&end=13").text());
    let times: Vec<(&str, &str)> = clip.iter().map(|c| (c.0.as_str(), c.1.as_str())).collect();
    assert_eq!(
        times,
        [
            ("00:00:00.000", "00:00:00.500"),
            ("00:00:03.500", "00:00:05.000"),
            ("00:00:10.250", "00:00:11.000")
        ]
    );
    // tracks= without subtitles: none listed.
    let chosen = get(port, "/subs.mp4/master.m3u8?tracks=v1,a1").text();
    assert!(!chosen.contains("SUBTITLES"), "{chosen}");
}

/// Sidecar files beside a film (`film.<lang>.srt|vtt`) join its text
/// tracks: named by their language, their markup kept, a clip's cues
/// shifted; one that is too large, broken or a link out of --root is left
/// out, and the film is served all the same.
#[test]
fn sidecar_files_are_subtitles_too() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::copy(media("a.mp4"), root.join("film.mp4")).unwrap();
    std::fs::write(
        root.join("film.en.srt"),
        "\u{feff}1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>First</i> & <font color=\"red\">line</font>\r\n\r\n\
         2\r\n00:00:12,250 --> 00:00:14,000\r\nLater\r\n",
    )
    .unwrap();
    std::fs::write(
        root.join("film.fr.vtt"),
        "WEBVTT\n\nNOTE a comment\n\n00:05.500 --> 00:07.000 align:start\nPremière &amp; <b>seconde</b>\n",
    )
    .unwrap();
    // Too large, not a sidecar name, and a link out of the root.
    std::fs::write(root.join("film.de.srt"), vec![b'x'; (1 << 20) + 1]).unwrap();
    std::fs::write(
        root.join("film.notes.srt"),
        "1\n00:00:01,000 --> 00:00:02,000\nx\n",
    )
    .unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.srt"), SRT).unwrap();
    std::os::unix::fs::symlink(outside.path().join("x.srt"), root.join("film.es.srt")).unwrap();

    let (_pool, port) = serve_root(&root, &[]);

    let master = get(port, "/film.mp4/master.m3u8").text();
    let subs: Vec<&str> = master
        .lines()
        .filter(|l| l.contains("TYPE=SUBTITLES"))
        .collect();
    assert_eq!(subs.len(), 2, "{master}");
    assert!(
        subs[0].contains("LANGUAGE=\"en\",NAME=\"English\""),
        "{master}"
    );
    assert!(
        subs[1].contains("LANGUAGE=\"fr\",NAME=\"français\""),
        "{master}"
    );
    let uri = |line: &str| {
        line.split("URI=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    let en_id = uri(subs[0])
        .trim_start_matches("subs-")
        .trim_end_matches(".m3u8")
        .to_string();
    let fr_id = uri(subs[1])
        .trim_start_matches("subs-")
        .trim_end_matches(".m3u8")
        .to_string();
    let whole = |id: &str, q: &str| get(port, &format!("/film.mp4/subs-{id}.vtt{q}")).text();
    assert_eq!(
        cues(&whole(&en_id, "")),
        [
            (
                "00:00:01.000".into(),
                "00:00:02.500".into(),
                "<i>First</i> &amp; line".into()
            ),
            ("00:00:12.250".into(), "00:00:14.000".into(), "Later".into()),
        ]
    );
    assert_eq!(
        cues(&whole(&fr_id, "")),
        [(
            "00:00:05.500".into(),
            "00:00:07.000".into(),
            "Première &amp; <b>seconde</b>".into()
        )]
    );
    // A clip from the key frame at or before 10 s: later cues shifted to it.
    let clip = cues(&whole(&en_id, "?start=10"));
    assert_eq!(clip.len(), 1, "{clip:?}");
    assert_eq!(clip[0].2, "Later");
    assert!(clip[0].0.as_str() < "00:00:12.250", "shifted: {clip:?}");
    let mpd = get(port, "/film.mp4/manifest.mpd").text();
    assert_eq!(mpd.matches("mimeType=\"text/vtt\"").count(), 2, "{mpd}");
    // The film itself is served as before.
    assert_eq!(get(port, "/film.mp4?start=3").status, 200);
}

/// A `wvtt` track (WebVTT in MP4, ISO/IEC 14496-30, as packagers write
/// it): its cues' payloads, markup kept, served like a `tx3g` track's.
/// ffmpeg 5.1 cannot write one, so the test turns ffmpeg's `tx3g` track
/// into one in place: the sample entry, and each sample a `vttc` box of
/// the same size.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn wvtt_tracks_are_subtitles() {
    common::require_tool("ffmpeg");
    const PLACEHOLDERS: [&str; 2] = [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
    ];
    const PAYLOADS: [&str; 2] = ["<i>First</i> &amp; one", "Second"];
    let dir = tempfile::tempdir().unwrap();
    let srt = format!(
        "1\n00:00:01,000 --> 00:00:02,500\n{}\n\n2\n00:00:05,500 --> 00:00:07,000\n{}\n",
        PLACEHOLDERS[0], PLACEHOLDERS[1]
    );
    film_with(dir.path(), "w.mp4", &srt, "mov_text", &[]);
    let film = dir.path().join("w.mp4");
    let mut bytes = std::fs::read(&film).unwrap();
    let find = |b: &[u8], what: &[u8]| b.windows(what.len()).position(|w| w == what).unwrap();
    // The sample entry: tx3g becomes wvtt (its fields, a vttC, a free box).
    let at = find(&bytes, b"tx3g") - 4;
    let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let mut entry = (size as u32).to_be_bytes().to_vec();
    entry.extend_from_slice(b"wvtt");
    entry.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    entry.extend_from_slice(&14u32.to_be_bytes());
    entry.extend_from_slice(b"vttCWEBVTT");
    let free = size - entry.len();
    entry.extend_from_slice(&(free as u32).to_be_bytes());
    entry.extend_from_slice(b"free");
    entry.resize(size, 0);
    bytes[at..at + size].copy_from_slice(&entry);
    // Each cue's sample: a 16-bit length and the text, as long as a vttc
    // box with a payl box holding the payload, padded with spaces.
    for (placeholder, payload) in PLACEHOLDERS.iter().zip(PAYLOADS) {
        let start = find(&bytes, placeholder.as_bytes()) - 2;
        let len = 2 + placeholder.len();
        let mut text = payload.as_bytes().to_vec();
        assert!(text.len() <= len - 16, "the placeholder holds the payload");
        text.resize(len - 16, b' ');
        let mut sample = (len as u32).to_be_bytes().to_vec();
        sample.extend_from_slice(b"vttc");
        sample.extend_from_slice(&((len - 8) as u32).to_be_bytes());
        sample.extend_from_slice(b"payl");
        sample.extend_from_slice(&text);
        bytes[start..start + len].copy_from_slice(&sample);
    }
    std::fs::write(&film, &bytes).unwrap();
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_tag_string",
            "-of",
            "csv=p=0",
        ])
        .arg(&film)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&probe.stdout).contains("wvtt"),
        "the film has a wvtt track"
    );

    let (_pool, port) = serve_root(dir.path(), &[]);
    let id = english_subtitles(port, "w.mp4");
    assert_eq!(
        cues(&get(port, &format!("/w.mp4/subs-{id}.vtt")).text()),
        [
            (
                "00:00:01.000".into(),
                "00:00:02.500".into(),
                PAYLOADS[0].into()
            ),
            (
                "00:00:05.500".into(),
                "00:00:07.000".into(),
                PAYLOADS[1].into()
            ),
        ]
    );
}

/// A fragmented film's subtitle track, its samples in the fragments (what
/// `ffmpeg -movflags frag_keyframe+empty_moov` writes): its cues read from
/// them, served as the unfragmented film's are, a clip's shifted.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn a_fragmented_films_subtitles_are_read_from_its_fragments() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let frag = ["-movflags", "frag_keyframe+empty_moov+default_base_moof"];
    film_with(dir.path(), "frag.mp4", SRT, "mov_text", &frag);
    let (_pool, port) = serve_root(dir.path(), &[]);
    let id = english_subtitles(port, "frag.mp4");
    let whole = cues(&get(port, &format!("/frag.mp4/subs-{id}.vtt")).text());
    let texts: Vec<&str> = whole.iter().map(|c| c.2.as_str()).collect();
    assert_eq!(
        texts,
        [
            "First line",
            "Across a cut &amp; 3 &lt; 4",
            "Later,\ntwo lines"
        ],
        "{whole:?}"
    );
    // The times are the fragments' (ffmpeg writes them 80 ms later than
    // the .srt, and a cue lasts until the next sample: it writes no empty
    // samples between cues when fragmenting), as ffprobe reads them.
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "s", "-show_entries"])
        .args(["packet=pts_time,size", "-of", "csv=p=0"])
        .arg(dir.path().join("frag.mp4"))
        .output()
        .unwrap();
    let packets: Vec<(f64, u64)> = String::from_utf8_lossy(&probe.stdout)
        .lines()
        .filter_map(|l| {
            let (t, n) = l.split_once(',')?;
            Some((t.parse().ok()?, n.trim().parse().ok()?))
        })
        .collect();
    let seconds = |ts: &str| {
        let p: Vec<f64> = ts.split(':').map(|x| x.parse().unwrap()).collect();
        p[0] * 3600.0 + p[1] * 60.0 + p[2]
    };
    let texts_at: Vec<(f64, f64)> = (packets.windows(2))
        .filter(|w| w[0].1 > 2)
        .map(|w| (w[0].0, w[1].0))
        .collect();
    assert_eq!(texts_at.len(), 3, "{packets:?}");
    for (c, (start, end)) in whole.iter().zip(&texts_at) {
        assert!((seconds(&c.0) - start).abs() < 0.002, "{c:?} vs {start}");
        assert!((seconds(&c.1) - end).abs() < 0.002, "{c:?} vs {end}");
    }
    // A clip: the cues after its start, shifted to it.
    let clip = cues(&get(port, &format!("/frag.mp4/subs-{id}.vtt?start=10")).text());
    assert_eq!(
        clip.last().map(|c| c.2.as_str()),
        Some("Later,\ntwo lines"),
        "{clip:?}"
    );
    assert!(
        clip.last().unwrap().0.as_str() < "00:00:12.250",
        "shifted: {clip:?}"
    );
}

/// A TTML track (`stpp`, what `ffmpeg -c:s ttml` writes: the whole film's
/// subtitles in one document): each paragraph a cue at its own time, its
/// text escaped as plain text.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn ttml_tracks_are_subtitles() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    film_with(dir.path(), "tt.mp4", SRT, "ttml", &[]);
    let (_pool, port) = serve_root(dir.path(), &[]);
    let id = english_subtitles(port, "tt.mp4");
    assert_eq!(
        cues(&get(port, &format!("/tt.mp4/subs-{id}.vtt")).text()),
        [
            (
                "00:00:01.000".into(),
                "00:00:02.500".into(),
                "First line".into()
            ),
            (
                "00:00:05.500".into(),
                "00:00:07.000".into(),
                "Across a cut &amp; 3 &lt; 4".into()
            ),
            (
                "00:00:12.250".into(),
                "00:00:14.000".into(),
                "Later,\ntwo lines".into()
            ),
        ]
    );
    // A segment's cues: those shown within it.
    let first = cues(&get(port, &format!("/tt.mp4/subs-1-{id}.vtt")).text());
    assert_eq!(first.first().map(|c| c.2.as_str()), Some("First line"));
}
