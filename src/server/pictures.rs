//! The stage between the plan and the answer for a thumbnail or a sprite:
//! what to decode is planned here (pure, [`crate::package::pictures`]),
//! and decoded as a job; the image is cached like any layout.

use super::answer::{Ctx, refuse};
use super::cache::{Failure, window_key};
use super::jobs::{Job, JobKey};
use super::walk::{Step, Walk};
use crate::http;
use crate::mp4::cmaf::Presentation;
use crate::mp4::{self, Layout};
use crate::package;
use std::sync::Arc;

/// Plans the picture `w` asks for over the plan `planned` came with, and
/// returns the job that makes it.
pub(super) fn picture(
    w: &Walk,
    planned: &Arc<Layout>,
    presentation: Option<Arc<Presentation>>,
    ctx: &mut Ctx<'_>,
) -> Step {
    let refused = |status, why: &str| {
        let mut p = refuse(status, why);
        p.note.detail = format!("file {}", w.path.display());
        Step::done(p)
    };
    let (Some(p), Some(index)) = (presentation, planned.index()) else {
        return refused(500, "the picture's plan is missing");
    };
    let shots = match package::pictures(index, &p, &w.want(), &ctx.config.cmaf_settings()) {
        Ok(s) => s,
        Err(e) => {
            let status = http::status_for(&e);
            if !matches!(e, mp4::Error::Io(_)) {
                let reason = e.to_string();
                let key = window_key(w.key, &w.want());
                ctx.caches.put_plan_failure(key, Failure { status, reason });
            }
            return refused(status, &e.to_string());
        }
    };
    let Some(film) = w.source.film() else {
        return refused(500, "the film cannot be read again");
    };
    let job = Job::Picture {
        film,
        shots: Box::new(shots),
    };
    Step::Wait(JobKey::Picture(Box::new(window_key(w.key, &w.want()))), job)
}
