//! DASH-IF thumbnail sets (IOP 4.3, 6.2.6): an AdaptationSet of
//! contentType "image" whose Representations are sprites of tiles. A JPEG
//! or PNG is named by its MIME type alone (no @codecs) and stands alone
//! (no initialization); each Representation has the sprite's @width and
//! @height, an EssentialProperty http://dashif.org/thumbnail_tile of value
//! "CxR" (columns x rows, each tile W/C x H/R), and a SegmentTemplate of
//! `$Number$` and @duration whose segments cover the Period.

use super::{children, duration};
use roxmltree::{Document, Node};

pub const TILE_SCHEME: &str = "http://dashif.org/thumbnail_tile";

/// Whether a MIME type is a picture an image set holds without @codecs.
pub fn picture(mime: Option<&str>) -> bool {
    matches!(mime, Some("image/jpeg" | "image/png"))
}

/// Each Period's seconds: its @duration, else up to the next Period's
/// @start, else (the last) up to the MPD's @mediaPresentationDuration.
pub fn period_seconds(root: Node) -> Vec<Option<f64>> {
    let periods: Vec<Node> = children(root, "Period").collect();
    let secs = |n: Node, a| n.attribute(a).and_then(duration);
    let total = secs(root, "mediaPresentationDuration");
    (0..periods.len())
        .map(|k| {
            let start = secs(periods[k], "start").unwrap_or(0.0);
            let next = periods.get(k + 1).and_then(|p| secs(*p, "start"));
            secs(periods[k], "duration").or(Some(next.or(total)? - start))
        })
        .collect()
}

/// The SegmentTemplate a Representation uses, merged from it, its
/// AdaptationSet and its Period (5.3.9.1): an attribute's value.
fn template_attr<'a>(rep: Node<'a, 'a>, name: &str) -> Option<&'a str> {
    let set = rep.parent()?;
    [Some(rep), Some(set), set.parent()]
        .into_iter()
        .flatten()
        .filter_map(|n| children(n, "SegmentTemplate").next())
        .find_map(|t| t.attribute(name))
}

/// How many segments a `$Number$` and @duration template has in a
/// Period of `period` seconds (5.3.9.5.3), or why that is not known.
fn count(rep: Node, period: Option<f64>) -> Result<(u64, u64), String> {
    let num = |a, default: Option<u64>| match template_attr(rep, a) {
        Some(x) => x
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0 || a == "startNumber"),
        None => default,
    };
    let first = num("startNumber", Some(1)).ok_or("a bad @startNumber")?;
    let d = num("duration", None).ok_or("its SegmentTemplate has no @duration")?;
    let scale = num("timescale", Some(1)).ok_or("a bad @timescale")?;
    let p = period.ok_or("the Period's duration is not known, nor how many sprites")?;
    let whole = (p * scale as f64 / d as f64 - 1e-9).ceil().max(1.0) as u64;
    match num("endNumber", None) {
        Some(end) if end + 1 < first + whole => Err(format!(
            "@endNumber {end}: {} segments of {d}/{scale} s end before the Period's {p} s",
            (end + 1).saturating_sub(first)
        )),
        _ => Ok((first, whole)),
    }
}

/// The violations of an image set's Representation `rep`.
pub(super) fn representation(
    set: Node,
    rep: Node,
    period: Option<f64>,
    at: &dyn Fn(Node) -> String,
    v: &mut Vec<String>,
) {
    let here = at(rep);
    let inherited = |name| rep.attribute(name).or(set.attribute(name));
    let mut size = [0u64; 2];
    for (k, a) in ["width", "height"].into_iter().enumerate() {
        match inherited(a).map(str::parse::<u64>) {
            Some(Ok(n)) => size[k] = n,
            Some(Err(_)) => {} // the type check says so
            None => v.push(format!("{here}: an image Representation without @{a}")),
        }
    }
    let tile = (children(rep, "EssentialProperty").chain(children(set, "EssentialProperty")))
        .find(|p| p.attribute("schemeIdUri") == Some(TILE_SCHEME));
    match tile.map(|p| p.attribute("value").unwrap_or("")) {
        None => v.push(format!(
            "{here}: an image Representation without an EssentialProperty {TILE_SCHEME}"
        )),
        Some(value) => {
            let layout = value
                .split_once('x')
                .and_then(|(c, r)| Some([c.parse::<u64>().ok()?, r.parse::<u64>().ok()?]))
                .filter(|l| l.iter().all(|n| *n > 0));
            match layout {
                None => v.push(format!(
                    "{here}: thumbnail_tile value {value:?} is not CxR (positive integers)"
                )),
                Some(l) => {
                    for (k, a) in ["width", "height"].into_iter().enumerate() {
                        if size[k] % l[k] != 0 {
                            v.push(format!(
                                "{here}: @{a} {} is not {} whole tiles ({value})",
                                size[k], l[k]
                            ));
                        }
                    }
                }
            }
        }
    }
    match template_attr(rep, "media") {
        None => v.push(format!(
            "{here}: an image Representation without SegmentTemplate@media"
        )),
        Some(m) if !m.contains("$Number") => {
            v.push(format!("{here}: image @media {m:?} has no $Number$"));
        }
        Some(_) => {}
    }
    if let Err(e) = count(rep, period) {
        v.push(format!("{here}: {e}"));
    }
}

/// Every sprite URL of an MPD's image sets, as a DASH player expands its
/// templates (`$RepresentationID$`, `$Number$` with its format tag):
/// startNumber up to the last the Period's duration implies.
pub fn image_sprites(mpd: &str) -> Vec<String> {
    let Ok(doc) = Document::parse(mpd) else {
        return Vec::new();
    };
    let root = doc.root_element();
    let mut urls = Vec::new();
    for (period, secs) in children(root, "Period").zip(period_seconds(root)) {
        for set in children(period, "AdaptationSet") {
            if set.attribute("contentType") != Some("image") {
                continue;
            }
            for rep in children(set, "Representation") {
                let (Some(media), Ok((first, n))) = (template_attr(rep, "media"), count(rep, secs))
                else {
                    continue;
                };
                let id = rep.attribute("id").unwrap_or("");
                urls.extend((first..first + n).map(|k| expand(media, id, k)));
            }
        }
    }
    urls
}

/// A template with its identifiers replaced.
fn expand(template: &str, id: &str, number: u64) -> String {
    let parts: Vec<&str> = template.split('$').collect();
    let mut s = String::new();
    for (k, p) in parts.iter().enumerate() {
        if k % 2 == 0 {
            s.push_str(p);
            continue;
        }
        let (name, format) = p.split_once('%').unwrap_or((p, ""));
        let width: usize = (format.trim_start_matches('0').trim_end_matches('d'))
            .parse()
            .unwrap_or(0);
        match name {
            "" => s.push('$'),
            "RepresentationID" => s.push_str(id),
            "Number" => s.push_str(&format!("{number:0width$}")),
            _ => s.push_str(&format!("${p}$")),
        }
    }
    s
}
