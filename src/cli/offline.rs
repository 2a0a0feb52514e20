//! `cut` and `info`: the engine on a file, without a server. `cut` takes the
//! window in the server's own grammar and writes exactly the bytes the
//! server would send.

use super::args::{CutArgs, StoreArgs};
use mp4_fcgi::{http, mp4, origin};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// What the engine cannot serve, with the flag that changes it.
fn explain(input: &Path, e: &mp4::Error) -> String {
    let advice = match e {
        mp4::Error::MoovTooLarge { .. } => "; raise it with --max-moov",
        _ => "",
    };
    format!("{}: {e}{advice}", input.display())
}

/// The source: a local file, or an object named by an `s3://` or
/// `http(s)://` URL (endpoint and region from the flags or the
/// environment, keys from the environment or ~/.aws, as the server's).
type Source = (Box<dyn mp4::ReadAt>, Option<tokio::runtime::Runtime>);

fn open(input: &Path, store: &StoreArgs) -> Result<Source, String> {
    let name = input.to_string_lossy();
    let Some((url, key)) = origin::split_object_url(&name) else {
        let file = std::fs::File::open(input).map_err(|e| format!("{}: {e}", input.display()))?;
        return Ok((Box::new(file), None));
    };
    let origin = origin::Origin::new(&store.settings(url)?)?;
    let rt = origin::runtime().map_err(|e| format!("{name}: {e}"))?;
    let (object, first) = rt
        .block_on(origin.open(&key, origin.chunk))
        .map_err(|f| format!("{name}: {}: {}", f.reason(), f.detail()))?;
    let reader = origin::Reader::new(rt.handle().clone(), Arc::new(origin), object, first);
    Ok((Box::new(reader), Some(rt)))
}

fn index(
    input: &Path,
    max_moov: u64,
    store: &StoreArgs,
) -> Result<(Source, Arc<mp4::Index>), String> {
    let source = open(input, store)?;
    let index = mp4::Index::build(
        source.0.as_ref(),
        &mp4::Limits {
            max_moov,
            ..Default::default()
        },
    )
    .map_err(|e| explain(input, &e))?;
    Ok((source, Arc::new(index)))
}

/// The window as the person asked for it.
fn asked(c: &CutArgs) -> String {
    match (&c.start, &c.end) {
        (None, None) => "the whole film".into(),
        (Some(s), None) => format!("start {s} s"),
        (None, Some(e)) => format!("end {e} s"),
        (Some(s), Some(e)) => format!("start {s} s, end {e} s"),
    }
}

pub fn cut(c: &CutArgs) -> Result<(), String> {
    let q = http::parse_window(http::Asked {
        start: c.start.as_deref().map(str::as_bytes),
        end: c.end.as_deref().map(str::as_bytes),
        client: c.client.as_deref().map(str::as_bytes),
        tracks: c.tracks.as_deref().map(str::as_bytes),
        lang: c.lang.as_deref().map(str::as_bytes),
    })
    .map_err(|e| e.to_string())?;
    let window = mp4::Window {
        start: q.start,
        end: q.end,
        flash: q.flash,
        tracks: q.tracks,
    };
    let style = mp4::Style {
        compress_moov: c.compress_moov && !q.flash,
    };
    let ((file, _rt), index) = index(&c.input, c.max_moov, &c.store)?;
    let file = file.as_ref();
    let layout = mp4::plan(&index, &window, &style).map_err(|e| explain(&c.input, &e))?;
    let to_stdout = c.output.as_os_str() == "-";
    let written = if to_stdout {
        // A reader that went away ends the program here (super::Stdout).
        let mut out = std::io::BufWriter::new(super::to_stdout_writer());
        layout
            .copy_to(0..layout.len(), file, &mut out)
            .and_then(|()| out.flush())
    } else {
        let out =
            std::fs::File::create(&c.output).map_err(|e| format!("{}: {e}", c.output.display()))?;
        let mut out = std::io::BufWriter::new(out);
        let r = layout
            .copy_to(0..layout.len(), file, &mut out)
            .and_then(|()| out.flush());
        if r.is_err() {
            // No half a clip left behind.
            let _ = std::fs::remove_file(&c.output);
        }
        r
    };
    written.map_err(|e| {
        if to_stdout {
            format!("standard output: {e}")
        } else {
            format!("{}: {e}", c.output.display())
        }
    })?;
    let clip = layout.clip();
    let tracks: Vec<String> = clip
        .tracks
        .iter()
        .map(|(id, h, codec)| format!("{id} {h} {codec}"))
        .collect();
    let to = if to_stdout {
        "standard output".to_string()
    } else {
        c.output.display().to_string()
    };
    let how = if q.flash {
        " (client=flash: no edit list)"
    } else {
        ""
    };
    super::say(format_args!(
        "{}: {} -> key frame at {:.3} s, shown from {:.3} s{how} for {:.3} s, tracks {}; {} bytes to {to}",
        c.input.display(),
        asked(c),
        clip.key_frame,
        clip.from,
        clip.duration,
        tracks.join(", "),
        layout.len()
    ));
    Ok(())
}

pub fn info(input: &Path, max_moov: u64, json: bool, store: &StoreArgs) -> Result<(), String> {
    let (_, index) = index(input, max_moov, store)?;
    let info = index.info();
    super::to_stdout(|out| {
        if json {
            writeln!(out, "{}", info_json(&info))
        } else {
            write!(out, "{info}")
        }
    })
}

/// A JSON string (the values here are ASCII words, but be exact anyway).
fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn info_json(i: &mp4::Info) -> String {
    let tracks: Vec<String> = i
        .tracks
        .iter()
        .map(|t| {
            format!(
                "{{\"id\":{},\"handler\":{},\"codec\":{},\"timescale\":{},\"language\":{},\
                 \"duration\":{:.6},\"samples\":{},\"sync_samples\":{}}}",
                t.id,
                quote(&t.handler),
                quote(&t.codec),
                t.timescale,
                t.language.as_deref().map_or("null".into(), quote),
                t.duration,
                t.samples,
                t.sync_samples
            )
        })
        .collect();
    format!(
        "{{\"file_size\":{},\"moov_offset\":{},\"moov_size\":{},\"fragmented\":{},\
         \"fragments\":{},\"duration\":{:.6},\"tracks\":[{}]}}",
        i.file_size,
        i.moov_offset,
        i.moov_size,
        i.fragmented,
        i.fragments,
        i.duration,
        tracks.join(",")
    )
}
