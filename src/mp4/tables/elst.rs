//! Edit list (`elst`): maps the presentation timeline onto media time.

use super::{put_full, put_u32, put_u64};
use crate::mp4::Error;
use crate::mp4::boxes::{Reader, begin_box, end_box, find};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Edit {
    /// In the movie timescale.
    pub segment_duration: u64,
    /// In the media timescale; -1 is an empty edit.
    pub media_time: i64,
    /// 16.16 fixed point (0x0001_0000 is normal speed).
    pub media_rate: u32,
}

/// Normal speed.
pub const RATE_1: u32 = 0x0001_0000;

pub fn read(body: &[u8]) -> Result<Vec<Edit>, Error> {
    let mut r = Reader::new(body, *b"elst");
    let (version, _) = r.full_box()?;
    let n = r.count(if version == 1 { 20 } else { 12 })?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let (segment_duration, media_time) = if version == 1 {
            (r.u64()?, r.u64()? as i64)
        } else {
            (u64::from(r.u32()?), i64::from(r.u32()? as i32))
        };
        v.push(Edit {
            segment_duration,
            media_time,
            media_rate: r.u32()?,
        });
    }
    Ok(v)
}

/// A track's source edit list, reduced to what the timeline needs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TrackEdit {
    /// Leading empty edits, in the movie timescale.
    pub empty: u64,
    /// Media time shown at the end of the empty edits (B-frame delay, AAC priming).
    pub media_time: i64,
    /// Duration of the first media edit in the movie timescale; 0: to the end.
    pub segment: u64,
}

/// Reduces the `elst` inside an `edts` body.
pub fn read_track_edit(edts: &[u8]) -> Result<TrackEdit, Error> {
    let mut edit = TrackEdit::default();
    let Some(elst) = find(edts, 0, b"elst")? else {
        return Ok(edit);
    };
    for e in read(elst.body)? {
        if e.media_time == -1 {
            edit.empty = edit.empty.saturating_add(e.segment_duration);
            continue;
        }
        if e.media_time < 0 {
            return Err(Error::Invalid {
                fourcc: *b"elst",
                reason: "negative media_time other than -1",
            });
        }
        edit.media_time = e.media_time;
        edit.segment = e.segment_duration;
        // Later edits (repeats, slow motion) are rare; the timeline follows
        // the first media edit.
        break;
    }
    Ok(edit)
}

/// Writes `edts` holding one `elst`, in version 0 when every value fits.
pub fn write_edts(out: &mut Vec<u8>, edits: &[Edit]) {
    let wide = edits.iter().any(|e| {
        u32::try_from(e.segment_duration).is_err() || i32::try_from(e.media_time).is_err()
    });
    let edts = begin_box(out, b"edts");
    let elst = begin_box(out, b"elst");
    put_full(out, u8::from(wide), 0);
    put_u32(out, edits.len() as u32);
    for e in edits {
        if wide {
            put_u64(out, e.segment_duration);
            put_u64(out, e.media_time as u64);
        } else {
            put_u32(out, e.segment_duration as u32);
            put_u32(out, e.media_time as i32 as u32);
        }
        put_u32(out, e.media_rate);
    }
    end_box(out, elst);
    end_box(out, edts);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_reduce() {
        let edits = [
            Edit {
                segment_duration: 40,
                media_time: -1,
                media_rate: RATE_1,
            },
            Edit {
                segment_duration: 1000,
                media_time: 1024,
                media_rate: RATE_1,
            },
        ];
        let mut out = Vec::new();
        write_edts(&mut out, &edits);
        let edts = crate::mp4::boxes::children(&out, 0)
            .next()
            .unwrap()
            .unwrap();
        let e = read_track_edit(edts.body).unwrap();
        assert_eq!(
            e,
            TrackEdit {
                empty: 40,
                media_time: 1024,
                segment: 1000
            }
        );
    }
}
