//! Movie header (`mvhd`): the movie timescale and duration.

use crate::mp4::Error;
use crate::mp4::boxes::Reader;

/// Timescale and duration, and where the duration field lies in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub timescale: u32,
    pub duration: u64,
    pub duration_field: Field,
}

/// A duration field's position within a box body and its width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub at: usize,
    pub wide: bool,
}

impl Field {
    /// Writes `value` into `body` (a copy of the box body), saturating a
    /// 32-bit field.
    pub fn patch(&self, body: &mut [u8], value: u64) {
        if self.wide {
            if let Some(dst) = body.get_mut(self.at..self.at + 8) {
                dst.copy_from_slice(&value.to_be_bytes());
            }
        } else if let Some(dst) = body.get_mut(self.at..self.at + 4) {
            dst.copy_from_slice(&u32::try_from(value).unwrap_or(u32::MAX).to_be_bytes());
        }
    }
}

/// `mvhd` and `mdhd` share their layout up to the duration.
pub(crate) fn read_times(body: &[u8], fourcc: [u8; 4]) -> Result<Header, Error> {
    let mut r = Reader::new(body, fourcc);
    let (version, _) = r.full_box()?;
    if version == 1 {
        r.skip(16)?;
        let timescale = r.u32()?;
        let duration = r.u64()?;
        Ok(Header {
            timescale,
            duration,
            duration_field: Field { at: 24, wide: true },
        })
    } else {
        r.skip(8)?;
        let timescale = r.u32()?;
        let duration = u64::from(r.u32()?);
        Ok(Header {
            timescale,
            duration,
            duration_field: Field {
                at: 16,
                wide: false,
            },
        })
    }
}

pub fn read(body: &[u8]) -> Result<Header, Error> {
    let h = read_times(body, *b"mvhd")?;
    if h.timescale == 0 {
        return Err(Error::Invalid {
            fourcc: *b"mvhd",
            reason: "timescale is 0",
        });
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions() {
        let mut v0 = vec![0u8; 100];
        v0[12..16].copy_from_slice(&1000u32.to_be_bytes());
        v0[16..20].copy_from_slice(&5000u32.to_be_bytes());
        let h = read(&v0).unwrap();
        assert_eq!((h.timescale, h.duration), (1000, 5000));
        let mut v1 = vec![0u8; 112];
        v1[0] = 1;
        v1[20..24].copy_from_slice(&90000u32.to_be_bytes());
        v1[24..32].copy_from_slice(&(1u64 << 40).to_be_bytes());
        let h = read(&v1).unwrap();
        assert_eq!((h.timescale, h.duration), (90000, 1 << 40));
        let mut body = v1.clone();
        h.duration_field.patch(&mut body, 7);
        assert_eq!(read(&body).unwrap().duration, 7);
        assert!(read(&[0u8; 100]).is_err(), "timescale 0");
        assert!(read(&v0[..10]).is_err());
    }
}
