//! One request: FastCGI params in, a response head and a body plan out.
//! The glue between the rooms: `http` decides, `mp4` plans, this opens
//! files. What would hold the event loop (an index build, the plan of a
//! large index) becomes a job; the request resumes when it is done.

use super::answer::refuse;
use super::answer::{Ctx, Prepared};
use super::cache::{Caches, Failure, window_key};
use super::config::Config;
use super::jobs::{Done, Job, JobKey};
use super::local::Refusal;
use super::remote;
pub use super::request::Resume;
use super::request::{film, over_budget, start};
use super::source::open_job;
use crate::fcgi::Params;
use crate::http::{self, Body, Entity, Piece, RequestHead, Response};
use crate::manifest::Resource;
use crate::mp4::cmaf::Presentation;
use crate::mp4::{self, Index, Layout, Window};
use crate::origin::Object;
use crate::package::{self, Built, Want};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

/// Indexes larger than this are planned off the event loop.
const INLINE_PLAN: usize = 4 << 20;

/// What became of a request.
pub enum Outcome {
    Ready(Prepared),
    /// Run `job` (or wait for the one already running under `key`), then
    /// call [`resume`].
    Wait {
        key: JobKey,
        job: Job,
        resume: Box<Resume>,
    },
}

/// Hands a one-range body to the front server as `X-Sendfile2` pieces.
/// Multipart bodies (their boundaries live nowhere on disk) stream as usual.
fn offload(
    o: &mut super::offload::Offload,
    response: &mut Response,
    r: &Resume,
    layout: &Arc<Layout>,
) {
    let Body::Entity(pieces) = &response.body else {
        return;
    };
    let [Piece::Range(range)] = pieces.as_slice() else {
        return;
    };
    if range.is_empty() {
        return;
    }
    let Some(file) = r.source.local_file() else {
        return;
    };
    if let Some(v) = o.header_value(&r.opened, file, r.key, &r.window, layout, range.clone()) {
        response.headers.push(("X-Sendfile2", v));
        response.body = Body::Empty;
    }
}

/// Answers one request, or says which job it waits for.
pub fn handle(params: &Params, params_overflow: bool, ctx: &mut Ctx<'_>) -> Outcome {
    ctx.stats.get().requests.fetch_add(1, Relaxed);
    match start(params, params_overflow, ctx) {
        Ok(resume) => proceed(resume, ctx),
        Err(p) => ready(*p, ctx),
    }
}

/// Goes on with a request whose job is done.
pub fn resume(r: Box<Resume>, done: &Done, ctx: &mut Ctx<'_>) -> Outcome {
    match done {
        Done::Index(Ok(index)) => plan(*r, index.clone(), ctx),
        Done::Plan(Ok(built)) => finish(*r, built.layout.clone(), built.presentation.clone(), ctx),
        Done::Object(Ok((object, built))) => {
            let mut r = r;
            r.set_object(Arc::new(object.clone()));
            match built {
                Some(Ok(index)) => plan(*r, index.clone(), ctx),
                Some(Err(e)) => {
                    let mut p = refuse(http::status_for(e), &e.to_string());
                    p.note.detail = format!("object {}", r.path.display());
                    ready(p, ctx)
                }
                // Checked and unchanged: the cached index serves.
                None => proceed(*r, ctx),
            }
        }
        Done::Object(Err(f)) => {
            let mut p = refuse(f.status(), f.reason());
            p.note.detail = format!("object {}: {}", r.path.display(), f.detail());
            ready(p, ctx)
        }
        Done::Index(Err(e)) | Done::Plan(Err(e)) => {
            let mut p = refuse(http::status_for(e), &e.to_string());
            p.note.detail = format!("file {}", r.path.display());
            ready(p, ctx)
        }
        Done::Failed(why) => {
            let mut p = refuse(500, "the server failed on this file");
            p.note.detail = format!("file {}: {why}", r.path.display());
            ready(p, ctx)
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
                w,
                Failure {
                    status: http::status_for(e),
                    reason: e.to_string(),
                },
            ),
        (JobKey::Plan(w), Done::Failed(why)) => caches.put_plan_failure(
            w,
            Failure {
                status: 500,
                reason: why.clone(),
            },
        ),
        (JobKey::Plan(w), Done::Plan(Ok(built))) => {
            let want = want_from(w);
            if let Some(p) = &built.presentation {
                caches.put_presentation(w.0, &want.window, p.clone());
            }
            caches.put_layout(w.0, &want, built.layout.clone());
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

/// From the layout cache, the index cache, or a job that builds the index.
fn proceed(mut r: Resume, ctx: &mut Ctx<'_>) -> Outcome {
    if let Some(key) = r.source.unconfirmed() {
        let fresh = ctx.config.origin_revalidate;
        let key = key.clone();
        match ctx
            .caches
            .objects
            .get(&key, fresh, std::time::Instant::now())
        {
            Some((object, true)) => r.set_object(object),
            // Known but not confirmed lately: a conditional request first,
            // unless the index is gone anyway (opening it again tells).
            found => {
                let known = found
                    .map(|(o, _)| o)
                    .filter(|o| ctx.caches.retains(remote::file_key(o)))
                    .map(|o| (*o).clone());
                r.cache = if known.is_some() {
                    "object revalidated"
                } else {
                    "object opened"
                };
                return open_object(key, known, r, ctx);
            }
        }
    }
    let c = ctx.stats.get();
    // A URL set's manifest is made of its films' plans, never cached whole.
    if let Some(layout) = (!r.gathering())
        .then(|| ctx.caches.layout(r.key, &r.want()))
        .flatten()
    {
        c.layout_hits.fetch_add(1, Relaxed);
        r.cache = "layout cache hit";
        let p = respond(&r, layout, ctx);
        return ready(p, ctx);
    }
    c.layout_misses.fetch_add(1, Relaxed);
    match ctx.caches.index(r.key) {
        Some(Ok(index)) => {
            c.index_hits.fetch_add(1, Relaxed);
            r.cache = "index cache hit, layout cache miss";
            plan(r, index, ctx)
        }
        Some(Err(f)) => {
            c.index_hits.fetch_add(1, Relaxed);
            let mut p = refuse(f.status, &f.reason);
            p.note.detail = format!("file {}, failure cached", r.path.display());
            ready(p, ctx)
        }
        None => {
            c.index_misses.fetch_add(1, Relaxed);
            r.cache = "index cache miss";
            match r.source.index_job(r.key, ctx.limits) {
                Ok((key, job)) => Outcome::Wait {
                    key,
                    job,
                    resume: Box::new(r),
                },
                Err(e) => {
                    let Refusal(s, why) = Refusal::io(&e);
                    let p = refuse(s, &why);
                    ready(p, ctx)
                }
            }
        }
    }
}

/// Waits for the job that opens `key` (or checks `known`) and builds its index.
fn open_object(key: Arc<str>, known: Option<Object>, r: Resume, ctx: &Ctx<'_>) -> Outcome {
    let (key, job) = open_job(key, known, ctx.limits);
    Outcome::Wait {
        key,
        job,
        resume: Box::new(r),
    }
}

/// Plans the window: here for an ordinary index, as a job for a large one.
/// A URL set's manifest first reads every film's index ([`indexed`]).
fn plan(r: Resume, index: Arc<Index>, ctx: &mut Ctx<'_>) -> Outcome {
    let style = mp4::Style {
        compress_moov: ctx.config.compress_moov && !r.window.flash,
    };
    let settings = mp4::cmaf::Settings {
        segment_duration: ctx.config.segment_duration,
    };
    if r.gathering() && !r.planning {
        return indexed(r, index, &settings, ctx);
    }
    let known = match r.resource {
        Resource::Progressive => None,
        _ => ctx.caches.presentation(r.key, &r.window),
    };
    if let (true, Some(p)) = (r.gathering(), &known) {
        let p = p.clone();
        return finish(r, Arc::new(Layout::new()), Some(p), ctx);
    }
    let wkey = window_key(r.key, &r.want());
    if let Some(f) = ctx.caches.plan_failure(&wkey) {
        let mut p = refuse(f.status, &f.reason);
        p.note.detail = format!("file {} (remembered)", r.path.display());
        return ready(p, ctx);
    }
    // A plan the cache could not keep would be built again for every
    // segment of it: refused, and remembered, before it is built once.
    if r.resource != Resource::Progressive && known.is_none() {
        let need = mp4::cmaf::plan_cost(&index, &r.window, &settings);
        let budget = ctx.caches.plan_budget();
        if need > budget {
            let reason = format!(
                "the film's segment plan would take about {} MB, more than the {} MB its \
                 cache holds (a quarter of --cache-size); raise --segment-duration or \
                 --cache-size",
                need >> 20,
                budget >> 20
            );
            ctx.caches.put_plan_failure(
                wkey,
                Failure {
                    status: 415,
                    reason: reason.clone(),
                },
            );
            let mut p = refuse(415, &reason);
            p.note.detail = format!("file {}", r.path.display());
            return ready(p, ctx);
        }
    }
    // A segment of a kept plan is a few thousand entries: inline. Else the
    // work a plan will do decides, not the index's bytes alone (for a URL
    // set, the work of all its films' plans).
    let large = r.plan_jobs || package::cost(&index, &r.want(), &settings) > INLINE_PLAN;
    if large && known.is_none() {
        return Outcome::Wait {
            key: JobKey::Plan(wkey),
            job: Job::Plan {
                index,
                want: r.want(),
                style,
                settings,
                known,
            },
            resume: Box::new(r),
        };
    }
    match package::build(&index, &r.want(), &style, &settings, known) {
        Ok(Built {
            layout,
            presentation,
        }) => {
            if let Some(p) = &presentation {
                ctx.caches.put_presentation(r.key, &r.window, p.clone());
            }
            if !r.gathering() {
                ctx.caches.put_layout(r.key, &r.want(), layout.clone());
            }
            finish(r, layout, presentation, ctx)
        }
        Err(e) => {
            let status = http::status_for(&e);
            if !matches!(e, mp4::Error::Io(_)) {
                let reason = e.to_string();
                ctx.caches
                    .put_plan_failure(wkey, Failure { status, reason });
            }
            let mut p = refuse(status, &e.to_string());
            p.note.detail = format!("file {}", r.path.display());
            ready(p, ctx)
        }
    }
}

/// A URL set's manifest has read film `r.file`'s index: refused at once if
/// the indexes read exceed the set's budget or the film's key frames are
/// not the first film's, before any segment plan; else on to the next
/// film's index, or, once all are read, to the plans: as jobs if together
/// they are large, so a set of small films does not hold the event loop.
fn indexed(
    mut r: Resume,
    index: Arc<Index>,
    settings: &mp4::cmaf::Settings,
    ctx: &mut Ctx<'_>,
) -> Outcome {
    let bytes = r.index_bytes().saturating_add(index.heap_bytes()) as u64;
    let budget = ctx.config.set_index_budget();
    if bytes > budget {
        let mut p = refuse(413, &over_budget(bytes, budget));
        p.note.detail = format!(
            "URL set film {} {}: found at the index stage",
            r.file,
            r.path.display()
        );
        return ready(p, ctx);
    }
    // A film planned already shows its cuts; a clip's plan is compared
    // with the others' once they are planned.
    let cuts = match ctx.caches.presentation(r.key, &r.window) {
        Some(p) if r.window.is_whole() => Some(package::cuts(&p)),
        Some(_) => None,
        None => package::key_frame_cuts(&index, settings),
    };
    if let Some(cuts) = cuts {
        let known = match &r.cuts {
            Some((first, theirs)) => package::same_cuts((*first, theirs), (r.file, &cuts)),
            None => {
                r.cuts = Some((r.file, cuts));
                Ok(())
            }
        };
        if let Err(e) = known {
            let mut p = refuse(http::status_for(&e), &e.to_string());
            p.note.detail = format!(
                "URL set film {} {}: found at the index stage, before any segment plan",
                r.file,
                r.path.display()
            );
            return ready(p, ctx);
        }
    }
    if let Some(next) = r.keep_index(index) {
        return match film(&mut r, &next, ctx) {
            Ok(()) => proceed(r, ctx),
            Err(p) => ready(*p, ctx),
        };
    }
    r.planning = true;
    let want = r.want();
    let cost = (r.indexed.iter())
        .filter(|f| ctx.caches.presentation(f.key, &want.window).is_none())
        .map(|f| package::cost(&f.index, &want, settings))
        .fold(0usize, usize::saturating_add);
    r.plan_jobs = cost > INLINE_PLAN;
    next_plan(r, ctx)
}

/// Plans the URL set's next film whose index is read.
fn next_plan(mut r: Resume, ctx: &mut Ctx<'_>) -> Outcome {
    match r.next_plan() {
        Some(index) => plan(r, index, ctx),
        None => ready(refuse(500, "no film of the URL set to plan"), ctx),
    }
}

/// Answers with `layout`; for a URL set's manifest, first goes on to the
/// set's next film, and once all are planned answers with their manifest.
fn finish(
    mut r: Resume,
    layout: Arc<Layout>,
    presentation: Option<Arc<Presentation>>,
    ctx: &mut Ctx<'_>,
) -> Outcome {
    if !r.gathering() {
        let p = respond(&r, layout, ctx);
        return ready(p, ctx);
    }
    let Some(plan) = presentation else {
        return ready(
            refuse(500, "no segment plan for a film of the URL set"),
            ctx,
        );
    };
    r.gather(plan);
    if !r.indexed.is_empty() {
        return next_plan(r, ctx);
    }
    let p = match package::set_manifest(&r.gathered, &r.want()) {
        Ok(layout) => respond(&r, Arc::new(layout), ctx),
        Err(e) => {
            let mut p = refuse(http::status_for(&e), &e.to_string());
            p.note.detail = format!("URL set ending with {}", r.path.display());
            p
        }
    };
    ready(p, ctx)
}

/// What sets a packaged resource's bytes apart from the window's others
/// (mixed into its entity tag); 0 for the film itself.
fn packaged(resource: Resource, segment_duration: f64) -> u64 {
    match resource {
        Resource::Progressive => 0,
        o => o.tag() ^ segment_duration.to_bits().rotate_left(17),
    }
}

/// The response for a planned window: status, headers, which bytes.
fn respond(r: &Resume, layout: Arc<Layout>, ctx: &mut Ctx<'_>) -> Prepared {
    // What the caches hold is counted by their budgets; a response is
    // charged only for what it alone keeps alive.
    let charge = if ctx.caches.holds_layout(r.key, &r.want()) {
        0
    } else {
        layout.heap_bytes()
    } + layout
        .index()
        .filter(|_| !ctx.caches.retains(r.key))
        .map_or(0, |i| i.heap_bytes())
        + r.source.body_charge(ctx.config);
    if ctx.inflight.saturating_add(charge) > ctx.config.max_inflight {
        let mut p = Prepared::busy("the server is busy; try again in a moment");
        p.note.reason = Some(format!(
            "responses in flight hold {} bytes; this one needs {charge} more \
             (--max-inflight {})",
            ctx.inflight, ctx.config.max_inflight
        ));
        p.note.detail = format!("file {}", r.path.display());
        return p;
    }
    let etag = http::etag(
        r.key.dev,
        r.key.ino,
        r.key.size,
        r.key.mtime,
        r.key.mtime_nsec,
        &r.window,
        packaged(r.resource, ctx.config.segment_duration) ^ r.set_tag,
    );
    let entity = Entity {
        len: layout.len(),
        etag: &etag,
        last_modified: r.modified,
        content_type: r
            .resource
            .content_type()
            .unwrap_or_else(|| http::content_type(r.path.as_os_str().as_bytes())),
    };
    let head = RequestHead {
        method: &r.method,
        range: r.range.as_deref(),
        if_range: r.if_range.as_deref(),
        if_none_match: r.if_none_match.as_deref(),
        if_modified_since: r.if_modified_since.as_deref(),
    };
    let mut response = http::respond(&head, &entity, SystemTime::now());
    if let Some(cc) = &ctx.config.cache_control
        && matches!(response.status, 200 | 206 | 304)
    {
        response.headers.push(("Cache-Control", cc.clone()));
    }
    if let Some(o) = ctx.offload.as_deref_mut()
        && r.resource == Resource::Progressive
    {
        offload(o, &mut response, r, &layout);
    }
    let mut p = Prepared::from_response(response);
    if p.status >= 400 {
        p.note.reason = Some(http::reason_phrase(p.status).to_string());
    }
    let clip = layout.clip();
    p.note.detail = format!(
        "file {}, window {}-{} s, key frame {:.3} s, shown from {:.3} s for {:.3} s, {}",
        r.path.display(),
        r.window.start.unwrap_or(0.0),
        r.window.end.map_or_else(|| "end".into(), |e| e.to_string()),
        clip.key_frame,
        clip.from,
        clip.duration,
        r.cache
    );
    p.layout = Some(layout);
    r.source.feed(&mut p, ctx.link);
    p.charge = charge;
    p
}
