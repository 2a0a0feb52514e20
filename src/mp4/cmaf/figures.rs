//! The figures manifests print about segments: durations as printed,
//! TARGETDURATION, and the peak and average bit rates of whole segments.

use super::Segment;

/// Seconds as playlists print them (`#EXTINF:6.500000`).
pub fn printed_seconds(seconds: f64) -> String {
    format!("{seconds:.6}")
}

/// `#EXT-X-TARGETDURATION` of a track's segments: every duration as
/// printed, rounded to the nearest integer, is at most it (RFC 8216
/// 4.3.3.1); so 6.4999997 s, printed 6.500000, needs 7. At least 1.
pub fn target_duration(segments: &[Segment]) -> u64 {
    segments
        .iter()
        .map(|s| {
            let printed: f64 = printed_seconds(s.shown_for).parse().unwrap_or(s.shown_for);
            printed.round() as u64
        })
        .max()
        .unwrap_or(0)
        .max(1)
}

/// Longest run of segments [`bandwidth`] weighs one by one from a start;
/// past it, the start's runs are bounded from above.
const MAX_RUN: usize = 64;

/// The highest frame rate of a video track's segments (samples over decode
/// time), the last one left out unless it is the only one: what HLS's
/// `FRAME-RATE` states, "the maximum frame rate ... rounded to three
/// decimal places". `None` when no segment has a duration.
pub(super) fn frame_rate(segments: &[Segment], timescale: u32) -> Option<f64> {
    let full = match segments {
        [only] => std::slice::from_ref(only),
        [rest @ .., _] => rest,
        [] => return None,
    };
    let rate = (full.iter())
        .filter(|s| s.duration > 0 && s.samples > 0)
        .map(|s| s.samples as f64 * f64::from(timescale) / s.duration as f64)
        .fold(0.0f64, f64::max);
    (rate.is_finite() && rate > 0.0).then(|| (rate * 1000.0).round() / 1000.0)
}

/// Peak and average bits per second of whole segments (`moof` and `mdat`
/// headers too: what a player downloads). The peak is RFC 8216 4.3.4.2's:
/// the highest rate of any contiguous run of segments lasting 0.5 to 1.5
/// target durations ([`target_duration`]); a track shorter than half a
/// target duration has none, and then its average. From a start whose
/// qualifying runs span more than [`MAX_RUN`] segments (only a film of
/// segments far shorter than its longest), the rate counted is all their
/// bytes over the shortest qualifying time: never under the true peak, and
/// the work stays bounded by the segments.
pub fn bandwidth(segments: &[Segment]) -> (u64, u64) {
    let n = segments.len();
    // Sums from the start: seconds, and bytes exactly (no u64 overflow).
    let mut at = Vec::with_capacity(n + 1);
    let mut sent = Vec::with_capacity(n + 1);
    let (mut t, mut b) = (0.0f64, 0u128);
    at.push(t);
    sent.push(b);
    for s in segments {
        t += s.shown_for;
        b += u128::from(s.sent);
        at.push(t);
        sent.push(b);
    }
    let bits = |i: usize, j: usize| (sent[j] - sent[i]) as f64 * 8.0;
    let average = if t > 0.0 { bits(0, n) / t } else { 0.0 };
    let target = target_duration(segments) as f64;
    let (shortest, longest) = (target / 2.0, target * 1.5);
    let mut peak = average;
    // Runs [i, e) for e in [lo, hi]; both ends only move forward.
    let (mut lo, mut hi) = (0usize, 0usize);
    for i in 0..n {
        lo = lo.max(i + 1);
        while lo <= n && at[lo] - at[i] < shortest {
            lo += 1;
        }
        hi = hi.max(i);
        while hi < n && at[hi + 1] - at[i] <= longest {
            hi += 1;
        }
        if lo > hi {
            continue;
        }
        if hi - lo < MAX_RUN {
            for e in lo..=hi {
                peak = peak.max(bits(i, e) / (at[e] - at[i]));
            }
        } else {
            peak = peak.max(bits(i, hi) / (at[lo] - at[i]));
        }
    }
    // A header can claim any duration: past 2^32-1 (DASH's xs:unsignedInt)
    // a rate says nothing true, and sums of rates must not overflow.
    let clamp = |b: f64| (b.ceil() as u64).min(u64::from(u32::MAX));
    (clamp(peak), clamp(average))
}

#[cfg(test)]
mod tests {
    use super::super::{Kind, testing};
    use super::*;

    #[test]
    fn the_peak_is_over_runs_of_half_to_one_and_a_half_target_durations() {
        // Target 6 s: three 1 s segments of 1 MB make a 3 s run at 8 Mbit/s,
        // though each alone is shorter than half the target.
        let r = testing::rendition(
            1,
            Kind::Video,
            "avc1.64001F",
            &[
                (6.0, 600_000),
                (1.0, 1_000_000),
                (1.0, 1_000_000),
                (1.0, 1_000_000),
                (6.0, 600_000),
            ],
        );
        let (peak, _) = bandwidth(&r.segments);
        assert!(peak >= 8_000_000, "peak {peak}");
        // … but not over runs longer than 1.5 times the target: the whole
        // 15 s is not a run, so a peak of it would be the average.
        assert!(peak < 8_100_000, "peak {peak}");
    }

    #[test]
    fn the_peak_is_never_under_a_run_even_past_max_run() {
        // Hundreds of 0.05 s segments beside one of 30 s: runs from a short
        // segment span more than MAX_RUN segments.
        let mut x = 12345u64;
        let mut segs = vec![(30.0, 1_000_000)];
        for _ in 0..400 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            segs.push((0.05, (x >> 40) % 100_000));
        }
        segs.push((30.0, 1_000_000));
        let r = testing::rendition(1, Kind::Video, "avc1.64001F", &segs);
        let (peak, _) = bandwidth(&r.segments);
        let t = target_duration(&r.segments) as f64;
        let mut exact = 0.0f64;
        for i in 0..r.segments.len() {
            let (mut secs, mut bits) = (0.0, 0.0);
            for s in &r.segments[i..] {
                secs += s.shown_for;
                bits += s.sent as f64 * 8.0;
                if secs > 1.5 * t + 1e-9 {
                    break;
                }
                if secs >= 0.5 * t - 1e-9 {
                    exact = exact.max(bits / secs);
                }
            }
        }
        assert!(peak as f64 >= exact.floor(), "{peak} < {exact}");
    }
}
