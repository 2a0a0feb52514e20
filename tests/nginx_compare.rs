//! Side by side with nginx's `mp4;` on the same files and windows: our
//! durations match nginx's key-frame mode within a frame, we decode clean
//! where nginx's default output does not, and we keep the `udta` and `edts`
//! that nginx drops.

mod common;

use common::{cut, decode_errors, media, probe_duration, require_tool};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: nginx's fast shutdown takes its workers down too.
        // SAFETY: signalling our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(None) = self.child.try_wait() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }
}

fn start_nginx(bin: &Path) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let media_dir = media("");
    // Workers of a root master switch users; let them read the fixtures.
    let user = if nix::unistd::Uid::effective().is_root() {
        "user root root;"
    } else {
        ""
    };
    let conf = format!(
        "{user}\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\ndaemon off;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
          fastcgi_temp_path {d}/fcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
          server {{\n  listen 127.0.0.1:{port};\n\
           location /keyframe/ {{ alias {m}/; mp4; mp4_start_key_frame on; }}\n\
           location /default/ {{ alias {m}/; mp4; }}\n  }}\n}}\n",
        d = dir.path().display(),
        m = media_dir.display(),
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx {
        child,
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
fn side_by_side_with_nginx_mp4() {
    let (Some(nginx), Some(_), Some(_)) = (
        require_tool("nginx"),
        require_tool("ffmpeg"),
        require_tool("ffprobe"),
    ) else {
        return;
    };
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
