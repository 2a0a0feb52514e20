//! The last stage: a planned layout becomes the response. Status and
//! headers from the request's Range and conditionals, the body's pieces,
//! what the response holds in memory (`--max-inflight`), and, with
//! `--offload`, the front server reads the film itself.

use super::answer::{Ctx, Prepared, cors_headers};
use super::walk::Walk;
use crate::http::{self, Body, Entity, Piece, RequestHead, Response};
use crate::manifest::Resource;
use crate::mp4::Layout;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::SystemTime;

/// What sets a packaged resource's bytes apart from the window's others
/// (mixed into its entity tag); 0 for the film itself.
fn packaged(resource: Resource, settings: &crate::mp4::cmaf::Settings) -> u64 {
    let fit = if settings.fit_key_frames {
        0x9e37_79b9_7f4a_7c15
    } else {
        0
    };
    match resource {
        Resource::Progressive => 0,
        o => o.tag() ^ settings.segment_duration.to_bits().rotate_left(17) ^ fit,
    }
}

/// The response for a planned window: status, headers, which bytes.
pub(super) fn respond(w: &Walk, layout: Arc<Layout>, ctx: &mut Ctx<'_>) -> Prepared {
    // What the caches hold is counted by their budgets; a response is
    // charged only for what it alone keeps alive.
    let charge = if ctx.caches.holds_layout(w.key, &w.want()) {
        0
    } else {
        layout.heap_bytes()
    } + layout
        .index()
        .filter(|_| !ctx.caches.retains(w.key))
        .map_or(0, |i| i.heap_bytes())
        + w.source.body_charge(ctx.config);
    if ctx.inflight.saturating_add(charge) > ctx.config.max_inflight {
        let mut p = Prepared::busy("the server is busy; try again in a moment");
        p.note.reason = Some(format!(
            "responses in flight hold {} bytes; this one needs {charge} more \
             (--max-inflight {})",
            ctx.inflight, ctx.config.max_inflight
        ));
        p.note.detail = format!("file {}", w.path.display());
        return p;
    }
    let etag = http::etag(
        w.key.dev,
        w.key.ino,
        w.key.size,
        w.key.mtime,
        w.key.mtime_nsec,
        &w.window,
        packaged(w.resource, &ctx.config.cmaf_settings()) ^ w.set_tag,
    );
    let entity = Entity {
        len: layout.len(),
        etag: &etag,
        last_modified: w.modified,
        content_type: w
            .resource
            .content_type()
            .unwrap_or_else(|| http::content_type(w.path.as_os_str().as_bytes())),
    };
    let head = RequestHead {
        method: &w.method,
        range: w.range.as_deref(),
        if_range: w.if_range.as_deref(),
        if_none_match: w.if_none_match.as_deref(),
        if_modified_since: w.if_modified_since.as_deref(),
    };
    let mut response = http::respond(&head, &entity, SystemTime::now());
    if let Some(cc) = &ctx.config.cache_control
        && matches!(response.status, 200 | 206 | 304)
    {
        response.headers.push(("Cache-Control", cc.clone()));
    }
    response
        .headers
        .extend(cors_headers(&ctx.config.cors, w.origin.as_deref()));
    // Progressive windows, and media segments sent as they are stored
    // (a sealed segment is all in memory).
    let spans = match w.resource {
        Resource::Progressive => true,
        Resource::Segment(..) | Resource::KeyFrame(..) => w.lock.is_none(),
        _ => false,
    };
    if let Some(o) = ctx.offload.as_deref_mut()
        && spans
    {
        let output = packaged(w.resource, &ctx.config.cmaf_settings());
        offload(o, &mut response, w, output, &layout);
    }
    let mut p = Prepared::from_response(response);
    if p.status >= 400 {
        p.note.reason = Some(http::reason_phrase(p.status).to_string());
    }
    let clip = layout.clip();
    p.note.detail = format!(
        "file {}, window {}-{} s, key frame {:.3} s, shown from {:.3} s for {:.3} s, {}",
        w.path.display(),
        w.window.start.unwrap_or(0.0),
        w.window.end.map_or_else(|| "end".into(), |e| e.to_string()),
        clip.key_frame,
        clip.from,
        clip.duration,
        w.cache
    );
    p.layout = Some(layout);
    w.source.feed(&mut p, ctx.link);
    p.charge = charge;
    p
}

/// Hands a one-range body to the front server as `X-Sendfile2` pieces.
/// Multipart bodies (their boundaries live nowhere on disk) stream as usual.
fn offload(
    o: &mut super::offload::Offload,
    response: &mut Response,
    w: &Walk,
    output: u64,
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
    let Some(file) = w.source.local_file() else {
        return;
    };
    if let Some(v) = o.header_value(
        &w.opened,
        file,
        w.key,
        &w.window,
        output,
        layout,
        range.clone(),
    ) {
        response.headers.push(("X-Sendfile2", v));
        response.body = Body::Empty;
    }
}
