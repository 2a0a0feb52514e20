//! The second stage: where the film comes from. Opens the file (or names
//! the object) and finds its index: in the caches, or as a job that
//! builds it. What the film is, the rest asks its [`Source`].

use super::answer::{Ctx, Prepared, refuse};
use super::cache::FileKey;
use super::local::{io_refusal, open};
use super::remote;
use super::source::{Source, open_job};
use super::walk::{Stage, Step, Walk};
use crate::protect::Lock;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::UNIX_EPOCH;

/// Opens the film `name` (a file) or names it (an object) for `w`.
pub(super) fn film(w: &mut Walk, name: &[u8], ctx: &Ctx<'_>) -> Result<(), Box<Prepared>> {
    if let Some(link) = ctx.link {
        let key = link.origin.key(name).map_err(|e| {
            let mut p = refuse(e.status, &e.reason);
            p.note.detail = format!("path {}", String::from_utf8_lossy(name));
            Box::new(p)
        })?;
        w.lock = lock(&ctx.config.keys, &key);
        w.path = PathBuf::from(&key);
        w.opened = PathBuf::from(&key);
        w.source = Source::object(key.into());
        return Ok(());
    }
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name));
    let (file, meta, opened) = open(&path, ctx.config.root.as_deref()).map_err(|r| {
        let mut p = refuse(r.status, &r.reason);
        // The client is never told server paths; the log is.
        p.note.detail = format!("file {}", path.display());
        p
    })?;
    w.key = file_key(&meta);
    w.modified = meta.modified().unwrap_or(UNIX_EPOCH);
    // Key file patterns name films under --root (else by their path).
    let name = match &ctx.config.root {
        Some(root) => opened.strip_prefix(root).unwrap_or(&opened),
        None => &opened,
    };
    w.lock = lock(&ctx.config.keys, &name.to_string_lossy());
    w.path = path;
    w.opened = opened;
    w.source = Source::file(file);
    Ok(())
}

/// What protects the film named `name`, per the key file.
fn lock(keys: &super::config::KeyFile, name: &str) -> Option<Arc<Lock>> {
    keys.get().lock(name).map(Arc::new)
}

/// The film's layout from its cache (then straight to the answer), else
/// its index: from the index cache, or a job that builds it. An object
/// not confirmed lately is opened or revalidated first.
pub(super) fn index(w: &mut Walk, ctx: &mut Ctx<'_>) -> Step {
    if let Some(key) = w.source.unconfirmed() {
        let fresh = ctx.config.origin_revalidate;
        let key = key.clone();
        match ctx
            .caches
            .objects
            .get(&key, fresh, std::time::Instant::now())
        {
            Some((object, true)) => w.set_object(object),
            // Known but not confirmed lately: a conditional request first,
            // unless the index is gone anyway (opening it again tells).
            found => {
                let known = found
                    .map(|(o, _)| o)
                    .filter(|o| ctx.caches.retains(remote::file_key(o)))
                    .map(|o| (*o).clone());
                w.cache = if known.is_some() {
                    "object revalidated"
                } else {
                    "object opened"
                };
                let (key, job) = open_job(key, known, ctx.limits);
                return Step::Wait(key, job);
            }
        }
    }
    let c = ctx.stats.get();
    // A URL set's manifest is made of its films' plans, never cached whole.
    if let Some(layout) = (!w.gathering())
        .then(|| ctx.caches.layout(w.key, &w.want()))
        .flatten()
    {
        c.layout_hits.fetch_add(1, Relaxed);
        w.cache = "layout cache hit";
        return Step::Next(Stage::Answer(layout));
    }
    c.layout_misses.fetch_add(1, Relaxed);
    match ctx.caches.index(w.key) {
        Some(Ok(index)) => {
            c.index_hits.fetch_add(1, Relaxed);
            w.cache = "index cache hit, layout cache miss";
            Step::Next(Stage::Indexed(index))
        }
        Some(Err(f)) => {
            c.index_hits.fetch_add(1, Relaxed);
            let mut p = refuse(f.status, &f.reason);
            p.note.detail = format!("file {}, failure cached", w.path.display());
            Step::done(p)
        }
        None => {
            c.index_misses.fetch_add(1, Relaxed);
            w.cache = "index cache miss";
            let beside = super::sidecars::Beside {
                film: w.opened.clone(),
                root: ctx.config.root.clone(),
            };
            match w.source.index_job(w.key, ctx.limits, Some(beside)) {
                Ok((key, job)) => Step::Wait(key, job),
                Err(e) => {
                    let r = io_refusal(&e);
                    Step::done(refuse(r.status, &r.reason))
                }
            }
        }
    }
}

/// A file's identity, from its metadata.
pub(super) fn file_key(meta: &std::fs::Metadata) -> FileKey {
    FileKey {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec(),
    }
}
