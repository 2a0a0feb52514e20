//! Bounds-checked box headers (ISO/IEC 14496-12 §4.2) and a child iterator.
//!
//! A child can never claim bytes past its parent: every size is checked
//! against what remains, so a hostile size ends the walk with an error
//! instead of a panic, a huge allocation or an endless loop.

use super::{Error, ReadAt};
use std::ops::Range;

pub type FourCC = [u8; 4];

/// A parsed box header.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxHeader {
    pub fourcc: FourCC,
    /// Header length: 8, 16 (64-bit size), plus 16 for a `uuid` usertype.
    pub header_len: u64,
    /// Whole box length, header included.
    pub size: u64,
}

/// Parses a header from `data`, given the bytes that remain in the parent
/// (`remaining`, counted from the header's first byte).
///
/// Size 0 means "to the end of the parent" (the file, at top level).
pub fn parse_header(data: &[u8], remaining: u64, offset: u64) -> Result<BoxHeader, Error> {
    let truncated = |fourcc| Error::Truncated { fourcc, offset };
    let head = data.get(..8).ok_or(truncated(*b"    "))?;
    let fourcc = [head[4], head[5], head[6], head[7]];
    let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let (mut header_len, size) = match size32 {
        0 => (8u64, remaining),
        1 => {
            let wide = data.get(8..16).ok_or(truncated(fourcc))?;
            let mut b = [0u8; 8];
            b.copy_from_slice(wide);
            (16, u64::from_be_bytes(b))
        }
        n => (8, u64::from(n)),
    };
    if &fourcc == b"uuid" {
        header_len += 16;
    }
    if size < header_len {
        return Err(Error::Invalid {
            fourcc,
            reason: "box size is smaller than its header",
        });
    }
    if size > remaining {
        return Err(truncated(fourcc));
    }
    Ok(BoxHeader {
        fourcc,
        header_len,
        size,
    })
}

/// A box inside an in-memory buffer.
#[derive(Clone, Copy, Debug)]
pub struct RawBox<'a> {
    pub fourcc: FourCC,
    /// The whole box, header included.
    pub bytes: &'a [u8],
    /// The box's content after its header.
    pub body: &'a [u8],
    /// Position of the box within the buffer the iteration started from.
    pub start: usize,
}

impl<'a> RawBox<'a> {
    pub fn range(&self) -> Range<usize> {
        self.start..self.start + self.bytes.len()
    }

    /// Where the body starts, in the buffer the iteration started from.
    pub fn body_start(&self) -> usize {
        self.start + (self.bytes.len() - self.body.len())
    }

    /// The children of this container, positioned in the same buffer.
    pub fn children(&self) -> Children<'a> {
        children(self.body, self.body_start())
    }
}

/// Iterates the children of a container body held in memory.
pub struct Children<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    failed: bool,
}

/// The children of `body`, which starts at `base` in the caller's buffer.
pub fn children(body: &[u8], base: usize) -> Children<'_> {
    Children {
        data: body,
        pos: 0,
        base,
        failed: false,
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<RawBox<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.data.get(self.pos..)?;
        // Fewer than 8 bytes left is trailing padding some muxers write.
        if rest.len() < 8 {
            return None;
        }
        let h = match parse_header(rest, rest.len() as u64, (self.base + self.pos) as u64) {
            Ok(h) => h,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        // Both values are bounded by rest.len(), which is a usize.
        let (hl, size) = (h.header_len as usize, h.size as usize);
        let start = self.base + self.pos;
        self.pos += size;
        Some(Ok(RawBox {
            fourcc: h.fourcc,
            bytes: &rest[..size],
            body: &rest[hl..size],
            start,
        }))
    }
}

/// Finds the first child `fourcc` of a container body.
pub fn find<'a>(body: &'a [u8], base: usize, fourcc: &FourCC) -> Result<Option<RawBox<'a>>, Error> {
    for child in children(body, base) {
        let child = child?;
        if &child.fourcc == fourcc {
            return Ok(Some(child));
        }
    }
    Ok(None)
}

/// A box at the top level of the file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TopBox {
    pub fourcc: FourCC,
    pub offset: u64,
    pub header_len: u64,
    pub size: u64,
}

impl TopBox {
    pub fn end(&self) -> u64 {
        self.offset + self.size
    }
}

/// Most top-level boxes a file may have (fragmented files have two per fragment).
const MAX_TOP_BOXES: usize = 1 << 20;

/// Lists the top-level boxes of a file, reading only their headers.
pub fn scan_top(src: &dyn ReadAt, file_size: u64) -> Result<Vec<TopBox>, Error> {
    let mut boxes = Vec::new();
    let mut pos = 0u64;
    let mut head = [0u8; 32];
    while pos < file_size {
        let remaining = file_size - pos;
        if remaining < 8 {
            // A few stray bytes after the last box: ignore them.
            break;
        }
        let want = usize::try_from(remaining.min(32)).unwrap_or(32);
        src.read_exact_at(&mut head[..want], pos)?;
        let h = match parse_header(&head[..want], remaining, pos) {
            Ok(h) => h,
            Err(_) if boxes.is_empty() => {
                return Err(Error::NotMp4("it does not start with a box"));
            }
            Err(e) => return Err(e),
        };
        if boxes.is_empty()
            && !h
                .fourcc
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b' ')
        {
            return Err(Error::NotMp4("the first box has no readable type"));
        }
        if boxes.len() >= MAX_TOP_BOXES {
            return Err(Error::Unsupported(format!(
                "more than {MAX_TOP_BOXES} top-level boxes"
            )));
        }
        boxes.push(TopBox {
            fourcc: h.fourcc,
            offset: pos,
            header_len: h.header_len,
            size: h.size,
        });
        pos += h.size;
    }
    if boxes.is_empty() {
        return Err(Error::NotMp4("the file is empty"));
    }
    Ok(boxes)
}

/// Writes a box header for a box of `size` bytes (header included), choosing
/// the 64-bit form when the size needs it.
pub fn write_header(out: &mut Vec<u8>, fourcc: &FourCC, size: u64) {
    if let Ok(s) = u32::try_from(size) {
        out.extend_from_slice(&s.to_be_bytes());
        out.extend_from_slice(fourcc);
    } else {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(fourcc);
        out.extend_from_slice(&size.to_be_bytes());
    }
}

/// Starts a box whose size is patched by [`end_box`].
pub fn begin_box(out: &mut Vec<u8>, fourcc: &FourCC) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(fourcc);
    at
}

/// Patches the size of a box begun at `at`, for the small boxes the engine
/// writes whole (`edts`, the table heads); the `moov` writer sizes its
/// containers itself and refuses what a 32-bit size cannot say.
pub fn end_box(out: &mut [u8], at: usize) {
    let size = u32::try_from(out.len() - at).unwrap_or(u32::MAX);
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
}

/// Big-endian readers over a body, each bounds-checked.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    fourcc: FourCC,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], fourcc: FourCC) -> Self {
        Reader {
            data,
            pos: 0,
            fourcc,
        }
    }
    fn short(&self) -> Error {
        Error::Invalid {
            fourcc: self.fourcc,
            reason: "box is shorter than its fields",
        }
    }
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.short())?;
        let b = self.data.get(self.pos..end).ok_or_else(|| self.short())?;
        self.pos = end;
        Ok(b)
    }
    pub fn skip(&mut self, n: usize) -> Result<(), Error> {
        self.bytes(n).map(|_| ())
    }
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.bytes(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, Error> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> Result<u64, Error> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    /// Version and flags of a full box.
    pub fn full_box(&mut self) -> Result<(u8, u32), Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
    /// Reads an entry count and checks `count × entry_size` fits in what remains,
    /// before anything is allocated from it.
    pub fn count(&mut self, entry_size: usize) -> Result<usize, Error> {
        let n = self.u32()? as usize;
        let need = n.checked_mul(entry_size).ok_or_else(|| self.short())?;
        if need > self.remaining() {
            return Err(Error::Invalid {
                fourcc: self.fourcc,
                reason: "entry count exceeds the box size",
            });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_forms() {
        let b = [0, 0, 0, 16, b'f', b'r', b'e', b'e'];
        let h = parse_header(&b, 100, 0).unwrap();
        assert_eq!((h.header_len, h.size), (8, 16));
        let mut w = vec![0, 0, 0, 1, b'm', b'd', b'a', b't'];
        w.extend_from_slice(&(5u64 << 30).to_be_bytes());
        let h = parse_header(&w, 6 << 30, 0).unwrap();
        assert_eq!((h.header_len, h.size), (16, 5 << 30));
        let z = [0, 0, 0, 0, b'm', b'd', b'a', b't'];
        assert_eq!(parse_header(&z, 77, 0).unwrap().size, 77);
    }

    #[test]
    fn header_errors() {
        let small = [0, 0, 0, 4, b'f', b'r', b'e', b'e'];
        assert!(matches!(
            parse_header(&small, 100, 0),
            Err(Error::Invalid { .. })
        ));
        let big = [0, 0, 0, 200, b'f', b'r', b'e', b'e'];
        assert!(matches!(
            parse_header(&big, 100, 0),
            Err(Error::Truncated { .. })
        ));
        assert!(parse_header(&big[..5], 100, 0).is_err());
        let wide = [0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0];
        assert!(parse_header(&wide, 100, 0).is_err());
    }

    #[test]
    fn zero_size_child_ends_the_walk() {
        // A zero-size child extends to the end of its parent: one child, no loop.
        let mut body = vec![0, 0, 0, 0, b'a', b'b', b'c', b'd'];
        body.extend_from_slice(&[1, 2, 3, 4]);
        let kids: Vec<_> = children(&body, 0).collect();
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].as_ref().unwrap().body, &[1, 2, 3, 4]);
    }

    #[test]
    fn count_checks_against_remaining() {
        let data = [0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2];
        let mut r = Reader::new(&data, *b"stco");
        assert!(r.count(4).is_err());
        let mut r = Reader::new(&data, *b"stco");
        assert_eq!(r.count(2).unwrap(), 3);
        let huge = [0xff, 0xff, 0xff, 0xff];
        assert!(Reader::new(&huge, *b"stsz").count(8).is_err());
    }
}
