//! libavcodec through `ffmpeg-next`: one decoder per image, one thread,
//! its pixels bounded; each picture scaled to its tile by libswscale and
//! the tiles written as one JPEG.

use crate::mp4::Error;
use crate::mp4::cmaf::thumbs::{Codec, MAX_PIXELS, Shot, Shots, Turn};
use ff::codec::Id;
use ff::format::Pixel;
use ff::software::scaling;
use ffmpeg_next as ff;
use std::sync::Once;

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unsupported(format!("the picture could not be made: {what} ({e})"))
}

/// The image of `shots` from their samples (as [`super::read`] gives them).
pub(super) fn image(
    shots: &Shots,
    samples: &[Vec<Vec<u8>>],
    stop: &dyn Fn() -> bool,
    quality: u8,
) -> Result<Vec<u8>, Error> {
    let (w, h) = shots.size;
    let (width, height) = (
        w.saturating_mul(shots.columns),
        h.saturating_mul(shots.rows),
    );
    let (Ok(width16), Ok(height16)) = (u16::try_from(width), u16::try_from(height)) else {
        return Err(Error::Unsupported("the image would be too large".into()));
    };
    let row = usize::try_from(width).unwrap_or(0) * 3;
    // Tiles past the film's end stay black.
    let mut canvas = vec![0u8; row * usize::try_from(height).unwrap_or(0)];
    let mut decoder = open(shots)?;
    for (k, (shot, data)) in shots.shots.iter().zip(samples).enumerate() {
        let k = u32::try_from(k).unwrap_or(u32::MAX);
        let (col, line) = (k % shots.columns.max(1), k / shots.columns.max(1));
        if line >= shots.rows {
            break;
        }
        let frame = picture(&mut decoder, shot, data, stop)?;
        // Scaled as stored, then turned into its place.
        let scaled = if shots.turn.quarter() { (h, w) } else { (w, h) };
        let rgb = scale(&frame, scaled)?;
        let at = (
            usize::try_from(col * w).unwrap_or(0),
            usize::try_from(line * h).unwrap_or(0),
        );
        place(&rgb, scaled, shots.turn, &mut canvas, row, at)?;
    }
    let mut out = Vec::with_capacity(canvas.len() / 8);
    let mut jpeg = jpeg_encoder::Encoder::new(&mut out, quality);
    // Averaged chroma: small pictures lose visibly with one pixel's.
    jpeg.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    jpeg.encode(&canvas, width16, height16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| failed("JPEG", e))?;
    Ok(out)
}

/// Copies the RGB picture `rgb` (`w`x`h` as scaled) into `canvas` (rows
/// of `row` bytes) with its top-left at `at`, turned.
fn place(
    rgb: &ff::frame::Video,
    (w, h): (u32, u32),
    turn: Turn,
    canvas: &mut [u8],
    row: usize,
    (x0, y0): (usize, usize),
) -> Result<(), Error> {
    let (w, h) = (
        usize::try_from(w).unwrap_or(0),
        usize::try_from(h).unwrap_or(0),
    );
    let (stride, plane) = (rgb.stride(0), rgb.data(0));
    let short = || Error::Unsupported("a scaled picture is short".into());
    for y in 0..h {
        let line = plane
            .get(y * stride..y * stride + w * 3)
            .ok_or_else(short)?;
        if turn == Turn::None {
            let to = (y0 + y) * row + x0 * 3;
            canvas
                .get_mut(to..to + w * 3)
                .ok_or_else(short)?
                .copy_from_slice(line);
            continue;
        }
        for (x, px) in line.chunks_exact(3).enumerate() {
            // Where source pixel (x, y) lands in the turned picture.
            let (tx, ty) = match turn {
                Turn::Right => (h - 1 - y, x),
                Turn::Left => (y, w - 1 - x),
                _ => (w - 1 - x, h - 1 - y),
            };
            let to = (y0 + ty) * row + (x0 + tx) * 3;
            canvas
                .get_mut(to..to + 3)
                .ok_or_else(short)?
                .copy_from_slice(px);
        }
    }
    Ok(())
}

/// A decoder for the track, its configuration record given.
fn open(shots: &Shots) -> Result<ff::decoder::Video, Error> {
    static QUIET: Once = Once::new();
    // A broken film would fill the log with the decoder's own lines; what
    // failed is said once, in ours.
    QUIET.call_once(|| ff::util::log::set_level(ff::util::log::Level::Quiet));
    let id = match shots.codec {
        Codec::Avc => Id::H264,
        Codec::Hevc => Id::HEVC,
        Codec::Av1 => Id::AV1,
        Codec::Vp9 => Id::VP9,
    };
    let codec = ff::decoder::find(id).ok_or_else(|| {
        Error::Unsupported(format!(
            "this system's libavcodec has no {:?} decoder",
            shots.codec
        ))
    })?;
    let mut ctx = ff::codec::Context::new_with_codec(codec);
    // VP9 needs no record; the others carry their parameter sets in it.
    let record: &[u8] = match shots.codec {
        Codec::Vp9 => &[],
        _ => &shots.config,
    };
    let size = i32::try_from(record.len()).map_err(|e| failed("record", e))?;
    let padded = record.len() + ff::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
    // SAFETY: the context is ours and not yet opened; extradata is given a
    // zeroed, padded buffer from av_mallocz, which the context frees.
    unsafe {
        let c = ctx.as_mut_ptr();
        if !record.is_empty() {
            let buf = ff::ffi::av_mallocz(padded).cast::<u8>();
            if buf.is_null() {
                return Err(failed("memory", "av_mallocz"));
            }
            std::ptr::copy_nonoverlapping(record.as_ptr(), buf, record.len());
            (*c).extradata = buf;
            (*c).extradata_size = size;
        }
        (*c).thread_count = 1;
        (*c).max_pixels = i64::try_from(MAX_PIXELS).unwrap_or(i64::MAX);
        (*c).width = i32::try_from(shots.coded.0).unwrap_or(0);
        (*c).height = i32::try_from(shots.coded.1).unwrap_or(0);
    }
    ctx.decoder()
        .video()
        .map_err(|e| failed("opening the decoder", e))
}

/// Decodes one shot's samples and returns the picture of its wanted
/// sample (else the last one decoded before it).
fn picture(
    decoder: &mut ff::decoder::Video,
    shot: &Shot,
    data: &[Vec<u8>],
    stop: &dyn Fn() -> bool,
) -> Result<ff::frame::Video, Error> {
    decoder.flush();
    let wanted = i64::try_from(shot.wanted).unwrap_or(i64::MAX);
    let mut kept: Option<ff::frame::Video> = None;
    for (i, (sample, bytes)) in shot.samples.iter().zip(data).enumerate() {
        if stop() {
            return Err(Error::Unsupported(
                "decoding the picture took too long".into(),
            ));
        }
        // Frames nothing refers to are decoded only if they are the one
        // wanted: with B-frames, about half the work.
        decoder.skip_frame(if sample.number == shot.wanted {
            ff::Discard::Default
        } else {
            ff::Discard::NonReference
        });
        let mut packet = ff::Packet::copy(bytes);
        packet.set_pts(i64::try_from(sample.number).ok());
        packet.set_dts(i64::try_from(sample.number).ok());
        if i == 0 {
            packet.set_flags(ff::packet::Flags::KEY);
        }
        // A damaged sample is skipped: the ones after it may still decode.
        let _ = decoder.send_packet(&packet);
        if drain(decoder, wanted, &mut kept) {
            return kept.ok_or_else(|| failed("decoding", "no frame"));
        }
    }
    let _ = decoder.send_eof();
    drain(decoder, wanted, &mut kept);
    kept.ok_or_else(|| {
        Error::Unsupported("no picture could be decoded from the video's key frame there".into())
    })
}

/// Takes the frames the decoder has ready; true once the wanted one came.
fn drain(
    decoder: &mut ff::decoder::Video,
    wanted: i64,
    kept: &mut Option<ff::frame::Video>,
) -> bool {
    loop {
        let mut frame = ff::frame::Video::empty();
        if decoder.receive_frame(&mut frame).is_err() {
            return false;
        }
        let pts = frame.pts().or(frame.timestamp());
        match pts {
            Some(p) if p == wanted => {
                *kept = Some(frame);
                return true;
            }
            Some(p) if p > wanted && kept.is_some() => {}
            _ => *kept = Some(frame),
        }
    }
}

/// The picture as RGB at `size`.
fn scale(frame: &ff::frame::Video, (w, h): (u32, u32)) -> Result<ff::frame::Video, Error> {
    let pixels = u64::from(frame.width()) * u64::from(frame.height());
    if pixels == 0 || pixels > MAX_PIXELS {
        return Err(failed(
            "size",
            format!("{}x{}", frame.width(), frame.height()),
        ));
    }
    let mut scaler = scaling::Context::get(
        frame.format(),
        frame.width(),
        frame.height(),
        Pixel::RGB24,
        w,
        h,
        scaling::Flags::BICUBIC,
    )
    .map_err(|e| failed("scaling", e))?;
    // The frame's own matrix and range, as ffmpeg converts it (BT.601
    // when it says none).
    let matrix = match frame.color_space() {
        ff::color::Space::BT709 => ff::ffi::SWS_CS_ITU709,
        ff::color::Space::FCC => ff::ffi::SWS_CS_FCC,
        ff::color::Space::SMPTE240M => ff::ffi::SWS_CS_SMPTE240M,
        ff::color::Space::BT2020NCL | ff::color::Space::BT2020CL => ff::ffi::SWS_CS_BT2020,
        _ => ff::ffi::SWS_CS_DEFAULT,
    };
    let full = i32::from(frame.color_range() == ff::color::Range::JPEG);
    // SAFETY: the context is ours and valid; the coefficient tables are
    // libswscale's own statics.
    unsafe {
        ff::ffi::sws_setColorspaceDetails(
            scaler.as_mut_ptr(),
            ff::ffi::sws_getCoefficients(matrix),
            full,
            ff::ffi::sws_getCoefficients(ff::ffi::SWS_CS_DEFAULT),
            1,
            0,
            1 << 16,
            1 << 16,
        );
    }
    let mut rgb = ff::frame::Video::empty();
    scaler
        .run(frame, &mut rgb)
        .map_err(|e| failed("scaling", e))?;
    Ok(rgb)
}
