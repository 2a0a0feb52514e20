//! The third stage: what to send. The window's plan over the film's
//! index (a progressive layout, a manifest, an init or media segment),
//! from the caches, built here, or built as a job when it is large. The
//! plan itself is pure ([`crate::package`]); this stage decides where it
//! runs and what is remembered.

use super::answer::{Ctx, refuse};
use super::cache::{Failure, window_key};
use super::jobs::{Job, JobKey};
use super::walk::{Stage, Step, Walk};
use crate::http;
use crate::manifest::Resource;
use crate::mp4::{self, Index, Layout};
use crate::package::{self, Built};
use std::sync::Arc;

/// Plans whose work is larger than this run off the event loop.
pub(super) const INLINE_PLAN: usize = 4 << 20;

/// Plans the window over `index`: here for an ordinary plan, as a job for
/// a large one; from the caches when a plan of the film is kept.
pub(super) fn plan(w: &mut Walk, index: Arc<Index>, ctx: &mut Ctx<'_>) -> Step {
    if w.lock.is_some() && w.resource == Resource::Progressive {
        let mut p = refuse(
            403,
            "the film is encrypted: it is served as HLS and DASH only",
        );
        p.note.detail = format!("file {}", w.path.display());
        return Step::done(p);
    }
    let previews = matches!(w.resource, Resource::Images | Resource::Thumbnails);
    if w.lock.is_some() && (w.resource.is_picture() || previews) {
        let mut p = refuse(403, "the film is encrypted: it has no thumbnails");
        p.note.detail = format!("file {}", w.path.display());
        return Step::done(p);
    }
    let style = mp4::Style {
        compress_moov: ctx.config.compress_moov && !w.window.flash,
    };
    let settings = ctx.config.cmaf_settings();
    let known = match w.resource {
        Resource::Progressive => None,
        _ => ctx.caches.presentation(w.key, &w.window),
    };
    if let (true, Some(p)) = (w.gathering(), &known) {
        return Step::Next(Stage::Planned(Arc::new(Layout::new()), Some(p.clone())));
    }
    let wkey = window_key(w.key, &w.want());
    if let Some(f) = ctx.caches.plan_failure(&wkey) {
        let mut p = refuse(f.status, &f.reason);
        p.note.detail = format!("file {} (remembered)", w.path.display());
        return Step::done(p);
    }
    // A plan the cache could not keep would be built again for every
    // segment of it: refused, and remembered, before it is built once.
    if w.resource != Resource::Progressive && known.is_none() {
        let need = mp4::cmaf::plan_cost(&index, &w.window, &settings);
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
            p.note.detail = format!("file {}", w.path.display());
            return Step::done(p);
        }
    }
    // A segment of a kept plan is a few thousand entries: inline. Else the
    // work a plan will do decides, not the index's bytes alone (for a URL
    // set, the work of all its films' plans).
    let large = w.plan_jobs || package::cost(&index, &w.want(), &settings) > INLINE_PLAN;
    // Listing a film's key frames is work even over a kept plan.
    let listing = package::keys_cost(&index, &w.want()) > INLINE_PLAN;
    if large && (known.is_none() || listing) {
        let job = Job::Plan {
            index,
            want: w.want(),
            style,
            settings,
            known,
            lock: w.lock.clone(),
        };
        return Step::Wait(JobKey::Plan(Box::new(wkey)), job);
    }
    match package::build(
        &index,
        &w.want(),
        &style,
        &settings,
        known,
        w.lock.as_deref(),
    ) {
        Ok(Built {
            layout,
            presentation,
        }) => {
            if let Some(p) = &presentation {
                ctx.caches.put_presentation(w.key, &w.window, p.clone());
            }
            // A segment to encrypt is kept once sealed, never clear; a
            // picture once decoded.
            if !w.gathering() && !w.seals() && !w.resource.is_picture() {
                ctx.caches.put_layout(w.key, &w.want(), layout.clone());
            }
            Step::Next(Stage::Planned(layout, presentation))
        }
        Err(e) => {
            let status = http::status_for(&e);
            if !matches!(e, mp4::Error::Io(_)) {
                let reason = e.to_string();
                ctx.caches
                    .put_plan_failure(wkey, Failure { status, reason });
            }
            let mut p = refuse(status, &e.to_string());
            p.note.detail = format!("file {}", w.path.display());
            Step::done(p)
        }
    }
}
