//! Thumbnails (pure): which samples of a video rendition to decode for the
//! picture shown at a time of the presentation, and the tiles of the
//! seek-bar previews (sprites of pictures at even intervals). Decoding
//! itself is [`crate::picture`]'s; every sample handed to it is sized,
//! placed in the file and counted against the bounds here first.

use super::cuts::{Clock, Span};
use super::write::{self, stsd};
use super::{Kind, Presentation, Rendition};
use crate::mp4::Error;
use crate::mp4::boxes::children;
use crate::mp4::index::{Index, Track};
use bytes::Bytes;

/// Most samples decoded for one picture: a key frame and the frames after
/// it up to the one shown. Beyond, the last of these is shown.
pub const MAX_DECODED: u64 = 300;
/// Most bytes of samples one picture or sprite reads.
pub const MAX_READ: u64 = 32 << 20;
/// Most pixels a decoded picture may have (4096x2304): a decoder holds
/// up to 16 reference pictures of this size.
pub const MAX_PIXELS: u64 = 4096 * 2304;
/// Largest side of an image asked for.
pub const MAX_SIDE: u32 = 4096;
/// Most tiles one sprite holds.
pub const MAX_TILES: u32 = 100;
/// Most tiles a presentation's previews list (`thumbnails.vtt` has a cue
/// each); a longer film at a shorter interval announces none.
pub const MAX_TILE_COUNT: u64 = 1 << 16;

/// How a track's pictures are turned for display (its `tkhd` matrix, in
/// quarter turns; any other matrix is shown as decoded, as most players do).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Turn {
    #[default]
    None,
    /// A quarter turn clockwise.
    Right,
    Half,
    /// A quarter turn counter-clockwise.
    Left,
}

impl Turn {
    /// Whether width and height swap.
    pub fn quarter(self) -> bool {
        matches!(self, Turn::Right | Turn::Left)
    }
}

/// The turn of track `r` from its `tkhd` matrix (a, b, c, d in 16.16):
/// (0, 1, -1, 0) turns right, (-1, 0, 0, -1) half, (0, -1, 1, 0) left.
pub fn turn(index: &Index, r: &Rendition) -> Turn {
    let tkhd = write::trak(index, &r.info).and_then(|t| write::child(&t, b"tkhd"));
    let Ok(tkhd) = tkhd else { return Turn::None };
    let at = if tkhd.body.first() == Some(&1) {
        52
    } else {
        40
    };
    let field = |k: usize| {
        (tkhd.body.get(at + 4 * k..at + 4 * k + 4))
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]).signum())
    };
    match (field(0), field(1), field(3), field(4)) {
        (Some(0), Some(1), Some(-1), Some(0)) => Turn::Right,
        (Some(-1), Some(0), Some(0), Some(-1)) => Turn::Half,
        (Some(0), Some(-1), Some(1), Some(0)) => Turn::Left,
        _ => Turn::None,
    }
}

/// The video codecs a thumbnail is decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Avc,
    Hevc,
    Av1,
    Vp9,
}

/// One sample to decode: where it is, and a tag (its sample number) the
/// decoder hands back with the picture it makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub offset: u64,
    pub size: u32,
    pub number: u64,
}

/// One picture: its samples in decode order from a key frame, and the
/// number of the sample whose picture is wanted.
#[derive(Clone, Debug, PartialEq)]
pub struct Shot {
    pub samples: Vec<Sample>,
    pub wanted: u64,
}

/// What to decode for one image: a thumbnail (one shot) or a sprite (a
/// shot per tile, row by row; fewer than the grid at the end).
#[derive(Clone, Debug)]
pub struct Shots {
    pub codec: Codec,
    /// The decoder configuration record (`avcC`, `hvcC`, `av1C` or
    /// `vpcC` body).
    pub config: Bytes,
    /// The sample entry's size, checked against [`MAX_PIXELS`].
    pub coded: (u32, u32),
    /// Each picture's size in the image (turned).
    pub size: (u32, u32),
    /// How each picture is turned after scaling.
    pub turn: Turn,
    pub columns: u32,
    pub rows: u32,
    pub shots: Vec<Shot>,
}

impl Shots {
    /// Bytes the samples of every shot hold.
    pub fn bytes(&self) -> u64 {
        (self.shots.iter().flat_map(|s| &s.samples))
            .map(|s| u64::from(s.size))
            .sum()
    }
}

/// The seek-bar previews: a picture every `interval` seconds, `columns` ×
/// `rows` of them `width` pixels wide in each sprite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tiles {
    pub interval: f64,
    pub columns: u32,
    pub rows: u32,
    pub width: u32,
}

impl Tiles {
    pub const fn per_sprite(&self) -> u32 {
        self.columns.saturating_mul(self.rows)
    }

    /// Seconds one sprite covers.
    pub fn span(&self) -> f64 {
        self.interval * f64::from(self.per_sprite())
    }

    /// Sprites of a presentation `duration` seconds long.
    pub fn sprites(&self, duration: f64) -> u32 {
        let n = (duration / self.span()).ceil();
        if n.is_finite() && n > 0.0 {
            n.min(f64::from(u32::MAX)) as u32
        } else {
            0
        }
    }

    /// Tiles of a presentation `duration` seconds long.
    pub fn count(&self, duration: f64) -> u64 {
        let n = (duration / self.interval).ceil();
        if n.is_finite() && n > 0.0 {
            n as u64
        } else {
            0
        }
    }
}

/// The size of a thumbnail asked for: 0 leaves a side to the aspect ratio.
#[derive(Clone, Copy, Debug, Default, Hash, PartialEq, Eq)]
pub struct Fit {
    pub width: u32,
    pub height: u32,
}

/// The rendition thumbnails are made from: the presentation's first video.
pub fn video(p: &Presentation) -> Result<&Rendition, Error> {
    (p.renditions.iter())
        .find(|r| r.kind == Kind::Video)
        .ok_or_else(|| Error::Missing("the film has no video track to take a picture of".into()))
}

/// The picture's display size (its pixel aspect ratio applied, turned as
/// `turn` says), scaled to `fit`: one side given keeps the aspect ratio,
/// both fit inside them.
pub fn picture_size(r: &Rendition, turn: Turn, fit: Fit) -> Result<(u32, u32), Error> {
    let d = &r.description;
    let (sw, sh) = d.sar.unwrap_or((1, 1));
    let w = f64::from(d.width) * f64::from(sw.max(1)) / f64::from(sh.max(1));
    let h = f64::from(d.height);
    let (w, h) = if turn.quarter() { (h, w) } else { (w, h) };
    if !(w >= 1.0 && h >= 1.0) {
        return Err(Error::Unsupported(format!(
            "track {} states no picture size",
            r.id
        )));
    }
    if fit.width > MAX_SIDE || fit.height > MAX_SIDE {
        return Err(Error::Missing(format!(
            "an image is at most {MAX_SIDE} pixels on a side"
        )));
    }
    let (w, h) = match (fit.width, fit.height) {
        (0, 0) => (w, h),
        (fw, 0) => (f64::from(fw), h * f64::from(fw) / w),
        (0, fh) => (w * f64::from(fh) / h, f64::from(fh)),
        (fw, fh) => {
            let k = (f64::from(fw) / w).min(f64::from(fh) / h);
            (w * k, h * k)
        }
    };
    let side = |x: f64| (x.round() as u32).clamp(2, MAX_SIDE);
    Ok((side(w), side(h)))
}

/// The size of one tile: `tiles.width` wide, height by the aspect ratio
/// (even, as players like it).
pub fn tile_size(r: &Rendition, turn: Turn, tiles: &Tiles) -> Result<(u32, u32), Error> {
    let (w, h) = picture_size(r, turn, Fit::default())?;
    let width = tiles.width.clamp(2, MAX_SIDE);
    let height = (f64::from(width) * f64::from(h) / f64::from(w) / 2.0).round() as u32 * 2;
    Ok((width, height.clamp(2, MAX_SIDE)))
}

/// What to decode for the picture shown `at` seconds into the presentation,
/// `fit` to a size.
pub fn thumbnail(index: &Index, p: &Presentation, at: f64, fit: Fit) -> Result<Shots, Error> {
    let r = video(p)?;
    if !(0.0..p.duration).contains(&at) {
        return Err(Error::Missing(format!(
            "{at:.3} s is not within the presentation's {:.3} s",
            p.duration
        )));
    }
    let turn = turn(index, r);
    let size = picture_size(r, turn, fit)?;
    let mut seek = Seek::new(index, r)?;
    let shot = seek.shot(at, MAX_DECODED)?;
    shots(index, r, (size, turn), (1, 1), vec![shot])
}

/// What to decode for sprite `n` (from 1): a key frame at or before each
/// of its tiles' times.
pub fn sprite(index: &Index, p: &Presentation, n: u32, tiles: &Tiles) -> Result<Shots, Error> {
    let r = video(p)?;
    let per = tiles.per_sprite();
    if !(1..=MAX_TILES).contains(&per) || tiles.interval.is_nan() || tiles.interval <= 0.0 {
        return Err(Error::Unsupported("thumbnail tiles are not set".into()));
    }
    if n == 0 || n > tiles.sprites(p.duration) {
        return Err(Error::Missing(format!(
            "the film has no thumbnail sprite {n}"
        )));
    }
    let turn = turn(index, r);
    let size = tile_size(r, turn, tiles)?;
    let mut seek = Seek::new(index, r)?;
    let first = u64::from(n - 1) * u64::from(per);
    let list = (first..first + u64::from(per))
        .map(|k| k as f64 * tiles.interval)
        .take_while(|&at| at < p.duration)
        .map(|at| seek.shot(at, 1))
        .collect::<Result<Vec<_>, _>>()?;
    shots(index, r, (size, turn), (tiles.columns, tiles.rows), list)
}

fn shots(
    index: &Index,
    r: &Rendition,
    (size, turn): ((u32, u32), Turn),
    (columns, rows): (u32, u32),
    list: Vec<Shot>,
) -> Result<Shots, Error> {
    let (codec, config) = decoder_config(index, r)?;
    let coded = (r.description.width, r.description.height);
    if u64::from(coded.0) * u64::from(coded.1) > MAX_PIXELS {
        return Err(Error::Unsupported(format!(
            "track {} is {}x{}, more pixels than a thumbnail is decoded from",
            r.id, coded.0, coded.1
        )));
    }
    let s = Shots {
        codec,
        config,
        coded,
        size,
        turn,
        columns,
        rows,
        shots: list,
    };
    if s.bytes() > MAX_READ {
        return Err(Error::Unsupported(format!(
            "the picture needs {} MB of samples, more than the {} MB read for one",
            s.bytes() >> 20,
            MAX_READ >> 20
        )));
    }
    Ok(s)
}

/// Whether pictures of `r` can be decoded (its codec is one of ours, its
/// record present, its size within bounds), as far as the index tells.
pub fn decodable(index: &Index, r: &Rendition) -> bool {
    let (w, h) = (r.description.width, r.description.height);
    index.fragments.is_none()
        && u64::from(w) * u64::from(h) <= MAX_PIXELS
        && decoder_config(index, r).is_ok()
}

/// The codec and its configuration record, from the sample entry.
fn decoder_config(index: &Index, r: &Rendition) -> Result<(Codec, Bytes), Error> {
    let stsd = stsd(index, &r.info)?;
    let entry = children(stsd.body.get(8..).unwrap_or(&[]), 0)
        .next()
        .ok_or(Error::Invalid {
            fourcc: *b"stsd",
            reason: "no sample entry",
        })??;
    let (codec, record) = match &entry.fourcc {
        b"avc1" | b"avc3" => (Codec::Avc, *b"avcC"),
        b"hvc1" | b"hev1" => (Codec::Hevc, *b"hvcC"),
        b"av01" => (Codec::Av1, *b"av1C"),
        b"vp09" => (Codec::Vp9, *b"vpcC"),
        other => {
            return Err(Error::Unsupported(format!(
                "thumbnails of '{}' video are not made (H.264, HEVC, AV1 and VP9 are)",
                crate::mp4::error::fourcc_str(other)
            )));
        }
    };
    // Visual sample entries: 78 bytes of fields, then their boxes.
    let config = children(entry.body.get(78..).unwrap_or(&[]), 0)
        .filter_map(Result::ok)
        .find(|c| c.fourcc == record)
        .ok_or(Error::Invalid {
            fourcc: entry.fourcc,
            reason: "no decoder configuration record",
        })?;
    Ok((codec, Bytes::copy_from_slice(config.body)))
}

/// Finds pictures by time in one rendition.
struct Seek<'a> {
    t: &'a Track,
    clock: Clock<'a>,
    span: Span,
    file_size: u64,
    /// The rendition's segments: each starts on a key frame, and says
    /// where the table walks stand there.
    segments: &'a [super::Segment],
}

impl<'a> Seek<'a> {
    fn new(index: &'a Index, r: &'a Rendition) -> Result<Seek<'a>, Error> {
        if index.fragments.is_some() {
            return Err(Error::Unsupported(
                "thumbnails are not made from a fragmented film yet; give it a moov with \
                 its samples (ffmpeg -movflags +faststart)"
                    .into(),
            ));
        }
        let t = index
            .tracks
            .get(r.track)
            .ok_or_else(|| Error::Missing(format!("track {}", r.id)))?;
        let (Some(first), Some(last)) = (r.segments.first(), r.segments.last()) else {
            return Err(Error::Missing(format!("track {} has no samples", r.id)));
        };
        let span = Span {
            track: r.track,
            a: first.first,
            b: last.end,
            edits: r.edits.clone(),
        };
        Ok(Seek {
            t,
            clock: Clock::new(t, &span, index.movie.timescale),
            span,
            file_size: index.file_size,
            segments: &r.segments,
        })
    }

    /// The key frame at or before `at` and, up to `most` samples in all,
    /// the frames after it to the one shown at `at`.
    fn shot(&mut self, at: f64, most: u64) -> Result<Shot, Error> {
        // The segment shown at `at`: the key frame is in it, at or after
        // its first sample, and the walks start from its marks.
        let k = self.segments.partition_point(|g| g.shown_at <= at).max(1) - 1;
        let (a, b) = match self.segments.get(k) {
            Some(g) => {
                self.clock.jump(g.marks);
                (g.first, self.span.b)
            }
            None => (self.span.a, self.span.b),
        };
        let s = self.clock.first_shown_at_or_after(at, a, b).min(b - 1);
        // Decode order and presentation order differ by a few frames:
        // step back to the last sample decoded before `at` is shown.
        let s = if s > a && self.clock.shown(s) > at {
            s - 1
        } else {
            s
        };
        let key = self.key_at_or_before(s, at, a);
        let mut wanted = key;
        let mut best = self.clock.shown(key);
        let mut after = 0;
        let end = b.min(key.saturating_add(most));
        for s in key + 1..end {
            let shown = self.clock.shown(s);
            if shown <= at && shown >= best {
                (wanted, best) = (s, shown);
                after = 0;
            } else {
                after += 1;
                // Past the reordering depth of any real stream.
                if after > 32 {
                    break;
                }
            }
        }
        let samples = self.samples(key, wanted + 1)?;
        Ok(Shot { samples, wanted })
    }

    /// The last key frame at or before sample `s`, from `a` on, whose
    /// picture is shown no later than `at` (else `a`).
    fn key_at_or_before(&mut self, s: u64, at: f64, a: u64) -> u64 {
        let Some(sync) = &self.t.stss else { return s };
        // stss numbers samples from 1.
        let mut i = sync.partition_point(|&n| u64::from(n) <= s + 1);
        while i > 0 {
            let k = u64::from(sync[i - 1]).saturating_sub(1);
            if k < a {
                break;
            }
            if self.clock.shown(k) <= at + 1e-6 || i == 1 {
                return k;
            }
            i -= 1;
        }
        a
    }

    /// Where samples `[a, b)` lie in the file.
    fn samples(&self, a: u64, b: u64) -> Result<Vec<Sample>, Error> {
        let t = self.t;
        let mut out = Vec::with_capacity(usize::try_from(b - a).unwrap_or(0));
        let mut s = a;
        for c in t.stsc.chunks_at(a) {
            if s >= b {
                break;
            }
            let base = usize::try_from(c.index)
                .ok()
                .and_then(|i| t.chunk_offsets.get(i))
                .copied()
                .ok_or(Error::Invalid {
                    fourcc: *b"stco",
                    reason: "fewer chunk offsets than stsc uses",
                })?;
            let upto = c.first_sample.saturating_add(u64::from(c.samples)).min(b);
            let mut offset = base.saturating_add(t.sizes.sum(c.first_sample, s));
            while s < upto {
                let size = write::size(t, s);
                let end = offset.saturating_add(u64::from(size));
                if size == 0 || end > self.file_size {
                    return Err(Error::Invalid {
                        fourcc: *b"stsz",
                        reason: "a sample to decode is empty or lies past the end of the file",
                    });
                }
                out.push(Sample {
                    offset,
                    size,
                    number: s,
                });
                offset = end;
                s += 1;
            }
        }
        if s < b {
            return Err(Error::Invalid {
                fourcc: *b"stsc",
                reason: "chunks hold fewer samples than stsz lists",
            });
        }
        Ok(out)
    }
}
