//! The first stage: what a request asks. Method, film name (one film or
//! a URL set's), window, HLS/DASH resource, Range and conditionals, from
//! the FastCGI params; nothing is opened here.

use super::answer::{Ctx, Prepared, preflight, refuse, status_page};
use super::config::{Config, MAX_SET_FILMS, URL_SETS_PARAM, UrlSets};
use super::local::script_path;
use super::walk::Walk;
use crate::fcgi::Params;
use crate::http;
use crate::manifest::Resource;
use crate::mp4::Window;
use std::collections::VecDeque;
use std::os::unix::ffi::OsStrExt;

/// What a request asks: method, film name, window, resource, Range and
/// conditionals. Returns the walk and the name of the film to read first
/// (for a URL set's manifest, the rest wait in the walk).
pub(super) fn ask(
    params: &Params,
    params_overflow: bool,
    ctx: &Ctx<'_>,
) -> Result<(Walk, Vec<u8>), Box<Prepared>> {
    if params_overflow {
        return Err(Box::new(refuse(
            431,
            "request parameters exceed --max-params",
        )));
    }
    if let (Some(sp), Some(name)) = (
        ctx.config.status_path.as_deref(),
        params.get(b"SCRIPT_NAME"),
    ) && sp.as_bytes() == name
    {
        return Err(Box::new(status_page(ctx, params)));
    }
    let method = params.get(b"REQUEST_METHOD").unwrap_or(b"GET");
    if method == b"OPTIONS" && ctx.config.cors.is_on() {
        return Err(Box::new(preflight(
            &ctx.config.cors,
            params.get(b"HTTP_ORIGIN"),
        )));
    }
    if method != b"GET" && method != b"HEAD" {
        return Err(Box::new(Prepared::from_response(http::error_response(
            405,
            "only GET and HEAD are allowed",
        ))));
    }
    let query = http::parse_query(params.get(b"QUERY_STRING").unwrap_or(b""))
        .map_err(|e| Box::new(refuse(400, &e.to_string())))?;
    let window = Window {
        start: query.start,
        end: query.end,
        flash: query.flash,
        tracks: query.tracks,
    };
    let mut resource = match params.get(b"PATH_INFO").filter(|p| !p.is_empty()) {
        None => None,
        Some(info) => Some(Resource::parse(info).ok_or_else(|| {
            let mut p = refuse(404, "no such HLS/DASH output of the film");
            p.note.detail = format!("PATH_INFO {}", String::from_utf8_lossy(info));
            Box::new(p)
        })?),
    };
    // Without PATH_INFO, a name like /a.mp4/init-1.mp4 is split here.
    let mut unsplit = |path: &[u8]| -> Vec<u8> {
        let (film, info) = crate::manifest::split(path);
        match Resource::parse(info) {
            Some(o) if resource.is_none() && o != Resource::Progressive => {
                resource = Some(o);
                film.to_vec()
            }
            _ => path.to_vec(),
        }
    };
    let name = match ctx.link {
        Some(_) => unsplit(params.get(b"SCRIPT_NAME").unwrap_or(b"")),
        None => {
            let path = script_path(params).map_err(|r| Box::new(refuse(r.status, &r.reason)))?;
            unsplit(path.as_os_str().as_bytes())
        }
    };
    let resource = chosen(resource, &window)?;
    let mut w = Walk {
        window,
        resource,
        ..heard(params, method)
    };
    let first = member(&name, &mut w, params, ctx.config)?;
    Ok((w, first))
}

const _: () = assert!(MAX_SET_FILMS <= crate::manifest::MAX_SET);

/// How many films a URL set's name lists (beyond what
/// [`crate::manifest::url_set`] accepts too); `None`: not a URL set.
fn set_size(name: &[u8]) -> Option<usize> {
    let name = name.strip_suffix(b".urlset")?;
    let base = &name[name.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1)..];
    let parts: Vec<&[u8]> = base.split(|&b| b == b',').collect();
    let [_, middle @ .., _] = parts.as_slice() else {
        return None;
    };
    Some(middle.iter().filter(|m| !m.is_empty()).count()).filter(|&n| n > 0)
}

/// Whether URL sets are served for this request (`--url-sets`, and the
/// front server's `MP4_FCGI_URL_SETS`); else a 403 saying which refused.
fn url_sets_allowed(params: &Params, config: &Config) -> Result<(), Box<Prepared>> {
    let said = params.get(URL_SETS_PARAM.as_bytes());
    let yes = said.is_some_and(|v| matches!(v, b"1" | b"on" | b"yes"));
    let no = said.is_some_and(|v| matches!(v, b"0" | b"off" | b"no"));
    let why = match config.url_sets {
        UrlSets::Off => "URL sets are not served here (--url-sets off)".to_string(),
        UrlSets::On if !no => return Ok(()),
        UrlSets::Param if yes => return Ok(()),
        UrlSets::Param if !no => format!(
            "URL sets are served only where the front server passes \
             {URL_SETS_PARAM}=1 (--url-sets param)"
        ),
        _ => format!("URL sets are not served here (the front server passes {URL_SETS_PARAM}=0)"),
    };
    Err(Box::new(refuse(403, &why)))
}

/// For a URL set, which of its films this request reads first (the rest
/// of a manifest's films wait in `w.set`); else the film itself. URL sets
/// are refused where the operator does not serve them, and beyond
/// [`MAX_SET_FILMS`] films.
fn member(
    name: &[u8],
    w: &mut Walk,
    params: &Params,
    config: &Config,
) -> Result<Vec<u8>, Box<Prepared>> {
    let with_path = |mut p: Prepared| {
        p.note.detail = format!("path {}", String::from_utf8_lossy(name));
        Box::new(p)
    };
    let not_found = |why: &str| with_path(refuse(404, why));
    let track = w.resource.track();
    let Some(count) = set_size(name) else {
        if track.is_some_and(|t| t.file > 0) {
            return Err(not_found(
                "f<N>- names a film of a URL set; this is one film",
            ));
        }
        return Ok(name.to_vec());
    };
    url_sets_allowed(params, config).map_err(|p| with_path(*p))?;
    if count > MAX_SET_FILMS {
        return Err(with_path(refuse(
            400,
            &format!("a URL set names at most {MAX_SET_FILMS} films; this one names {count}"),
        )));
    }
    let Some(films) = crate::manifest::url_set(name) else {
        return Err(not_found("not a URL set"));
    };
    match (w.resource, track) {
        (Resource::Master | Resource::Mpd, _) => {
            let mut films = VecDeque::from(films);
            let first = films.pop_front().unwrap_or_default();
            w.file = 1;
            w.set = films;
            Ok(first)
        }
        (_, Some(t)) if t.file > 0 => {
            w.file = t.file;
            films
                .into_iter()
                .nth(usize::from(t.file) - 1)
                .ok_or_else(|| not_found("the URL set has no such film"))
        }
        _ => Err(not_found(
            "a URL set has HLS/DASH outputs only: master.m3u8, manifest.mpd, \
             and tracks named f<N>-<id>",
        )),
    }
}

/// The resource asked for, once a packaged one is known not to conflict
/// with the query.
fn chosen(resource: Option<Resource>, window: &Window) -> Result<Resource, Box<Prepared>> {
    let resource = resource.unwrap_or_default();
    if resource != Resource::Progressive && window.flash {
        return Err(Box::new(refuse(
            400,
            "client=flash applies to progressive downloads, not HLS/DASH",
        )));
    }
    Ok(resource)
}

/// What a request asks besides its film: method, Range and conditionals;
/// the film's fields are placeholders for the caller to fill.
fn heard(params: &Params, method: &[u8]) -> Walk {
    let owned = |name: &[u8]| params.get(name).map(<[u8]>::to_vec);
    Walk {
        method: method.to_vec(),
        range: owned(b"HTTP_RANGE"),
        if_range: owned(b"HTTP_IF_RANGE"),
        if_none_match: owned(b"HTTP_IF_NONE_MATCH"),
        if_modified_since: owned(b"HTTP_IF_MODIFIED_SINCE"),
        origin: owned(b"HTTP_ORIGIN"),
        ..Walk::blank()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_set_counts_its_films_beyond_the_names_accepted() {
        assert_eq!(set_size(b"/f/lecture_,360,720,.mp4.urlset"), Some(2));
        let many = format!("/x_{}.mp4.urlset", ",1".repeat(40) + ",");
        assert_eq!(set_size(many.as_bytes()), Some(40));
        assert_eq!(set_size(b"/f/lecture.mp4.urlset"), None);
        assert_eq!(set_size(b"/f/lecture_,,.mp4.urlset"), None);
        assert_eq!(set_size(b"/f/a.mp4"), None);
    }
}
