//! Side by side with nginx's `mp4;` on the same files and windows: our
//! durations match nginx's key-frame mode within a frame, we decode clean
//! where nginx's default output does not, and we keep the `udta` and `edts`
//! that nginx drops.

mod common;

use common::{cut, decode_errors, media, probe_duration, require_tool};
use std::io::{Read, Write};
use std::path::Path;

struct Nginx {
    _server: common::Stop,
    port: u16,
    _dir: tempfile::TempDir,
}

fn start_nginx(bin: &Path) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let m = media("").display().to_string();
    let locations = format!(
        "location /keyframe/ {{ alias {m}/; mp4; mp4_start_key_frame on; }}\n  location /default/ {{ alias {m}/; mp4; }}"
    );
    let conf = common::nginx_conf(dir.path(), port, "", &locations);
    let server = common::start_nginx(bin, dir.path(), &conf, port);
    Nginx {
        _server: server,
        port,
        _dir: dir,
    }
}

fn http_get(port: u16, path: &str) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = String::from_utf8_lossy(&all[9..12]).parse().unwrap();
    (status, all[end + 4..].to_vec())
}

fn has_box(path: &Path, fourcc: &[u8; 4]) -> bool {
    let data = std::fs::read(path).unwrap();
    let moov = data
        .windows(4)
        .position(|w| w == b"moov")
        .unwrap_or(data.len());
    data[moov..].windows(4).any(|w| w == fourcc)
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_ffmpeg, has_ffprobe)),
    ignore = "needs nginx, ffmpeg, ffprobe: apt-get install -y nginx ffmpeg"
)]
fn side_by_side_with_nginx_mp4() {
    let (nginx, _, _) = (
        require_tool("nginx"),
        require_tool("ffmpeg"),
        require_tool("ffprobe"),
    );
    let server = start_nginx(&nginx);
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("a.mp4", 5.5, 12.0),
        ("a.mp4", 7.3, 15.0),
        ("hevc.mp4", 7.3, 15.0),
        ("two_audio.mp4", 5.5, 12.0),
        ("audio.m4a", 7.3, 15.0),
    ];
    for (file, start, end) in cases {
        let label = format!("{file}?start={start}&end={end}");
        let ours = dir.path().join(format!("ours-{file}"));
        cut(
            &media(file),
            &ours,
            &["--start", &start.to_string(), "--end", &end.to_string()],
        )
        .unwrap();
        let (status, body) = http_get(
            server.port,
            &format!("/keyframe/{file}?start={start}&end={end}"),
        );
        assert_eq!(status, 200, "{label}");
        let theirs = dir.path().join(format!("nginx-{file}"));
        std::fs::write(&theirs, body).unwrap();
        let (d_ours, d_theirs) = (probe_duration(&ours), probe_duration(&theirs));
        assert!(
            (d_ours - d_theirs).abs() <= 0.041,
            "{label}: ours {d_ours} s, nginx {d_theirs} s"
        );
        assert_eq!(decode_errors(&ours), "", "{label}");
        // What nginx drops, we keep.
        assert!(
            has_box(&ours, b"udta") && has_box(&ours, b"edts"),
            "{label}: we keep udta and edts"
        );
        assert!(
            !has_box(&theirs, b"udta"),
            "{label}: nginx drops udta (the comparison is live)"
        );
    }
    // nginx's default (no key-frame snapping) starts between key frames and
    // breaks the decoder; ours starts clean for the same request.
    let (_, body) = http_get(server.port, "/default/a.mp4?start=7.3&end=15");
    let theirs = dir.path().join("nginx-default.mp4");
    std::fs::write(&theirs, body).unwrap();
    assert!(
        !decode_errors(&theirs).is_empty(),
        "nginx's default output decodes with errors"
    );
    let ours = dir.path().join("ours-default.mp4");
    cut(&media("a.mp4"), &ours, &["--start", "7.3", "--end", "15"]).unwrap();
    assert_eq!(decode_errors(&ours), "");
    // nginx answers 500 past the end; we answer 400 with a reason (server tests).
    let (status, _) = http_get(server.port, "/keyframe/a.mp4?start=25");
    assert_eq!(status, 500);
}
