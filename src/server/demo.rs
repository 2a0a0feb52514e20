//! The demo page of the development listener (`--http`, unless `--demo
//! off`): at `/` a page that lists the films under `--root` and plays the
//! chosen one progressive, with HLS (hls.js) or with DASH (dash.js). The
//! page, its script and both players are embedded in the binary and served
//! under [`DEMO_PREFIX`], so it works offline; the film list is
//! `/_demo/films.json`, read from the folder on each request, bounded.
//! FastCGI listeners never see any of it: only [`super::dev_http`] asks.

use super::config::DEMO_PREFIX;
use crate::http::{Body, Response};
use siphasher::sip::SipHasher13;
use std::borrow::Cow;
use std::hash::Hasher;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;

/// Most films `films.json` lists.
pub(super) const MAX_FILMS: usize = 1000;
/// Folders below the root that are read (a film at `a/b/c/d/x.mp4` is the
/// deepest listed).
pub(super) const MAX_DEPTH: usize = 4;
/// Most folder entries read for one list, films or not, so a folder of a
/// million other files costs a bounded walk.
const MAX_ENTRIES: usize = 20_000;
/// The extensions listed (any case).
const FILMS: [&str; 4] = ["mp4", "m4v", "m4a", "mov"];

/// `script-src 'self'`: nothing from a film's name runs, even if it reached
/// the page as HTML. hls.js runs its worker from a `blob:` URL, and both
/// players give the video a `blob:` source (Media Source Extensions).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   media-src 'self' blob:; worker-src 'self' blob:; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const PAGE: Asset = Asset {
    path: "/",
    content_type: "text/html; charset=utf-8",
    bytes: include_bytes!("demo/index.html"),
};

const ASSETS: [Asset; 6] = [
    Asset {
        path: "/_demo/demo.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("demo/demo.js"),
    },
    Asset {
        path: "/_demo/hls.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("demo/hls.min.js"),
    },
    Asset {
        path: "/_demo/dash.all.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("demo/dash.all.min.js"),
    },
    Asset {
        path: "/_demo/hls.js.LICENSE",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("demo/hls.js.LICENSE"),
    },
    Asset {
        path: "/_demo/dash.js.LICENSE.md",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("demo/dash.js.LICENSE.md"),
    },
    Asset {
        path: "/_demo/dash.all.min.js.LICENSE.txt",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("demo/dash.all.min.js.LICENSE.txt"),
    },
];

/// An answer of the demo: the response's status and headers (its body
/// [`Body::Empty`]), and the body.
pub(super) struct Answer {
    pub response: Response,
    pub body: Cow<'static, [u8]>,
}

/// Whether a GET or HEAD of `path` (decoded) is the demo's to answer: the
/// page when `on`, and the reserved prefix always.
pub(super) fn is_demo(path: &[u8], on: bool) -> bool {
    on && matches!(path, b"/" | b"/index.html") || path.starts_with(DEMO_PREFIX.as_bytes())
}

/// What the request for `path` (decoded, from `/`) asks of the demo, if it
/// is the demo's: the page at `/` and `/index.html` (only when `on`), and
/// anything under [`DEMO_PREFIX`] (404 when off: the prefix is reserved).
/// Only GET and HEAD: other methods go on to the handler (which answers
/// `OPTIONS` preflights, and 405). `films`: the folder to list, if local.
pub(super) fn answer(
    method: &[u8],
    path: &[u8],
    if_none_match: Option<&[u8]>,
    on: bool,
    films: Option<&Path>,
) -> Option<Answer> {
    if method != b"GET" && method != b"HEAD" {
        return None;
    }
    let head = method == b"HEAD";
    let ours = path.starts_with(DEMO_PREFIX.as_bytes());
    if !on {
        return ours.then(|| text(404, "the demo is off here (--demo off)", head));
    }
    let asset = match path {
        b"/" | b"/index.html" => &PAGE,
        b"/_demo/films.json" => return Some(film_list(films, head)),
        _ => match ASSETS.iter().find(|a| a.path.as_bytes() == path) {
            Some(a) => a,
            None if ours => return Some(text(404, "no such file of the demo", head)),
            None => return None,
        },
    };
    let etag = etag(asset);
    let mut headers = vec![
        ("Content-Type", asset.content_type.to_string()),
        ("ETag", etag.to_string()),
        ("Cache-Control", "no-cache".to_string()),
        ("X-Content-Type-Options", "nosniff".to_string()),
    ];
    if asset.path == "/" {
        headers.push(("Content-Security-Policy", CSP.to_string()));
        headers.push(("Referrer-Policy", "no-referrer".to_string()));
    }
    let fresh = if_none_match.is_some_and(|v| {
        v.split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .any(|t| t == b"*" || t.strip_prefix(b"W/").unwrap_or(t) == etag.as_bytes())
    });
    if fresh {
        return Some(Answer {
            response: Response {
                status: 304,
                headers,
                body: Body::Empty,
            },
            body: Cow::Borrowed(b""),
        });
    }
    headers.push(("Content-Length", asset.bytes.len().to_string()));
    Some(Answer {
        response: Response {
            status: 200,
            headers,
            body: Body::Empty,
        },
        body: Cow::Borrowed(if head { b"" } else { asset.bytes }),
    })
}

/// An asset's entity tag: a hash of its bytes (computed once).
fn etag(asset: &Asset) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        std::iter::once(&PAGE)
            .chain(&ASSETS)
            .map(|a| {
                let mut h = SipHasher13::new();
                h.write(a.bytes);
                format!("\"demo-{:016x}\"", h.finish())
            })
            .collect()
    });
    let i = std::iter::once(&PAGE)
        .chain(&ASSETS)
        .position(|a| a.path == asset.path)
        .unwrap_or(0);
    &tags[i]
}

fn text(status: u16, why: &str, head: bool) -> Answer {
    let body = format!("{why}\n");
    Answer {
        response: Response {
            status,
            headers: vec![
                ("Content-Type", "text/plain; charset=utf-8".to_string()),
                ("Content-Length", body.len().to_string()),
            ],
            body: Body::Empty,
        },
        body: if head {
            Cow::Borrowed(b"")
        } else {
            Cow::Owned(body.into_bytes())
        },
    }
}

/// `/_demo/films.json`: `{"films": [{"name", "url"}...], "truncated",
/// "limit", "depth", "local"}`, names as text (`<` escaped), URLs
/// percent-encoded from the root.
fn film_list(root: Option<&Path>, head: bool) -> Answer {
    let listing = root.map(list).unwrap_or_default();
    let mut json = String::from("{\"films\":[");
    for (i, film) in listing.films.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str("{\"name\":");
        json_string(&mut json, &String::from_utf8_lossy(film));
        json.push_str(",\"url\":");
        json_string(&mut json, &url(film));
        json.push('}');
    }
    json.push_str(&format!(
        "],\"truncated\":{},\"limit\":{MAX_FILMS},\"depth\":{MAX_DEPTH},\"local\":{}}}\n",
        listing.truncated,
        root.is_some()
    ));
    let len = json.len();
    Answer {
        response: Response {
            status: 200,
            headers: vec![
                ("Content-Type", "application/json".to_string()),
                ("Content-Length", len.to_string()),
                ("Cache-Control", "no-store".to_string()),
                ("X-Content-Type-Options", "nosniff".to_string()),
            ],
            body: Body::Empty,
        },
        body: if head {
            Cow::Borrowed(b"")
        } else {
            Cow::Owned(json.into_bytes())
        },
    }
}

/// The films under a folder: their paths from it, `/` between folders.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Listing {
    pub films: Vec<Vec<u8>>,
    /// A bound was reached: more films may be there.
    pub truncated: bool,
}

/// The films under `root` (a canonical path, as `--root` is): files named
/// `*.mp4`, `*.m4v`, `*.m4a` or `*.mov`, in folders at most [`MAX_DEPTH`]
/// deep, at most [`MAX_FILMS`], sorted. Hidden names (`.x`) and the
/// reserved `_demo` folder are skipped. Symbolic links are never followed
/// into folders; a link to a file is listed only when the file it leads
/// to is inside the root (the handler refuses the others).
pub(super) fn list(root: &Path) -> Listing {
    let mut out = Listing::default();
    let mut budget = MAX_ENTRIES;
    // Folders still to read: their path and their name from the root.
    let mut folders = vec![(root.to_path_buf(), Vec::new(), 0)];
    while let Some((dir, rel, depth)) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut here = Vec::new();
        for e in entries {
            if budget == 0 {
                out.truncated = true;
                break;
            }
            budget -= 1;
            if let Ok(e) = e {
                here.push(e);
            }
        }
        here.sort_by_key(std::fs::DirEntry::file_name);
        let mut below = Vec::new();
        for e in here {
            let name = e.file_name();
            let name = name.as_bytes();
            if name.starts_with(b".") || depth == 0 && name == b"_demo" {
                continue;
            }
            let Ok(kind) = e.file_type() else {
                continue;
            };
            let path = if rel.is_empty() {
                name.to_vec()
            } else {
                [&rel[..], name].join(&b'/')
            };
            if kind.is_dir() {
                if depth < MAX_DEPTH {
                    below.push((e.path(), path, depth + 1));
                } else {
                    out.truncated = true;
                }
                continue;
            }
            if !is_film(name) {
                continue;
            }
            let listed = kind.is_file()
                || kind.is_symlink()
                    && std::fs::canonicalize(e.path())
                        .is_ok_and(|real| real.starts_with(root) && real.is_file());
            if !listed {
                continue;
            }
            if out.films.len() == MAX_FILMS {
                out.truncated = true;
                break;
            }
            out.films.push(path);
        }
        if out.films.len() == MAX_FILMS && out.truncated {
            break;
        }
        // Depth first, in name order.
        folders.extend(below.into_iter().rev());
    }
    out.films.sort();
    out
}

fn is_film(name: &[u8]) -> bool {
    name.iter().rposition(|&b| b == b'.').is_some_and(|dot| {
        let ext = &name[dot + 1..];
        FILMS.iter().any(|f| ext.eq_ignore_ascii_case(f.as_bytes()))
    })
}

/// `/` and the path, every byte but unreserved ones and `/` percent-encoded.
fn url(path: &[u8]) -> String {
    let mut s = String::from("/");
    for &b in path {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// A JSON string, with `<`, `>` and `&` escaped too: the list is safe
/// even where it would be read as HTML.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' | '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_encoded() {
        let mut s = String::new();
        json_string(&mut s, "<script>\"a&b\"\n\\.mp4");
        assert_eq!(s, r#""\u003cscript\u003e\"a\u0026b\"\u000a\\.mp4""#);
        assert_eq!(
            url(b"sub dir/a&b #1?.mp4"),
            "/sub%20dir/a%26b%20%231%3F.mp4"
        );
        assert_eq!(url("é.mp4".as_bytes()), "/%C3%A9.mp4");
    }

    #[test]
    fn only_films_are_listed() {
        assert!(is_film(b"a.MP4") && is_film(b"b.m4a") && is_film(b"c.mov") && is_film(b"x.m4v"));
        assert!(!is_film(b"mp4") && !is_film(b"a.mp4.txt") && !is_film(b"a.mkv"));
    }

    #[test]
    fn the_page_and_its_files_are_the_demos_only() {
        let page = answer(b"GET", b"/", None, true, None).expect("the page");
        assert_eq!(page.response.status, 200);
        assert!(page.body.starts_with(b"<!doctype html>"));
        let tag = page
            .response
            .headers
            .iter()
            .find(|h| h.0 == "ETag")
            .unwrap()
            .1
            .clone();
        let again = answer(b"GET", b"/index.html", Some(tag.as_bytes()), true, None).unwrap();
        assert_eq!(again.response.status, 304);
        assert!(again.body.is_empty());
        let head = answer(b"HEAD", b"/_demo/hls.min.js", None, true, None).unwrap();
        assert!(head.body.is_empty());
        assert_eq!(
            answer(b"GET", b"/_demo/nope", None, true, None)
                .unwrap()
                .response
                .status,
            404
        );
        assert!(answer(b"GET", b"/a.mp4", None, true, None).is_none());
        assert!(answer(b"OPTIONS", b"/", None, true, None).is_none());
        // Off: the page is gone, the prefix stays reserved.
        assert!(answer(b"GET", b"/", None, false, None).is_none());
        let off = answer(b"GET", b"/_demo/hls.min.js", None, false, None).unwrap();
        assert_eq!(off.response.status, 404);
    }
}
