//! Conditional requests (RFC 9110 §13): If-None-Match, If-Modified-Since, If-Range.

use std::time::{SystemTime, UNIX_EPOCH};

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn strip_weak(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// If-None-Match with the weak comparison: true when a listed tag (or `*`) matches.
pub fn none_match(header: &[u8], etag: &str) -> bool {
    let Ok(h) = std::str::from_utf8(header) else {
        return false;
    };
    h.split(',')
        .map(str::trim)
        .any(|t| t == "*" || strip_weak(t) == strip_weak(etag))
}

/// If-Modified-Since: `Some(true)` when the entity has not changed since the
/// date; `None` when the date does not parse or is later than `now`, the
/// server's clock (RFC 9110 §13.1.3: invalid, so the header is ignored).
pub fn not_modified_since(
    header: &[u8],
    last_modified: SystemTime,
    now: SystemTime,
) -> Option<bool> {
    let ims = httpdate::parse_http_date(std::str::from_utf8(header).ok()?.trim()).ok()?;
    if secs(ims) > secs(now) {
        return None;
    }
    Some(secs(last_modified) <= secs(ims))
}

/// If-Range: a strong tag must equal ours; a date must equal Last-Modified.
pub fn if_range_matches(header: &[u8], etag: &str, last_modified: SystemTime) -> bool {
    let Ok(h) = std::str::from_utf8(header) else {
        return false;
    };
    let h = h.trim();
    if h.starts_with('"') {
        return h == etag;
    }
    if h.starts_with("W/") {
        return false;
    }
    httpdate::parse_http_date(h).is_ok_and(|d| secs(d) == secs(last_modified))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const TAG: &str = "\"abc\"";

    #[test]
    fn none_match_forms() {
        assert!(none_match(b"\"abc\"", TAG));
        assert!(none_match(b"\"x\", W/\"abc\"", TAG));
        assert!(none_match(b"*", TAG));
        assert!(!none_match(b"\"abd\"", TAG));
        assert!(!none_match(b"\xff", TAG));
    }

    #[test]
    fn modified_since_compares_seconds() {
        let lm = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let now = lm + Duration::from_secs(60);
        let same = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(not_modified_since(same.as_bytes(), lm, now), Some(true));
        let older = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_600_000_000));
        assert_eq!(not_modified_since(older.as_bytes(), lm, now), Some(false));
        assert_eq!(not_modified_since(b"garbage", lm, now), None);
    }

    #[test]
    fn a_date_after_now_is_ignored() {
        let lm = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let now = lm + Duration::from_secs(60);
        let at = |t: SystemTime| not_modified_since(httpdate::fmt_http_date(t).as_bytes(), lm, now);
        assert_eq!(at(now), Some(true));
        assert_eq!(at(now + Duration::from_secs(1)), None);
        assert_eq!(at(now + Duration::from_secs(365 * 86_400)), None);
    }

    #[test]
    fn if_range_is_strong() {
        let lm = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(if_range_matches(b"\"abc\"", TAG, lm));
        assert!(!if_range_matches(b"W/\"abc\"", TAG, lm));
        assert!(!if_range_matches(b"\"zzz\"", TAG, lm));
        assert!(if_range_matches(
            httpdate::fmt_http_date(lm).as_bytes(),
            TAG,
            lm
        ));
        let other = httpdate::fmt_http_date(lm + Duration::from_secs(1));
        assert!(!if_range_matches(other.as_bytes(), TAG, lm));
    }
}
