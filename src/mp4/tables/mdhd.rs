//! Media header (`mdhd`): a track's timescale, duration and language.

use super::mvhd::{Field, read_times};
use crate::mp4::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub timescale: u32,
    pub duration: u64,
    pub duration_field: Field,
    /// ISO 639-2/T code, e.g. `*b"eng"`; `None` for "und" or unreadable.
    pub language: Option<[u8; 3]>,
}

pub fn read(body: &[u8]) -> Result<Header, Error> {
    let h = read_times(body, *b"mdhd")?;
    if h.timescale == 0 {
        return Err(Error::Invalid {
            fourcc: *b"mdhd",
            reason: "timescale is 0",
        });
    }
    // The packed language follows the duration.
    let at = h.duration_field.at + if h.duration_field.wide { 8 } else { 4 };
    let language = body
        .get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .map(|p| [(p >> 10) & 31, (p >> 5) & 31, p & 31].map(|c| (c as u8).wrapping_add(0x60)))
        .filter(|l| l.iter().all(u8::is_ascii_lowercase) && l != b"und");
    Ok(Header {
        timescale: h.timescale,
        duration: h.duration,
        duration_field: h.duration_field,
        language,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_is_unpacked() {
        let mut b = vec![0u8; 24];
        b[12..16].copy_from_slice(&48000u32.to_be_bytes());
        // "eng": e=5, n=14, g=7.
        let packed: u16 = (5 << 10) | (14 << 5) | 7;
        b[20..22].copy_from_slice(&packed.to_be_bytes());
        let h = read(&b).unwrap();
        assert_eq!((h.timescale, h.language), (48000, Some(*b"eng")));
        let und: u16 = (21 << 10) | (14 << 5) | 4;
        b[20..22].copy_from_slice(&und.to_be_bytes());
        assert_eq!(read(&b).unwrap().language, None);
    }
}
