//! A checker of static MPDs (ISO/IEC 23009-1, the isoff-live profile the
//! packager writes): well-formed XML, the attributes the profile requires,
//! their types, SegmentTemplate identifiers and SegmentTimeline sanity,
//! and DASH-IF thumbnail sets (mpd_images.rs); every violation as one
//! line, "line N <Element>: what".

use roxmltree::{Document, Node};
use std::collections::HashSet;

const NS: &str = "urn:mpeg:dash:schema:mpd:2011";

#[path = "mpd_images.rs"]
mod images;
// Not every test binary that includes `common` uses them.
#[allow(unused_imports)]
pub use images::{TILE_SCHEME, image_sprites};

#[derive(Clone, Copy)]
enum Ty {
    Uint,
    Positive,
    Repeat,
    Sap,
    Conditional,
    Lang,
    Duration,
    FrameRate,
    Ratio,
    Mime,
    Rates,
    NonEmpty,
}

/// Attribute types by (element, attribute); `*` is any element.
const TYPES: &[(&str, &str, Ty)] = &[
    ("MPD", "mediaPresentationDuration", Ty::Duration),
    ("MPD", "minBufferTime", Ty::Duration),
    ("MPD", "maxSegmentDuration", Ty::Duration),
    ("Period", "start", Ty::Duration),
    ("Period", "duration", Ty::Duration),
    ("AdaptationSet", "id", Ty::Uint),
    ("SegmentTemplate", "timescale", Ty::Positive),
    ("SegmentTemplate", "startNumber", Ty::Uint),
    ("SegmentTemplate", "endNumber", Ty::Uint),
    ("SegmentTemplate", "duration", Ty::Positive),
    ("SegmentTemplate", "presentationTimeOffset", Ty::Uint),
    ("S", "t", Ty::Uint),
    ("S", "d", Ty::Positive),
    ("S", "r", Ty::Repeat),
    ("*", "bandwidth", Ty::Uint),
    ("*", "width", Ty::Positive),
    ("*", "height", Ty::Positive),
    ("*", "startWithSAP", Ty::Sap),
    ("*", "segmentAlignment", Ty::Conditional),
    ("*", "subsegmentAlignment", Ty::Conditional),
    ("*", "lang", Ty::Lang),
    ("*", "frameRate", Ty::FrameRate),
    ("*", "sar", Ty::Ratio),
    ("*", "mimeType", Ty::Mime),
    ("*", "audioSamplingRate", Ty::Rates),
    ("*", "codecs", Ty::NonEmpty),
    ("*", "profiles", Ty::NonEmpty),
];

/// Descriptors (5.8.2): each names its scheme.
const DESCRIPTORS: &[&str] = &[
    "Role",
    "Accessibility",
    "AudioChannelConfiguration",
    "EssentialProperty",
    "SupplementalProperty",
    "Viewpoint",
    "Rating",
    "ContentProtection",
    "InbandEventStream",
    "FramePacking",
];

const CONTENT_TYPES: &[&str] = &["video", "audio", "text", "image", "application", "font"];

/// Whether `tag` is a well-formed BCP 47 language tag (RFC 5646 2.1; the
/// grandfathered irregular tags are not accepted).
pub fn bcp47(tag: &str) -> bool {
    let p: Vec<&str> = tag.split('-').collect();
    let at = |i: usize| p.get(i).copied().unwrap_or("");
    let is = |s: &str, lo: usize, hi: usize, f: fn(&u8) -> bool| {
        (lo..=hi).contains(&s.len()) && s.as_bytes().iter().all(f)
    };
    let alpha = |s: &str, lo, hi| is(s, lo, hi, u8::is_ascii_alphabetic);
    let alnum = |s: &str, lo, hi| is(s, lo, hi, u8::is_ascii_alphanumeric);
    let private = |rest: &[&str]| !rest.is_empty() && rest.iter().all(|s| alnum(s, 1, 8));
    let x = |s: &str| s.eq_ignore_ascii_case("x");
    if x(p[0]) {
        return private(&p[1..]);
    }
    if !alpha(p[0], 2, 8) {
        return false;
    }
    let mut i = 1;
    while p[0].len() <= 3 && i < 4 && alpha(at(i), 3, 3) {
        i += 1; // extlang
    }
    i += usize::from(alpha(at(i), 4, 4)); // script
    i += usize::from(alpha(at(i), 2, 2) || is(at(i), 3, 3, u8::is_ascii_digit)); // region
    while alnum(at(i), 5, 8) || (alnum(at(i), 4, 4) && at(i).as_bytes()[0].is_ascii_digit()) {
        i += 1; // variant
    }
    while alnum(at(i), 1, 1) && !x(at(i)) {
        // An extension: a singleton, then subtags of 2 to 8.
        let from = i + 1;
        i = from + p[from..].iter().take_while(|s| alnum(s, 2, 8)).count();
        if i == from {
            return false;
        }
    }
    if x(at(i)) {
        return private(&p[i + 1..]);
    }
    i == p.len()
}

/// An xs:duration in seconds (years and months as 365 and 30 days).
pub fn duration(s: &str) -> Option<f64> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, t),
        Some(_) => return None,
        None => (rest, ""),
    };
    const DATE: &[(char, f64)] = &[('Y', 31_536_000.0), ('M', 2_592_000.0), ('D', 86_400.0)];
    const TIME: &[(char, f64)] = &[('H', 3600.0), ('M', 60.0), ('S', 1.0)];
    let (mut secs, mut any) = (0.0, false);
    for (mut part, units) in [(date, DATE), (time, TIME)] {
        let mut next = 0;
        while !part.is_empty() {
            let end = part.find(|c: char| !c.is_ascii_digit() && c != '.')?;
            let (num, tail) = part.split_at(end);
            let unit = tail.chars().next()?;
            let at = next + units.get(next..)?.iter().position(|u| u.0 == unit)?;
            if num.is_empty() || num.starts_with('.') || (num.contains('.') && unit != 'S') {
                return None;
            }
            secs += num.parse::<f64>().ok()? * units[at].1;
            (next, any, part) = (at + 1, true, &tail[1..]);
        }
    }
    any.then_some(secs)
}

fn type_error(value: &str, ty: Ty) -> Option<&'static str> {
    let uint = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u64>().is_ok()
    };
    let ok = match ty {
        Ty::Uint => uint(value),
        Ty::Positive => uint(value) && !value.trim_start_matches('0').is_empty(),
        Ty::Repeat => value == "-1" || uint(value),
        Ty::Sap => matches!(value, "0" | "1" | "2" | "3" | "4" | "5" | "6"),
        Ty::Conditional => matches!(value, "true" | "false") || uint(value),
        Ty::Lang => bcp47(value),
        Ty::Duration => duration(value).is_some(),
        Ty::FrameRate => match value.split_once('/') {
            Some((n, d)) => uint(n) && uint(d) && !d.trim_start_matches('0').is_empty(),
            None => uint(value),
        },
        Ty::Ratio => value
            .split_once(':')
            .is_some_and(|(a, b)| uint(a) && uint(b)),
        Ty::Mime => value.split_once('/').is_some_and(|(t, s)| {
            !t.is_empty() && !s.is_empty() && !value.contains(char::is_whitespace)
        }),
        Ty::Rates => {
            (1..=2).contains(&value.split_whitespace().count())
                && value.split_whitespace().all(uint)
        }
        Ty::NonEmpty => !value.trim().is_empty(),
    };
    (!ok).then_some(match ty {
        Ty::Uint => "is not an unsigned integer",
        Ty::Positive => "is not a positive integer",
        Ty::Repeat => "is not -1 or an unsigned integer",
        Ty::Sap => "is not a SAP type 0 to 6",
        Ty::Conditional => "is not true, false or an unsigned integer",
        Ty::Lang => "is not a BCP 47 language tag",
        Ty::Duration => "is not an xs:duration",
        Ty::FrameRate => "is not a FrameRateType (N or N/D)",
        Ty::Ratio => "is not a RatioType (N:M)",
        Ty::Mime => "is not a MIME type",
        Ty::Rates => "is not one or two sampling rates",
        Ty::NonEmpty => "is empty",
    })
}

/// The problems of a SegmentTemplate's @media or @initialization: an
/// unpaired `$`, an identifier 5.3.9.4.4 does not define, a format tag
/// that is not `%0Nd` or is on `$RepresentationID$`, and `$Number$` or
/// `$Time$` in an initialization.
fn template_errors(s: &str, init: bool) -> Vec<String> {
    let parts: Vec<&str> = s.split('$').collect();
    if parts.len().is_multiple_of(2) {
        return vec![format!("{s:?} has an unpaired $")];
    }
    let mut v = Vec::new();
    for id in parts.iter().skip(1).step_by(2).filter(|id| !id.is_empty()) {
        let (name, format) = id
            .split_once('%')
            .map_or((*id, None), |(n, f)| (n, Some(f)));
        if !["RepresentationID", "Number", "Time", "Bandwidth"].contains(&name) {
            v.push(format!("{s:?}: ${id}$ is no identifier"));
        }
        let width = format.and_then(|f| f.strip_prefix('0')?.strip_suffix('d'));
        if format.is_some()
            && (name == "RepresentationID"
                || !width.is_some_and(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit())))
        {
            v.push(format!("{s:?}: ${id}$ has a bad format tag"));
        }
        if init && matches!(name, "Number" | "Time") {
            v.push(format!("{s:?}: ${name}$ in an initialization"));
        }
    }
    v
}

fn children<'a, 'i>(n: Node<'a, 'i>, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(move |c| c.has_tag_name((NS, name)))
}

/// The violations of an MPD.
pub fn check(text: &str) -> Vec<String> {
    let doc = match Document::parse(text) {
        Ok(d) => d,
        Err(e) => return vec![format!("not well-formed XML: {e}")],
    };
    let at = |n: Node| {
        format!(
            "line {} <{}>",
            doc.text_pos_at(n.range().start).row,
            n.tag_name().name()
        )
    };
    let mut v = Vec::new();
    let root = doc.root_element();
    if !root.has_tag_name((NS, "MPD")) {
        let ns = root.tag_name().namespace().unwrap_or("");
        return vec![format!(
            "the root is <{}> in {ns:?}, not <MPD> in {NS}",
            root.tag_name().name()
        )];
    }
    for n in root
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().namespace() == Some(NS))
    {
        let name = n.tag_name().name();
        for a in n.attributes().filter(|a| a.namespace().is_none()) {
            let ty = TYPES
                .iter()
                .find(|t| (t.0 == "*" || t.0 == name) && t.1 == a.name());
            if let Some(e) = ty.and_then(|t| type_error(a.value(), t.2)) {
                v.push(format!("{}: @{}={:?} {e}", at(n), a.name(), a.value()));
            }
        }
        if DESCRIPTORS.contains(&name) && n.attribute("schemeIdUri").is_none() {
            v.push(format!("{}: a descriptor without @schemeIdUri", at(n)));
        }
    }
    for required in ["profiles", "minBufferTime"] {
        if root.attribute(required).is_none() {
            v.push(format!("{}: no @{required}", at(root)));
        }
    }
    // Absent, @type is static (5.3.1.2); dynamic MPDs are not this profile's.
    if root.attribute("type").is_some_and(|t| t != "static") {
        v.push(format!("{}: @type is not static", at(root)));
    }
    let periods: Vec<Node> = children(root, "Period").collect();
    let last_has_duration = periods
        .last()
        .is_some_and(|p| p.attribute("duration").is_some());
    if root.attribute("mediaPresentationDuration").is_none() && !last_has_duration {
        v.push(format!(
            "{}: a static MPD without @mediaPresentationDuration",
            at(root)
        ));
    }
    if periods.is_empty() {
        v.push(format!("{}: no Period", at(root)));
    }
    let mut rep_ids = HashSet::new();
    let seconds = images::period_seconds(root);
    for (period, secs) in periods.into_iter().zip(seconds) {
        let sets: Vec<Node> = children(period, "AdaptationSet").collect();
        if sets.is_empty() {
            v.push(format!("{}: no AdaptationSet", at(period)));
        }
        let mut set_ids = HashSet::new();
        for set in sets {
            if let Some(id) = set.attribute("id")
                && !set_ids.insert(id)
            {
                v.push(format!("{}: @id {id} twice in the Period", at(set)));
            }
            adaptation_set(period, secs, set, &mut rep_ids, &at, &mut v);
        }
    }
    v
}

fn adaptation_set<'a>(
    period: Node<'a, 'a>,
    secs: Option<f64>,
    set: Node<'a, 'a>,
    rep_ids: &mut HashSet<&'a str>,
    at: &dyn Fn(Node) -> String,
    v: &mut Vec<String>,
) {
    let mime_top = |m: &str| m.split('/').next().unwrap_or("").to_string();
    let kind = match (set.attribute("contentType"), set.attribute("mimeType")) {
        (Some(c), _) => c.to_string(),
        (None, Some("application/mp4")) => "application".into(),
        (None, Some(m)) => mime_top(m),
        (None, None) => {
            v.push(format!("{}: neither @contentType nor @mimeType", at(set)));
            String::new()
        }
    };
    if set.attribute("contentType").is_some() && !CONTENT_TYPES.contains(&kind.as_str()) {
        v.push(format!(
            "{}: @contentType {kind:?} is none of {CONTENT_TYPES:?}",
            at(set)
        ));
    }
    if matches!(kind.as_str(), "video" | "audio") && set.attribute("segmentAlignment").is_none() {
        v.push(format!(
            "{}: a {kind} set without @segmentAlignment",
            at(set)
        ));
    }
    let reps: Vec<Node> = children(set, "Representation").collect();
    if reps.is_empty() {
        v.push(format!("{}: no Representation", at(set)));
    }
    for rep in reps {
        let inherited = |name| rep.attribute(name).or(set.attribute(name));
        let here = at(rep);
        match rep.attribute("id") {
            None => v.push(format!("{here}: no @id")),
            Some(id) if id.is_empty() || id.contains(char::is_whitespace) => {
                v.push(format!("{here}: @id {id:?} is empty or has whitespace"));
            }
            Some(id) if !rep_ids.insert(id) => {
                v.push(format!("{here}: @id {id:?} twice in the MPD"))
            }
            Some(_) => {}
        }
        if rep.attribute("bandwidth").is_none() {
            v.push(format!("{here}: no @bandwidth"));
        }
        let mime = inherited("mimeType");
        if mime.is_none() {
            v.push(format!("{here}: no @mimeType on it or its AdaptationSet"));
        }
        // A side-loaded WebVTT file, a JPEG or PNG sprite, is wholly named
        // by its MIME type.
        let named = mime == Some("text/vtt") || (kind == "image" && images::picture(mime));
        if inherited("codecs").is_none() && !named {
            v.push(format!("{here}: no @codecs on it or its AdaptationSet"));
        }
        if let (Some(m), false) = (mime, kind.is_empty() || kind == "application") {
            let text_ok = kind == "text" && m == "application/mp4";
            if mime_top(m) != kind && !text_ok {
                v.push(format!("{here}: @mimeType {m} in a {kind} set"));
            }
        }
        match kind.as_str() {
            "video" => {
                for a in ["width", "height"] {
                    if inherited(a).is_none() {
                        v.push(format!("{here}: a video Representation without @{a}"));
                    }
                }
            }
            "audio" => {
                if inherited("audioSamplingRate").is_none() {
                    v.push(format!(
                        "{here}: an audio Representation without @audioSamplingRate"
                    ));
                }
                if children(rep, "AudioChannelConfiguration")
                    .chain(children(set, "AudioChannelConfiguration"))
                    .next()
                    .is_none()
                {
                    v.push(format!(
                        "{here}: an audio Representation without AudioChannelConfiguration"
                    ));
                }
            }
            "text" if !matches!(mime, Some("text/vtt" | "application/mp4")) => {
                v.push(format!(
                    "{here}: text as {mime:?}, not text/vtt or application/mp4"
                ));
            }
            "image" => images::representation(set, rep, secs, at, v),
            _ => {}
        }
        segments(period, set, rep, at, v);
    }
}

/// The Representation's segment information: a SegmentTemplate merged
/// from Period, AdaptationSet and Representation (5.3.9.1), or a single
/// file (BaseURL, SegmentBase, SegmentList).
fn segments(period: Node, set: Node, rep: Node, at: &dyn Fn(Node) -> String, v: &mut Vec<String>) {
    let here = at(rep);
    let templates: Vec<Node> = [rep, set, period]
        .iter()
        .filter_map(|n| children(*n, "SegmentTemplate").next())
        .collect();
    if templates.is_empty() {
        let single = ["BaseURL", "SegmentBase", "SegmentList"];
        if ![rep, set, period]
            .iter()
            .any(|n| single.iter().any(|s| children(*n, s).next().is_some()))
        {
            v.push(format!("{here}: no segment information"));
        }
        return;
    }
    let attr = |name| templates.iter().find_map(|t| t.attribute(name));
    let child = |name| templates.iter().find_map(|t| children(*t, name).next());
    if attr("timescale").is_none() {
        v.push(format!("{here}: its SegmentTemplate has no @timescale"));
    }
    // A sprite stands alone: no initialization (DASH-IF IOP 6.2.6).
    let sprites = images::picture(rep.attribute("mimeType").or(set.attribute("mimeType")));
    match (attr("initialization"), child("Initialization")) {
        (Some(init), _) => v.extend(
            template_errors(init, true)
                .into_iter()
                .map(|e| format!("{here}: {e}")),
        ),
        (None, Some(_)) => {}
        (None, None) if sprites => {}
        (None, None) => v.push(format!(
            "{here}: its SegmentTemplate has no @initialization"
        )),
    }
    let Some(media) = attr("media") else {
        v.push(format!("{here}: its SegmentTemplate has no @media"));
        return;
    };
    v.extend(
        template_errors(media, false)
            .into_iter()
            .map(|e| format!("{here}: {e}")),
    );
    let timeline = child("SegmentTimeline");
    match (timeline.is_some(), attr("duration").is_some()) {
        (true, true) => v.push(format!("{here}: both a SegmentTimeline and @duration")),
        (false, false) if media.contains("$Number") => {
            v.push(format!(
                "{here}: $Number$ with neither SegmentTimeline nor @duration"
            ));
        }
        (false, _) if media.contains("$Time") => {
            v.push(format!("{here}: $Time$ without a SegmentTimeline"))
        }
        _ => {}
    }
    let Some(timeline) = timeline else { return };
    let s: Vec<Node> = children(timeline, "S").collect();
    if s.is_empty() {
        v.push(format!("{}: no S", at(timeline)));
    }
    let mut end: Option<u64> = None;
    for (k, e) in s.iter().enumerate() {
        let num = |a| e.attribute(a).and_then(|x: &str| x.parse::<u64>().ok());
        let Some(d) = num("d") else {
            v.push(format!("{}: no @d", at(*e)));
            return;
        };
        let t = num("t").or(end).unwrap_or(0);
        if end.is_some_and(|last| t < last) {
            v.push(format!(
                "{}: @t {t} overlaps the segment before, which ends at {end:?}",
                at(*e)
            ));
        }
        let repeat = match e.attribute("r") {
            Some("-1") if k + 1 < s.len() && s[k + 1].attribute("t").is_none() => {
                v.push(format!("{}: @r -1 before an S without @t", at(*e)));
                return;
            }
            Some("-1") => return,
            r => r.and_then(|r| r.parse::<u64>().ok()).unwrap_or(0),
        };
        end = repeat
            .checked_add(1)
            .and_then(|n| n.checked_mul(d))
            .and_then(|n| n.checked_add(t));
        if end.is_none() {
            v.push(format!("{}: the timeline overflows", at(*e)));
            return;
        }
    }
}
