//! What a request wants, laid out: a progressive window through the
//! engine's planner, or an HLS/DASH resource (manifest, init or media segment)
//! through the segment plan, and a URL set's films checked and presented as
//! one. Pure over the index (no file, socket or clock): the server runs it
//! on its event loop or, when costly, as a job.
#![forbid(unsafe_code)]

use crate::manifest::{self, Part, Resource};
use crate::mp4::cmaf::{self, Kind, Presentation, Settings, thumbs};
use crate::mp4::{self, Index, Layout, Slice, Window};
use crate::protect::Lock;
use bytes::Bytes;
use std::sync::Arc;

/// What a request wants of a film: a window, as one file or packaged.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Want {
    pub window: Window,
    pub resource: Resource,
}

/// How far apart (seconds) the films of a URL set may cut a segment.
const SET_TOLERANCE: f64 = 0.02;

/// A layout, and the segment plan it was cut from (to keep beside the index).
pub struct Built {
    pub layout: Arc<Layout>,
    pub presentation: Option<Arc<Presentation>>,
}

fn text(s: String) -> Layout {
    Layout::from_slices([Slice::Bytes(Bytes::from(s))])
}

/// About how many bytes of work laying out `want` takes: the index's tables,
/// plus a segment plan's segments for packaged outputs.
pub fn cost(index: &Index, want: &Want, settings: &Settings) -> usize {
    let plan = match want.resource {
        Resource::Progressive => 0,
        _ => cmaf::plan_cost(index, &want.window, settings),
    };
    index
        .heap_bytes()
        .saturating_add(plan)
        .saturating_add(keys_cost(index, want))
}

/// About how many bytes of work listing the film's key frames takes for
/// `want` (the outputs that list them: the master's I-frame streams, the
/// I-frame playlists); 0 for the others. Counted even when the segment
/// plan is kept.
pub fn keys_cost(index: &Index, want: &Want) -> usize {
    match want.resource {
        Resource::Master | Resource::Mpd | Resource::IFrames(_) | Resource::KeyFrame(..) => {
            cmaf::keys::cost(index)
        }
        _ => 0,
    }
}

/// Lays out `want`; `known` is the window's segment plan if it is cached.
/// A film under `lock` has protected init segments and manifests that say
/// so; its media segments are laid out clear here, and encrypted by
/// [`mp4::cmaf::sealed::segment`], which reads their samples.
pub fn build(
    index: &Arc<Index>,
    want: &Want,
    style: &mp4::Style,
    settings: &Settings,
    known: Option<Arc<Presentation>>,
    lock: Option<&Lock>,
) -> Result<Built, mp4::Error> {
    if want.resource == Resource::Key {
        let key = lock
            .filter(|l| l.serve_key)
            .map(|l| Bytes::copy_from_slice(&l.protection.key))
            .ok_or_else(|| mp4::Error::Missing("the film has no key to hand out".into()))?;
        return Ok(Built {
            layout: Arc::new(Layout::from_slices([Slice::Bytes(key)])),
            presentation: None,
        });
    }
    if want.resource == Resource::Progressive {
        return Ok(Built {
            layout: Arc::new(mp4::plan(index, &want.window, style)?),
            presentation: None,
        });
    }
    let p = match known {
        Some(p) => p,
        None => Arc::new(cmaf::presentation(index, &want.window, settings)?),
    };
    let query = manifest::query(&want.window);
    let drm = lock.map(|l| manifest::drm::Drm {
        protection: &l.protection,
        key_uri: l.key_uri.as_deref(),
        key_format: l.key_format.as_deref(),
        license_url: l.license_url.as_deref(),
    });
    // Key frames are listed for the outputs that show them; a protected
    // film has none (its key frame segments would need sealing too).
    let keys = match want.resource {
        Resource::Master if lock.is_none() => cmaf::keys::all(index, &p),
        Resource::Mpd if lock.is_none() && settings.dash_trick_mode => cmaf::keys::all(index, &p),
        Resource::IFrames(_) | Resource::KeyFrame(..) => {
            if lock.is_some() {
                return Err(mp4::Error::Unsupported(
                    "the film is encrypted: it has no I-frame playlists or trick-mode \
                     segments"
                        .into(),
                ));
            }
            Vec::new()
        }
        _ => Vec::new(),
    };
    let images = images(index, &p, settings, lock);
    let one = [Part {
        file: 0,
        presentation: &p,
        drm,
        cues: index.cues(),
        keys: &keys,
        images,
    }];
    let missing = |t: manifest::TrackId| {
        mp4::Error::Missing(format!("the film has no video or audio track {}", t.id))
    };
    let layout = match want.resource {
        Resource::Master => text(manifest::master(&one, &query)),
        Resource::Mpd => text(manifest::mpd(&one, &query)),
        Resource::Playlist(t) => {
            text(manifest::playlist(&p, t, &query, drm.as_ref()).ok_or_else(|| missing(t))?)
        }
        Resource::Init(t) => match lock {
            Some(l) => cmaf::sealed::init(index, &p, t.id, &l.protection)?,
            None => cmaf::init(index, &p, t.id)?,
        },
        Resource::Segment(n, t) => cmaf::segment(index, &p, n, t.id)?,
        Resource::IFrames(t) => {
            let keys = cmaf::keys::keys(index, &p, t.id)?;
            if keys.frames.is_empty() {
                return Err(mp4::Error::Missing(format!(
                    "track {} has no key frame in the presentation",
                    t.id
                )));
            }
            text(manifest::i_frames(&keys, t, &query))
        }
        Resource::KeyFrame(n, t) => cmaf::keys::segment(index, &p, n, t.id)?,
        Resource::Subtitles(t) => {
            text(manifest::webvtt::playlist(&p, t, &query).ok_or_else(|| no_subtitles(t))?)
        }
        Resource::Cues(n, t) => {
            let cues = subtitles(index, &p, t)?;
            let vtt = manifest::webvtt::segment(&p, cues, n).ok_or_else(|| {
                mp4::Error::Missing(format!("subtitle track {} has no segment {n}", t.id))
            })?;
            text(vtt)
        }
        Resource::Vtt(t) => text(manifest::webvtt::whole(&p, subtitles(index, &p, t)?)),
        Resource::Images => text(manifest::images::playlist(
            &images.ok_or_else(no_images)?,
            &query,
        )),
        Resource::Thumbnails => text(manifest::images::vtt(
            &images.ok_or_else(no_images)?,
            &query,
        )),
        // Decoded by [`crate::picture::render`] from what [`pictures`] plans.
        Resource::Thumb(..) | Resource::Sprite(_) => Layout::with_index(index.clone()),
        // Laid out above.
        Resource::Progressive | Resource::Key => Layout::new(),
    };
    Ok(Built {
        layout: Arc::new(layout),
        presentation: Some(p),
    })
}

/// The seek-bar previews of `p`, if they are set, can be made and the
/// film is clear (its pictures would show what its keys protect).
fn images(
    index: &Index,
    p: &Presentation,
    settings: &Settings,
    lock: Option<&Lock>,
) -> Option<manifest::images::Images> {
    let tiles = settings.tiles?;
    if lock.is_some() || !crate::picture::BUILT {
        return None;
    }
    let r = thumbs::video(p).ok()?;
    if !thumbs::decodable(index, r) || tiles.count(p.duration) > thumbs::MAX_TILE_COUNT {
        return None;
    }
    Some(manifest::images::Images {
        tiles,
        tile: thumbs::tile_size(r, thumbs::turn(index, r), &tiles).ok()?,
        sprites: tiles.sprites(p.duration),
        duration: p.duration,
    })
}

fn no_images() -> mp4::Error {
    mp4::Error::Missing("the film has no seek-bar previews".into())
}

/// What to decode for a thumbnail or a sprite of `want`, over its
/// presentation `p`.
pub fn pictures(
    index: &Index,
    p: &Presentation,
    want: &Want,
    settings: &Settings,
) -> Result<thumbs::Shots, mp4::Error> {
    if !crate::picture::BUILT {
        return Err(mp4::Error::Missing(
            "this build makes no thumbnails (cargo feature `thumbnails`)".into(),
        ));
    }
    match want.resource {
        Resource::Thumb(ms, fit) => thumbs::thumbnail(index, p, f64::from(ms) / 1000.0, fit),
        Resource::Sprite(n) => {
            let images = images(index, p, settings, None).ok_or_else(no_images)?;
            thumbs::sprite(index, p, n, &images.tiles)
        }
        _ => Err(mp4::Error::Missing("not a picture".into())),
    }
}

fn no_subtitles(t: manifest::TrackId) -> mp4::Error {
    mp4::Error::Missing(format!("the film has no subtitle track {}", t.id))
}

/// The cues of subtitle track `t` of the presentation.
fn subtitles<'a>(
    index: &'a Index,
    p: &Presentation,
    t: manifest::TrackId,
) -> Result<&'a mp4::cues::Cues, mp4::Error> {
    p.texts
        .iter()
        .find(|x| x.id == t.id)
        .ok_or_else(|| no_subtitles(t))?;
    (index.cues().iter())
        .find(|c| c.id == t.id)
        .ok_or_else(|| no_subtitles(t))
}

/// Whether two films of a URL set (numbered from 1) start their segments
/// at the same times; else where they first differ.
pub fn same_cuts(a: (u8, &[f64]), b: (u8, &[f64])) -> Result<(), mp4::Error> {
    let ((fa, first), (fb, other)) = (a, b);
    let at = (0..first.len().max(other.len())).find(|&k| match (first.get(k), other.get(k)) {
        (Some(a), Some(b)) => (a - b).abs() > SET_TOLERANCE,
        _ => true,
    });
    let Some(k) = at else { return Ok(()) };
    let show = |v: Option<&f64>| v.map_or("the end".into(), |t| format!("{t:.3} s"));
    Err(mp4::Error::Unsupported(format!(
        "the films of the URL set do not have key frames at the same times: \
         film {fa} cuts segment {} at {}, film {fb} at {}; encode them with one \
         key frame interval",
        k + 1,
        show(first.get(k)),
        show(other.get(k))
    )))
}

/// Where a plan's video segments start (seconds); empty: no video.
pub fn cuts(p: &Presentation) -> Vec<f64> {
    (p.renditions.iter())
        .find(|r| r.kind == Kind::Video)
        .map(|r| r.segments.iter().map(|s| s.shown_at).collect())
        .unwrap_or_default()
}

/// Where the segments of the whole film will start (seconds), from its
/// index alone (`cmaf::key_frame_cuts`): a URL set's films are compared so
/// before any plan; the plans are compared again (clips, and the films not
/// predicted here). `None`: not predicted (a fragmented film, or one the
/// plan will refuse with its reason); empty: no video.
pub fn key_frame_cuts(index: &Index, settings: &Settings) -> Option<Vec<f64>> {
    cmaf::key_frame_cuts(index, settings).ok().flatten()
}

/// The master playlist or MPD of a URL set's films, in order. Their video
/// must be cut at the same times, or players switching between them would
/// skip or repeat.
pub fn set_manifest(films: &[Arc<Presentation>], want: &Want) -> Result<Layout, mp4::Error> {
    let first = films.first().map(|p| cuts(p)).unwrap_or_default();
    for (i, p) in films.iter().enumerate().skip(1) {
        let n = u8::try_from(i + 1).unwrap_or(u8::MAX);
        same_cuts((1, &first), (n, &cuts(p)))?;
    }
    let parts: Vec<Part<'_>> = (films.iter().enumerate())
        .map(|(i, p)| Part {
            file: u8::try_from(i + 1).unwrap_or(u8::MAX),
            presentation: p,
            drm: None,
            cues: &[],
            // A URL set's films announce no I-frame outputs or previews.
            keys: &[],
            images: None,
        })
        .collect();
    let query = manifest::query(&want.window);
    Ok(match want.resource {
        Resource::Mpd => text(manifest::mpd(&parts, &query)),
        _ => text(manifest::master(&parts, &query)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::Window;

    /// The cuts predicted from the index are the plan's, for every film of
    /// the test media and several targets.
    #[test]
    fn key_frame_cuts_are_the_plans() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/media");
        let mut predicted = 0;
        for name in [
            "a.mp4",
            "a_faststart.mp4",
            "hevc.mp4",
            "two_audio.mp4",
            "frag.mp4",
            "audio.m4a",
        ] {
            let file = std::fs::File::open(dir.join(name)).unwrap();
            let index = Index::build(&file, &mp4::Limits::default()).unwrap();
            for target in [1.0, 2.0, 3.0, 4.5, 6.0, 10.0] {
                let settings = Settings::fixed(target);
                let Some(cuts) = key_frame_cuts(&index, &settings) else {
                    continue;
                };
                let p = cmaf::presentation(&index, &Window::default(), &settings).unwrap();
                assert_eq!(cuts, super::cuts(&p), "{name} at {target} s");
                predicted += 1;
            }
        }
        assert!(predicted >= 24, "{predicted}");
    }
}
