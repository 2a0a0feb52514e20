//! The atoms of movie fragments: `trex` and `mehd` in the `moov`'s `mvex`,
//! and `tfhd`, `tfdt`, `trun` in each `moof`'s `traf`.

use super::mvhd::Field;
use crate::mp4::Error;
use crate::mp4::boxes::Reader;

/// `trex`: a track's default sample duration in fragments.
pub fn read_trex(body: &[u8]) -> Result<(u32, u32), Error> {
    let mut r = Reader::new(body, *b"trex");
    r.full_box()?;
    let id = r.u32()?;
    r.skip(4)?;
    Ok((id, r.u32()?))
}

/// `mehd`: where the fragmented movie's duration lies.
pub fn read_mehd(body: &[u8]) -> Result<Field, Error> {
    let mut r = Reader::new(body, *b"mehd");
    let (version, _) = r.full_box()?;
    let wide = version == 1;
    r.skip(if wide { 8 } else { 4 })?;
    Ok(Field { at: 4, wide })
}

/// `tfhd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tfhd {
    pub track_id: u32,
    /// An absolute `base_data_offset`: its position in the body, and value.
    pub base_data_offset: Option<(usize, u64)>,
    pub default_duration: Option<u32>,
}

pub fn read_tfhd(body: &[u8]) -> Result<Tfhd, Error> {
    let mut r = Reader::new(body, *b"tfhd");
    let (_, flags) = r.full_box()?;
    let track_id = r.u32()?;
    let base_data_offset = if flags & 0x01 != 0 {
        Some((8, r.u64()?))
    } else {
        None
    };
    if flags & 0x02 != 0 {
        r.skip(4)?;
    }
    let default_duration = if flags & 0x08 != 0 {
        Some(r.u32()?)
    } else {
        None
    };
    Ok(Tfhd {
        track_id,
        base_data_offset,
        default_duration,
    })
}

/// `tfdt`: the decode time of a fragment's first sample, and its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tfdt {
    pub time: u64,
    pub field: Field,
}

pub fn read_tfdt(body: &[u8]) -> Result<Tfdt, Error> {
    let mut r = Reader::new(body, *b"tfdt");
    let (version, _) = r.full_box()?;
    let wide = version == 1;
    let time = if wide { r.u64()? } else { u64::from(r.u32()?) };
    Ok(Tfdt {
        time,
        field: Field { at: 4, wide },
    })
}

/// `trun`: the total duration of its samples.
pub fn trun_duration(body: &[u8], default_duration: u64) -> Result<u64, Error> {
    let mut r = Reader::new(body, *b"trun");
    let (_, flags) = r.full_box()?;
    let n = r.u32()?;
    if flags & 0x01 != 0 {
        r.skip(4)?;
    }
    if flags & 0x04 != 0 {
        r.skip(4)?;
    }
    let per_sample = [0x100u32, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count()
        * 4;
    if flags & 0x100 == 0 {
        return Ok(u64::from(n).saturating_mul(default_duration));
    }
    if (n as usize)
        .checked_mul(per_sample)
        .is_none_or(|need| need > r.remaining())
    {
        return Err(Error::Invalid {
            fourcc: *b"trun",
            reason: "sample count exceeds the box size",
        });
    }
    let mut total = 0u64;
    for _ in 0..n {
        total = total.saturating_add(u64::from(r.u32()?));
        r.skip(per_sample - 4)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tfhd_fields_follow_the_flags() {
        let mut b = vec![0, 0, 0, 0x09];
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(&77u64.to_be_bytes());
        b.extend_from_slice(&1024u32.to_be_bytes());
        let t = read_tfhd(&b).unwrap();
        assert_eq!(t.track_id, 3);
        assert_eq!(t.base_data_offset, Some((8, 77)));
        assert_eq!(t.default_duration, Some(1024));
        assert!(read_tfhd(&b[..10]).is_err());
    }

    #[test]
    fn trun_durations() {
        // Two samples with explicit durations and sizes.
        let mut b = vec![0, 0, 0x03, 0];
        b.extend_from_slice(&2u32.to_be_bytes());
        for (d, s) in [(512u32, 10u32), (1024, 20)] {
            b.extend_from_slice(&d.to_be_bytes());
            b.extend_from_slice(&s.to_be_bytes());
        }
        assert_eq!(trun_duration(&b, 0).unwrap(), 1536);
        let mut lying = b.clone();
        lying[7] = 200;
        assert!(trun_duration(&lying, 0).is_err());
        let defaults = [0, 0, 0, 0, 0, 0, 0, 5];
        assert_eq!(trun_duration(&defaults, 100).unwrap(), 500);
    }
}
