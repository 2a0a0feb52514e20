//! Image media playlists, the convention Roku and Apple's players read for
//! seek-bar previews (not RFC 8216's): the master playlist's
//! `EXT-X-IMAGE-STREAM-INF` names one (its RESOLUTION one tile's); it
//! holds `EXT-X-IMAGES-ONLY`, and before each segment, a sprite of
//! pictures, an `EXT-X-TILES` saying one tile's RESOLUTION, the sprite's
//! LAYOUT (columns x rows) and each tile's DURATION in seconds.

use super::{Line, get, lines, media};

/// Each `EXT-X-IMAGE-STREAM-INF` of a master playlist: its URI and its
/// RESOLUTION (one tile's), if it has them.
pub fn image_streams(master: &str) -> Vec<(String, Option<String>)> {
    (lines(master, &mut Vec::new()).into_iter())
        .filter_map(|(_, l)| match l {
            Line::Tag("EXT-X-IMAGE-STREAM-INF", _, a) => Some((
                get(&a, "URI")?.to_string(),
                get(&a, "RESOLUTION").map(str::to_string),
            )),
            _ => None,
        })
        .collect()
}

/// The violations of an image media playlist that an
/// `EXT-X-IMAGE-STREAM-INF` names: [`media`]'s, and it holds
/// `EXT-X-IMAGES-ONLY`, is a finished VOD playlist, its tiles are the
/// size `resolution` (the master's RESOLUTION) says, and its EXTINFs sum
/// to `duration`, the presentation's seconds, when the caller knows it.
pub fn images(text: &str, resolution: Option<&str>, duration: Option<f64>) -> Vec<String> {
    let mut v = media(text);
    let all = lines(text, &mut Vec::new());
    let tag = |n: &str| {
        all.iter()
            .find_map(|(no, l)| matches!(l, Line::Tag(t, ..) if *t == n).then_some((*no, l)))
    };
    if tag("EXT-X-IMAGES-ONLY").is_none() {
        v.push("an image stream's playlist without EXT-X-IMAGES-ONLY".into());
    }
    if tag("EXT-X-ENDLIST").is_none() {
        v.push("an image playlist without EXT-X-ENDLIST".into());
    }
    if !matches!(
        tag("EXT-X-PLAYLIST-TYPE"),
        Some((_, Line::Tag(_, Some("VOD"), _)))
    ) {
        v.push("an image playlist that is not EXT-X-PLAYLIST-TYPE:VOD".into());
    }
    let mut sum = 0.0;
    for (no, line) in &all {
        match line {
            Line::Tag("EXT-X-TILES", _, a) => {
                let here = get(a, "RESOLUTION");
                if let (Some(r), Some(t)) = (resolution, here)
                    && r != t
                {
                    v.push(format!(
                        "line {no}: EXT-X-TILES RESOLUTION {t} is not the \
                         EXT-X-IMAGE-STREAM-INF's {r}"
                    ));
                }
            }
            Line::Tag("EXTINF", Some(d), _) => {
                sum += extinf(d).unwrap_or(0.0);
            }
            _ => {}
        }
    }
    // Printed to the microsecond, the presentation's to the millisecond.
    if let Some(d) = duration.filter(|d| (sum - d).abs() > 0.001) {
        v.push(format!(
            "the EXTINFs sum to {sum:.6} s, the presentation lasts {d:.6} s"
        ));
    }
    v
}

/// An EXTINF's seconds.
fn extinf(value: &str) -> Option<f64> {
    value.split(',').next()?.parse().ok()
}

/// WxH as two positive numbers.
fn pair(x: Option<&str>) -> Option<(u64, u64)> {
    let (a, b) = x?.split_once('x')?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (a > 0 && b > 0).then_some((a, b))
}

/// The rules of any media playlist with image tags: `EXT-X-TILES` only
/// with `EXT-X-IMAGES-ONLY`; there, no `EXT-X-MAP` (a sprite is a whole
/// picture file), one `EXT-X-TILES` before each segment's URI, positive
/// sizes and seconds, and each sprite's tiles lasting its EXTINF.
pub(super) fn media_rules(all: &[(usize, Line)], v: &mut Vec<String>) {
    let has = |n: &str| {
        all.iter()
            .any(|(_, l)| matches!(l, Line::Tag(t, ..) if *t == n))
    };
    if !has("EXT-X-IMAGES-ONLY") {
        if has("EXT-X-TILES") {
            v.push("EXT-X-TILES without EXT-X-IMAGES-ONLY".into());
        }
        return;
    }
    if has("EXT-X-I-FRAMES-ONLY") {
        v.push("both EXT-X-IMAGES-ONLY and EXT-X-I-FRAMES-ONLY".into());
    }
    if has("EXT-X-MAP") {
        v.push("an EXT-X-MAP in an image playlist (a sprite stands alone)".into());
    }
    let (mut secs, mut tiles) = (None, None);
    for (no, line) in all {
        match line {
            Line::Tag("EXTINF", Some(d), _) => secs = extinf(d),
            Line::Tag("EXT-X-TILES", _, a) => {
                if let Some((at, _)) = tiles.replace((*no, a)) {
                    v.push(format!(
                        "line {no}: a second EXT-X-TILES; line {at}'s has no segment"
                    ));
                }
                for n in ["RESOLUTION", "LAYOUT"] {
                    if get(a, n).is_some() && pair(get(a, n)).is_none() {
                        v.push(format!("line {no}: EXT-X-TILES {n} is not positive"));
                    }
                }
                let seconds = get(a, "DURATION").and_then(|d| d.parse::<f64>().ok());
                if seconds.is_some_and(|d| d <= 0.0) {
                    v.push(format!("line {no}: EXT-X-TILES DURATION is not positive"));
                }
            }
            Line::Uri(u) => {
                let Some((at, a)) = tiles.take() else {
                    v.push(format!("line {no}: sprite {u:?} has no EXT-X-TILES"));
                    continue;
                };
                let layout = pair(get(a, "LAYOUT"));
                let each = get(a, "DURATION").and_then(|d| d.parse::<f64>().ok());
                if let (Some((c, r)), Some(each), Some(s)) = (layout, each, secs.take()) {
                    let per = c * r;
                    // Each printed to the microsecond.
                    if each * per as f64 + 0.001 < s {
                        v.push(format!(
                            "line {at}: {per} tiles of {each} s last less than \
                             {u:?}'s EXTINF {s}"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some((at, _)) = tiles {
        v.push(format!("line {at}: EXT-X-TILES with no segment after it"));
    }
}
