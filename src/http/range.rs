//! The Range header (RFC 9110 §14.2), parsed by `http-range-header`.

use std::num::NonZeroUsize;
use std::ops::Range;

/// Most ranges answered as multipart; more answer the whole entity.
const MAX_RANGES: usize = 16;

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Ignore the header: answer the whole entity.
    Full,
    Ranges(Vec<Range<u64>>),
    Unsatisfiable,
}

pub fn decide(header: &[u8], len: u64) -> Decision {
    use http_range_header::RangeUnsatisfiableError as E;
    let Ok(h) = std::str::from_utf8(header) else {
        return Decision::Full;
    };
    let max = NonZeroUsize::new(MAX_RANGES).unwrap_or(NonZeroUsize::MIN);
    let parsed = match http_range_header::parse_range_header_with_max_ranges(h.trim(), max) {
        Ok(p) => p,
        Err(E::Unsatisfiable) => return Decision::Unsatisfiable,
        // Malformed, or too many: a server may ignore the header.
        Err(_) => return Decision::Full,
    };
    match parsed.validate(len) {
        Ok(v) if v.is_empty() => Decision::Unsatisfiable,
        Ok(v) => {
            let ranges: Vec<Range<u64>> = v.into_iter().map(|r| *r.start()..*r.end() + 1).collect();
            // Overlapping ranges that add up past twice the entity: serve it once.
            let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
            if ranges.len() > 1 && total > len.saturating_mul(2) {
                return Decision::Full;
            }
            Decision::Ranges(ranges)
        }
        Err(E::Unsatisfiable) => Decision::Unsatisfiable,
        Err(_) => Decision::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(h: &str, len: u64) -> Decision {
        decide(h.as_bytes(), len)
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn forms() {
        assert_eq!(d("bytes=0-99", 1000), Decision::Ranges(vec![0..100]));
        assert_eq!(d("bytes=-500", 1000), Decision::Ranges(vec![500..1000]));
        assert_eq!(d("bytes=-5000", 1000), Decision::Ranges(vec![0..1000]));
        assert_eq!(d("bytes=900-", 1000), Decision::Ranges(vec![900..1000]));
        assert_eq!(d("bytes=990-2000", 1000), Decision::Ranges(vec![990..1000]));
        assert_eq!(
            d("bytes=0-9,20-29", 1000),
            Decision::Ranges(vec![0..10, 20..30])
        );
        assert_eq!(d("bytes=5000000-", 1000), Decision::Unsatisfiable);
        assert_eq!(d("bytes=0-0", 0), Decision::Unsatisfiable);
        assert_eq!(d("items=0-1", 1000), Decision::Full);
        assert_eq!(d("bytes=abc", 1000), Decision::Full);
        assert_eq!(d("bytes=5-1", 1000), Decision::Full);
        let many: Vec<String> = (0..20)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect();
        assert_eq!(
            d(&format!("bytes={}", many.join(",")), 1000),
            Decision::Full
        );
    }
}
