//! Fragmented MP4 (`moof` + `mdat` pairs): a window is served at fragment
//! granularity as `ftyp` + the init `moov` + the fragments that cover it.
//!
//! Fragments are copied verbatim except for absolute `tfhd`
//! `base_data_offset` fields, which are re-pointed at the fragment's new
//! position by small patches in the layout.

use super::boxes::{Reader, TopBox, children};
use super::index::{Index, read_edit};
use super::{Error, Layout, Part, ReadAt, Window};
use bytes::Bytes;

/// The fragments of a file, timed on its reference track.
#[derive(Debug)]
pub(crate) struct Fragments {
    pub list: Vec<Fragment>,
    timescale: u32,
    media_time: i64,
}

#[derive(Debug)]
pub(crate) struct Fragment {
    /// From the `moof` to the end of its media boxes.
    pub offset: u64,
    pub end: u64,
    /// Decode time and duration on the reference track (media timescale).
    pub start: u64,
    pub duration: u64,
    /// Absolute `base_data_offset` fields: (file offset, value).
    pub patches: Vec<(u64, u64)>,
}

/// Per-track defaults the init `moov` gives fragments.
struct TrackDefaults {
    id: u32,
    timescale: u32,
    is_video: bool,
    default_duration: u32,
    media_time: i64,
}

fn init_tracks(index: &Index) -> Result<Vec<TrackDefaults>, Error> {
    let moov = &index.moov[..];
    let hl = index.moov_box.header_len as usize;
    let mut tracks = Vec::new();
    let mut trex = Vec::new();
    for b in children(moov.get(hl..).unwrap_or(&[]), hl) {
        let b = b?;
        match &b.fourcc {
            b"trak" => {
                let (mut id, mut ts, mut video, mut media_time) = (0, 0, false, 0);
                for c in children(b.body, 0) {
                    let c = c?;
                    match &c.fourcc {
                        b"tkhd" => {
                            let mut r = Reader::new(c.body, *b"tkhd");
                            let (v, _) = r.full_box()?;
                            r.skip(if v == 1 { 16 } else { 8 })?;
                            id = r.u32()?;
                        }
                        b"edts" => media_time = read_edit(c.body)?.media_time,
                        b"mdia" => {
                            for m in children(c.body, 0) {
                                let m = m?;
                                let mut r = Reader::new(m.body, m.fourcc);
                                match &m.fourcc {
                                    b"mdhd" => {
                                        let (v, _) = r.full_box()?;
                                        r.skip(if v == 1 { 16 } else { 8 })?;
                                        ts = r.u32()?;
                                    }
                                    b"hdlr" => video = r.bytes(12)?.get(8..12) == Some(b"vide"),
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                }
                tracks.push(TrackDefaults {
                    id,
                    timescale: ts,
                    is_video: video,
                    default_duration: 0,
                    media_time,
                });
            }
            b"mvex" => {
                for c in children(b.body, 0) {
                    let c = c?;
                    if &c.fourcc == b"trex" {
                        let mut r = Reader::new(c.body, *b"trex");
                        r.full_box()?;
                        let id = r.u32()?;
                        r.skip(4)?;
                        trex.push((id, r.u32()?));
                    }
                }
            }
            _ => {}
        }
    }
    for (id, d) in trex {
        if let Some(t) = tracks.iter_mut().find(|t| t.id == id) {
            t.default_duration = d;
        }
    }
    Ok(tracks)
}

/// What one `traf` of the reference track says.
struct TrafTiming {
    decode_time: Option<u64>,
    duration: u64,
}

fn read_traf(traf: &[u8], reference: &TrackDefaults) -> Result<Option<TrafTiming>, Error> {
    let mut default_duration = u64::from(reference.default_duration);
    let mut timing = TrafTiming {
        decode_time: None,
        duration: 0,
    };
    for b in children(traf, 0) {
        let b = b?;
        let mut r = Reader::new(b.body, b.fourcc);
        match &b.fourcc {
            b"tfhd" => {
                let (_, flags) = r.full_box()?;
                if r.u32()? != reference.id {
                    return Ok(None);
                }
                if flags & 0x01 != 0 {
                    r.skip(8)?;
                }
                if flags & 0x02 != 0 {
                    r.skip(4)?;
                }
                if flags & 0x08 != 0 {
                    default_duration = u64::from(r.u32()?);
                }
            }
            b"tfdt" => {
                let (v, _) = r.full_box()?;
                timing.decode_time = Some(if v == 1 {
                    r.u64()?
                } else {
                    u64::from(r.u32()?)
                });
            }
            b"trun" => {
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
                    timing.duration = timing
                        .duration
                        .saturating_add(u64::from(n).saturating_mul(default_duration));
                    continue;
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
                for _ in 0..n {
                    timing.duration = timing.duration.saturating_add(u64::from(r.u32()?));
                    r.skip(per_sample - 4)?;
                }
            }
            _ => {}
        }
    }
    Ok(Some(timing))
}

impl Fragments {
    /// Lists the fragments, or `None` for a file without `moof`.
    pub fn scan(
        index: &Index,
        src: &dyn ReadAt,
        max_moof: u64,
    ) -> Result<Option<Fragments>, Error> {
        if !index.top.iter().any(|b| &b.fourcc == b"moof") {
            return Ok(None);
        }
        let tracks = init_tracks(index)?;
        let reference = tracks
            .iter()
            .find(|t| t.is_video)
            .or(tracks.first())
            .ok_or(Error::Invalid {
                fourcc: *b"moov",
                reason: "fragmented file without tracks",
            })?;
        if reference.timescale == 0 {
            return Err(Error::Invalid {
                fourcc: *b"mdhd",
                reason: "timescale is 0",
            });
        }
        let mut list: Vec<Fragment> = Vec::new();
        let mut buf = Vec::new();
        let mut next_time = 0u64;
        let top = &index.top;
        for (i, b) in top.iter().enumerate() {
            if &b.fourcc != b"moof" {
                continue;
            }
            if b.size > max_moof {
                return Err(Error::MoovTooLarge {
                    size: b.size,
                    limit: max_moof,
                });
            }
            // Bounded by max_moof just above.
            buf.resize(b.size as usize, 0);
            src.read_exact_at(&mut buf, b.offset)?;
            let hl = b.header_len as usize;
            let mut patches = Vec::new();
            let mut timing = None;
            for traf in children(buf.get(hl..).unwrap_or(&[]), hl) {
                let traf = traf?;
                if &traf.fourcc != b"traf" {
                    continue;
                }
                let base = traf.start + (traf.bytes.len() - traf.body.len());
                timing = timing.or(read_traf(traf.body, reference)?);
                patches.extend(absolute_offsets(traf.body, b.offset, base)?);
            }
            let (start, duration) = match timing {
                Some(t) => (t.decode_time.unwrap_or(next_time), t.duration),
                None => (next_time, 0),
            };
            next_time = start.saturating_add(duration);
            list.push(Fragment {
                offset: b.offset,
                end: fragment_end(top, i),
                start,
                duration,
                patches,
            });
        }
        Ok(Some(Fragments {
            list,
            timescale: reference.timescale,
            media_time: reference.media_time,
        }))
    }

    fn seconds(&self, t: u64) -> f64 {
        (t as f64 - self.media_time as f64) / f64::from(self.timescale)
    }

    pub fn duration(&self) -> f64 {
        self.list
            .iter()
            .map(|f| self.seconds(f.start.saturating_add(f.duration)))
            .fold(0.0, f64::max)
    }

    pub fn heap_bytes(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<Fragment>()
            + self
                .list
                .iter()
                .map(|f| f.patches.capacity() * 16)
                .sum::<usize>()
    }

    pub fn plan(&self, index: &Index, window: &Window) -> Result<Layout, Error> {
        let mut layout = Layout::new();
        if window.is_whole() {
            layout.push(Part::File {
                offset: 0,
                len: index.file_size,
            });
            return Ok(layout);
        }
        let (start, end) = super::plan::bounds(window, self.duration())?;
        let first = self
            .list
            .iter()
            .rposition(|f| self.seconds(f.start) <= start)
            .unwrap_or(0);
        let last = self
            .list
            .iter()
            .rposition(|f| self.seconds(f.start) < end)
            .unwrap_or(first)
            .max(first);
        let mut header = Vec::new();
        header.extend_from_slice(index.ftyp_bytes.as_deref().unwrap_or(&[]));
        header.extend_from_slice(&index.moov);
        layout.push(Part::Mem(Bytes::from(header)));
        for f in self.list.get(first..=last).unwrap_or(&[]) {
            let shift = layout.len() as i128 - i128::from(f.offset);
            let mut pos = f.offset;
            for &(p, old) in &f.patches {
                let new = u64::try_from(i128::from(old) + shift).map_err(|_| Error::Invalid {
                    fourcc: *b"tfhd",
                    reason: "base_data_offset points before the file",
                })?;
                layout.push(Part::File {
                    offset: pos,
                    len: p - pos,
                });
                layout.push(Part::Mem(Bytes::copy_from_slice(&new.to_be_bytes())));
                pos = p + 8;
            }
            layout.push(Part::File {
                offset: pos,
                len: f.end - pos,
            });
        }
        Ok(layout)
    }
}

/// Every absolute `tfhd` base_data_offset in a `traf`: (file offset, value).
fn absolute_offsets(traf: &[u8], moof_at: u64, base: usize) -> Result<Vec<(u64, u64)>, Error> {
    let mut v = Vec::new();
    for b in children(traf, base) {
        let b = b?;
        if &b.fourcc == b"tfhd" {
            let mut r = Reader::new(b.body, *b"tfhd");
            let (_, flags) = r.full_box()?;
            if flags & 0x01 != 0 {
                r.skip(4)?;
                let value = r.u64()?;
                v.push((
                    moof_at + (b.start + (b.bytes.len() - b.body.len()) + 8) as u64,
                    value,
                ));
            }
        }
    }
    Ok(v)
}

/// Where fragment `i` (a `moof` in `top`) ends: after the media boxes that follow it.
fn fragment_end(top: &[TopBox], i: usize) -> u64 {
    let mut end = top[i].end();
    for b in top.iter().skip(i + 1) {
        match &b.fourcc {
            b"mdat" | b"free" | b"skip" | b"prft" | b"emsg" => end = b.end(),
            _ => break,
        }
    }
    end
}
