//! Cues of a TTML document (an `stpp` sample, ISO/IEC 14496-30; what
//! ffmpeg's `-c:s ttml` and EBU-TT-D packagers write): each `p`'s text
//! and its time on the track's timeline. Styling, regions and images are
//! dropped; text never is.

/// Nodes a document may hold before it is not read (roxmltree's own
/// bound, so a hostile document costs bounded memory).
const MAX_NODES: u32 = 1 << 18;

/// Most cues one document gives.
const MAX_CUES: usize = 86_400;

/// The document's rates (`ttp:frameRate`, `ttp:tickRate`) that give frames
/// and ticks their length.
#[derive(Clone, Copy)]
struct Rates {
    frame: f64,
    tick: f64,
}

/// A TTML time expression in seconds (TTML2 10.3.1): clock time
/// (`01:02:03.5`, `01:02:03:12` with frames) or an offset (`3.5s`,
/// `500ms`, `2m`, `1h`, `12f`, `9000t`). `None`: not one.
fn seconds(v: &str, r: Rates) -> Option<f64> {
    let v = v.trim();
    let finite = |x: f64| (x.is_finite() && x >= 0.0).then_some(x);
    if v.contains(':') {
        let parts: Vec<&str> = v.split(':').collect();
        let num = |s: &str| s.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0);
        let t = match parts.as_slice() {
            [h, m, s] => num(h)? * 3600.0 + num(m)? * 60.0 + num(s)?,
            [h, m, s, f] => {
                num(h)? * 3600.0 + num(m)? * 60.0 + num(s)? + num(f)? / r.frame.max(1.0)
            }
            _ => return None,
        };
        return finite(t);
    }
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    let t = match unit {
        "h" => n * 3600.0,
        "m" => n * 60.0,
        "s" => n,
        "ms" => n / 1000.0,
        "f" => n / r.frame.max(1.0),
        "t" => n / r.tick.max(1.0),
        _ => return None,
    };
    finite(t)
}

/// The text of a `p`: its text nodes, `br` as a line break; spans'
/// styling dropped.
fn text(node: roxmltree::Node<'_, '_>, out: &mut String) {
    for c in node.children() {
        if c.is_text() {
            // XML whitespace between elements folds to one space.
            let t = c.text().unwrap_or("");
            let folded: Vec<&str> = t.split_whitespace().collect();
            if !folded.is_empty() {
                if t.starts_with(char::is_whitespace) && !out.is_empty() && !out.ends_with('\n') {
                    out.push(' ');
                }
                out.push_str(&folded.join(" "));
                if t.ends_with(char::is_whitespace) {
                    out.push(' ');
                }
            }
        } else if c.tag_name().name() == "br" {
            let trimmed = out.trim_end_matches(' ').len();
            out.truncate(trimmed);
            out.push('\n');
        } else if c.is_element() {
            text(c, out);
        }
    }
}

/// The cues of a TTML document: (begin, end, text), in seconds of the
/// track's timeline, in document order. A `p`'s times add to its
/// ancestors' `begin` (TTML's parallel time containers); `dur` stands for
/// a missing `end`. A document that does not parse gives none.
pub(crate) fn cues(doc: &[u8]) -> Vec<(f64, f64, String)> {
    let Ok(s) = std::str::from_utf8(doc) else {
        return Vec::new();
    };
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let Ok(doc) = roxmltree::Document::parse_with_options(s.trim_end_matches('\0'), options) else {
        return Vec::new();
    };
    let root = doc.root_element();
    let param = |name: &str| {
        root.attributes()
            .find(|a| {
                a.name() == name && a.namespace().is_some_and(|n| n.contains("ttml#parameter"))
            })
            .and_then(|a| a.value().trim().parse::<f64>().ok())
            .filter(|x| x.is_finite() && *x > 0.0)
    };
    let frame = param("frameRate").unwrap_or(30.0);
    let rates = Rates {
        frame,
        tick: param("tickRate").unwrap_or(1.0),
    };
    let mut out = Vec::new();
    for p in doc.descendants().filter(|n| n.tag_name().name() == "p") {
        if out.len() >= MAX_CUES {
            break;
        }
        let attr = |n: roxmltree::Node<'_, '_>, name: &str| {
            n.attributes()
                .find(|a| a.name() == name)
                .and_then(|a| seconds(a.value(), rates))
        };
        // The begins of its ancestors (body, div) offset its own times.
        let offset: f64 = p.ancestors().skip(1).filter_map(|a| attr(a, "begin")).sum();
        let Some(begin) = attr(p, "begin") else {
            continue;
        };
        let end = match (attr(p, "end"), attr(p, "dur")) {
            (Some(e), _) => e,
            (None, Some(d)) => begin + d,
            (None, None) => continue,
        };
        let mut t = String::new();
        text(p, &mut t);
        let t = t.trim().to_string();
        if end > begin && !t.is_empty() {
            out.push((offset + begin, offset + end, t));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: Rates = Rates {
        frame: 25.0,
        tick: 10_000_000.0,
    };

    #[test]
    fn time_expressions() {
        assert_eq!(seconds("00:00:01.500", RATES), Some(1.5));
        assert_eq!(seconds("01:02:03", RATES), Some(3723.0));
        assert_eq!(seconds("00:00:01:05", RATES), Some(1.2));
        assert_eq!(seconds("2.5s", RATES), Some(2.5));
        assert_eq!(seconds("500ms", RATES), Some(0.5));
        assert_eq!(seconds("2m", RATES), Some(120.0));
        assert_eq!(seconds("50f", RATES), Some(2.0));
        assert_eq!(seconds("15000000t", RATES), Some(1.5));
        for bad in [
            "", "abc", "1x", "-1s", "1:2", "NaNs", "infs", "1e400s", ":::",
        ] {
            assert_eq!(seconds(bad, RATES), None, "{bad}");
        }
    }

    #[test]
    fn paragraphs_are_cues() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter"
    xmlns:tts="http://www.w3.org/ns/ttml#styling" ttp:tickRate="10000000">
  <body><div begin="10s">
    <p begin="10000000t" end="25000000t"><span tts:fontStyle="italic">First</span> line</p>
    <p begin="00:00:05.500" dur="1.5s">Two<br/>lines &amp; more</p>
    <p begin="7s">no end</p>
    <p begin="9s" end="8s">backwards</p>
    <p begin="9s" end="10s">   </p>
  </div></body>
</tt>"#;
        assert_eq!(
            cues(doc),
            [
                (11.0, 12.5, "First line".to_string()),
                (15.5, 17.0, "Two\nlines & more".to_string()),
            ]
        );
    }

    #[test]
    fn hostile_documents_give_nothing() {
        assert!(cues(b"").is_empty());
        assert!(cues(b"<tt><p begin='1s' end='2s'>unclosed").is_empty());
        assert!(cues(b"\xff\xfe<tt/>").is_empty());
        let dtd =
            br#"<!DOCTYPE tt [<!ENTITY a "aaaaaaaaaa">]><tt><p begin="1s" end="2s">&a;</p></tt>"#;
        assert!(cues(dtd).is_empty());
        // Past the node bound: not read at all.
        let many = format!("<tt>{}</tt>", "<p/>".repeat(300_000));
        assert!(cues(many.as_bytes()).is_empty());
    }
}
