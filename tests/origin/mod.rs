//! What the tests/origin_*.rs share.
#![allow(dead_code, unused_imports)]

use super::common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const KEY: &str = "AKMP4FCGITEST";
pub const SECRET: &str = "SKmp4fcgiTestSecret";
pub const FILMS: [&str; 6] = [
    "a.mp4",
    "a_faststart.mp4",
    "frag.mp4",
    "hevc.mp4",
    "two_audio.mp4",
    "audio.m4a",
];
pub const WINDOWS: [&str; 4] = ["", "start=3&end=6", "start=7.5", "start=2.2&client=flash"];

/// One SeaweedFS server for the whole test binary: `weed server -s3` on
/// 127.0.0.1, bucket `films` holding the test media under `v/`.
pub struct Store {
    pub s3: u16,
    pub _dir: tempfile::TempDir,
}

/// Starts the store on a thread that lives as long as the test binary, so
/// the kernel kills `weed` (PR_SET_PDEATHSIG) when the binary exits.
pub fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let weed = require_tool("weed");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"test","credentials":[{{"accessKey":"{KEY}","secretKey":"{SECRET}"}}],"actions":["Admin","Read","Write","List"]}}]}}"#
            ),
        )
        .unwrap();
        let s3 = free_port();
        let mut args: Vec<String> = [
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-volume.max=4",
            "-s3",
            // Catalog servers on fixed ports: not wanted here.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("-dir={}", dir.path().display()));
        args.push(format!("-s3.config={}", config.display()));
        args.push(format!("-s3.port={s3}"));
        // Every port explicit: the defaults (+10000 for gRPC) may collide.
        for flag in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
        ] {
            args.push(format!("-{flag}={}", free_port()));
        }
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut cmd = Command::new(weed);
            cmd.args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            // SAFETY: prctl on the child before exec; no allocation.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut child = cmd.spawn().expect("weed starts");
            tx.send(child.id()).unwrap();
            // This thread is weed's parent for the kernel: it ends with weed.
            let _ = child.wait();
        });
        rx.recv().unwrap();
        wait_port(s3);
        let store = Store { s3, _dir: dir };
        // The filer and the volume come up after the S3 port: retry.
        let deadline = Instant::now() + Duration::from_secs(60);
        let files: Vec<String> = FILMS
            .iter()
            .map(|f| media(f).display().to_string())
            .collect();
        loop {
            match s3_client(&store, "setup", &files) {
                Ok(()) => break,
                Err(e) => {
                    assert!(Instant::now() < deadline, "SeaweedFS setup: {e}");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        store
    })
}

/// Runs boto3 against the store: `setup FILES` creates the bucket and
/// uploads, `put KEY FILE` replaces one object.
pub fn s3_client(store: &Store, what: &str, args: &[String]) -> Result<(), String> {
    let python = require_tool("python3");
    let script = r#"
import sys, os, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],
    aws_secret_access_key=sys.argv[3], region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
if sys.argv[4] == "setup":
    try:
        s3.create_bucket(Bucket="films")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for f in sys.argv[5:]:
        s3.upload_file(f, "films", "v/" + os.path.basename(f))
    n = s3.list_objects_v2(Bucket="films", Prefix="v/")["KeyCount"]
    assert n >= len(sys.argv[5:]), n
else:
    s3.upload_file(sys.argv[6], "films", sys.argv[5])
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(format!("http://127.0.0.1:{}", store.s3))
        .args([KEY, SECRET, what])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

pub fn s3_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-east-1"),
    ]
}

/// A pool reading `s3://films/v` from the store.
pub fn s3_pool(store: &Store, extra: &[&str]) -> Pool {
    let endpoint = format!("http://127.0.0.1:{}", store.s3);
    let mut args = vec![
        "--origin",
        "s3://films/v",
        "--s3-endpoint",
        &endpoint,
        "--workers",
        "1",
        "--status-path",
        "/status",
    ];
    args.extend_from_slice(extra);
    Pool::start_env(&args, &s3_env())
}

/// The HTTP origin's folder: links to the test media, plus `big.mp4`
/// (20 s of 720p, ~10 MB) when `big` (a body too long for socket buffers).
pub fn origin_root(dir: &Path, big: bool) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    for f in FILMS {
        std::os::unix::fs::symlink(media(f), root.join(f)).unwrap();
    }
    if big {
        let ffmpeg = require_tool("ffmpeg");
        let out = Command::new(ffmpeg)
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc2=duration=20:size=1280x720:rate=30")
            .args(["-f", "lavfi", "-i", "sine=duration=20"])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"])
            .arg(root.join("big.mp4"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    root
}

/// A pool reading http://127.0.0.1:`port`/.
pub fn http_pool(port: u16, extra: &[&str]) -> Pool {
    let url = format!("http://127.0.0.1:{port}/");
    let mut args = vec![
        "--origin",
        &url,
        "--workers",
        "1",
        "--status-path",
        "/status",
    ];
    args.extend_from_slice(extra);
    Pool::start(&args)
}

/// nginx serving `dir`/root on `port`, logging each request's Range.
pub fn http_origin(dir: &Path, port: u16) -> Stop {
    let nginx = require_tool("nginx");
    let root = dir.join("root");
    let conf = nginx_conf(
        dir,
        port,
        "log_format origin '$request_method $uri $http_range $status $body_bytes_sent';",
        &format!(
            "access_log {}/origin.log origin;\n  root {};\n  location / {{ }}",
            dir.display(),
            root.display()
        ),
    );
    start_nginx(&nginx, dir, &conf, port)
}

/// The origin's log lines so far: (method uri, range, status, bytes).
pub fn origin_log(dir: &Path) -> Vec<(String, String, u16, u64)> {
    // nginx writes each line when the request ends.
    std::thread::sleep(Duration::from_millis(100));
    std::fs::read_to_string(dir.join("origin.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                format!("{} {}", f[0], f[1]),
                f[2].to_string(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect()
}

/// A GET through the pool for `name` (SCRIPT_NAME) with `query` and extra params.
pub fn get(pool: &Pool, name: &str, query: &str, extra: &[(&str, &str)]) -> Reply {
    let mut params = vec![("SCRIPT_NAME", name)];
    params.extend_from_slice(extra);
    pool.client()
        .get(Path::new("/nonexistent-local"), query, &params)
}

/// `mp4-fcgi cut` of the local film for the same window.
pub fn expected(film: &str, query: &str) -> Vec<u8> {
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap();
        args.push(format!("--{k}"));
        args.push(v.to_string());
    }
    let out = tempfile::NamedTempFile::new().unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cut(&media(film), out.path(), &args).unwrap();
    std::fs::read(out.path()).unwrap()
}

pub fn body_of(r: &Reply) -> &[u8] {
    assert_eq!(r.status, 200, "{}", r.text());
    &r.body
}
