//! One request, as stages that each return what comes next: what is
//! asked ([`super::ask`]), where the film comes from ([`super::find`]),
//! what to send ([`super::plan`], and [`super::set`] for a URL set's
//! manifest), then the answer ([`super::respond`]). Only this file calls
//! the stages; a stage waiting for a job returns it, and the request goes
//! on from the job's result ([`resume`]).

use super::answer::{Ctx, Prepared, add_cors, refuse};
use super::ask::ask;
use super::cache::{Caches, Failure};
use super::config::Config;
use super::jobs::{Done, Job, JobKey};
use super::respond::respond;
use super::walk::{Stage, Step, Walk};
use super::{find, pictures, plan, remote, seal, set};
use crate::http;
use crate::manifest::Resource;
use crate::mp4::{self, Index, Window};
use crate::package::Want;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// What became of a request.
pub enum Outcome {
    Ready(Prepared),
    /// Run `job` (or wait for the one already running under `key`), then
    /// call [`resume`].
    Wait {
        key: JobKey,
        job: Job,
        walk: Box<Walk>,
    },
}

/// Answers one request, or says which job it waits for.
pub fn handle(params: &crate::fcgi::Params, params_overflow: bool, ctx: &mut Ctx<'_>) -> Outcome {
    ctx.stats.get().requests.fetch_add(1, Relaxed);
    let opened = ask(params, params_overflow, ctx).and_then(|(mut w, first)| {
        if w.gathering() {
            set::budget(&w, &first, ctx)?;
        }
        find::film(&mut w, &first, ctx)?;
        Ok(w)
    });
    match opened {
        Ok(w) => run(Box::new(w), Stage::Find, ctx),
        Err(mut p) => {
            add_cors(&mut p, &ctx.config.cors, params.get(b"HTTP_ORIGIN"));
            ready(*p, ctx)
        }
    }
}

/// Goes on with a request whose job is done.
pub fn resume(mut w: Box<Walk>, done: &Done, ctx: &mut Ctx<'_>) -> Outcome {
    match after(&mut w, done) {
        Step::Next(stage) => run(w, stage, ctx),
        Step::Wait(key, job) => Outcome::Wait { key, job, walk: w },
        Step::Done(mut p) => {
            add_cors(&mut p, &ctx.config.cors, w.origin.as_deref());
            ready(*p, ctx)
        }
    }
}

/// Walks the stages from `stage` until the request waits or is answered.
fn run(mut w: Box<Walk>, mut stage: Stage, ctx: &mut Ctx<'_>) -> Outcome {
    loop {
        let step = match stage {
            Stage::Find => find::index(&mut w, ctx),
            Stage::Indexed(index) if w.gathering() && !w.planning => {
                set::indexed(&mut w, index, ctx)
            }
            Stage::Indexed(index) | Stage::Plan(index) => plan::plan(&mut w, index, ctx),
            Stage::Planned(_, presentation) if w.gathering() => set::gather(&mut w, presentation),
            Stage::Planned(layout, presentation) if w.seals() => {
                Step::Next(Stage::Seal(layout, presentation))
            }
            Stage::Seal(layout, presentation) => seal::seal(&w, &layout, presentation),
            Stage::Planned(layout, presentation) if w.resource.is_picture() => {
                pictures::picture(&w, &layout, presentation, ctx)
            }
            Stage::Planned(layout, _) | Stage::Answer(layout) => {
                Step::done(respond(&w, layout, ctx))
            }
        };
        match step {
            Step::Next(next) => stage = next,
            Step::Wait(key, job) => return Outcome::Wait { key, job, walk: w },
            Step::Done(mut p) => {
                add_cors(&mut p, &ctx.config.cors, w.origin.as_deref());
                return ready(*p, ctx);
            }
        }
    }
}

/// The stage a job's result leads to.
fn after(w: &mut Walk, done: &Done) -> Step {
    match done {
        Done::Index(Ok(index)) => Step::Next(Stage::Indexed(index.clone())),
        Done::Plan(Ok(built)) => Step::Next(Stage::Planned(
            built.layout.clone(),
            built.presentation.clone(),
        )),
        Done::Object(Ok((object, built))) => {
            w.set_object(Arc::new(object.clone()));
            match built {
                Some(Ok(index)) => Step::Next(Stage::Indexed(index.clone())),
                Some(Err(e)) => {
                    let mut p = refuse(http::status_for(e), &e.to_string());
                    p.note.detail = format!("object {}", w.path.display());
                    Step::done(p)
                }
                // Checked and unchanged: the cached index serves.
                None => Step::Next(Stage::Find),
            }
        }
        Done::Object(Err(f)) => {
            let mut p = refuse(f.status(), f.reason());
            p.note.detail = format!("object {}: {}", w.path.display(), f.detail());
            Step::done(p)
        }
        Done::Seal(Ok(layout)) | Done::Picture(Ok(layout)) => {
            Step::Next(Stage::Answer(layout.clone()))
        }
        Done::Index(Err(e)) | Done::Plan(Err(e)) | Done::Seal(Err(e)) | Done::Picture(Err(e)) => {
            let mut p = refuse(http::status_for(e), &e.to_string());
            p.note.detail = format!("file {}", w.path.display());
            Step::done(p)
        }
        Done::Failed(why) => {
            let mut p = refuse(500, "the server failed on this file");
            p.note.detail = format!("file {}: {why}", w.path.display());
            Step::done(p)
        }
    }
}

/// How a finished job's result is remembered: failures of the file itself
/// are, read errors are not (they may pass). Returns the indexes the cache
/// let go of, for the caller to drop off the event loop.
pub fn remember(key: JobKey, done: &Done, config: &Config, caches: &mut Caches) -> Vec<Arc<Index>> {
    match (key, done) {
        (JobKey::Object(k), Done::Object(Ok((object, built)))) => {
            let fk = remote::file_key(object);
            let now = std::time::Instant::now();
            caches
                .objects
                .put(k, Arc::new(object.clone()), now, config.origin_revalidate);
            match built {
                Some(Ok(index)) => return caches.put_index(fk, index.clone()),
                Some(Err(e)) if !matches!(e, mp4::Error::Io(_)) => caches.put_failure(
                    fk,
                    Failure {
                        status: http::status_for(e),
                        reason: e.to_string(),
                    },
                ),
                _ => {}
            }
        }
        (JobKey::Index(k), Done::Index(Ok(index))) => return caches.put_index(k, index.clone()),
        (JobKey::Index(k), Done::Index(Err(e))) if !matches!(e, mp4::Error::Io(_)) => {
            caches.put_failure(
                k,
                Failure {
                    status: http::status_for(e),
                    reason: e.to_string(),
                },
            );
        }
        (JobKey::Index(k), Done::Failed(why)) => caches.put_failure(
            k,
            Failure {
                status: 500,
                reason: why.clone(),
            },
        ),
        (JobKey::Plan(w), Done::Plan(Err(e))) if !matches!(e, mp4::Error::Io(_)) => caches
            .put_plan_failure(
                *w,
                Failure {
                    status: http::status_for(e),
                    reason: e.to_string(),
                },
            ),
        (JobKey::Plan(w), Done::Failed(why)) => caches.put_plan_failure(
            *w,
            Failure {
                status: 500,
                reason: why.clone(),
            },
        ),
        (JobKey::Plan(w), Done::Plan(Ok(built))) => {
            let want = want_from(*w);
            if let Some(p) = &built.presentation {
                caches.put_presentation(w.0, &want.window, p.clone());
            }
            // A segment may be one to encrypt: kept only once sealed; a
            // picture's plan is kept once decoded.
            let sealed =
                matches!(want.resource, Resource::Segment(..)) && !config.keys.get().is_empty();
            if !sealed && !want.resource.is_picture() {
                caches.put_layout(w.0, &want, built.layout.clone());
            }
        }
        (JobKey::Seal(w), Done::Seal(Ok(layout)))
        | (JobKey::Picture(w), Done::Picture(Ok(layout))) => {
            caches.put_layout(w.0, &want_from(*w), layout.clone());
        }
        (JobKey::Seal(w), Done::Seal(Err(e))) | (JobKey::Picture(w), Done::Picture(Err(e)))
            if !matches!(e, mp4::Error::Io(_)) =>
        {
            caches.put_plan_failure(
                *w,
                Failure {
                    status: http::status_for(e),
                    reason: e.to_string(),
                },
            );
        }
        _ => {}
    }
    Vec::new()
}

fn want_from(w: super::cache::WindowKey) -> Want {
    let value = |b: u64| (b != u64::MAX).then(|| f64::from_bits(b));
    Want {
        window: Window {
            start: value(w.1),
            end: value(w.2),
            flash: w.3,
            tracks: w.5,
        },
        resource: w.4,
    }
}

fn ready(p: Prepared, ctx: &Ctx<'_>) -> Outcome {
    if p.status >= 400 {
        ctx.stats.get().errors.fetch_add(1, Relaxed);
    }
    Outcome::Ready(p)
}
