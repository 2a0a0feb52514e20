//! The [`Index`]: a file's top-level boxes and, per track, the decoded sample
//! tables the planner needs. Built once per file and cached by the server.
//! Everything the planner and the writer later trust is checked here: sizes,
//! duplicates, and that every chunk's bytes lie in the file.

use super::boxes::{self, FourCC, RawBox, Reader, TopBox};
use super::error::fourcc_str;
use super::fragmented::{self, Fragments};
use super::tables::{Runs, cmov, elst, hdlr, mdhd, mvhd, runs, stco, stsc, stss, stsz, tkhd};
use super::tracks::{self, MAX_TAG};
use super::trak::{self, Inline, MAX_NAME, TrakInfo};
use super::{Error, Limits, ReadAt};
use bytes::Bytes;
use std::ops::Range;

/// Largest `ftyp` accepted (real ones are a few dozen bytes).
const MAX_FTYP: u64 = 4096;
/// Most tracks a film may have: a real one has a handful.
pub const MAX_TRACKS: usize = 1024;
/// Most boxes the index walks inside a `moov` (the writer walks the same).
const MAX_MOOV_BOXES: u32 = 1 << 16;

/// Everything the engine knows about one source file.
#[derive(Debug)]
pub struct Index {
    pub(crate) file_size: u64,
    pub(crate) top: Vec<TopBox>,
    pub(crate) ftyp: Option<TopBox>,
    /// The source `ftyp`, copied to the front of every generated header.
    pub(crate) ftyp_bytes: Option<Bytes>,
    pub(crate) moov_box: TopBox,
    /// The whole source `moov`, header included (inflated if compressed).
    pub(crate) moov: Bytes,
    /// The file's `moov` holds a `cmov`: `moov` above is what it inflates to.
    pub(crate) compressed: bool,
    pub(crate) movie: mvhd::Header,
    /// Every `trak`, with or without samples.
    pub(crate) traks: Vec<TrakInfo>,
    /// The tracks that have samples.
    pub(crate) tracks: Vec<Track>,
    pub(crate) fragments: Option<Fragments>,
    /// The subtitle tracks' cues (`tx3g`), read when indexed.
    pub(crate) cues: Vec<super::cues::Cues>,
}

/// One `trak` with samples, decoded.
#[derive(Debug)]
pub(crate) struct Track {
    pub info: TrakInfo,
    pub stts: Runs,
    pub ctts: Option<Runs>,
    /// Most negative composition offset (0 when none is negative).
    pub min_ctts: i64,
    pub stss: Option<Vec<u32>>,
    pub stsc: stsc::Table,
    pub sizes: stsz::Sizes,
    pub chunk_offsets: Vec<u64>,
    /// The `sbgp` boxes of the `stbl`, in order (`None`: unreadable, dropped).
    pub sbgp: Vec<Option<runs::Sbgp>>,
    pub sample_count: u64,
    /// Chunk offsets never decrease, so a run of chunks spans from its
    /// first chunk to its last.
    pub chunks_in_order: bool,
}

impl Track {
    fn heap_bytes(&self) -> usize {
        self.stts.runs.capacity() * 8
            + self.ctts.as_ref().map_or(0, |c| c.runs.capacity() * 8)
            + self.stss.as_ref().map_or(0, |s| s.capacity() * 4)
            + self.stsc.heap_bytes()
            + self.sizes.heap_bytes()
            + self.chunk_offsets.capacity() * 8
            + self
                .sbgp
                .iter()
                .flatten()
                .map(|s| s.runs.runs.capacity() * 8)
                .sum::<usize>()
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
    pub language: Option<String>,
    pub duration: f64,
    /// Samples in the `moov` (0 for a fragmented file's tracks).
    pub samples: u64,
    pub sync_samples: u64,
}

/// Counts the boxes walked in a `moov`, so a file of a million empty boxes
/// is refused once instead of walked on every request.
struct Budget(u32);

impl Budget {
    fn take(&mut self) -> Result<(), Error> {
        self.0 = self.0.checked_sub(1).ok_or_else(|| {
            Error::Unsupported(format!("more than {MAX_MOOV_BOXES} boxes in the moov"))
        })?;
        Ok(())
    }
}

/// The children of a container, each counted against the budget.
fn walk<'a>(
    parent: &RawBox<'a>,
    budget: &mut Budget,
) -> impl Iterator<Item = Result<RawBox<'a>, Error>> {
    let mut children = parent.children();
    std::iter::from_fn(move || {
        let next = children.next()?;
        Some(budget.take().and(next))
    })
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
        let (moov, compressed) = inflated(moov, limits.max_moov)?;
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
        let root = boxes::children(&moov, 0)
            .next()
            .ok_or(Error::NotMp4("empty moov"))??;
        let mut budget = Budget(MAX_MOOV_BOXES);
        let mut movie = None;
        let mut traks = Vec::new();
        let mut tracks = Vec::new();
        for child in root.children() {
            budget.take()?;
            let child = child?;
            match &child.fourcc {
                b"mvhd" if movie.is_some() => return Err(duplicate(*b"mvhd")),
                b"mvhd" => movie = Some(mvhd::read(child.body)?),
                b"trak" => {
                    if traks.len() >= MAX_TRACKS {
                        return Err(Error::Unsupported(format!("more than {MAX_TRACKS} tracks")));
                    }
                    let (info, track) = read_trak(&child, &mut budget)?;
                    traks.push(info);
                    tracks.extend(track);
                }
                _ => {}
            }
        }
        let movie = movie.ok_or(Error::Invalid {
            fourcc: *b"mvhd",
            reason: "required box is missing",
        })?;
        let forbidden: Vec<Range<u64>> = std::iter::once(moov_box.offset..moov_box.end())
            .chain(ftyp.map(|f| f.offset..f.end()))
            .collect();
        for t in &mut tracks {
            t.chunks_in_order = check_chunks(t, file_size, &forbidden)?;
        }
        let fragments = fragmented::scan(&top, &moov, &traks, src, limits.max_moov)?;
        let mut cues = super::cues::read(src, &tracks, movie.timescale, limits.max_cue_bytes);
        if let Some(f) = &fragments {
            // A fragmented film's text samples are in its fragments only.
            cues.extend(super::cues::read_fragmented(
                src,
                &traks,
                f,
                &moov,
                movie.timescale,
                limits.max_cue_bytes,
            ));
        }
        Ok(Index {
            file_size,
            top,
            ftyp,
            ftyp_bytes,
            moov_box,
            moov,
            compressed,
            movie,
            traks,
            tracks,
            fragments,
            cues,
        })
    }

    /// The subtitle tracks' cues.
    pub fn cues(&self) -> &[super::cues::Cues] {
        &self.cues
    }

    /// Text tracks from beside the film (sidecar files), numbered by the
    /// caller after [`Index::last_track_id`].
    pub fn add_cues(&mut self, more: Vec<super::cues::Cues>) {
        self.cues.extend(more);
    }

    /// The highest track id of the film's own tracks.
    pub fn last_track_id(&self) -> u32 {
        self.traks.iter().map(|t| t.id).max().unwrap_or(0)
    }

    /// Film duration in seconds: `mvhd`'s, else the longest track's.
    pub fn duration(&self) -> f64 {
        if let Some(f) = &self.fragments {
            return f.duration();
        }
        if self.movie.duration > 0 {
            return self.movie.duration as f64 / f64::from(self.movie.timescale);
        }
        self.tracks
            .iter()
            .map(|t| self.track_end(t))
            .fold(0.0, f64::max)
    }

    /// When a track's presentation ends, in seconds.
    pub(crate) fn track_end(&self, t: &Track) -> f64 {
        let mts = f64::from(self.movie.timescale);
        let edit = &t.info.edit;
        let empty = edit.empty as f64 / mts;
        if edit.segment > 0 {
            return empty + edit.segment as f64 / mts;
        }
        let media = t.stts.total() as f64 - edit.media_time as f64;
        empty + media.max(0.0) / f64::from(t.info.timescale)
    }

    /// Approximate heap bytes held, for cache accounting.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Index>()
            + self.moov.len()
            + self.top.capacity() * std::mem::size_of::<TopBox>()
            + self.traks.capacity() * std::mem::size_of::<TrakInfo>()
            + self.tracks.iter().map(Track::heap_bytes).sum::<usize>()
            + self.fragments.as_ref().map_or(0, Fragments::heap_bytes)
            + self
                .cues
                .iter()
                .map(super::cues::Cues::heap_bytes)
                .sum::<usize>()
    }

    /// The size of the source file this index describes.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    pub fn info(&self) -> Info {
        let samples = |t: &TrakInfo| self.tracks.iter().find(|s| s.info.start == t.start);
        Info {
            file_size: self.file_size,
            moov_offset: self.moov_box.offset,
            moov_size: self.moov_box.size,
            fragmented: self.fragments.is_some(),
            fragments: self.fragments.as_ref().map_or(0, |f| f.list.len()),
            duration: self.duration(),
            tracks: self
                .traks
                .iter()
                .map(|t| {
                    let s = samples(t);
                    TrackInfo {
                        id: t.id,
                        handler: fourcc_str(&t.handler),
                        codec: fourcc_str(&t.codec),
                        timescale: t.timescale,
                        language: t.language.map(|l| String::from_utf8_lossy(&l).into_owned()),
                        duration: s.map_or_else(
                            || {
                                self.fragments
                                    .as_ref()
                                    .map_or(0.0, |f| f.track_duration(t.id))
                            },
                            |s| self.track_end(s),
                        ),
                        samples: s.map_or(0, |s| s.sample_count),
                        sync_samples: s.map_or(0, |s| {
                            s.stss.as_ref().map_or(s.sample_count, |v| v.len() as u64)
                        }),
                    }
                })
                .collect(),
        }
    }
}

/// The `moov` itself, or the one its `cmov` holds, inflated.
fn inflated(moov: Vec<u8>, limit: u64) -> Result<(Bytes, bool), Error> {
    let plain = {
        let root = boxes::children(&moov, 0)
            .next()
            .ok_or(Error::NotMp4("empty moov"))??;
        let cmov = root
            .children()
            .take(16)
            .find(|c| c.as_ref().is_ok_and(|c| &c.fourcc == b"cmov"));
        match cmov {
            Some(cmov) => Some(cmov::inflate(&cmov?, limit)?),
            None => None,
        }
    };
    match plain {
        Some(p) => {
            let is_moov = boxes::children(&p, 0)
                .next()
                .is_some_and(|b| b.is_ok_and(|b| &b.fourcc == b"moov"));
            if !is_moov {
                return Err(Error::Invalid {
                    fourcc: *b"cmov",
                    reason: "does not inflate to a moov",
                });
            }
            Ok((Bytes::from(p), true))
        }
        None => Ok((Bytes::from(moov), false)),
    }
}

fn duplicate(fourcc: FourCC) -> Error {
    Error::Invalid {
        fourcc,
        reason: "duplicate box (a second one of a kind that must be unique)",
    }
}

fn missing(fourcc: FourCC) -> Error {
    Error::Invalid {
        fourcc,
        reason: "required box is missing",
    }
}

/// The one child `fourcc` of `parent`; a second is an error.
fn only<'a>(
    parent: &RawBox<'a>,
    fourcc: &FourCC,
    budget: &mut Budget,
) -> Result<Option<RawBox<'a>>, Error> {
    let mut found = None;
    for child in walk(parent, budget) {
        let child = child?;
        if &child.fourcc == fourcc {
            if found.is_some() {
                return Err(duplicate(*fourcc));
            }
            found = Some(child);
        }
    }
    Ok(found)
}

/// Sets a table once; a second of its kind is an error.
fn once<T>(slot: &mut Option<T>, fourcc: FourCC, value: T) -> Result<(), Error> {
    if slot.is_some() {
        return Err(duplicate(fourcc));
    }
    *slot = Some(value);
    Ok(())
}

/// A track's `elng` tag and its own name (from `udta`), the first of each
/// kind. A malformed `udta` (QuickTime's may end in four zero bytes) names
/// nothing; the film is served all the same.
fn labels<'a>(
    trak: &RawBox<'a>,
    mdia: &RawBox<'a>,
    budget: &mut Budget,
) -> Result<(Option<Inline<MAX_TAG>>, Option<Inline<MAX_NAME>>), Error> {
    let first = |parent: &RawBox<'a>, fourcc: &FourCC, budget: &mut Budget| {
        for b in walk(parent, budget) {
            let b = b?;
            if &b.fourcc == fourcc {
                return Ok(Some(b));
            }
        }
        Ok::<_, Error>(None)
    };
    let tag = first(mdia, b"elng", budget)?.and_then(|b| trak::elng(b.body));
    let (mut name, mut quicktime) = (None, None);
    if let Some(udta) = first(trak, b"udta", budget)? {
        for c in walk(&udta, budget).map_while(Result::ok) {
            let slot = match &c.fourcc {
                b"name" => &mut name,
                b"\xa9nam" => &mut quicktime,
                _ => continue,
            };
            if slot.is_none() {
                *slot = trak::name(&c.fourcc, c.body);
            }
        }
    }
    Ok((tag, name.or(quicktime)))
}

/// Decodes one `trak`; its sample tables only when it has samples.
fn read_trak(trak: &RawBox<'_>, budget: &mut Budget) -> Result<(TrakInfo, Option<Track>), Error> {
    let tkhd = only(trak, b"tkhd", budget)?.ok_or(missing(*b"tkhd"))?;
    let id = tkhd::read(tkhd.body)?.track_id;
    let enabled = Reader::new(tkhd.body, *b"tkhd").full_box()?.1 & 1 != 0;
    let edit = match only(trak, b"edts", budget)? {
        Some(edts) => elst::read_track_edit(edts.body)?,
        None => elst::TrackEdit::default(),
    };
    let mdia = only(trak, b"mdia", budget)?.ok_or(missing(*b"mdia"))?;
    let mdhd = only(&mdia, b"mdhd", budget)?.ok_or(missing(*b"mdhd"))?;
    let media = mdhd::read(mdhd.body)?;
    let hdlr = only(&mdia, b"hdlr", budget)?.ok_or(missing(*b"hdlr"))?;
    let handler = hdlr::read(hdlr.body)?;
    let minf = only(&mdia, b"minf", budget)?.ok_or(missing(*b"minf"))?;
    let (tag, name) = labels(trak, &mdia, budget)?;
    let stbl = only(&minf, b"stbl", budget)?.ok_or(missing(*b"stbl"))?;

    let mut codec = [0u8; 4];
    let (mut stts, mut ctts, mut sync, mut stsc_t) = (None, None, None, None);
    let (mut sizes, mut offsets) = (None, None);
    let mut sbgp = Vec::new();
    for b in walk(&stbl, budget) {
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
                once(&mut stts, b.fourcc, Runs::read(&mut r)?)?;
            }
            b"ctts" => {
                // Version 0 offsets are unsigned, but muxers write negative
                // values there too; reading them as signed is what players do.
                let mut r = Reader::new(b.body, *b"ctts");
                r.full_box()?;
                once(&mut ctts, b.fourcc, Runs::read(&mut r)?)?;
            }
            b"stss" => once(&mut sync, b.fourcc, stss::read(b.body)?)?,
            b"stsc" => once(&mut stsc_t, b.fourcc, stsc::read(b.body)?)?,
            b"stsz" => once(&mut sizes, b.fourcc, stsz::read_stsz(b.body)?)?,
            b"stz2" => once(&mut sizes, b.fourcc, stsz::read_stz2(b.body)?)?,
            b"stco" => once(&mut offsets, b.fourcc, stco::read(b.body, false)?)?,
            b"co64" => once(&mut offsets, b.fourcc, stco::read(b.body, true)?)?,
            b"sbgp" => sbgp.push(runs::Sbgp::read(b.body).ok()),
            _ => {}
        }
    }
    let info = TrakInfo {
        start: trak.start,
        id,
        handler,
        codec,
        timescale: media.timescale,
        // elng's tag overrides mdhd's code.
        language: tag
            .and_then(|t| tracks::primary_language(t.as_str()))
            .or(media.language),
        edit,
        enabled,
        tag,
        name,
    };
    let sizes = sizes.ok_or(missing(*b"stsz"))?;
    let sample_count = u64::from(sizes.count);
    if sample_count == 0 {
        return Ok((info, None));
    }
    let stts = stts.ok_or(missing(*b"stts"))?;
    let stsc = stsc_t.ok_or(missing(*b"stsc"))?;
    let chunk_offsets = offsets.ok_or(missing(*b"stco"))?;
    let stsc = stsc::Table::new(stsc, chunk_offsets.len() as u64);
    if stsc.samples_covered() < sample_count {
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
    let min_ctts = ctts.as_ref().map_or(0, |c: &Runs| {
        c.runs
            .iter()
            .map(|r| i64::from(r.value as i32))
            .fold(0, i64::min)
    });
    let track = Track {
        info,
        stts,
        ctts,
        min_ctts,
        stss: sync,
        stsc,
        sizes,
        chunk_offsets,
        sbgp,
        sample_count,
        chunks_in_order: true,
    };
    Ok((info, Some(track)))
}

/// Checks that every chunk's bytes lie in the file and outside `forbidden`
/// (the `moov`, the `ftyp`). Returns whether the chunks follow each other in
/// the file without overlapping (then a run of chunks spans from the start
/// of its first to the end of its last).
fn check_chunks(t: &Track, file_size: u64, forbidden: &[Range<u64>]) -> Result<bool, Error> {
    let bad = |reason| Error::Invalid {
        fourcc: *b"stco",
        reason,
    };
    let mut sample = 0u64;
    let mut last_end = 0u64;
    let mut in_order = true;
    for c in t.stsc.chunks_at(0) {
        if sample >= t.sample_count {
            break;
        }
        let k = u64::from(c.samples).min(t.sample_count - sample);
        let offset = usize::try_from(c.index)
            .ok()
            .and_then(|i| t.chunk_offsets.get(i))
            .copied()
            .ok_or(bad("fewer chunk offsets than stsc uses"))?;
        let len = t.sizes.sum(sample, sample + k);
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= file_size)
            .ok_or(bad("a chunk lies past the end of the file"))?;
        if len > 0 && forbidden.iter().any(|f| offset < f.end && f.start < end) {
            return Err(bad("a chunk overlaps the moov or the ftyp"));
        }
        in_order &= offset >= last_end;
        last_end = end;
        sample += k;
    }
    Ok(in_order)
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
            let lang = t
                .language
                .as_deref()
                .map_or(String::new(), |l| format!(" ({l})"));
            write!(
                f,
                "track {}: {} {}{lang} timescale {} duration {:.3} s",
                t.id, t.handler, t.codec, t.timescale, t.duration
            )?;
            if t.samples > 0 {
                write!(f, ", {} samples, {} sync", t.samples, t.sync_samples)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
