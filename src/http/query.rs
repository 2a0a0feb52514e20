//! `start`, `end`, `client`, `tracks` and `lang` from the query string.

use crate::mp4::Tracks;
use std::fmt;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Query {
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub flash: bool,
    /// `tracks=v1,a2`, `lang=fr`.
    pub tracks: Tracks,
    /// `?json`, for the status page.
    pub json: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum QueryError {
    BadEncoding {
        key: &'static str,
    },
    NotANumber {
        key: &'static str,
        value: String,
    },
    /// A `start` beyond any film.
    PastAnyEnd {
        value: String,
    },
    EndNotAfterStart {
        start: f64,
        end: f64,
    },
    UnknownClient {
        value: String,
    },
    /// `tracks=` or `lang=` that names no track, with why.
    Tracks(String),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::BadEncoding { key } => write!(f, "{key}: bad percent-encoding"),
            QueryError::NotANumber { key, value } => {
                write!(f, "{key}: '{value}' is not a number of seconds (e.g. 45.5)")
            }
            QueryError::PastAnyEnd { value } => {
                write!(f, "start {value} s is past the end of the film")
            }
            QueryError::EndNotAfterStart { start, end } => {
                write!(f, "end {end} s is not after start {start} s")
            }
            QueryError::Tracks(why) => write!(f, "{why}"),
            QueryError::UnknownClient { value } => {
                write!(
                    f,
                    "client: '{value}' is not a client this server knows (flash)"
                )
            }
        }
    }
}

impl std::error::Error for QueryError {}

/// The largest time a film may have, in seconds (about 31 years): a
/// `start` beyond it is past the end of any film, an `end` beyond it is
/// the end of the film.
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

/// Seconds as `digits[.digits]`, `.digits` or `digits.`; nothing else (no
/// sign, exponent, spaces, `inf` or `nan`). The one grammar the server and
/// `mp4-fcgi cut` share.
pub fn parse_seconds(key: &'static str, raw: &[u8]) -> Result<f64, QueryError> {
    let shown = || {
        String::from_utf8_lossy(raw)
            .chars()
            .take(40)
            .collect::<String>()
    };
    let bad = || QueryError::NotANumber {
        key,
        value: shown(),
    };
    let (int, frac) = match raw.iter().position(|&b| b == b'.') {
        Some(p) => (&raw[..p], &raw[p + 1..]),
        None => (raw, &raw[raw.len()..]),
    };
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) {
        return Err(bad());
    }
    let v: f64 = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    if v > MAX_SECONDS || !v.is_finite() {
        return match key {
            "start" => Err(QueryError::PastAnyEnd { value: shown() }),
            _ => Ok(f64::INFINITY),
        };
    }
    Ok(v)
}

/// What a window asks, as given (percent-decoded).
#[derive(Clone, Copy, Debug, Default)]
pub struct Asked<'a> {
    pub start: Option<&'a [u8]>,
    pub end: Option<&'a [u8]>,
    pub client: Option<&'a [u8]>,
    pub tracks: Option<&'a [u8]>,
    pub lang: Option<&'a [u8]>,
}

/// `start`, `end`, `client`, `tracks` and `lang` as given (percent-decoded),
/// checked together: the one grammar of the server and `mp4-fcgi cut`.
pub fn parse_window(asked: Asked<'_>) -> Result<Query, QueryError> {
    let Asked {
        start,
        end,
        client,
        tracks,
        lang,
    } = asked;
    let mut q = Query {
        start: start.map(|s| parse_seconds("start", s)).transpose()?,
        end: end.map(|e| parse_seconds("end", e)).transpose()?,
        ..Query::default()
    };
    if q.end == Some(f64::INFINITY) {
        q.end = None;
    }
    q.flash = match client {
        None => false,
        Some(c) if c.eq_ignore_ascii_case(b"flash") => true,
        Some(c) => {
            return Err(QueryError::UnknownClient {
                value: String::from_utf8_lossy(c).chars().take(40).collect(),
            });
        }
    };
    if let (Some(start), Some(end)) = (q.start, q.end)
        && end <= start
    {
        return Err(QueryError::EndNotAfterStart { start, end });
    }
    let text = |v: &[u8]| {
        String::from_utf8_lossy(v)
            .chars()
            .take(80)
            .collect::<String>()
    };
    if let Some(t) = tracks {
        q.tracks.parse_list(&text(t)).map_err(QueryError::Tracks)?;
    }
    if let Some(l) = lang {
        q.tracks.parse_lang(&text(l)).map_err(QueryError::Tracks)?;
    }
    Ok(q)
}

/// The query string: `start`, `end`, `client`, `tracks`, `lang` (the first
/// of each wins, as with nginx), `json` for the status page; other
/// parameters (cache busters, tokens) are ignored.
pub fn parse_query(raw: &[u8]) -> Result<Query, QueryError> {
    let (mut start, mut end, mut client) = (None, None, None);
    let (mut tracks, mut lang) = (None, None);
    let mut json = false;
    for pair in raw.split(|&b| b == b'&') {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(p) => (&pair[..p], Some(&pair[p + 1..])),
            None => (pair, None),
        };
        let Some(key) = percent_decode(k) else {
            continue;
        };
        let (slot, name) = match key.as_slice() {
            b"start" => (&mut start, "start"),
            b"end" => (&mut end, "end"),
            b"client" => (&mut client, "client"),
            b"tracks" => (&mut tracks, "tracks"),
            b"lang" => (&mut lang, "lang"),
            b"json" => {
                json = true;
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
    let mut q = parse_window(Asked {
        start: start.as_deref(),
        end: end.as_deref(),
        client: client.as_deref(),
        tracks: tracks.as_deref(),
        lang: lang.as_deref(),
    })?;
    q.json = json;
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Query {
        parse_query(s.as_bytes()).unwrap()
    }

    #[test]
    fn tracks_and_languages() {
        let q = ok("tracks=v1,a2&lang=fr");
        assert_eq!(
            (q.tracks.video, q.tracks.audio, q.tracks.lang),
            (1, 2, Some(*b"fra"))
        );
        assert_eq!(ok("tracks=v1-a1").tracks, ok("tracks=v1%2Ca1").tracks);
        for bad in ["tracks=x9", "tracks=", "lang=zz", "lang=fr-CA"] {
            assert!(
                matches!(parse_query(bad.as_bytes()), Err(QueryError::Tracks(_))),
                "{bad}"
            );
        }
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
            "start",
            "start=-inf",
            "start=0x10",
        ] {
            let e = parse_query(bad.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("is not a number"), "{bad}: {e}");
        }
        for far in ["start=99999999999999", "start=99999999999999999999999"] {
            let e = parse_query(far.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("past the end"), "{far}: {e}");
        }
        assert_eq!(
            ok("end=99999999999999999999999").end,
            None,
            "the end of the film"
        );
        let e = parse_query(b"client=ios").unwrap_err();
        assert!(e.to_string().starts_with("client: 'ios'"), "{e}");
        assert_eq!(ok("start=5&cb=123&_=999").start, Some(5.0));
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
