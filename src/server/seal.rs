//! The stage between the plan and the answer for a protected film's media
//! segment: its samples are read and encrypted as a job (the reads and the
//! AES are too long for the event loop), and the sealed segment is cached
//! like any layout. The clear layout is never cached or sent.

use super::answer::refuse;
use super::cache::window_key;
use super::jobs::{Job, JobKey};
use super::walk::{Stage, Step, Walk};
use crate::manifest::Resource;
use crate::mp4::Layout;
use crate::mp4::cmaf::Presentation;
use std::sync::Arc;

/// Encrypts the segment `clear` lays out, as a job.
pub(super) fn seal(w: &Walk, clear: &Arc<Layout>, presentation: Option<Arc<Presentation>>) -> Step {
    let refused = |status, why: &str| {
        let mut p = refuse(status, why);
        p.note.detail = format!("file {}", w.path.display());
        Step::done(p)
    };
    let (Some(lock), Resource::Segment(n, t)) = (&w.lock, w.resource) else {
        return Step::Next(Stage::Answer(clear.clone()));
    };
    let (Some(presentation), Some(index)) = (presentation, clear.index().cloned()) else {
        return refused(500, "the segment's plan is missing");
    };
    let Some(film) = w.source.film() else {
        return refused(500, "the film cannot be read again");
    };
    let job = Job::Seal {
        film,
        index,
        presentation,
        n,
        id: t.id,
        lock: lock.clone(),
    };
    Step::Wait(JobKey::Seal(Box::new(window_key(w.key, &w.want()))), job)
}
