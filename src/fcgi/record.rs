//! Record headers and the encoders for records the responder sends.

use super::{
    FCGI_BEGIN_REQUEST, FCGI_HEADER_LEN, FCGI_KEEP_CONN, FCGI_PARAMS, FCGI_STDOUT, FCGI_VERSION_1,
};

/// Like httparse: running out of input is not an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    Complete(T),
    Partial,
}

/// `FCGI_Header`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub rtype: u8,
    pub request_id: u16,
    pub content_length: u16,
    pub padding_length: u8,
}

impl Header {
    /// Header, content and padding together.
    pub fn record_len(&self) -> usize {
        FCGI_HEADER_LEN + usize::from(self.content_length) + usize::from(self.padding_length)
    }

    pub fn to_bytes(&self) -> [u8; 8] {
        let id = self.request_id.to_be_bytes();
        let len = self.content_length.to_be_bytes();
        [
            self.version,
            self.rtype,
            id[0],
            id[1],
            len[0],
            len[1],
            self.padding_length,
            0,
        ]
    }
}

pub fn parse_header(input: &[u8]) -> Status<Header> {
    match input {
        [
            version,
            rtype,
            id0,
            id1,
            len0,
            len1,
            padding_length,
            _reserved,
            ..,
        ] => Status::Complete(Header {
            version: *version,
            rtype: *rtype,
            request_id: u16::from_be_bytes([*id0, *id1]),
            content_length: u16::from_be_bytes([*len0, *len1]),
            padding_length: *padding_length,
        }),
        _ => Status::Partial,
    }
}

/// Padding that aligns a record of `content` bytes to 8.
fn padding_for(content: usize) -> u8 {
    ((8 - content % 8) % 8) as u8
}

/// Appends one record. `content` must be at most 65535 bytes.
pub fn encode_record(rtype: u8, request_id: u16, content: &[u8], out: &mut Vec<u8>) {
    let len = u16::try_from(content.len()).unwrap_or(u16::MAX);
    let content = &content[..usize::from(len)];
    let padding_length = padding_for(content.len());
    let h = Header {
        version: FCGI_VERSION_1,
        rtype,
        request_id,
        content_length: len,
        padding_length,
    };
    out.extend_from_slice(&h.to_bytes());
    out.extend_from_slice(content);
    out.extend_from_slice(&[0u8; 8][..usize::from(padding_length)]);
}

/// The header and padding length of a STDOUT record of `len` bytes, for
/// writing the payload straight from another buffer (`writev`).
pub(crate) fn stdout_header(request_id: u16, len: u16) -> ([u8; 8], usize) {
    let padding_length = padding_for(usize::from(len));
    let h = Header {
        version: FCGI_VERSION_1,
        rtype: FCGI_STDOUT,
        request_id,
        content_length: len,
        padding_length,
    };
    (h.to_bytes(), usize::from(padding_length))
}

/// Client side (tests, fuzzing): `BEGIN_REQUEST`.
pub fn encode_begin_request(request_id: u16, role: u16, keep_conn: bool, out: &mut Vec<u8>) {
    let r = role.to_be_bytes();
    let flags = if keep_conn { FCGI_KEEP_CONN } else { 0 };
    encode_record(
        FCGI_BEGIN_REQUEST,
        request_id,
        &[r[0], r[1], flags, 0, 0, 0, 0, 0],
        out,
    );
}

/// Client side (tests, fuzzing): the PARAMS stream, closed by an empty record.
pub fn encode_params(pairs: &[(&[u8], &[u8])], request_id: u16, out: &mut Vec<u8>) {
    let mut stream = Vec::new();
    for (name, value) in pairs {
        super::params::encode_pair(name, value, &mut stream);
    }
    for chunk in stream.chunks(super::FCGI_MAX_CONTENT) {
        encode_record(FCGI_PARAMS, request_id, chunk, out);
    }
    encode_record(FCGI_PARAMS, request_id, &[], out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(mut b: &[u8]) -> Vec<Header> {
        let mut v = Vec::new();
        while let Status::Complete(h) = parse_header(b) {
            assert_eq!(h.record_len() % 8, 0, "records are aligned to 8");
            b = &b[h.record_len()..];
            v.push(h);
        }
        assert!(b.is_empty());
        v
    }

    #[test]
    fn params_stream_splits_into_aligned_records() {
        let big = vec![b'v'; 70_000];
        let mut out = Vec::new();
        encode_params(&[(b"A", b"1"), (b"BIG", &big)], 3, &mut out);
        let recs = records(&out);
        assert!(
            recs.iter()
                .all(|h| h.rtype == FCGI_PARAMS && h.request_id == 3)
        );
        assert_eq!(
            recs.last().map(|h| h.content_length),
            Some(0),
            "closed by an empty record"
        );
        assert!(recs.len() >= 3);
    }

    #[test]
    fn header_needs_eight_bytes() {
        assert_eq!(parse_header(&[1, 6, 0, 1, 0, 0, 0]), Status::Partial);
        let (h, pad) = stdout_header(1, 13);
        assert_eq!(pad, 3);
        assert_eq!(
            parse_header(&h),
            Status::Complete(Header {
                version: 1,
                rtype: FCGI_STDOUT,
                request_id: 1,
                content_length: 13,
                padding_length: 3
            })
        );
    }
}
