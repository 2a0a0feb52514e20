//! A checker of RFC 8216's MUSTs for master and media playlists, with the
//! two SHOULDs players rely on (CODECS, a well-formed LANGUAGE), and of
//! the image media playlists Roku and Apple add for seek-bar previews
//! (`EXT-X-IMAGE-STREAM-INF`, `EXT-X-IMAGES-ONLY`, `EXT-X-TILES`:
//! hls_images.rs): every violation as one line, "line N: what", so a test
//! prints them all.

use super::mpd_check::bcp47;
use std::collections::{HashMap, HashSet};

/// Where a tag may stand.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Master,
    Media,
    Both,
}
use Scope::{Both, Master, Media};

/// Every tag RFC 8216 defines: where it may stand, whether it may appear
/// only once (4.3.3, 4.3.5), and its value: `-` none, `int`, `extinf`,
/// `byterange`, `any`, `A|B` one of those words, or an attribute list of
/// `NAME:type` (`NAME!`: required) with the types of [`of_type`].
const TAGS: &[(&str, Scope, bool, &str)] = &[
    ("EXTM3U", Both, true, "-"),
    ("EXT-X-VERSION", Both, true, "int"),
    ("EXTINF", Media, false, "extinf"),
    ("EXT-X-BYTERANGE", Media, false, "byterange"),
    ("EXT-X-DISCONTINUITY", Media, false, "-"),
    ("EXT-X-KEY", Media, false, KEY),
    ("EXT-X-MAP", Media, false, "URI!:q BYTERANGE:q"),
    ("EXT-X-PROGRAM-DATE-TIME", Media, false, "any"),
    // Its client attributes (X-…) are open-ended: not checked.
    ("EXT-X-DATERANGE", Media, false, "any"),
    ("EXT-X-GAP", Media, false, "-"),
    ("EXT-X-TARGETDURATION", Media, true, "int"),
    ("EXT-X-MEDIA-SEQUENCE", Media, true, "int"),
    ("EXT-X-DISCONTINUITY-SEQUENCE", Media, true, "int"),
    ("EXT-X-ENDLIST", Media, true, "-"),
    ("EXT-X-PLAYLIST-TYPE", Media, true, "EVENT|VOD"),
    ("EXT-X-I-FRAMES-ONLY", Media, true, "-"),
    // Image media playlists (not RFC 8216's): one tile's size, the
    // sprite's columns x rows, each tile's seconds.
    ("EXT-X-IMAGES-ONLY", Media, true, "-"),
    (
        "EXT-X-TILES",
        Media,
        false,
        "RESOLUTION!:res LAYOUT!:res DURATION!:float",
    ),
    ("EXT-X-MEDIA", Master, false, MEDIA),
    ("EXT-X-STREAM-INF", Master, false, STREAM_INF),
    (
        "EXT-X-I-FRAME-STREAM-INF",
        Master,
        false,
        I_FRAME_STREAM_INF,
    ),
    // Its RESOLUTION is one tile's, as EXT-X-TILES says it.
    (
        "EXT-X-IMAGE-STREAM-INF",
        Master,
        false,
        "BANDWIDTH!:int RESOLUTION:res CODECS:q URI!:q",
    ),
    (
        "EXT-X-SESSION-DATA",
        Master,
        false,
        "DATA-ID!:q VALUE:q URI:q LANGUAGE:q",
    ),
    ("EXT-X-SESSION-KEY", Master, false, KEY),
    ("EXT-X-INDEPENDENT-SEGMENTS", Both, true, "-"),
    (
        "EXT-X-START",
        Both,
        true,
        "TIME-OFFSET!:sfloat PRECISE:YES|NO",
    ),
];
// SAMPLE-AES-CTR (cenc) is RFC 8216bis's (4.4.4.4), after RFC 8216's three.
const KEY: &str =
    "METHOD!:NONE|AES-128|SAMPLE-AES|SAMPLE-AES-CTR URI:q IV:hex KEYFORMAT:q KEYFORMATVERSIONS:q";
const MEDIA: &str = "TYPE!:AUDIO|VIDEO|SUBTITLES|CLOSED-CAPTIONS URI:q GROUP-ID!:q \
    LANGUAGE:q ASSOC-LANGUAGE:q NAME!:q STABLE-RENDITION-ID:q DEFAULT:YES|NO \
    AUTOSELECT:YES|NO FORCED:YES|NO INSTREAM-ID:q CHARACTERISTICS:q CHANNELS:q";
const STREAM_INF: &str = "BANDWIDTH!:int AVERAGE-BANDWIDTH:int SCORE:float CODECS:q \
    SUPPLEMENTAL-CODECS:q RESOLUTION:res FRAME-RATE:float HDCP-LEVEL:TYPE-0|TYPE-1|NONE \
    VIDEO-RANGE:SDR|HLG|PQ STABLE-VARIANT-ID:q AUDIO:q VIDEO:q SUBTITLES:q \
    CLOSED-CAPTIONS:q|NONE";
const I_FRAME_STREAM_INF: &str = "BANDWIDTH!:int AVERAGE-BANDWIDTH:int CODECS:q \
    RESOLUTION:res HDCP-LEVEL:TYPE-0|TYPE-1|NONE VIDEO-RANGE:SDR|HLG|PQ VIDEO:q URI!:q";

/// RFC 8216 7: the version a feature needs (`TAG`, `TAG/ATTRIBUTE`, or a
/// named value), unless the playlist has the third column's tag.
const VERSIONS: &[(&str, &str, u64)] = &[
    ("EXT-X-KEY/IV", "", 2),
    ("a decimal-floating-point EXTINF", "", 3),
    ("EXT-X-BYTERANGE", "", 4),
    ("EXT-X-I-FRAMES-ONLY", "", 4),
    ("EXT-X-KEY/KEYFORMAT", "", 5),
    ("EXT-X-KEY/KEYFORMATVERSIONS", "", 5),
    ("EXT-X-MAP", "", 5),
    ("EXT-X-MAP", "EXT-X-I-FRAMES-ONLY", 6),
    ("INSTREAM-ID=\"SERVICEn\"", "", 7),
];

/// One line that is not blank and not a comment.
enum Line<'a> {
    Tag(&'a str, Option<&'a str>, Vec<(&'a str, &'a str)>),
    Uri(&'a str),
}

/// The violations of a master playlist.
pub fn master(text: &str) -> Vec<String> {
    check(text, Master)
}

/// The violations of a media playlist.
pub fn media(text: &str) -> Vec<String> {
    check(text, Media)
}

/// The violations of an I-frame playlist that EXT-X-I-FRAME-STREAM-INF
/// names (4.3.4.3: it MUST hold EXT-X-I-FRAMES-ONLY).
pub fn i_frames(text: &str) -> Vec<String> {
    let mut v = media(text);
    if !text.lines().any(|l| l.trim_end() == "#EXT-X-I-FRAMES-ONLY") {
        v.push("an I-frame stream's playlist without EXT-X-I-FRAMES-ONLY".into());
    }
    v
}

/// The URIs of a master playlist's EXT-X-I-FRAME-STREAM-INF tags.
pub fn i_frame_uris(master: &str) -> Vec<String> {
    (lines(master, &mut Vec::new()).into_iter())
        .filter_map(|(_, l)| match l {
            Line::Tag("EXT-X-I-FRAME-STREAM-INF", _, a) => get(&a, "URI").map(str::to_string),
            _ => None,
        })
        .collect()
}

/// Every URI a playlist names, in order: variant streams and renditions
/// of a master playlist; EXT-X-MAP and segments of a media playlist.
pub fn uris(text: &str) -> Vec<String> {
    let mut v = Vec::new();
    for (_, line) in lines(text, &mut Vec::new()) {
        match line {
            Line::Uri(u) => v.push(u.to_string()),
            Line::Tag(_, _, a) => v.extend(get(&a, "URI").map(str::to_string)),
        }
    }
    // A key's data: URI (a pssh) or a DRM system's skd:// is not fetched.
    v.retain(|u| !u.split('/').next().is_some_and(|head| head.contains(':')));
    v
}

/// A media playlist's segments: (EXTINF seconds, URI).
pub fn segments(text: &str) -> Vec<(f64, String)> {
    let mut v = Vec::new();
    let mut extinf = None;
    for (_, line) in lines(text, &mut Vec::new()) {
        match line {
            Line::Tag("EXTINF", Some(d), _) => {
                extinf = d.split(',').next().and_then(|d| d.parse().ok());
            }
            Line::Uri(u) => v.push((extinf.take().unwrap_or(f64::NAN), u.to_string())),
            Line::Tag(..) => {}
        }
    }
    v
}

#[path = "hls_images.rs"]
mod images;
#[allow(unused_imports)]
pub use images::{image_streams, images};

#[path = "hls_rates.rs"]
mod rates;
// Not every test binary that includes `common` uses them.
#[allow(unused_imports)]
pub use rates::{Rates, bandwidth, bit_rates};

/// A quoted attribute's content, or an enumerated one's value.
fn get<'a>(attrs: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    let v = attrs.iter().find(|(n, _)| *n == name)?.1;
    Some(
        v.strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v),
    )
}

/// Splits an attribute list (4.2): NAME=value pairs, quoted strings kept
/// with their quotes so their type can be checked.
fn attribute_list(s: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (name, tail) = rest.split_once('=').ok_or(format!("no '=' in {rest:?}"))?;
        let named = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-';
        if name.is_empty() || !name.bytes().all(named) {
            return Err(format!("bad attribute name {name:?}"));
        }
        let end = match tail.strip_prefix('"') {
            Some(q) => {
                q.find('"')
                    .ok_or(format!("{name}: unterminated quoted string"))?
                    + 2
            }
            None => tail.find(',').unwrap_or(tail.len()),
        };
        if end == 0 {
            return Err(format!("{name}: empty value"));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("attribute {name} appears twice"));
        }
        out.push((name, &tail[..end]));
        rest = &tail[end..];
        match rest.strip_prefix(',') {
            Some("") => return Err("a trailing comma".into()),
            Some(r) => rest = r,
            None if rest.is_empty() => {}
            None => return Err(format!("{name}: {rest:?} after its value")),
        }
    }
    Ok(out)
}

fn is_int(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u64>().is_ok()
}

fn is_float(s: &str) -> bool {
    let (i, f) = s.split_once('.').unwrap_or((s, "0"));
    !i.is_empty() && !f.is_empty() && (i.bytes().chain(f.bytes())).all(|b| b.is_ascii_digit())
}

/// Whether `value` is of `ty` (4.2): `int`, `float`, `sfloat` (signed),
/// `q` (quoted-string), `res` (WxH), `hex`, or `A|B|q`: one of the words
/// (enumerated-string), `q` meaning any quoted-string.
fn of_type(value: &str, ty: &str) -> bool {
    let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
    match ty {
        "int" => is_int(value),
        "float" => is_float(value),
        "sfloat" => is_float(value.strip_prefix('-').unwrap_or(value)),
        "res" => value
            .split_once('x')
            .is_some_and(|(w, h)| is_int(w) && is_int(h)),
        "hex" => {
            let digits = value.strip_prefix("0x").or(value.strip_prefix("0X"));
            digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_hexdigit()))
        }
        _ => ty
            .split('|')
            .any(|t| if t == "q" { quoted } else { t == value }),
    }
}

fn type_name(ty: &str) -> String {
    let names = [
        ("int", "a decimal-integer"),
        ("float", "a decimal-floating-point"),
        ("sfloat", "a signed-decimal-floating-point"),
        ("q", "a quoted-string"),
        ("res", "a decimal-resolution (WxH)"),
        ("hex", "a hexadecimal-sequence"),
    ];
    let named = names.iter().find(|n| n.0 == ty);
    named.map_or_else(|| format!("one of {ty}"), |n| n.1.to_string())
}

/// The playlist's tags and URIs with their line numbers; the violations
/// of each tag alone (known, well-formed) go to `v`.
fn lines<'a>(text: &'a str, v: &mut Vec<String>) -> Vec<(usize, Line<'a>)> {
    let mut out = Vec::new();
    for (no, line) in (1..).zip(text.lines()) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || (line.starts_with('#') && !line.starts_with("#EXT")) {
            continue;
        }
        let Some(tag) = line.strip_prefix('#') else {
            out.push((no, Line::Uri(line)));
            continue;
        };
        let (name, value) = tag
            .split_once(':')
            .map_or((tag, None), |(n, x)| (n, Some(x)));
        let Some(&(.., spec)) = TAGS.iter().find(|t| t.0 == name) else {
            v.push(format!("line {no}: unknown tag #{name}"));
            continue;
        };
        let mut bad = |e: String| v.push(format!("line {no}: #{name} {e}"));
        let mut attrs = Vec::new();
        match (spec, value) {
            ("-", None) | ("any", Some(_)) => {}
            ("-", Some(_)) => bad("takes no value".into()),
            (_, None) => bad("has no value".into()),
            ("extinf", Some(x)) if !x.split_once(',').is_some_and(|(d, _)| is_float(d)) => {
                bad(format!("{x:?} is not <duration>,[<title>]"));
            }
            ("byterange", Some(x)) => {
                let (n, o) = x.split_once('@').unwrap_or((x, "0"));
                if !is_int(n) || !is_int(o) {
                    bad(format!("{x:?} is not <n>[@<o>]"));
                }
            }
            ("extinf", _) => {}
            (s, Some(x)) if s.contains(':') => match attribute_list(x) {
                Err(e) => bad(e),
                Ok(list) => {
                    let specs: Vec<(&str, &str)> =
                        s.split(' ').filter_map(|a| a.split_once(':')).collect();
                    for &(n, value) in &list {
                        let ty = specs.iter().find(|a| a.0.trim_end_matches('!') == n);
                        match ty {
                            None => bad(format!("has an unknown attribute {n}")),
                            Some((_, ty)) if !of_type(value, ty) => {
                                bad(format!("{n}={value} is not {}", type_name(ty)));
                            }
                            Some(_) => {}
                        }
                        if n.ends_with("URI") && value == "\"\"" {
                            bad(format!("{n} is an empty URI"));
                        }
                    }
                    for (n, _) in specs.iter().filter(|a| a.0.ends_with('!')) {
                        let n = n.trim_end_matches('!');
                        if !list.iter().any(|(m, _)| *m == n) {
                            bad(format!("has no {n}"));
                        }
                    }
                    attrs = list;
                }
            },
            (s, Some(x)) if !of_type(x, s) => bad(format!("{x:?} is not {}", type_name(s))),
            _ => {}
        }
        out.push((no, Line::Tag(name, value, attrs)));
    }
    out
}

fn check(text: &str, kind: Scope) -> Vec<String> {
    let mut v = Vec::new();
    if text.lines().next().map(|l| l.trim_end_matches('\r')) != Some("#EXTM3U") {
        v.push("line 1: the first line is not #EXTM3U".into());
    }
    let all = lines(text, &mut v);
    let (mut seen, mut used, mut version) = (HashSet::new(), HashSet::new(), 1);
    let kind_name = if kind == Master { "master" } else { "media" };
    for (no, line) in &all {
        let Line::Tag(name, value, attrs) = line else {
            continue;
        };
        let Some(&(_, scope, once, _)) = TAGS.iter().find(|t| t.0 == *name) else {
            continue;
        };
        if scope != Both && scope != kind {
            v.push(format!(
                "line {no}: #{name} has no place in a {kind_name} playlist"
            ));
        }
        if once && !seen.insert(*name) {
            v.push(format!("line {no}: #{name} appears more than once"));
        }
        if *name == "EXT-X-VERSION" {
            version = value.and_then(|x| x.parse().ok()).unwrap_or(1);
        }
        used.insert(name.to_string());
        used.extend(attrs.iter().map(|(a, _)| format!("{name}/{a}")));
        if *name == "EXTINF"
            && value.is_some_and(|d| d.split(',').next().is_some_and(|d| d.contains('.')))
        {
            used.insert("a decimal-floating-point EXTINF".into());
        }
        if get(attrs, "INSTREAM-ID").is_some_and(|i| i.starts_with("SERVICE")) {
            used.insert("INSTREAM-ID=\"SERVICEn\"".into());
        }
    }
    for (feature, unless, min) in VERSIONS {
        if used.contains(*feature) && !used.contains(*unless) && version < *min {
            let unless = if unless.is_empty() {
                String::new()
            } else {
                format!(" without {unless}")
            };
            v.push(format!(
                "{feature}{unless} needs EXT-X-VERSION {min} or more, not {version}"
            ));
        }
    }
    if kind == Master {
        check_master(&all, &mut v);
    } else {
        check_media(&all, &mut v);
    }
    v
}

fn check_master(all: &[(usize, Line)], v: &mut Vec<String>) {
    // (TYPE, GROUP-ID) → the NAMEs seen, how many DEFAULT=YES.
    let mut groups: HashMap<(&str, &str), (Vec<&str>, usize)> = HashMap::new();
    let mut no_captions = Vec::new();
    for (i, (no, line)) in all.iter().enumerate() {
        let before = i.checked_sub(1).and_then(|b| all.get(b));
        let after_stream_inf = matches!(before, Some((_, Line::Tag("EXT-X-STREAM-INF", ..))));
        let (tag, a) = match line {
            Line::Uri(u) if !after_stream_inf => {
                v.push(format!("line {no}: URI {u:?} follows no EXT-X-STREAM-INF"));
                continue;
            }
            Line::Tag(t @ ("EXT-X-I-FRAME-STREAM-INF" | "EXT-X-IMAGE-STREAM-INF"), _, a) => {
                // Its URI is an attribute: a URI line after it has no tag.
                match get(a, "CODECS") {
                    None => v.push(format!("line {no}: {t} has no CODECS (SHOULD)")),
                    Some(c) if *t == "EXT-X-IMAGE-STREAM-INF" && c != "jpeg" => {
                        v.push(format!("line {no}: {t}'s CODECS {c:?} is not \"jpeg\""));
                    }
                    Some(_) => {}
                }
                continue;
            }
            Line::Tag(t @ ("EXT-X-MEDIA" | "EXT-X-STREAM-INF"), _, a) => (*t, a),
            _ => continue,
        };
        let rendition = tag == "EXT-X-MEDIA";
        let (is, has) = (|n, x| get(a, n) == Some(x), |n| get(a, n).is_some());
        let ty = get(a, "TYPE").unwrap_or("");
        let group = get(a, "GROUP-ID").unwrap_or("");
        let (cc, uri) = (ty == "CLOSED-CAPTIONS", has("URI"));
        let autoselect = !has("AUTOSELECT") || is("AUTOSELECT", "YES");
        let last = !matches!(all.get(i + 1), Some((_, Line::Uri(_))));
        let rules = if rendition {
            vec![
                (ty == "SUBTITLES" && !uri, "SUBTITLES needs a URI"),
                (cc && uri, "CLOSED-CAPTIONS takes no URI"),
                (
                    cc != has("INSTREAM-ID"),
                    "INSTREAM-ID is for CLOSED-CAPTIONS",
                ),
                (
                    has("FORCED") && ty != "SUBTITLES",
                    "FORCED is for SUBTITLES",
                ),
                (
                    is("DEFAULT", "YES") && !autoselect,
                    "DEFAULT=YES, AUTOSELECT=NO",
                ),
            ]
        } else {
            no_captions.push(is("CLOSED-CAPTIONS", "NONE"));
            vec![
                (last, "EXT-X-STREAM-INF is not followed by a URI line"),
                (!has("CODECS"), "EXT-X-STREAM-INF has no CODECS (SHOULD)"),
            ]
        };
        for (_, why) in rules.iter().filter(|r| r.0) {
            v.push(format!("line {no}: {why}"));
        }
        for l in ["LANGUAGE", "ASSOC-LANGUAGE"] {
            if let Some(tag) = get(a, l).filter(|t| !bcp47(t)) {
                v.push(format!("line {no}: {l} {tag:?} is not a BCP 47 tag"));
            }
        }
        if rendition {
            let g = groups.entry((ty, group)).or_default();
            let name = get(a, "NAME").unwrap_or("");
            if g.0.contains(&name) {
                v.push(format!("line {no}: NAME {name:?} twice in group {group:?}"));
            }
            g.0.push(name);
            g.1 += usize::from(is("DEFAULT", "YES"));
            if g.1 == 2 {
                v.push(format!(
                    "line {no}: a second DEFAULT=YES in group {group:?}"
                ));
            }
        }
    }
    for (no, line) in all {
        let Line::Tag(t @ ("EXT-X-STREAM-INF" | "EXT-X-I-FRAME-STREAM-INF"), _, a) = line else {
            continue;
        };
        for ty in ["AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"] {
            if let Some(g) = get(a, ty).filter(|g| *g != "NONE" || ty != "CLOSED-CAPTIONS")
                && !groups.contains_key(&(ty, g))
            {
                v.push(format!(
                    "line {no}: #{t}'s {ty}={g:?} names no TYPE={ty} group"
                ));
            }
        }
    }
    if no_captions.is_empty() {
        v.push("a master playlist with no EXT-X-STREAM-INF".into());
    }
    if no_captions.contains(&true) && no_captions.contains(&false) {
        v.push("CLOSED-CAPTIONS=NONE on some variants but not all".into());
    }
}

fn check_media(all: &[(usize, Line)], v: &mut Vec<String>) {
    let tag = |n: &str| {
        all.iter()
            .find_map(|(_, l)| matches!(l, Line::Tag(t, ..) if *t == n).then_some(l))
    };
    let target = match tag("EXT-X-TARGETDURATION") {
        Some(Line::Tag(_, x, _)) => x.and_then(|x| x.parse::<u64>().ok()),
        _ => {
            v.push("no EXT-X-TARGETDURATION".into());
            None
        }
    };
    let (mut extinf, mut segments) = (None, 0);
    for (no, line) in all {
        match line {
            Line::Tag("EXTINF", Some(d), _) => {
                if let Some(at) = extinf.replace(*no) {
                    v.push(format!(
                        "line {no}: a second EXTINF; line {at}'s has no URI"
                    ));
                }
                let secs: f64 = d
                    .split(',')
                    .next()
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0.0);
                if let Some(t) = target.filter(|t| secs.round() > *t as f64) {
                    v.push(format!(
                        "line {no}: EXTINF {secs} rounds above EXT-X-TARGETDURATION {t}"
                    ));
                }
            }
            Line::Uri(u) => {
                if extinf.take().is_none() {
                    v.push(format!("line {no}: segment {u:?} has no EXTINF"));
                }
                segments += 1;
            }
            Line::Tag(t @ ("EXT-X-MEDIA-SEQUENCE" | "EXT-X-DISCONTINUITY-SEQUENCE"), ..)
                if segments > 0 =>
            {
                v.push(format!("line {no}: #{t} after the first segment"));
            }
            _ => {}
        }
    }
    if let Some(at) = extinf {
        v.push(format!("line {at}: the last EXTINF has no URI"));
    }
    // 4.3.3.6: I-frame segments begin with their Media Initialization
    // Section or an EXT-X-MAP names it; an fMP4 segment never holds it.
    let fmp4 = all.iter().any(|(_, l)| {
        matches!(l, Line::Uri(u) if u.split('?').next().is_some_and(|p| p.ends_with(".m4s") || p.ends_with(".mp4")))
    });
    if tag("EXT-X-I-FRAMES-ONLY").is_some() && fmp4 && tag("EXT-X-MAP").is_none() {
        v.push("fMP4 I-frame segments without an EXT-X-MAP (4.3.3.6)".into());
    }
    images::media_rules(all, v);
    let vod = matches!(
        tag("EXT-X-PLAYLIST-TYPE"),
        Some(Line::Tag(_, Some("VOD"), _))
    );
    if vod && tag("EXT-X-ENDLIST").is_none() {
        v.push("EXT-X-PLAYLIST-TYPE:VOD without EXT-X-ENDLIST".into());
    }
}
