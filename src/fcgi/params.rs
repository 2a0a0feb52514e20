//! Name-value pairs (FastCGI 1.0 §3.4), kept as bytes: params may be
//! non-UTF-8 and must not be lost.

use std::ops::Range;

/// The PARAMS of one request: one owned buffer, names and values as ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    buf: Vec<u8>,
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

/// Reads a 1- or 4-byte length at `pos`.
fn read_len(buf: &[u8], pos: &mut usize) -> Option<usize> {
    let first = *buf.get(*pos)?;
    if first & 0x80 == 0 {
        *pos += 1;
        return Some(usize::from(first));
    }
    let b = buf.get(*pos..*pos + 4)?;
    *pos += 4;
    Some((u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]])) as usize)
}

/// Appends one pair with the shortest length encodings.
pub fn encode_pair(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    for len in [name.len(), value.len()] {
        if len < 128 {
            out.push(len as u8);
        } else {
            out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
        }
    }
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

impl Params {
    /// Parses a complete PARAMS stream. `None` when a pair runs past the end.
    pub fn parse(buf: Vec<u8>) -> Option<Params> {
        let mut pairs = Vec::new();
        let mut pos = 0;
        while pos < buf.len() {
            let nl = read_len(&buf, &mut pos)?;
            let vl = read_len(&buf, &mut pos)?;
            let name_end = pos.checked_add(nl)?;
            let value_end = name_end.checked_add(vl)?;
            if value_end > buf.len() {
                return None;
            }
            pairs.push((pos..name_end, name_end..value_end));
            pos = value_end;
        }
        Some(Params { buf, pairs })
    }

    /// Builds params from pairs (tests, the development HTTP listener).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Params {
        let mut buf = Vec::new();
        for (n, v) in pairs {
            encode_pair(n, v, &mut buf);
        }
        Params::parse(buf).unwrap_or_default()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs
            .iter()
            .filter_map(|(n, v)| Some((self.buf.get(n.clone())?, self.buf.get(v.clone())?)))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths_roundtrip() {
        let long = vec![b'x'; 300];
        let p = Params::from_pairs([
            (&b"SCRIPT_FILENAME"[..], &b"/m/a.mp4"[..]),
            (&b"LONG"[..], &long[..]),
            (&b"BIN\xff"[..], &b"\xfe\x00\x80"[..]),
            (&b"EMPTY"[..], &b""[..]),
        ]);
        assert_eq!(p.len(), 4);
        assert_eq!(p.get(b"SCRIPT_FILENAME"), Some(&b"/m/a.mp4"[..]));
        assert_eq!(p.get(b"LONG").map(<[u8]>::len), Some(300));
        assert_eq!(p.get(b"BIN\xff"), Some(&b"\xfe\x00\x80"[..]));
        assert_eq!(p.get(b"EMPTY"), Some(&b""[..]));
        assert_eq!(p.get(b"MISSING"), None);
    }

    #[test]
    fn truncated_pairs_are_rejected() {
        assert!(Params::parse(vec![5, 1, b'a']).is_none());
        assert!(Params::parse(vec![0x80, 0, 0]).is_none());
        assert!(Params::parse(vec![0xff, 0xff, 0xff, 0xff, 0, b'a']).is_none());
        assert_eq!(Params::parse(vec![]).map(|p| p.len()), Some(0));
    }
}
