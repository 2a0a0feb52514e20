//! Bit rates: a media playlist's from its segments, and each variant's
//! BANDWIDTH and AVERAGE-BANDWIDTH against them (RFC 8216 4.3.4.2).

use super::{Line, get, lines};
use std::collections::HashMap;

/// A media playlist's bit rates from its segments (RFC 8216 4.3.4.2):
/// the peak segment bit rate, the largest of any run of segments lasting
/// 0.5 to 1.5 target durations (the whole playlist's when it is shorter),
/// and the average segment bit rate.
pub fn bit_rates(durations: &[f64], sizes: &[u64], target: u64) -> Rates {
    let (t, n) = (target as f64, durations.len().min(sizes.len()));
    let rate = |from: usize, to: usize| {
        let secs: f64 = durations[from..to].iter().sum();
        let bits = sizes[from..to].iter().sum::<u64>() as f64 * 8.0;
        (secs, bits / secs)
    };
    let average = if n > 0 { rate(0, n).1 } else { 0.0 };
    let peak = (0..n)
        .flat_map(|i| (i + 1..=n).map(move |j| (i, j)))
        .map(|(i, j)| rate(i, j))
        .filter(|(secs, _)| (0.5 * t..=1.5 * t).contains(secs))
        .fold(0.0, |peak: f64, (_, r)| peak.max(r));
    Rates {
        peak: if peak > 0.0 { peak } else { average },
        average,
    }
}

/// A media playlist's segment bit rates, bits per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub peak: f64,
    pub average: f64,
}

/// RFC 8216 4.3.4.2: each variant's BANDWIDTH is the largest sum of peak
/// segment bit rates of any playable combination of renditions, its
/// AVERAGE-BANDWIDTH that of average ones: neither may be less (a
/// bit/s of rounding allowed to the average). `rates`: each media
/// playlist's, by the URI the master names. An EXT-X-IMAGE-STREAM-INF's
/// BANDWIDTH is not weighed: the server estimates it before any sprite
/// is made (RFC 8216's MUST is for segments already made).
pub fn bandwidth(master: &str, rates: &HashMap<String, Rates>) -> Vec<String> {
    let mut v = Vec::new();
    // The tags' own faults are master()'s to report.
    let all = lines(master, &mut Vec::new());
    let mut of = |uri: &str| {
        rates.get(uri).copied().unwrap_or_else(|| {
            v.push(format!("no bit rates given for {uri}"));
            Rates::default()
        })
    };
    let mut short = Vec::new();
    for (i, (no, line)) in all.iter().enumerate() {
        let (Line::Tag("EXT-X-STREAM-INF", _, a), Some((_, Line::Uri(uri)))) =
            (line, all.get(i + 1))
        else {
            continue;
        };
        let mut sum = of(uri);
        for kind in ["AUDIO", "VIDEO", "SUBTITLES"] {
            let Some(group) = get(a, kind) else { continue };
            let mut most = Rates::default();
            for (_, m) in &all {
                if let Line::Tag("EXT-X-MEDIA", _, m) = m
                    && get(m, "TYPE") == Some(kind)
                    && get(m, "GROUP-ID") == Some(group)
                    && let Some(u) = get(m, "URI")
                {
                    let r = of(u);
                    most.peak = most.peak.max(r.peak);
                    most.average = most.average.max(r.average);
                }
            }
            sum.peak += most.peak;
            sum.average += most.average;
        }
        for (attr, least) in [
            ("BANDWIDTH", sum.peak.floor()),
            ("AVERAGE-BANDWIDTH", sum.average.floor() - 1.0),
        ] {
            let declared: Option<f64> = get(a, attr).and_then(|b| b.parse().ok());
            if let Some(d) = declared.filter(|d| *d < least) {
                short.push(format!(
                    "line {no}: {attr} {d} < {least}, from its renditions' segments"
                ));
            }
        }
    }
    // An I-frame stream stands alone (4.3.4.3): its own playlist's rates.
    for (no, line) in &all {
        let Line::Tag("EXT-X-I-FRAME-STREAM-INF", _, a) = line else {
            continue;
        };
        let Some(uri) = get(a, "URI") else { continue };
        let r = of(uri);
        for (attr, least) in [
            ("BANDWIDTH", r.peak.floor()),
            ("AVERAGE-BANDWIDTH", r.average.floor() - 1.0),
        ] {
            let declared: Option<f64> = get(a, attr).and_then(|b| b.parse().ok());
            if let Some(d) = declared.filter(|d| *d < least) {
                short.push(format!(
                    "line {no}: {attr} {d} < {least}, from its I-frames"
                ));
            }
        }
    }
    v.extend(short);
    v
}
