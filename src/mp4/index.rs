//! The [`Index`]: a file's top-level boxes and, per track, the decoded sample
//! tables the planner needs. Built once per file and cached by the server.

use super::boxes::{self, FourCC, RawBox, Reader, TopBox, children};
use super::error::fourcc_str;
use super::fragmented::Fragments;
use super::tables::{Runs, elst, stco, stsc, stss, stsz};
use super::{Error, Layout, Limits, ReadAt, Window};
use bytes::Bytes;
use std::ops::Range;

/// Largest `ftyp` accepted (real ones are a few dozen bytes).
const MAX_FTYP: u64 = 4096;

/// Everything the engine knows about one source file.
#[derive(Debug)]
pub struct Index {
    pub(crate) file_size: u64,
    pub(crate) top: Vec<TopBox>,
    pub(crate) ftyp: Option<TopBox>,
    /// The source `ftyp`, copied to the front of every generated header.
    pub(crate) ftyp_bytes: Option<Bytes>,
    pub(crate) moov_box: TopBox,
    /// The whole source `moov`, header included.
    pub(crate) moov: Bytes,
    pub(crate) movie_timescale: u32,
    pub(crate) movie_duration: u64,
    pub(crate) tracks: Vec<Track>,
    pub(crate) fragments: Option<Fragments>,
}

/// A track's source edit list, reduced to what the timeline needs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct TrackEdit {
    /// Leading empty edits, in the movie timescale.
    pub empty: u64,
    /// Media time shown at the end of the empty edits (B-frame delay, AAC priming).
    pub media_time: i64,
    /// Duration of the first media edit in the movie timescale; 0: to the end.
    pub segment: u64,
}

/// One `trak`, decoded.
#[derive(Debug)]
pub(crate) struct Track {
    /// The `trak` box within `Index::moov`.
    pub trak: Range<usize>,
    pub id: u32,
    pub handler: FourCC,
    pub codec: FourCC,
    pub timescale: u32,
    pub edit: TrackEdit,
    pub stts: Runs,
    pub ctts: Option<Runs>,
    /// Most negative composition offset (0 when none is negative).
    pub min_ctts: i64,
    pub stss: Option<Vec<u32>>,
    pub stsc: Vec<stsc::Entry>,
    pub sizes: stsz::Sizes,
    pub chunk_offsets: Vec<u64>,
    pub sample_count: u64,
}

impl Track {
    pub fn is_video(&self) -> bool {
        &self.handler == b"vide"
    }
    pub fn is_audio(&self) -> bool {
        &self.handler == b"soun"
    }
    fn heap_bytes(&self) -> usize {
        self.stts.runs.capacity() * 8
            + self.ctts.as_ref().map_or(0, |c| c.runs.capacity() * 8)
            + self.stss.as_ref().map_or(0, |s| s.capacity() * 4)
            + self.stsc.capacity() * 12
            + self.sizes.heap_bytes()
            + self.chunk_offsets.capacity() * 8
    }
}

/// A summary of an [`Index`] for people (`mp4-fcgi info`).
#[derive(Clone, Debug)]
pub struct Info {
    pub file_size: u64,
    pub moov_offset: u64,
    pub moov_size: u64,
    pub fragmented: bool,
    pub fragments: usize,
    pub duration: f64,
    pub tracks: Vec<TrackInfo>,
}

#[derive(Clone, Debug)]
pub struct TrackInfo {
    pub id: u32,
    pub handler: String,
    pub codec: String,
    pub timescale: u32,
    pub duration: f64,
    pub samples: u64,
    pub sync_samples: u64,
}

impl Index {
    /// Scans the top-level boxes and indexes every track of the `moov`.
    pub fn build(src: &dyn ReadAt, limits: &Limits) -> Result<Index, Error> {
        let file_size = src.size()?;
        let top = boxes::scan_top(src, file_size)?;
        let moov_box = *top
            .iter()
            .find(|b| &b.fourcc == b"moov")
            .ok_or(Error::NotMp4("no moov box"))?;
        if moov_box.size > limits.max_moov {
            return Err(Error::MoovTooLarge {
                size: moov_box.size,
                limit: limits.max_moov,
            });
        }
        // Bounded by max_moov (checked above) and by the file size (checked by scan_top).
        let mut moov = vec![0u8; moov_box.size as usize];
        src.read_exact_at(&mut moov, moov_box.offset)?;
        let moov = Bytes::from(moov);
        let ftyp = top.first().filter(|b| &b.fourcc == b"ftyp").copied();
        let ftyp_bytes = match ftyp {
            Some(f) if f.size <= MAX_FTYP => {
                let mut b = vec![0u8; f.size as usize];
                src.read_exact_at(&mut b, f.offset)?;
                Some(Bytes::from(b))
            }
            Some(_) => {
                return Err(Error::Unsupported(format!(
                    "ftyp larger than {MAX_FTYP} bytes"
                )));
            }
            None => None,
        };
        let mut index = Index {
            file_size,
            ftyp,
            ftyp_bytes,
            moov_box,
            moov: moov.clone(),
            movie_timescale: 0,
            movie_duration: 0,
            tracks: Vec::new(),
            fragments: None,
            top: Vec::new(),
        };
        index.read_moov(&moov, moov_box.header_len as usize)?;
        index.top = top;
        index.fragments = Fragments::scan(&index, src, limits.max_moov)?;
        Ok(index)
    }

    fn read_moov(&mut self, moov: &[u8], header_len: usize) -> Result<(), Error> {
        let body = moov.get(header_len..).unwrap_or(&[]);
        for child in children(body, header_len) {
            let child = child?;
            match &child.fourcc {
                b"mvhd" => {
                    let (ts, dur) = read_mvhd_or_mdhd(child.body, *b"mvhd")?;
                    self.movie_timescale = ts;
                    self.movie_duration = dur;
                }
                b"trak" => {
                    if let Some(t) = read_trak(&child)? {
                        self.tracks.push(t);
                    }
                }
                b"cmov" => {
                    return Err(Error::Unsupported(
                        "compressed movie header (cmov); remux with ffmpeg -c copy".into(),
                    ));
                }
                _ => {}
            }
        }
        if self.movie_timescale == 0 {
            return Err(Error::Invalid {
                fourcc: *b"mvhd",
                reason: "missing, or its timescale is 0",
            });
        }
        Ok(())
    }

    /// Film duration in seconds: `mvhd`'s, else the longest track's.
    pub fn duration(&self) -> f64 {
        if let Some(f) = &self.fragments {
            return f.duration();
        }
        if self.movie_duration > 0 {
            return self.movie_duration as f64 / f64::from(self.movie_timescale);
        }
        self.tracks
            .iter()
            .map(|t| self.track_end(t))
            .fold(0.0, f64::max)
    }

    /// When a track's presentation ends, in seconds.
    pub(crate) fn track_end(&self, t: &Track) -> f64 {
        let mts = f64::from(self.movie_timescale);
        let empty = t.edit.empty as f64 / mts;
        if t.edit.segment > 0 {
            return empty + t.edit.segment as f64 / mts;
        }
        let media = t.stts.total() as f64 - t.edit.media_time as f64;
        empty + media.max(0.0) / f64::from(t.timescale)
    }

    /// Approximate heap bytes held, for cache accounting.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Index>()
            + self.moov.len()
            + self.top.capacity() * std::mem::size_of::<TopBox>()
            + self.tracks.iter().map(Track::heap_bytes).sum::<usize>()
            + self.fragments.as_ref().map_or(0, Fragments::heap_bytes)
    }

    /// The size of the source file this index describes.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    pub fn info(&self) -> Info {
        Info {
            file_size: self.file_size,
            moov_offset: self.moov_box.offset,
            moov_size: self.moov_box.size,
            fragmented: self.fragments.is_some(),
            fragments: self.fragments.as_ref().map_or(0, |f| f.list.len()),
            duration: self.duration(),
            tracks: self
                .tracks
                .iter()
                .map(|t| TrackInfo {
                    id: t.id,
                    handler: fourcc_str(&t.handler),
                    codec: fourcc_str(&t.codec),
                    timescale: t.timescale,
                    duration: self.track_end(t),
                    samples: t.sample_count,
                    sync_samples: t.stss.as_ref().map_or(t.sample_count, |s| s.len() as u64),
                })
                .collect(),
        }
    }

    /// Plans the output for `window`.
    pub fn plan(&self, window: &Window) -> Result<Layout, Error> {
        if let Some(frags) = &self.fragments {
            return frags.plan(self, window);
        }
        if window.is_whole() {
            return super::write::whole(self);
        }
        let plan = super::plan::plan(self, window)?;
        super::write::window(self, &plan)
    }
}

/// Timescale and duration of `mvhd` or `mdhd` (same layout up to duration).
fn read_mvhd_or_mdhd(body: &[u8], fourcc: FourCC) -> Result<(u32, u64), Error> {
    let mut r = Reader::new(body, fourcc);
    let (version, _) = r.full_box()?;
    if version == 1 {
        r.skip(16)?;
        Ok((r.u32()?, r.u64()?))
    } else {
        r.skip(8)?;
        Ok((r.u32()?, u64::from(r.u32()?)))
    }
}

/// Byte offset of the duration field within the body of `mvhd`/`mdhd`
/// (`tkhd` = false) or `tkhd`, and whether it is 64-bit.
pub(crate) fn duration_field(fourcc: &FourCC, version: u8) -> (usize, bool) {
    match (fourcc, version) {
        (b"tkhd", 1) => (28, true),
        (b"tkhd", _) => (20, false),
        (_, 1) => (24, true),
        _ => (16, false),
    }
}

fn read_track_id(body: &[u8]) -> Result<u32, Error> {
    let mut r = Reader::new(body, *b"tkhd");
    let (version, _) = r.full_box()?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    r.u32()
}

pub(crate) fn read_edit(body: &[u8]) -> Result<TrackEdit, Error> {
    let mut edit = TrackEdit::default();
    let elst = boxes::find(body, 0, b"elst")?;
    let Some(elst) = elst else { return Ok(edit) };
    for e in elst::read(elst.body)? {
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

fn sub<'a>(parent: &RawBox<'a>, fourcc: &FourCC) -> Result<Option<RawBox<'a>>, Error> {
    let base = parent.start + (parent.bytes.len() - parent.body.len());
    boxes::find(parent.body, base, fourcc)
}

fn missing(fourcc: FourCC) -> Error {
    Error::Invalid {
        fourcc,
        reason: "required box is missing",
    }
}

/// Decodes one `trak`. Tracks without samples are skipped (`None`).
fn read_trak(trak: &RawBox<'_>) -> Result<Option<Track>, Error> {
    let tkhd = sub(trak, b"tkhd")?.ok_or(missing(*b"tkhd"))?;
    let id = read_track_id(tkhd.body)?;
    let edit = match sub(trak, b"edts")? {
        Some(edts) => read_edit(edts.body)?,
        None => TrackEdit::default(),
    };
    let mdia = sub(trak, b"mdia")?.ok_or(missing(*b"mdia"))?;
    let mdhd = sub(&mdia, b"mdhd")?.ok_or(missing(*b"mdhd"))?;
    let (timescale, _) = read_mvhd_or_mdhd(mdhd.body, *b"mdhd")?;
    if timescale == 0 {
        return Err(Error::Invalid {
            fourcc: *b"mdhd",
            reason: "timescale is 0",
        });
    }
    let hdlr = sub(&mdia, b"hdlr")?.ok_or(missing(*b"hdlr"))?;
    let mut handler = [0u8; 4];
    handler.copy_from_slice(
        Reader::new(hdlr.body, *b"hdlr")
            .bytes(12)?
            .get(8..12)
            .unwrap_or(&[0; 4]),
    );
    let minf = sub(&mdia, b"minf")?.ok_or(missing(*b"minf"))?;
    let stbl = sub(&minf, b"stbl")?.ok_or(missing(*b"stbl"))?;

    let mut codec = [0u8; 4];
    let (mut stts, mut ctts, mut stss_t, mut stsc_t) = (None, None, None, None);
    let (mut sizes, mut offsets) = (None, None);
    let mut min_ctts = 0i64;
    for b in children(stbl.body, 0) {
        let b = b?;
        match &b.fourcc {
            b"stsd" => {
                let mut r = Reader::new(b.body, *b"stsd");
                r.skip(12)?;
                codec.copy_from_slice(r.bytes(4)?);
            }
            b"stts" => {
                let mut r = Reader::new(b.body, *b"stts");
                r.full_box()?;
                stts = Some(Runs::read(&mut r)?);
            }
            b"ctts" => {
                let mut r = Reader::new(b.body, *b"ctts");
                let (version, _) = r.full_box()?;
                let runs = Runs::read(&mut r)?;
                // Version 0 offsets are unsigned, but muxers write negative
                // values there too; reading them as signed is what players do.
                let _ = version;
                min_ctts = runs
                    .runs
                    .iter()
                    .map(|r| i64::from(r.value as i32))
                    .fold(0, i64::min);
                ctts = Some(runs);
            }
            b"stss" => stss_t = Some(stss::read(b.body)?),
            b"stsc" => stsc_t = Some(stsc::read(b.body)?),
            b"stsz" => sizes = Some(stsz::read_stsz(b.body)?),
            b"stz2" => sizes = Some(stsz::read_stz2(b.body)?),
            b"stco" => offsets = Some(stco::read(b.body, false)?),
            b"co64" => offsets = Some(stco::read(b.body, true)?),
            _ => {}
        }
    }
    let sizes = sizes.ok_or(missing(*b"stsz"))?;
    let sample_count = u64::from(sizes.count);
    if sample_count == 0 {
        return Ok(None);
    }
    let stts = stts.ok_or(missing(*b"stts"))?;
    let stsc = stsc_t.ok_or(missing(*b"stsc"))?;
    let chunk_offsets = offsets.ok_or(missing(*b"stco"))?;
    if stsc::samples_covered(&stsc, chunk_offsets.len() as u64) < sample_count {
        return Err(Error::Invalid {
            fourcc: *b"stsc",
            reason: "chunks hold fewer samples than stsz lists",
        });
    }
    if stts.samples < sample_count {
        return Err(Error::Invalid {
            fourcc: *b"stts",
            reason: "fewer durations than samples",
        });
    }
    Ok(Some(Track {
        trak: trak.range(),
        id,
        handler,
        codec,
        timescale,
        edit,
        stts,
        ctts,
        min_ctts,
        stss: stss_t,
        stsc,
        sizes,
        chunk_offsets,
        sample_count,
    }))
}

impl std::fmt::Display for Info {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "file size:  {} bytes", self.file_size)?;
        writeln!(
            f,
            "moov:       {} bytes at offset {}",
            self.moov_size, self.moov_offset
        )?;
        writeln!(f, "duration:   {:.3} s", self.duration)?;
        if self.fragmented {
            writeln!(f, "fragmented: yes ({} fragments)", self.fragments)?;
        } else {
            writeln!(f, "fragmented: no")?;
        }
        for t in &self.tracks {
            writeln!(
                f,
                "track {}: {} {} timescale {} duration {:.3} s, {} samples, {} sync",
                t.id, t.handler, t.codec, t.timescale, t.duration, t.samples, t.sync_samples
            )?;
        }
        Ok(())
    }
}
