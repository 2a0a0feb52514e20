//! The engine's fuzz oracle, shared by the fuzz target (fuzz_targets/engine.rs)
//! and the tests that replay its corpus and its findings
//! (tests/fuzz_regressions.rs): the box walker, index, plan and header
//! write for a window taken from the input's first bytes, then the HLS/DASH
//! packager: segment plan, manifests, every init and media segment.

use mp4_fcgi::manifest;
use mp4_fcgi::mp4::cmaf::{self, Settings};
use mp4_fcgi::mp4::{self, Index, Layout, Limits, Slice, Window};
use std::sync::Arc;

/// Runs the engine on one input; panics on a broken invariant.
pub fn engine(data: &[u8]) {
    let (w, file) = data.split_at(data.len().min(3));
    let pick = |i: usize| w.get(i).map(|&b| f64::from(b) / 4.0);
    let window = Window {
        start: pick(0).filter(|s| *s < 60.0),
        end: pick(1).filter(|e| *e > 1.0),
        flash: w.get(2).is_some_and(|b| b & 1 == 1),
        tracks: mp4_fcgi::mp4::Tracks {
            video: u64::from(w.get(2).is_some_and(|b| b & 2 != 0)),
            audio: u64::from(w.get(2).map_or(0, |b| (b >> 2) & 3)),
            lang: None,
        },
    };
    let limits = Limits {
        max_moov: 1 << 20,
        ..Default::default()
    };
    if let Ok(index) = Index::build(&file.to_vec(), &limits) {
        let _ = index.info();
        let index = Arc::new(index);
        for win in [window, Window::default()] {
            if let Ok(layout) = mp4::plan(&index, &win, &Default::default()) {
                check(&layout, file.len() as u64);
            }
            let settings = Settings {
                segment_duration: 1.0 + f64::from(w.get(2).copied().unwrap_or(0) >> 4),
                fit_key_frames: w.get(2).is_some_and(|b| b & 1 == 1),
                max_segment_samples: cmaf::MAX_SEGMENT_SAMPLES,
                default_language: None,
                dash_trick_mode: w.get(2).is_some_and(|b| b & 8 != 0),
                tiles: Some(cmaf::thumbs::Tiles {
                    interval: 1.0 + f64::from(w.get(1).copied().unwrap_or(0) & 7),
                    columns: 3,
                    rows: 2,
                    width: 64,
                }),
            };
            let Ok(p) = cmaf::presentation(
                &index,
                &Window {
                    flash: false,
                    ..win
                },
                &settings,
            ) else {
                continue;
            };
            pictures(&index, &p, &settings, file);
            let parts = [manifest::Part::of(&p)];
            let _ = (
                manifest::master(&parts, ""),
                manifest::mpd(&parts, "?start=1&end=2"),
            );
            for r in &p.renditions {
                let track = manifest::TrackId { file: 0, id: r.id };
                assert!(manifest::playlist(&p, track, "", None).is_some());
                if let Ok(init) = cmaf::init(&index, &p, r.id) {
                    check(&init, file.len() as u64);
                }
                // Every sample in exactly one segment, in order.
                let mut next = r.segments.first().map_or(0, |s| s.first);
                for (k, s) in r.segments.iter().enumerate().take(64) {
                    assert_eq!(s.first, next);
                    next = s.end;
                    if let Ok(seg) = cmaf::segment(&index, &p, k as u32 + 1, r.id) {
                        check(&seg, file.len() as u64);
                        // The same segment sealed: the samples are the
                        // input's, crafted NAL lengths included.
                        if k < 4 {
                            sealed(&index, &p, k as u32 + 1, r.id, file, seg.len());
                        }
                    }
                }
            }
        }
    }
}

/// What a thumbnail and the first sprite would decode: every sample inside
/// the input, none empty, within the bounds, ending on the wanted one; the
/// manifests' previews; and the picture itself, decoded from the crafted
/// samples (an error or a JPEG, never a panic).
fn pictures(index: &Arc<Index>, p: &cmaf::Presentation, settings: &Settings, file: &[u8]) {
    use cmaf::thumbs::{self, Fit, MAX_DECODED, MAX_READ};
    let want = |resource| mp4_fcgi::package::Want {
        window: Window::default(),
        resource,
    };
    let at = (p.duration / 2.0 * 1000.0) as u32;
    for resource in [
        manifest::Resource::Thumb(
            at,
            Fit {
                width: 32,
                height: 0,
            },
        ),
        manifest::Resource::Sprite(1),
    ] {
        let Ok(shots) = mp4_fcgi::package::pictures(index, p, &want(resource), settings) else {
            continue;
        };
        assert!(shots.bytes() <= MAX_READ);
        assert!(shots.shots.len() <= thumbs::MAX_TILES as usize);
        for shot in &shots.shots {
            assert!(!shot.samples.is_empty() && shot.samples.len() as u64 <= MAX_DECODED);
            assert_eq!(shot.samples.last().map(|s| s.number), Some(shot.wanted));
            for s in &shot.samples {
                assert!(s.size > 0 && s.offset + u64::from(s.size) <= file.len() as u64);
            }
        }
        if shots.bytes() <= 1 << 16 {
            let src = file.to_vec();
            if let Ok(jpeg) = mp4_fcgi::picture::render(&shots, &src, &|| false) {
                assert!(jpeg.starts_with(b"\xff\xd8\xff"));
            }
        }
    }
    for resource in [manifest::Resource::Images, manifest::Resource::Thumbnails] {
        let _ = mp4_fcgi::package::build(
            index,
            &want(resource),
            &Default::default(),
            settings,
            None,
            None,
        );
    }
}

/// A segment encrypted under each scheme: an error or a segment as long
/// as the clear one plus its auxiliary boxes (AES-128: padded to blocks),
/// never a panic; init segments too.
fn sealed(index: &Arc<Index>, p: &cmaf::Presentation, n: u32, id: u32, file: &[u8], clear: u64) {
    use mp4_fcgi::mp4::cenc::{Protection, Scheme};
    for scheme in [Scheme::Cenc, Scheme::Cbcs, Scheme::Aes128] {
        let protection = Protection {
            scheme,
            kid: [1; 16],
            key: [2; 16],
            salt: [3; 8],
            systems: Vec::new(),
        };
        let src = file.to_vec();
        if let Ok(s) = cmaf::sealed::segment(index, p, n, id, &protection, &src) {
            match scheme {
                Scheme::Aes128 => assert_eq!(s.len(), (clear / 16 + 1) * 16),
                _ => assert!(s.len() >= clear),
            }
        }
        if let Ok(init) = cmaf::sealed::init(index, p, id, &protection) {
            check(&init, file.len() as u64);
        }
    }
}

/// Every file span lies inside the source; every generated piece can be
/// produced; the pieces add up to the length.
fn check(layout: &Layout, file_len: u64) {
    let mut total = 0;
    let mut buf = Vec::new();
    for piece in layout.slices(0..layout.len()) {
        total += piece.len();
        match piece {
            Slice::File { offset, len } => assert!(offset + len <= file_len),
            Slice::Generated { at, len } => {
                buf.resize(len.min(1 << 20), 0);
                layout.generate(at, &mut buf);
            }
            Slice::Patched { offset, len, at } => {
                assert!(offset + len as u64 <= file_len);
                buf.resize(len.min(1 << 20), 0);
                layout.patch(at, &mut buf);
            }
            Slice::Bytes(_) => {}
        }
    }
    assert_eq!(total, layout.len());
}
