//! Record headers and the encoders for records the responder sends.

use super::{
    FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_HEADER_LEN, FCGI_KEEP_CONN, FCGI_PARAMS,
    FCGI_STDOUT, FCGI_VERSION_1,
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

/// Largest STDOUT content we put in one record: a multiple of 8, so records
/// need no padding.
pub const STDOUT_CHUNK: usize = 65528;

/// Appends `data` as STDOUT records (none for empty data: an empty STDOUT
/// record would end the stream).
pub fn encode_stdout(request_id: u16, data: &[u8], out: &mut Vec<u8>) {
    for chunk in data.chunks(STDOUT_CHUNK) {
        encode_record(FCGI_STDOUT, request_id, chunk, out);
    }
}

/// The header and padding length of a STDOUT record of `len` bytes, for
/// writing the payload straight from another buffer (`writev`).
pub fn stdout_header(request_id: u16, len: u16) -> ([u8; 8], usize) {
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

/// Ends a request: the empty STDOUT record, then `END_REQUEST`.
pub fn encode_end_request(
    request_id: u16,
    app_status: u32,
    protocol_status: u8,
    out: &mut Vec<u8>,
) {
    encode_record(FCGI_STDOUT, request_id, &[], out);
    let mut body = [0u8; 8];
    body[..4].copy_from_slice(&app_status.to_be_bytes());
    body[4] = protocol_status;
    encode_record(FCGI_END_REQUEST, request_id, &body, out);
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
    fn stdout_splits_and_pads() {
        for n in [0usize, 1, 8, 65535, 65536, 200_000] {
            let mut out = Vec::new();
            encode_stdout(7, &vec![0xab; n], &mut out);
            let recs = records(&out);
            let total: usize = recs.iter().map(|h| usize::from(h.content_length)).sum();
            assert_eq!(total, n);
            assert!(
                recs.iter()
                    .all(|h| h.rtype == FCGI_STDOUT && h.request_id == 7)
            );
            assert!(recs.iter().all(|h| h.content_length > 0));
        }
    }

    #[test]
    fn end_request_closes_stdout_first() {
        let mut out = Vec::new();
        encode_end_request(3, 0, 0, &mut out);
        let recs = records(&out);
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].rtype, recs[0].content_length), (FCGI_STDOUT, 0));
        assert_eq!(
            (recs[1].rtype, recs[1].content_length),
            (FCGI_END_REQUEST, 8)
        );
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
