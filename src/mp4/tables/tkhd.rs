//! Track header (`tkhd`): the track id and where its duration lies.

use super::mvhd::Field;
use crate::mp4::Error;
use crate::mp4::boxes::Reader;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub track_id: u32,
    pub duration_field: Field,
}

pub fn read(body: &[u8]) -> Result<Header, Error> {
    let mut r = Reader::new(body, *b"tkhd");
    let (version, _) = r.full_box()?;
    let wide = version == 1;
    r.skip(if wide { 16 } else { 8 })?;
    let track_id = r.u32()?;
    r.skip(4)?;
    // The duration must be there for a later patch to land.
    r.skip(if wide { 8 } else { 4 })?;
    Ok(Header {
        track_id,
        duration_field: Field {
            at: if wide { 28 } else { 20 },
            wide,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_and_duration_field() {
        let mut b = vec![0u8; 84];
        b[12..16].copy_from_slice(&7u32.to_be_bytes());
        let h = read(&b).unwrap();
        assert_eq!(h.track_id, 7);
        assert_eq!(
            h.duration_field,
            Field {
                at: 20,
                wide: false
            }
        );
        assert!(read(&b[..20]).is_err());
    }
}
