//! The status page, like php-fpm's `pm.status_path`: text by default, JSON
//! with `?json`, every worker with `?full`, and an OpenMetrics (Prometheus)
//! text exposition with `?openmetrics`. Rendering only: the numbers come
//! from [`Stats`] in one snapshot.

use super::stats::{BUCKETS, STATUSES, Stats};
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

/// A worker as the page shows it.
pub struct WorkerView {
    pub pid: i64,
    pub start_time: u64,
    pub generation: u64,
    pub requests: u64,
    pub connections: u64,
    pub idle: u64,
    pub bytes_sent: u64,
    pub cache_bytes: u64,
    pub draining: bool,
}

/// Every figure, read once.
pub struct Snapshot {
    pub start_time: u64,
    pub now: u64,
    fields: Vec<(&'static str, &'static str, u64)>,
    statuses: Vec<(String, u64)>,
    durations: Vec<u64>,
    duration_micros: u64,
    pub workers: Vec<WorkerView>,
}

/// Seconds since the epoch as `2026-11-25T17:40:00Z`.
fn iso8601(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The status page for `query`: `?openmetrics`, `?json` (with `full`: every
/// worker) or text; the body and its content type.
pub fn page(stats: &Stats, pool_start: u64, now: u64, query: &[u8]) -> (String, &'static str) {
    let has = |key: &[u8]| {
        query
            .split(|&b| b == b'&')
            .any(|p| p.split(|&b| b == b'=').next() == Some(key))
    };
    let snap = Snapshot::take(stats, pool_start, now);
    if has(b"openmetrics") {
        (
            snap.openmetrics(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else if has(b"json") {
        (snap.json(has(b"full")), "application/json")
    } else {
        (snap.text(has(b"full")), "text/plain; charset=utf-8")
    }
}

impl Snapshot {
    pub fn take(stats: &Stats, start_time: u64, now: u64) -> Snapshot {
        let c = stats.get();
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
        let gi = |a: &std::sync::atomic::AtomicI64| u64::try_from(a.load(Relaxed)).unwrap_or(0);
        let workers: Vec<WorkerView> = stats
            .slots()
            .iter()
            .filter(|s| s.pid.load(Relaxed) > 0)
            .map(|s| WorkerView {
                pid: s.pid.load(Relaxed),
                start_time: g(&s.started),
                generation: g(&s.generation),
                requests: g(&s.requests),
                connections: g(&s.connections),
                idle: g(&s.idle),
                bytes_sent: g(&s.bytes_sent),
                cache_bytes: g(&s.cache_bytes),
                draining: g(&s.draining) != 0,
            })
            .collect();
        let idle: u64 = workers.iter().map(|w| w.idle).sum();
        let cache: u64 = workers.iter().map(|w| w.cache_bytes).sum();
        let fields = vec![
            ("start since", "start_since", now.saturating_sub(start_time)),
            ("workers", "workers", g(&c.workers)),
            ("accepted conn", "accepted_connections", g(&c.started)),
            (
                "active connections",
                "active_connections",
                gi(&c.connections),
            ),
            ("idle connections", "idle_connections", idle),
            (
                "max conns reached",
                "max_conns_reached",
                g(&c.max_conns_reached),
            ),
            ("requests", "requests", g(&c.requests)),
            ("in flight", "in_flight", gi(&c.in_flight)),
            ("errors", "errors", g(&c.errors)),
            ("slow requests", "slow_requests", g(&c.slow_requests)),
            ("bytes sent", "bytes_sent", g(&c.bytes_sent)),
            ("index cache hits", "index_cache_hits", g(&c.index_hits)),
            (
                "index cache misses",
                "index_cache_misses",
                g(&c.index_misses),
            ),
            ("layout cache hits", "layout_cache_hits", g(&c.layout_hits)),
            (
                "layout cache misses",
                "layout_cache_misses",
                g(&c.layout_misses),
            ),
            ("cache bytes", "cache_bytes", cache),
            ("offload bytes", "offload_bytes", g(&c.offload_bytes)),
            ("worker restarts", "respawns", g(&c.respawns)),
            ("worker deaths", "worker_deaths", g(&c.worker_deaths)),
            ("reloads", "reloads", g(&c.reloads)),
            ("idle timeouts", "idle_timeouts", g(&c.idle_timeouts)),
            (
                "request timeouts",
                "request_timeouts",
                g(&c.request_timeouts),
            ),
            ("overloaded", "overloaded", g(&c.overloaded)),
            (
                "per-peer refused",
                "per_peer_refused",
                g(&c.per_peer_refused),
            ),
            ("origin requests", "origin_requests", g(&c.origin_requests)),
            ("origin bytes", "origin_bytes", g(&c.origin_bytes)),
        ];
        let statuses = STATUSES
            .iter()
            .map(u16::to_string)
            .chain(["other".to_string()])
            .zip(c.statuses.iter().map(g))
            .collect();
        Snapshot {
            start_time,
            now,
            fields,
            statuses,
            durations: c.durations.iter().map(g).collect(),
            duration_micros: g(&c.duration_micros),
            workers,
        }
    }

    pub fn text(&self, full: bool) -> String {
        let mut out = String::new();
        let line = |out: &mut String, k: &str, v: &dyn std::fmt::Display| {
            let _ = writeln!(out, "{:<22}{v}", format!("{k}:"));
        };
        line(&mut out, "pool", &"mp4-fcgi");
        line(&mut out, "version", &env!("CARGO_PKG_VERSION"));
        line(&mut out, "start time", &iso8601(self.start_time));
        for (label, _, v) in &self.fields {
            line(&mut out, label, v);
        }
        if full {
            for w in &self.workers {
                out.push_str("\n************************\n");
                line(&mut out, "pid", &w.pid);
                line(
                    &mut out,
                    "state",
                    &if w.draining { "draining" } else { "serving" },
                );
                line(&mut out, "start time", &iso8601(w.start_time));
                line(
                    &mut out,
                    "start since",
                    &self.now.saturating_sub(w.start_time),
                );
                line(&mut out, "generation", &w.generation);
                line(&mut out, "requests", &w.requests);
                line(&mut out, "active connections", &w.connections);
                line(&mut out, "idle connections", &w.idle);
                line(&mut out, "bytes sent", &w.bytes_sent);
                line(&mut out, "cache bytes", &w.cache_bytes);
            }
        }
        out
    }

    pub fn json(&self, full: bool) -> String {
        let mut out = format!(
            "{{\"pool\":\"mp4-fcgi\",\"version\":\"{}\",\"start_time\":{}",
            env!("CARGO_PKG_VERSION"),
            self.start_time
        );
        for (_, key, v) in &self.fields {
            let _ = write!(out, ",\"{key}\":{v}");
        }
        if full {
            out.push_str(",\"processes\":[");
            for (i, w) in self.workers.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(
                    out,
                    "{{\"pid\":{},\"state\":\"{}\",\"start_time\":{},\"generation\":{},\
                     \"requests\":{},\"active_connections\":{},\"idle_connections\":{},\
                     \"bytes_sent\":{},\"cache_bytes\":{}}}",
                    w.pid,
                    if w.draining { "draining" } else { "serving" },
                    w.start_time,
                    w.generation,
                    w.requests,
                    w.connections,
                    w.idle,
                    w.bytes_sent,
                    w.cache_bytes
                );
            }
            out.push(']');
        }
        out.push_str("}\n");
        out
    }

    /// The OpenMetrics text format (Prometheus reads it too).
    pub fn openmetrics(&self) -> String {
        let mut out = String::new();
        let get = |key: &str| self.fields.iter().find(|f| f.1 == key).map_or(0, |f| f.2);
        let metric = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# TYPE mp4fcgi_{name} {kind}");
            let _ = writeln!(out, "# HELP mp4fcgi_{name} {help}");
        };
        let counters: [(&str, &str, &str); 17] = [
            (
                "connections_accepted",
                "accepted_connections",
                "Connections accepted.",
            ),
            (
                "max_conns_reached",
                "max_conns_reached",
                "Times a worker was full with no idle connection to close.",
            ),
            ("errors", "errors", "Answers with a status of 400 or more."),
            (
                "slow_requests",
                "slow_requests",
                "Requests whose answer began later than --slow-request-time.",
            ),
            (
                "index_cache_hits",
                "index_cache_hits",
                "Requests that found the film's index cached.",
            ),
            (
                "index_cache_misses",
                "index_cache_misses",
                "Requests that had the film indexed.",
            ),
            (
                "layout_cache_hits",
                "layout_cache_hits",
                "Requests that found the window's layout cached.",
            ),
            (
                "layout_cache_misses",
                "layout_cache_misses",
                "Requests that had the window planned.",
            ),
            (
                "worker_restarts",
                "respawns",
                "Workers started again after one ended.",
            ),
            (
                "worker_deaths",
                "worker_deaths",
                "Workers that died unexpectedly.",
            ),
            ("reloads", "reloads", "SIGHUPs handled."),
            (
                "idle_timeouts",
                "idle_timeouts",
                "Connections closed after --idle-timeout.",
            ),
            (
                "request_timeouts",
                "request_timeouts",
                "Connections closed after --request-timeout.",
            ),
            (
                "overloaded",
                "overloaded",
                "Requests answered 503 for want of room.",
            ),
            (
                "per_peer_refused",
                "per_peer_refused",
                "Requests answered 503 because their address had --max-per-peer in flight.",
            ),
            (
                "origin_requests",
                "origin_requests",
                "Requests sent to --origin.",
            ),
            ("origin_bytes", "origin_bytes", "Bytes read from --origin."),
        ];
        for (name, key, help) in counters {
            metric(&mut out, name, "counter", help);
            let _ = writeln!(out, "mp4fcgi_{name}_total {}", get(key));
        }
        metric(
            &mut out,
            "bytes_sent",
            "counter",
            "Bytes written to front servers.",
        );
        let _ = writeln!(out, "mp4fcgi_bytes_sent_total {}", get("bytes_sent"));
        metric(&mut out, "requests", "counter", "Answers, by status.");
        for (status, n) in &self.statuses {
            let _ = writeln!(out, "mp4fcgi_requests_total{{status=\"{status}\"}} {n}");
        }
        let gauges: [(&str, &str, &str); 7] = [
            (
                "workers",
                "workers",
                "Worker processes of the current generation.",
            ),
            (
                "connections_active",
                "active_connections",
                "Open connections.",
            ),
            (
                "connections_idle",
                "idle_connections",
                "Open connections with nothing in flight.",
            ),
            ("requests_in_flight", "in_flight", "Answers being sent."),
            (
                "cache_bytes",
                "cache_bytes",
                "Bytes the workers' index caches hold.",
            ),
            ("offload_bytes", "offload_bytes", "Bytes in --offload-dir."),
            (
                "start_time_seconds",
                "",
                "When the pool started, in seconds since the epoch.",
            ),
        ];
        for (name, key, help) in gauges {
            metric(&mut out, name, "gauge", help);
            let v = if key.is_empty() {
                self.start_time
            } else {
                get(key)
            };
            let _ = writeln!(out, "mp4fcgi_{name} {v}");
        }
        metric(
            &mut out,
            "request_duration_seconds",
            "histogram",
            "From a request's arrival to the end of its answer.",
        );
        let mut cumulative = 0;
        for (i, n) in self.durations.iter().enumerate() {
            cumulative += n;
            let le = BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(
                out,
                "mp4fcgi_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "mp4fcgi_request_duration_seconds_sum {}",
            self.duration_micros as f64 / 1e6
        );
        let _ = writeln!(out, "mp4fcgi_request_duration_seconds_count {cumulative}");
        out.push_str("# EOF\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_formats() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_795_623_600), "2026-11-25T16:20:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        let stats = Stats::new().unwrap();
        stats.get().requests.store(7, Relaxed);
        stats.ended(206, 0.02);
        stats.ended(599, 20.0);
        let s = Snapshot::take(&stats, 100, 160);
        assert!(s.text(false).contains("requests:             7\n"));
        assert!(s.text(false).contains("start since:          60\n"));
        assert!(s.json(true).contains("\"requests\":7,"));
        let m = s.openmetrics();
        assert!(m.contains("mp4fcgi_requests_total{status=\"206\"} 1\n"));
        assert!(m.contains("mp4fcgi_requests_total{status=\"other\"} 1\n"));
        assert!(m.contains("mp4fcgi_request_duration_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(m.contains("mp4fcgi_request_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(m.ends_with("# EOF\n"));
    }
}
