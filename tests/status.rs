//! The status page an operator reads, like php-fpm's: text, JSON, every
//! worker with `?full`, and OpenMetrics checked by a real parser.

mod common;

use common::{Pool, media};
use std::path::Path;
use std::process::{Command, Stdio};

fn status(pool: &Pool, query: &str) -> common::Reply {
    pool.client()
        .get(Path::new("/none"), query, &[("SCRIPT_NAME", "/status")])
}

#[test]
fn text_json_and_full_show_the_pool_and_each_worker() {
    let pool = Pool::start(&["--workers", "2", "--status-path", "/status"]);
    let workers = pool.wait_workers(2);
    let a = media("a.mp4");
    for q in ["start=5", "start=5", "start=7&end=9"] {
        assert_eq!(pool.client().get(&a, q, &[]).status, 200);
    }
    assert_eq!(
        pool.client().get(Path::new("/nope.mp4"), "", &[]).status,
        404
    );
    let text = status(&pool, "").text();
    for field in [
        "pool:                 mp4-fcgi",
        "version:              ",
        "start time:           ",
        "accepted conn:",
        "active connections:",
        "idle connections:",
        "max conns reached:",
        "slow requests:",
        "bytes sent:",
        "index cache hits:",
        "layout cache hits:",
        "worker restarts:",
    ] {
        assert!(text.contains(field), "no '{field}' in\n{text}");
    }
    let json: serde_json::Value = serde_json::from_str(&status(&pool, "json&full").text()).unwrap();
    // The four, the text page, and this one.
    assert_eq!(json["requests"], 6, "{json}");
    assert_eq!(json["errors"], 1);
    assert!(json["bytes_sent"].as_u64().unwrap() > 500_000, "{json}");
    // One film, indexed once per worker at most; the repeat found its layout.
    let misses = json["index_cache_misses"].as_u64().unwrap();
    assert!((1..=2).contains(&misses), "{json}");
    assert!(
        json["layout_cache_hits"].as_u64().unwrap() + misses >= 2,
        "{json}"
    );
    let procs = json["processes"].as_array().unwrap();
    let mut pids: Vec<i64> = procs.iter().map(|p| p["pid"].as_i64().unwrap()).collect();
    pids.sort_unstable();
    let mut want: Vec<i64> = workers.iter().map(|&p| i64::from(p)).collect();
    want.sort_unstable();
    assert_eq!(pids, want, "every worker, and only them");
    let served: u64 = procs.iter().map(|p| p["requests"].as_u64().unwrap()).sum();
    assert_eq!(served, 6, "the requests, and this status request: {json}");
    assert!(procs.iter().all(|p| p["state"] == "serving"));
}

#[test]
#[cfg_attr(
    not(all(has_python3, has_prometheus_client)),
    ignore = "needs python3 and prometheus-client: pip install -r .ci/python-packages"
)]
fn openmetrics_parses_with_prometheus_client() {
    common::require_tool("python3");
    let pool = Pool::start(&["--workers", "1", "--status-path", "/status"]);
    let a = media("a.mp4");
    for q in ["start=5", "start=5&end=8", "start=99"] {
        pool.client().get(&a, q, &[]);
    }
    pool.client().get(&a, "", &[("HTTP_RANGE", "bytes=0-99")]);
    let r = status(&pool, "openmetrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("Content-Type")
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        r.headers
    );
    // The strict OpenMetrics parser: it refuses what Prometheus would.
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
req = fams["mp4fcgi_requests"]
assert req.type == "counter", req.type
by = {s.labels["status"]: s.value for s in req.samples if s.name == "mp4fcgi_requests_total"}
print("200", int(by.get("200", 0)), "206", int(by.get("206", 0)), "400", int(by.get("400", 0)))
h = fams["mp4fcgi_request_duration_seconds"]
assert h.type == "histogram"
buckets = [s.value for s in h.samples if s.name.endswith("_bucket")]
assert buckets == sorted(buckets), buckets
count = [s.value for s in h.samples if s.name.endswith("_count")][0]
assert buckets[-1] == count, (buckets, count)
print("count", int(count))
for name in ["mp4fcgi_bytes_sent", "mp4fcgi_index_cache_hits", "mp4fcgi_layout_cache_misses",
             "mp4fcgi_worker_restarts", "mp4fcgi_overloaded"]:
    assert fams[name].type == "counter", name
for name in ["mp4fcgi_workers", "mp4fcgi_connections_active", "mp4fcgi_requests_in_flight"]:
    assert fams[name].type == "gauge", name
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&r.body).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        r.text()
    );
    // Two 200s, one 206, one 400 (start past the end); four answers timed.
    assert!(stdout.contains("200 2 206 1 400 1"), "{stdout}");
    assert!(stdout.contains("count 4"), "{stdout}");
}
