//! A choice of tracks in the URL (`tracks=v1,a2`, `lang=fr`): the same
//! grammar for the server and `mp4-fcgi cut`, applied to progressive
//! windows, HLS and DASH; a track the film does not have is a 400.

mod common;

use common::dev_http::{get, request, serve_root};
use common::{cut, media};
use std::process::Command;

/// The streams of a file: (type, language).
fn streams(path: &std::path::Path) -> Vec<(String, String)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type:stream_tags=language",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (kind, lang) = l.split_once(',').unwrap_or((l, ""));
            (kind.to_string(), lang.to_string())
        })
        .collect()
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn tracks_and_lang_choose_the_tracks_of_every_output() {
    common::require_tool("ffprobe");
    let (_pool, port) = serve_root(&media(""), &[]);
    let dir = tempfile::tempdir().unwrap();

    // Progressive: the second audio track (French) with the video, as cut writes it.
    let got = get(port, "/two_audio.mp4?start=2&end=8&tracks=v1,a2");
    let served = dir.path().join("served.mp4");
    std::fs::write(&served, &got.body).unwrap();
    assert_eq!(
        streams(&served),
        [
            ("video".into(), "und".into()),
            ("audio".into(), "fra".into())
        ]
    );
    let written = dir.path().join("cut.mp4");
    let args = ["--start", "2", "--end", "8", "--tracks", "v1,a2"];
    cut(&media("two_audio.mp4"), &written, &args).unwrap();
    assert!(
        std::fs::read(&written).unwrap() == got.body,
        "cut and the server agree"
    );
    // lang= keeps every video track and the audio in that language.
    let got = get(port, "/two_audio.mp4?lang=en");
    std::fs::write(&served, &got.body).unwrap();
    assert_eq!(
        streams(&served),
        [
            ("video".into(), "und".into()),
            ("audio".into(), "eng".into())
        ]
    );

    // HLS: one audio alternative, and every URI says the choice again.
    let master = get(port, "/two_audio.mp4/master.m3u8?lang=fr").text();
    assert_eq!(master.matches("TYPE=AUDIO").count(), 1, "{master}");
    assert!(
        master.contains("LANGUAGE=\"fr\"") && !master.contains("LANGUAGE=\"en\""),
        "{master}"
    );
    let uri = master
        .split("URI=\"")
        .nth(1)
        .and_then(|u| u.split('"').next())
        .unwrap();
    assert!(uri.ends_with("?lang=fra"), "{uri}");
    let playlist = get(port, &format!("/two_audio.mp4/{uri}")).text();
    for line in playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        get(port, &format!("/two_audio.mp4/{line}"));
    }
    // DASH: audio only, one adaptation set.
    let mpd = get(port, "/two_audio.mp4/manifest.mpd?tracks=a1").text();
    assert!(!mpd.contains("contentType=\"video\""), "{mpd}");
    assert_eq!(mpd.matches("contentType=\"audio\"").count(), 1, "{mpd}");

    // What the film does not have is a 400 with the reason.
    for (query, why) in [
        ("tracks=v2", "v2 asked, the film has 1 video tracks"),
        ("tracks=a3", "a3 asked, the film has 2 audio tracks"),
        ("lang=de", "no audio track in 'deu'"),
        ("tracks=q1", "is not v<N> or a<N>"),
    ] {
        for path in ["/two_audio.mp4", "/two_audio.mp4/master.m3u8"] {
            let r = request(port, "GET", &format!("{path}?{query}"), &[]);
            assert_eq!(r.status, 400, "{path}?{query}: {}", r.text());
            assert!(r.text().contains(why), "{path}?{query}: {}", r.text());
        }
    }
    let out = Command::new(common::BIN)
        .args([
            "cut",
            media("two_audio.mp4").to_str().unwrap(),
            "-",
            "--tracks",
            "v2",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("v2 asked"));
}
