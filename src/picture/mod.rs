//! Pictures of a film: the samples a [`Shots`] plan names, read, decoded by
//! the system's libavcodec, scaled by libswscale and written as one JPEG (a
//! thumbnail, or a sprite of tiles). Slow by the event loop's measure: the
//! server runs it on each worker's picture thread, one at a time.
//!
//! Everything handed to the decoder was bounded by the plan first
//! ([`crate::mp4::cmaf::thumbs`]): sample sizes, their place in the file,
//! the bytes read, the pixels decoded and the frames decoded per picture.

#[cfg(feature = "thumbnails")]
mod decode;

use crate::mp4::cmaf::thumbs::{Sample, Shots};
use crate::mp4::{Error, ReadAt};
use bytes::Bytes;

/// Whether this build makes pictures (the `thumbnails` cargo feature).
pub const BUILT: bool = cfg!(feature = "thumbnails");

/// JPEG quality (1–100) of thumbnails and sprites.
const QUALITY: u8 = 85;

/// The JPEG of `shots`, read from `src`; `stop` is asked between frames
/// and ends the work early (nobody waits any more, or it took too long).
pub fn render(shots: &Shots, src: &dyn ReadAt, stop: &dyn Fn() -> bool) -> Result<Bytes, Error> {
    #[cfg(feature = "thumbnails")]
    {
        let samples = read(shots, src)?;
        // One picture at a time in a process, whichever thread asks: the
        // worker's picture thread, or the origin's for a stored film.
        static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        if stop() {
            return Err(Error::Unsupported("the picture was given up".into()));
        }
        decode::image(shots, &samples, stop, QUALITY).map(Bytes::from)
    }
    #[cfg(not(feature = "thumbnails"))]
    {
        let _ = (shots, src, stop, QUALITY);
        Err(Error::Missing(
            "this build makes no thumbnails (cargo feature `thumbnails`)".into(),
        ))
    }
}

/// Every shot's samples, in order: one read for a shot whose samples lie
/// close together (a thumbnail's run of frames), else one per sample (a
/// sprite's key frames, minutes apart).
#[cfg_attr(not(feature = "thumbnails"), allow(dead_code))]
fn read(shots: &Shots, src: &dyn ReadAt) -> Result<Vec<Vec<Vec<u8>>>, Error> {
    let huge = || Error::Unsupported("the picture's samples are too large to read".into());
    let len = |n: u64| usize::try_from(n).map_err(|_| huge());
    let mut out = Vec::with_capacity(shots.shots.len());
    for shot in &shots.shots {
        let s: &[Sample] = &shot.samples;
        let bytes: u64 = s.iter().map(|x| u64::from(x.size)).sum();
        let lo = s.iter().map(|x| x.offset).min().unwrap_or(0);
        let hi = (s.iter())
            .map(|x| x.offset.saturating_add(u64::from(x.size)))
            .max()
            .unwrap_or(0);
        let dense = hi.saturating_sub(lo) <= bytes.saturating_mul(2).saturating_add(1 << 20);
        let mut samples = Vec::with_capacity(s.len());
        if dense && hi > lo {
            let mut range = vec![0u8; len(hi - lo)?];
            src.read_exact_at(&mut range, lo)?;
            for x in s {
                let at = len(x.offset - lo)?;
                let end = at.saturating_add(len(u64::from(x.size))?);
                samples.push(range.get(at..end).ok_or_else(huge)?.to_vec());
            }
        } else {
            for x in s {
                let mut v = vec![0u8; len(u64::from(x.size))?];
                src.read_exact_at(&mut v, x.offset)?;
                samples.push(v);
            }
        }
        out.push(samples);
    }
    Ok(out)
}

#[cfg(all(test, feature = "thumbnails"))]
mod tests {
    use super::*;
    use crate::mp4::cmaf::thumbs::{self, Fit, Tiles};
    use crate::mp4::cmaf::{self, Settings};
    use crate::mp4::{Index, Limits, Window};

    fn film(name: &str) -> (std::fs::File, Index, cmaf::Presentation) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/media")
            .join(name);
        let file = std::fs::File::open(path).unwrap();
        let index = Index::build(&file, &Limits::default()).unwrap();
        let p = cmaf::presentation(&index, &Window::default(), &Settings::fixed(4.0)).unwrap();
        (file, index, p)
    }

    #[test]
    fn a_thumbnail_and_a_sprite_are_jpegs_of_their_size() {
        for name in ["a.mp4", "hevc.mp4"] {
            let (file, index, p) = film(name);
            let shots = thumbs::thumbnail(
                &index,
                &p,
                5.5,
                Fit {
                    width: 320,
                    height: 0,
                },
            )
            .unwrap();
            let jpeg = render(&shots, &file, &|| false).unwrap();
            assert_eq!(&jpeg[..3], b"\xff\xd8\xff", "{name}");
            std::fs::write(format!("/tmp/thumb-{name}.jpg"), &jpeg).unwrap();
            let tiles = Tiles {
                interval: 2.0,
                columns: 5,
                rows: 2,
                width: 160,
            };
            let shots = thumbs::sprite(&index, &p, 1, &tiles).unwrap();
            let jpeg = render(&shots, &file, &|| false).unwrap();
            std::fs::write(format!("/tmp/sprite-{name}.jpg"), &jpeg).unwrap();
        }
    }
}
