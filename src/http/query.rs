//! `start`, `end` and `client` from the query string.

use std::fmt;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Query {
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub flash: bool,
    /// `?json`, for the status page.
    pub json: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum QueryError {
    BadEncoding { key: &'static str },
    NotANumber { key: &'static str, value: String },
    EndNotAfterStart { start: f64, end: f64 },
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::BadEncoding { key } => write!(f, "{key}: bad percent-encoding"),
            QueryError::NotANumber { key, value } => {
                write!(f, "{key}: '{value}' is not a number of seconds (e.g. 45.5)")
            }
            QueryError::EndNotAfterStart { start, end } => {
                write!(f, "end {end} s is not after start {start} s")
            }
        }
    }
}

impl std::error::Error for QueryError {}

/// The largest time accepted, in seconds (about 31 years).
const MAX_SECONDS: f64 = 1e9;

/// Decodes `%XX` and `+` (a space) in a query. `None` for a malformed escape.
pub fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    decode(s, true)
}

/// Decodes `%XX` in a path, where `+` is a plus (as nginx and lighttpd read it).
pub fn percent_decode_path(s: &[u8]) -> Option<Vec<u8>> {
    decode(s, false)
}

fn decode(s: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Seconds as `digits[.digits]`, `.digits` or `digits.`; nothing else.
fn seconds(key: &'static str, raw: &[u8]) -> Result<f64, QueryError> {
    let bad = || QueryError::NotANumber {
        key,
        value: String::from_utf8_lossy(raw).chars().take(40).collect(),
    };
    let (int, frac) = match raw.iter().position(|&b| b == b'.') {
        Some(p) => (&raw[..p], &raw[p + 1..]),
        None => (raw, &raw[raw.len()..]),
    };
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) || int.len() > 12 {
        return Err(bad());
    }
    let v: f64 = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    if !v.is_finite() || v > MAX_SECONDS {
        return Err(bad());
    }
    Ok(v)
}

pub fn parse_query(raw: &[u8]) -> Result<Query, QueryError> {
    let mut q = Query::default();
    let (mut start, mut end, mut client) = (None, None, None);
    for pair in raw.split(|&b| b == b'&') {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(p) => (&pair[..p], Some(&pair[p + 1..])),
            None => (pair, None),
        };
        let Some(key) = percent_decode(k) else {
            continue;
        };
        // The first of a repeated key wins, as with nginx.
        let (slot, name) = match key.as_slice() {
            b"start" => (&mut start, "start"),
            b"end" => (&mut end, "end"),
            b"client" => (&mut client, "client"),
            b"json" => {
                q.json = true;
                continue;
            }
            _ => continue,
        };
        if slot.is_none() {
            let value =
                percent_decode(v.unwrap_or(b"")).ok_or(QueryError::BadEncoding { key: name })?;
            *slot = Some(value);
        }
    }
    if let Some(s) = start {
        q.start = Some(seconds("start", &s)?);
    }
    if let Some(e) = end {
        q.end = Some(seconds("end", &e)?);
    }
    q.flash = client.is_some_and(|c| c.eq_ignore_ascii_case(b"flash"));
    if let (Some(start), Some(end)) = (q.start, q.end)
        && end <= start
    {
        return Err(QueryError::EndNotAfterStart { start, end });
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Query {
        parse_query(s.as_bytes()).unwrap()
    }

    #[test]
    fn numbers_and_encodings() {
        assert_eq!(ok("start=45.5&end=60").start, Some(45.5));
        assert_eq!(ok("start=45.5&end=60").end, Some(60.0));
        assert_eq!(ok("start=1%2E5").start, Some(1.5));
        assert_eq!(ok("start=0").start, Some(0.0));
        assert_eq!(ok("start=.5").start, Some(0.5));
        assert_eq!(ok("start=5.").start, Some(5.0));
        assert_eq!(ok("start=10.123456").start, Some(10.123456));
        assert_eq!(ok("start=10&start=20").start, Some(10.0));
        assert_eq!(ok("").start, None);
        assert_eq!(ok("other=x&md5=abc&expires=1").start, None);
        assert!(ok("client=FLASH").flash && ok("client=flash").flash);
        assert!(!ok("client=html5").flash);
        assert!(ok("json").json);
    }

    #[test]
    fn malformed_numbers_are_refused_with_a_reason() {
        for bad in [
            "start=abc",
            "start=",
            "start=-5",
            "start=+5",
            "start=10,5",
            "start=1e1",
            "start=1e999",
            "start=NaN",
            "start=inf",
            "start= 1",
            "start=.",
            "start=1.2.3",
            "end=abc",
            "start=99999999999999",
            "start",
        ] {
            let e = parse_query(bad.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("is not a number"), "{bad}: {e}");
        }
        assert!(parse_query(b"start=%zz").is_err());
        assert_eq!(percent_decode(b"a+b%2B"), Some(b"a b+".to_vec()));
        assert_eq!(
            percent_decode_path(b"/a+1%20.mp4"),
            Some(b"/a+1 .mp4".to_vec())
        );
        assert!(parse_query(b"start=\xff").is_err());
    }

    #[test]
    fn end_must_follow_start() {
        for bad in ["start=10&end=5", "start=10&end=10"] {
            let e = parse_query(bad.as_bytes()).unwrap_err();
            assert!(matches!(e, QueryError::EndNotAfterStart { .. }), "{bad}");
            assert_eq!(e.to_string().lines().count(), 1);
        }
        assert_eq!(ok("end=5").end, Some(5.0));
    }
}
