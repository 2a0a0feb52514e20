//! A film's subtitle cues: `tx3g` tracks (3GPP timed text, what ffmpeg and
//! HandBrake write from an `.srt` as `mov_text`) and `wvtt` tracks (WebVTT
//! in MP4), from the `moov`'s tables or a fragmented film's fragments, read
//! once when the film is indexed, so that WebVTT is written from the index
//! alone. A track whose text is larger than the index may hold, or cannot
//! be read, has no cues: the film is served all the same.

use super::fragmented::Fragments;
use super::index::Track;
use super::source::ReadAt;
use super::tables::frag;
use super::trak::TrakInfo;

/// Most cues one track may have (a cue every second for a day).
const MAX_CUES: u64 = 86_400;

/// Most text samples a fragmented film's fragments are walked for (their
/// empty samples included).
const MAX_WALKED: u64 = 4 * MAX_CUES;

/// Largest TTML document read (a film's subtitles in one sample).
const MAX_DOCUMENT: u64 = 1 << 20;

/// Largest text sample read (a cue is a line or two).
const MAX_SAMPLE: u32 = 16 << 10;

/// One cue: its text, and when it is shown, in seconds of the film.
#[derive(Clone, Debug, PartialEq)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// The cues of one text track: a `tx3g` track of the film, or a sidecar
/// file beside it.
#[derive(Clone, Debug, Default)]
pub struct Cues {
    pub id: u32,
    pub language: Option<[u8; 3]>,
    pub cues: Vec<Cue>,
    /// The texts are WebVTT cue text already (a sidecar's: `<i>` is
    /// markup, `&amp;` an entity); a `tx3g` sample's are plain text.
    pub markup: bool,
    /// A sidecar's BCP 47 tag, from its name (a track's is its `trak`'s).
    pub tag: Option<String>,
}

impl Cues {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.cues.capacity() * std::mem::size_of::<Cue>()
            + self.cues.iter().map(|c| c.text.capacity()).sum::<usize>()
    }
}

/// A subtitle track's codec this module reads: `tx3g` (3GPP timed text,
/// what ffmpeg and HandBrake write) and `wvtt` (WebVTT in ISO/IEC 14496-30).
pub(crate) fn is_text(t: &Track) -> bool {
    is_text_trak(&t.info)
}

fn is_text_trak(t: &TrakInfo) -> bool {
    matches!(&t.codec, b"tx3g" | b"wvtt" | b"stpp")
        && matches!(&t.handler, b"text" | b"sbtl" | b"subt")
}

/// Largest sample of a track's codec read: a TTML sample is a whole
/// document (ffmpeg writes one for the whole film); the others a cue.
fn max_sample(codec: &[u8; 4]) -> u64 {
    match codec {
        b"stpp" => MAX_DOCUMENT,
        _ => u64::from(MAX_SAMPLE),
    }
}

/// The cues of one sample shown from `start` to `stop` (seconds of the
/// film); a TTML document's cues carry their own times on the track's
/// timeline (`at_zero`: where its 0 is shown).
fn sample_cues(codec: &[u8; 4], sample: &[u8], start: f64, stop: f64, at_zero: f64) -> Vec<Cue> {
    if codec == b"stpp" {
        return super::ttml::cues(sample)
            .into_iter()
            .map(|(b, e, text)| Cue {
                start: (at_zero + b).max(0.0),
                end: at_zero + e,
                text,
            })
            .filter(|c| c.end > c.start && c.end > 0.0)
            .collect();
    }
    if !(stop > start && stop > 0.0) {
        return Vec::new();
    }
    texts(codec, sample)
        .into_iter()
        .map(|text| Cue {
            start: start.max(0.0),
            end: stop,
            text,
        })
        .collect()
}

/// A sample's cues' texts, by its track's codec.
fn texts(codec: &[u8; 4], sample: &[u8]) -> Vec<String> {
    match codec {
        b"wvtt" => wvtt(sample),
        _ => text(sample).into_iter().collect(),
    }
}

/// When a sample at decode time `dts` (track timescale) is shown, in
/// seconds of the film: the track's edit list applied.
fn shown(t: &TrakInfo, mts: u32, dts: u64) -> f64 {
    let empty = t.edit.empty as f64 / f64::from(mts.max(1));
    empty + (dts as f64 - t.edit.media_time as f64) / f64::from(t.timescale.max(1))
}

/// The cues of a fragmented film's text tracks, from its fragments: as
/// [`read`], within `max_bytes` of samples in all and [`MAX_CUES`] a track.
pub(crate) fn read_fragmented(
    src: &dyn ReadAt,
    traks: &[TrakInfo],
    fragments: &Fragments,
    moov: &[u8],
    mts: u32,
    max_bytes: u64,
) -> Vec<Cues> {
    let wanted: Vec<&TrakInfo> = traks.iter().filter(|t| is_text_trak(t)).collect();
    if wanted.is_empty() || max_bytes == 0 {
        return Vec::new();
    }
    let Ok(trex) = frag::trex_defaults(moov) else {
        return Vec::new();
    };
    let defaults = |id: u32| {
        trex.binary_search_by_key(&id, |t| t.0)
            .map_or_else(|_| frag::Defaults::default(), |i| trex[i].1)
    };
    // Per text track: its cues, the decode time of its next sample, its trak.
    let mut out: Vec<(Cues, u64, &TrakInfo)> = (wanted.iter())
        .map(|t| {
            let cues = Cues {
                id: t.id,
                language: t.language,
                markup: &t.codec == b"wvtt",
                ..Cues::default()
            };
            (cues, 0, *t)
        })
        .collect();
    let mut left = max_bytes;
    // A trun's count costs no bytes: the samples walked are bounded too.
    let mut walk = MAX_WALKED;
    let mut buf = Vec::new();
    'fragments: for f in &fragments.list {
        let Some(bytes) = fragments.moofs.get(f.moof.clone()) else {
            continue;
        };
        let Some(Ok(moof)) = super::boxes::children(bytes, 0).next() else {
            continue;
        };
        let Ok(trafs) = frag::read_trafs(&moof, f.offset, defaults) else {
            continue;
        };
        for traf in trafs {
            let Some((cues, dts, info)) = out.iter_mut().find(|c| c.0.id == traf.tfhd.track_id)
            else {
                continue;
            };
            if let Some(t) = traf.tfdt {
                *dts = t;
            }
            for (run, first) in traf.runs {
                let mut at = first;
                if u64::from(run.count) > walk {
                    log::info!("track {}: more subtitle samples than are read", info.id);
                    break 'fragments;
                }
                walk -= u64::from(run.count);
                for k in 0..run.count {
                    let s = run.sample(k, &traf.defaults);
                    let next = dts.saturating_add(u64::from(s.duration));
                    let (start, stop) = (shown(info, mts, *dts), shown(info, mts, next));
                    *dts = next;
                    let (offset, size) = (at, u64::from(s.size));
                    at = at.saturating_add(size);
                    if !(2..=max_sample(&info.codec)).contains(&size) {
                        continue;
                    }
                    if size > left || cues.cues.len() as u64 >= MAX_CUES {
                        log::info!(
                            "track {}: more subtitle text than the index keeps: the rest is not packaged",
                            info.id
                        );
                        break 'fragments;
                    }
                    left -= size;
                    // At most MAX_SAMPLE, checked above.
                    buf.resize(size as usize, 0);
                    if src.read_exact_at(&mut buf, offset).is_err() {
                        continue;
                    }
                    let zero = shown(info, mts, 0);
                    cues.cues
                        .extend(sample_cues(&info.codec, &buf, start, stop, zero));
                }
            }
        }
    }
    out.into_iter()
        .map(|(c, ..)| c)
        .filter(|c| !c.cues.is_empty())
        .collect()
}

/// The cues of every `tx3g` track, reading at most `max_bytes` of samples
/// in all (0: none read).
pub(crate) fn read(src: &dyn ReadAt, tracks: &[Track], mts: u32, max_bytes: u64) -> Vec<Cues> {
    let mut left = max_bytes;
    let mut out = Vec::new();
    for t in tracks.iter().filter(|t| is_text(t)) {
        let bytes = t.sizes.sum(0, t.sample_count);
        if t.sample_count > MAX_CUES || bytes > left {
            log::info!(
                "track {}: {} subtitle samples of {bytes} bytes in all, more than the index \
                 keeps ({MAX_CUES} cues, {left} bytes): not packaged",
                t.info.id,
                t.sample_count
            );
            continue;
        }
        left -= bytes;
        match track(src, t, mts) {
            Ok(cues) => out.push(Cues {
                id: t.info.id,
                language: t.info.language,
                cues,
                // A wvtt cue's payload is WebVTT cue text already.
                markup: &t.info.codec == b"wvtt",
                ..Cues::default()
            }),
            Err(e) => log::info!("track {}: its subtitles cannot be read: {e}", t.info.id),
        }
    }
    out
}

/// One track's cues, in order; empty samples (gaps between cues) are none.
fn track(src: &dyn ReadAt, t: &Track, mts: u32) -> std::io::Result<Vec<Cue>> {
    let shown = |dts: u64| shown(&t.info, mts, dts);
    let mut stts = t.stts.cursor();
    let mut dts = 0u64;
    let mut cues = Vec::new();
    let mut buf = Vec::new();
    let chunks = t.stsc.chunks_at(0);
    for c in chunks {
        let Some(&base) = usize::try_from(c.index)
            .ok()
            .and_then(|i| t.chunk_offsets.get(i))
        else {
            break;
        };
        let mut at = base;
        let end = c
            .first_sample
            .saturating_add(u64::from(c.samples))
            .min(t.sample_count);
        for s in c.first_sample..end {
            let size = t.sizes.sum(s, s + 1);
            let duration = u64::from(stts.value(s));
            let (start, stop) = (shown(dts), shown(dts.saturating_add(duration)));
            dts = dts.saturating_add(duration);
            if (2..=max_sample(&t.info.codec)).contains(&size) {
                // At most MAX_DOCUMENT.
                buf.resize(size as usize, 0);
                src.read_exact_at(&mut buf, at)?;
                let zero = shown(0);
                cues.extend(sample_cues(&t.info.codec, &buf, start, stop, zero));
            }
            at = at.saturating_add(size);
        }
    }
    Ok(cues)
}

/// A `tx3g` sample's text: a 16-bit length, then UTF-8 (or UTF-16 after a
/// byte-order mark); style boxes after it are dropped. `None` when empty.
pub(crate) fn text(sample: &[u8]) -> Option<String> {
    let [hi, lo, rest @ ..] = sample else {
        return None;
    };
    let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
    let body = &rest[..len];
    let s = match body {
        [0xfe, 0xff, utf16 @ ..] => {
            let units: Vec<u16> = utf16
                .chunks_exact(2)
                .map(|u| u16::from_be_bytes([u[0], u[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    let s = s.trim_end_matches(['\0', '\r', '\n']).replace("\r\n", "\n");
    (!s.trim().is_empty()).then_some(s)
}

/// A `wvtt` sample's cues (ISO/IEC 14496-30 7.4): each `vttc` box's
/// `payl` text; a `vtte` (no cue) or a cue without text gives none. The
/// settings (`sttg`) and identifier (`iden`) are dropped.
pub(crate) fn wvtt(sample: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for cue in super::boxes::children(sample, 0).map_while(Result::ok) {
        if &cue.fourcc != b"vttc" {
            continue;
        }
        let payload = super::boxes::children(cue.body, 0)
            .map_while(Result::ok)
            .find(|b| &b.fourcc == b"payl");
        if let Some(p) = payload {
            let s = String::from_utf8_lossy(p.body).replace("\r\n", "\n");
            let s = s.trim_end_matches(['\0', '\r', '\n']);
            if !s.trim().is_empty() {
                out.push(s.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(body.len() + 8)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(fourcc);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn wvtt_samples_hold_cues() {
        let cue = |text: &[u8]| {
            let mut body = boxed(b"iden", b"c1");
            body.extend(boxed(b"sttg", b"align:start"));
            body.extend(boxed(b"payl", text));
            boxed(b"vttc", &body)
        };
        let mut two = cue(b"<i>One</i> &amp; two");
        two.extend(cue(b"Second\r\nline\n"));
        assert_eq!(wvtt(&two), ["<i>One</i> &amp; two", "Second\nline"]);
        assert!(wvtt(&boxed(b"vtte", b"")).is_empty());
        assert!(wvtt(&boxed(b"vttc", &boxed(b"sttg", b"x"))).is_empty());
        // A box that claims more than the sample holds ends the walk.
        let mut bad = cue(b"kept");
        bad.extend_from_slice(&[0, 0, 1, 0, b'v', b't', b't', b'c']);
        assert_eq!(wvtt(&bad), ["kept"]);
        assert!(wvtt(b"").is_empty());
    }

    #[test]
    fn tx3g_samples_hold_text() {
        assert_eq!(text(b"\0\x05Hello"), Some("Hello".into()));
        // A style box after the text is not text.
        assert_eq!(text(b"\0\x02Hi\0\0\0\x0cstyl\0\0\0\0"), Some("Hi".into()));
        assert_eq!(text(b"\0\0"), None);
        assert_eq!(text(b"\0"), None);
        // A length past the sample: what there is.
        assert_eq!(text(b"\0\x09abc"), Some("abc".into()));
        assert_eq!(text(b"\0\x06\xfe\xff\0h\0i"), Some("hi".into()));
        assert_eq!(text(b"\0\x04a\r\nb"), Some("a\nb".into()));
    }
}
