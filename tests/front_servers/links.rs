//! Protected folders and signed links: what no example may serve without
//! a link, and a presentation played or refused through one.
#![allow(dead_code, unused_imports)]

use super::*;

/// URLs that name protected/a.mp4 (or would, on a case-insensitive
/// filesystem) without a link.
pub const DIRECT: &[&str] = &[
    "/protected/a.mp4",
    "/protected/a.mp4?start=30",
    "/protected/a.mp4?start=3&end=6",
    "/protected/",
    "/protected",
    "//protected/a.mp4",
    "/protected//a.mp4",
    "/./protected/a.mp4",
    "/protected/./a.mp4",
    "/x/../protected/a.mp4",
    "/a.mp4/../protected/a.mp4",
    "/dl/../protected/a.mp4",
    "/protected/../protected/a.mp4",
    "/%70rotected/a.mp4",
    "/%70%72%6F%74%65%63%74%65%64/%61.mp4",
    "/%2Fprotected/a.mp4",
    "/protected%2Fa.mp4",
    "/%2e/protected/a.mp4",
    "/protected/a.mp4%3Fstart=30",
    "/Protected/a.mp4",
    "/PROTECTED/a.mp4?start=30",
    "/protected/a.m4v",
    "/protected/my%20film.mp4",
    "http://localhost/protected/a.mp4",
    "/%50rotected/a.mp4",
    "/protected/a.mp4;x=1",
    "/protected/%2e%2e/protected/a.mp4",
    "/protected/a.mp4/master.m3u8",
    "/Protected/a.mp4/seg-1-1.m4s",
    "/protected/a.mp4/manifest.mpd",
    "/protected/a.mp4/index-1.m3u8",
    "/protected/a.mp4/init-1.mp4",
    "/protected/a.mp4/seg-1-1.m4s",
    "/protected/a.m4v/seg-2-2.m4s?start=3",
];

/// Spellings a server may also reject as malformed (400): above the root, a NUL.
pub const DIRECT_OR_MALFORMED: &[&str] = &[
    "/../protected/a.mp4",
    "/%2e%2e/protected/a.mp4",
    "/protected/a.mp4%00",
];

/// Every spelling in [`DIRECT`] (and `extra`) is refused by the front server
/// itself: 403, and the pool's counter shows none of them reached it.
pub fn check_protected_folder(port: u16, pool: &Pool, extra: &[&str]) {
    check_protected_folder_with(port, pool, extra, &[]);
}

/// As [`check_protected_folder`], but the spellings in `core_404` are 404:
/// Apache's core answers so for an encoded slash (`AllowEncodedSlashes Off`)
/// or a NUL, before any of the site's configuration runs.
pub fn check_protected_folder_with(port: u16, pool: &Pool, extra: &[&str], core_404: &[&str]) {
    let seen = requests_seen(pool);
    let want = |path: &str| if core_404.contains(&path) { 404 } else { 403 };
    for path in DIRECT_OR_MALFORMED {
        let r = request(port, "GET", path, "");
        assert!(
            matches!(r.status, 400 | 403) || r.status == want(path),
            "{path}: {}",
            r.headers
        );
    }
    for path in DIRECT.iter().chain(extra) {
        for method in ["GET", "HEAD"] {
            let r = request(port, method, path, "");
            // nginx sends the folder's bare name to the folder (auto_redirect).
            if *path == "/protected" && r.status == 301 {
                let to = r.headers.lines().find(|l| l.starts_with("location:"));
                assert!(
                    to.is_some_and(|l| l.ends_with("/protected/")),
                    "{}",
                    r.headers
                );
                continue;
            }
            assert_eq!(r.status, want(path), "{method} {path}: {}", r.headers);
        }
    }
    assert_eq!(
        requests_seen(pool),
        seen + 1,
        "only our own counter read reached the pool"
    );
}

/// One presentation through a signed link, `base` its path up to the film
/// (`/s/TOKEN/EXPIRES/protected/a.mp4`): what a player asks, each 200 with its
/// type (the master playlist, its first variant, that one's init segment and
/// first media segment; the MPD, its first representation's init and first
/// segment), every URL in them relative; and ffmpeg plays HLS and DASH through it.
pub fn check_presentation(port: u16, base: &str) {
    let get = |name: &str, kind: &str| -> Vec<u8> {
        let r = request(port, "GET", &format!("{base}/{name}"), "");
        assert_eq!(r.status, 200, "{base}/{name}: {}", r.headers);
        let ct = format!("content-type: {kind}");
        assert!(r.headers.contains(&ct), "{base}/{name}: {}", r.headers);
        let at = |b: &[u8]| r.body.windows(4).any(|w| w == b);
        assert!(!kind.starts_with("video") || at(b"moof") || at(b"ftyp"));
        r.body
    };
    let relative = |uri: &str| {
        assert!(!uri.starts_with('/') && !uri.contains(':'), "{uri}");
        uri.to_string()
    };
    let first_uri = |list: &str| {
        let uri = list.lines().find(|l| !l.starts_with('#') && !l.is_empty());
        relative(uri.unwrap_or_else(|| panic!("no URI in {list}")))
    };
    // The first `"..."` after `tag` in `text`.
    let quoted =
        |text: &str, tag: &str| text.split(tag).nth(1)?.split('"').next().map(String::from);
    let m3u8 = "application/vnd.apple.mpegurl";
    let master = String::from_utf8(get("master.m3u8", m3u8)).unwrap();
    let variant = String::from_utf8(get(&first_uri(&master), m3u8)).unwrap();
    let map = quoted(&variant, "#EXT-X-MAP:URI=\"").expect("EXT-X-MAP");
    get(&relative(&map), "video/mp4");
    get(&first_uri(&variant), "video/iso.segment");
    let mpd = String::from_utf8(get("manifest.mpd", "application/dash+xml")).unwrap();
    assert!(!mpd.contains("BaseURL"), "{mpd}");
    let init = quoted(&mpd, "initialization=\"").expect("initialization");
    let media = quoted(&mpd, "media=\"").expect("media");
    let id = quoted(&mpd, "<Representation id=\"").expect("a Representation");
    get(
        &relative(&init.replace("$RepresentationID$", &id)),
        "video/mp4",
    );
    let seg = media
        .replace("$RepresentationID$", &id)
        .replace("$Number$", "1");
    get(&relative(&seg), "video/iso.segment");
    for name in ["master.m3u8", "manifest.mpd"] {
        let url = format!("http://127.0.0.1:{port}{base}/{name}");
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i", &url, "-map", "0", "-f", "null", "-"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.is_empty(), "{url}: {err}");
    }
}

/// A presentation link (`base` as for [`check_presentation`]) the front server
/// refuses with `status` (403: a wrong token, 410: an expired one) at the film,
/// its first playlist and at a segment, without the pool seeing any of it.
pub fn check_link_refused(port: u16, pool: &Pool, base: &str, status: u16) {
    let seen = requests_seen(pool);
    for name in ["", "/master.m3u8", "/manifest.mpd", "/index-1.m3u8"]
        .iter()
        .chain(&["/init-1.mp4", "/seg-1-1.m4s", "/seg-2-2.m4s?start=3"])
    {
        let r = request(port, "GET", &format!("{base}{name}"), "");
        assert_eq!(r.status, status, "{base}{name}: {}", r.headers);
    }
    assert_eq!(requests_seen(pool), seen + 1, "refused before the pool");
}

/// A good presentation link `base` (ending in `/a.mp4`), bent: other films and
/// names, dot segments that leave the film; for [`check_protected_folder`].
pub fn bent_links(base: &str) -> Vec<String> {
    let up = base.rsplit_once('/').unwrap().0;
    let tails = "/master.m3u8/ /master.m3u8x /other.m3u8 /index-1.mp4 /seg-1-1.m4s/x /seg-1.m4s \
                 /init-1.mp4/../../a.m4v/init-1.mp4 /../a.m4v/master.m3u8 x/master.m3u8 /";
    let ups = "/a.m4v/master.m3u8 /my%20film.mp4/seg-1-1.m4s /a.mp4.mp4/master.m3u8 \
               /../a.mp4/master.m3u8 /../a.mp4";
    let bent = tails.split_whitespace().map(|t| format!("{base}{t}"));
    bent.chain(ups.split_whitespace().map(|t| format!("{up}{t}")))
        .chain([up.to_string()])
        .collect()
}

/// The shell link generator refuses a path it would have to percent-encode
/// (exit 2), rather than make a link that does not match.
pub fn shell_link_refuses(script: &str, path: &str) {
    let refused = Command::new("sh")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("conf-examples/links")
                .join(script),
        )
        .arg(path)
        .env("MP4_LINK_SECRET", "change-this-secret")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{script} refuses {path:?}");
}

/// Runs a link generator from conf-examples/links/ with MP4_LINK_SECRET=`secret`.
pub fn generate(script: &str, secret: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conf-examples/links")
        .join(script);
    let runner = if script.ends_with(".py") {
        "python3"
    } else {
        "sh"
    };
    let out = Command::new(runner)
        .arg(&path)
        .args(args)
        .env("MP4_LINK_SECRET", secret)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn python(code: &str, arg: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", code, arg])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
