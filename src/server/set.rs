//! A URL set's stages: its films' indexes counted against the set's
//! budget and their key frames compared before any plan, then each film
//! planned and the plans gathered into one manifest.

use super::answer::{Ctx, Prepared, refuse};
use super::cache::FileKey;
use super::find::{file_key, film};
use super::plan::INLINE_PLAN;
use super::remote;
use super::walk::{Stage, Step, Walk};
use crate::http;
use crate::mp4::Index;
use crate::mp4::cmaf::Presentation;
use crate::package;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Refuses a URL set's manifest whose films' indexes would hold more than
/// the set's budget (half of `--cache-size`), before any is built: a
/// cached index counts its bytes, a film not indexed yet its `moov` box,
/// which its index holds whole (the index is two to three times that). A
/// film's size bounds nothing useful: a 2-hour film of a gigabyte has an
/// index of about 10 MB. A film whose index is cached costs a `stat`
/// here; the others are opened as they will be to be indexed (refused
/// here if they cannot be).
pub(super) fn budget(w: &Walk, first: &[u8], ctx: &mut Ctx<'_>) -> Result<(), Box<Prepared>> {
    let budget = ctx.config.set_index_budget();
    let mut bound = 0u64;
    let names = std::iter::once(first).chain(w.set.iter().map(Vec::as_slice));
    for (i, name) in names.enumerate() {
        bound = bound.saturating_add(index_bound(name, ctx)?);
        if bound > budget {
            let mut p = refuse(413, &over_budget(bound, budget));
            p.note.detail = format!(
                "URL set, films 1 to {} ({}): known before any index build",
                i + 1,
                String::from_utf8_lossy(name)
            );
            return Err(Box::new(p));
        }
    }
    Ok(())
}

/// The refusal of a URL set whose indexes exceed the set's budget.
fn over_budget(bytes: u64, budget: u64) -> String {
    format!(
        "the URL set's films need at least {bytes} bytes of indexes; a set may use \
         at most {budget} (half of --cache-size)"
    )
}

/// At least the bytes film `name`'s index will hold: its cached index's,
/// else its `moov` box's size (0 when unknown: an object not opened yet).
fn index_bound(name: &[u8], ctx: &mut Ctx<'_>) -> Result<u64, Box<Prepared>> {
    let cached = |key: FileKey, ctx: &mut Ctx<'_>| match ctx.caches.index(key) {
        Some(Ok(index)) => Some(index.heap_bytes() as u64),
        _ => None,
    };
    if ctx.link.is_some() {
        let mut f = Walk::blank();
        film(&mut f, name, ctx)?;
        let Some(key) = f.source.object_key() else {
            return Ok(0);
        };
        let fresh = ctx.config.origin_revalidate;
        let now = std::time::Instant::now();
        let known = ctx.caches.objects.get(key, fresh, now);
        return Ok(known
            .and_then(|(o, _)| cached(remote::file_key(&o), ctx))
            .unwrap_or(0));
    }
    // Its identity, to find its index; the film itself is opened safely
    // (within --root, never blocking) when it is indexed or read.
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(name));
    if let Ok(meta) = std::fs::metadata(path)
        && meta.is_file()
        && let Some(bytes) = cached(file_key(&meta), ctx)
    {
        return Ok(bytes);
    }
    let mut f = Walk::blank();
    film(&mut f, name, ctx)?;
    Ok(f.source.moov_bound(f.key.size, moov_size))
}

/// A URL set's manifest has read film `w.file`'s index: refused at once if
/// the indexes read exceed the set's budget or the film's key frames are
/// not the first film's, before any segment plan; else on to the next
/// film's index, or, once all are read, to the plans: as jobs if together
/// they are large, so a set of small films does not hold the event loop.
pub(super) fn indexed(w: &mut Walk, index: Arc<Index>, ctx: &mut Ctx<'_>) -> Step {
    // A set's manifest would announce its films' protection, each its own
    // key: not built yet. Each film's own manifest is, and no clear one
    // goes out for an encrypted film.
    if w.lock.is_some() {
        let mut p = refuse(
            415,
            "URL sets of encrypted films are not supported yet: ask each film's own manifest",
        );
        p.note.detail = format!("URL set film {} {}", w.file, w.path.display());
        return Step::done(p);
    }
    let settings = &ctx.config.cmaf_settings();
    let bytes = w.index_bytes().saturating_add(index.heap_bytes()) as u64;
    let budget = ctx.config.set_index_budget();
    if bytes > budget {
        let mut p = refuse(413, &over_budget(bytes, budget));
        p.note.detail = format!(
            "URL set film {} {}: found at the index stage",
            w.file,
            w.path.display()
        );
        return Step::done(p);
    }
    // A film planned already shows its cuts; a clip's plan is compared
    // with the others' once they are planned.
    let cuts = match ctx.caches.presentation(w.key, &w.window) {
        Some(p) if w.window.is_whole() => Some(package::cuts(&p)),
        Some(_) => None,
        None => package::key_frame_cuts(&index, settings),
    };
    if let Some(cuts) = cuts {
        let known = match &w.cuts {
            Some((first, theirs)) => package::same_cuts((*first, theirs), (w.file, &cuts)),
            None => {
                w.cuts = Some((w.file, cuts));
                Ok(())
            }
        };
        if let Err(e) = known {
            let mut p = refuse(http::status_for(&e), &e.to_string());
            p.note.detail = format!(
                "URL set film {} {}: found at the index stage, before any segment plan",
                w.file,
                w.path.display()
            );
            return Step::done(p);
        }
    }
    if let Some(next) = w.keep_index(index) {
        return match film(w, &next, ctx) {
            Ok(()) => Step::Next(Stage::Find),
            Err(p) => Step::Done(p),
        };
    }
    w.planning = true;
    let want = w.want();
    let cost = (w.indexed.iter())
        .filter(|f| ctx.caches.presentation(f.key, &want.window).is_none())
        .map(|f| package::cost(&f.index, &want, settings))
        .fold(0usize, usize::saturating_add);
    w.plan_jobs = cost > INLINE_PLAN;
    next_plan(w)
}

/// Plans the URL set's next film whose index is read.
fn next_plan(w: &mut Walk) -> Step {
    match w.next_plan() {
        Some(index) => Step::Next(Stage::Plan(index)),
        None => Step::done(refuse(500, "no film of the URL set to plan")),
    }
}

/// Keeps a film's plan for the URL set's manifest and goes on to the
/// set's next film; once all are planned, their manifest is the answer.
pub(super) fn gather(w: &mut Walk, presentation: Option<Arc<Presentation>>) -> Step {
    let Some(plan) = presentation else {
        return Step::done(refuse(500, "no segment plan for a film of the URL set"));
    };
    w.gather(plan);
    if !w.indexed.is_empty() {
        return next_plan(w);
    }
    match package::set_manifest(&w.gathered, &w.want()) {
        Ok(layout) => Step::Next(Stage::Answer(Arc::new(layout))),
        Err(e) => {
            let mut p = refuse(http::status_for(&e), &e.to_string());
            p.note.detail = format!("URL set ending with {}", w.path.display());
            Step::done(p)
        }
    }
}

/// The size of the `moov` box, from the top-level box headers (at most 16
/// read, a few bytes each); 0 if not among them.
fn moov_size(file: &File, size: u64) -> u64 {
    let mut at = 0u64;
    for _ in 0..16 {
        let mut h = [0u8; 16];
        let n = size.saturating_sub(at).min(16) as usize;
        if n < 8 || file.read_exact_at(&mut h[..n], at).is_err() {
            return 0;
        }
        let len = match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) {
            0 => size - at,
            1 if n == 16 => {
                u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]])
            }
            1 => return 0,
            l => u64::from(l),
        };
        if len < 8 {
            return 0;
        }
        if &h[4..8] == b"moov" {
            return len.min(size - at);
        }
        at = at.saturating_add(len);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_moov_size_is_read_from_the_top_level_boxes() {
        let mut film = Vec::new();
        film.extend_from_slice(&[0, 0, 0, 16]);
        film.extend_from_slice(b"ftypisom\0\0\0\0");
        // A 64-bit mdat, then the moov at the end.
        film.extend_from_slice(&[0, 0, 0, 1]);
        film.extend_from_slice(b"mdat");
        film.extend_from_slice(&(16u64 + 100).to_be_bytes());
        film.extend_from_slice(&[7; 100]);
        film.extend_from_slice(&[0, 0, 0, 40]);
        film.extend_from_slice(b"moov");
        film.extend_from_slice(&[0; 32]);
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, &film).unwrap();
        assert_eq!(moov_size(&f, film.len() as u64), 40);
        // No moov among the boxes, or a size past the end: nothing known.
        assert_eq!(moov_size(&f, 132), 0);
        film[0..4].copy_from_slice(&[0, 0, 0, 4]);
        let mut g = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut g, &film).unwrap();
        assert_eq!(moov_size(&g, film.len() as u64), 0);
    }
}
