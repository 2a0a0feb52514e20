//! Which tracks a request keeps: `tracks=v1,a2` (the first video track, the
//! second audio track, counted in the film's order, as nginx-vod-module's
//! `tracks/v1-a2` counts) and `lang=fr` (the audio tracks in a language).
//! Without either, every track is kept.

use super::Error;
use super::trak::TrakInfo;

/// Tracks past this ordinal cannot be named (a film has at most
/// [`super::index::MAX_TRACKS`] tracks; a selection is a bit per track).
pub const MAX_ORDINAL: u32 = 64;

/// A request's choice of tracks. `Default`: all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tracks {
    /// Bit `n`: the `n + 1`-th video track. With `audio`, both 0 when the
    /// request names no track.
    pub video: u64,
    pub audio: u64,
    /// `lang=`: the ISO 639-2/T code the audio tracks must have.
    pub lang: Option<[u8; 3]>,
}

/// ISO 639-2/B codes (older files and users write them) and their /T codes,
/// which `mdhd` holds.
pub const BIBLIOGRAPHIC: [(&str, &str); 20] = [
    ("alb", "sqi"),
    ("arm", "hye"),
    ("baq", "eus"),
    ("bur", "mya"),
    ("chi", "zho"),
    ("cze", "ces"),
    ("dut", "nld"),
    ("fre", "fra"),
    ("geo", "kat"),
    ("ger", "deu"),
    ("gre", "ell"),
    ("ice", "isl"),
    ("mac", "mkd"),
    ("mao", "mri"),
    ("may", "msa"),
    ("per", "fas"),
    ("rum", "ron"),
    ("slo", "slk"),
    ("tib", "bod"),
    ("wel", "cym"),
];

/// A three-letter code as `mdhd` holds it: /B codes become /T.
pub fn terminology(code: &str) -> &str {
    (BIBLIOGRAPHIC.iter())
        .find(|(b, _)| *b == code)
        .map_or(code, |(_, t)| t)
}

/// Longest language tag read (RFC 5646 4.4.1 asks that 35 characters be
/// kept at least).
pub const MAX_TAG: usize = 64;

/// A BCP 47 tag (or an ISO 639 code) in its shortest, conventional form
/// (RFC 5646 2.1.1 and 2.2.1): ISO 639-1 where the language has a code
/// there (`eng` is `en`, `fre` is `fr`), a region upper case and a script
/// title case (`zh-hant-tw` is `zh-Hant-TW`). `None` for `und` and for
/// what is not a language's tag.
pub fn shortest_tag(tag: &str) -> Option<String> {
    if tag.len() > MAX_TAG {
        return None;
    }
    let mut subtags = tag.split('-');
    let primary = subtags.next()?.to_ascii_lowercase();
    if !(2..=3).contains(&primary.len())
        || !primary.bytes().all(|b| b.is_ascii_lowercase())
        || primary == "und"
    {
        return None;
    }
    let primary = if primary.len() == 2 {
        isolang::Language::from_639_1(&primary)?.to_639_1()?
    } else {
        let t = terminology(&primary);
        match isolang::Language::from_639_3(t) {
            Some(l) => l.to_639_1().unwrap_or(l.to_639_3()),
            // A code ISO 639-3 does not list (`qaa`, reserved for local use).
            None => t,
        }
    };
    let mut out = String::from(primary);
    // After a singleton (an extension, `x-` private use), all is lower case.
    let mut extension = false;
    for s in subtags {
        if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        out.push('-');
        let letters = s.bytes().all(|b| b.is_ascii_alphabetic());
        extension |= s.len() == 1;
        match s.len() {
            2 if letters && !extension => out.push_str(&s.to_ascii_uppercase()),
            4 if letters && !extension => {
                let (first, rest) = s.split_at(1);
                out.push_str(&first.to_ascii_uppercase());
                out.push_str(&rest.to_ascii_lowercase());
            }
            _ => out.push_str(&s.to_ascii_lowercase()),
        }
    }
    Some(out)
}

/// The ISO 639-2/T code (what `mdhd` holds) of a tag's language: `fr`,
/// `fra`, `fre` and `fr-CA` are all `fra`.
pub fn primary_language(tag: &str) -> Option<[u8; 3]> {
    let tag = shortest_tag(tag)?;
    let primary = tag.split('-').next()?;
    let code = match isolang::Language::from_639_1(primary) {
        Some(l) if primary.len() == 2 => l.to_639_3(),
        _ => primary,
    };
    code.as_bytes().try_into().ok()
}

impl Tracks {
    /// No choice: every track.
    pub fn all(&self) -> bool {
        self.video == 0 && self.audio == 0 && self.lang.is_none()
    }

    /// Parses `tracks=` (`v1,a2` or `v1-a2`) into the masks.
    pub fn parse_list(&mut self, list: &str) -> Result<(), String> {
        for item in list.split([',', '-']).filter(|i| !i.is_empty()) {
            let (kind, n) = item.split_at(1);
            let n: u32 = n
                .parse()
                .ok()
                .filter(|n| (1..=MAX_ORDINAL).contains(n))
                .ok_or_else(|| {
                    format!("tracks: '{item}' is not v<N> or a<N> with N from 1 to {MAX_ORDINAL}")
                })?;
            let bit = 1u64 << (n - 1);
            match kind {
                "v" => self.video |= bit,
                "a" => self.audio |= bit,
                _ => return Err(format!("tracks: '{item}' is not v<N> or a<N>")),
            }
        }
        if self.video == 0 && self.audio == 0 {
            return Err("tracks: no track named".into());
        }
        Ok(())
    }

    /// Parses `lang=` (BCP 47's `fr`, or ISO 639-2 `fra`/`fre`).
    pub fn parse_lang(&mut self, tag: &str) -> Result<(), String> {
        let bad = || format!("lang: '{tag}' is not a language code");
        let tag = tag.to_ascii_lowercase();
        let code = match tag.len() {
            2 => isolang::Language::from_639_1(&tag)
                .map(|l| l.to_639_3())
                .ok_or_else(bad)?,
            3 if tag.bytes().all(|b| b.is_ascii_lowercase()) => terminology(&tag),
            _ => return Err(bad()),
        };
        let b = code.as_bytes();
        let [a, c, d] = b else { return Err(bad()) };
        self.lang = Some([*a, *c, *d]);
        Ok(())
    }

    /// The tracks of `infos` (in the film's order) to keep, by position;
    /// `kinds`: only video and audio tracks are counted and kept (HLS and
    /// DASH), else other tracks are kept when no track is named.
    pub(crate) fn keep(
        &self,
        infos: &[&TrakInfo],
        packaged_only: bool,
    ) -> Result<Vec<usize>, Error> {
        let av = |t: &TrakInfo| t.is_video() || t.is_audio();
        if self.all() {
            return Ok((0..infos.len())
                .filter(|&i| !packaged_only || av(infos[i]))
                .collect());
        }
        let named = self.video != 0 || self.audio != 0;
        let mut kept = Vec::new();
        let (mut v, mut a) = (0u32, 0u32);
        let (mut any_lang, mut seen) = (false, (0u64, 0u64));
        for (i, t) in infos.iter().enumerate() {
            let keep = if t.is_video() {
                v += 1;
                let bit = 1u64.checked_shl(v - 1).unwrap_or(0);
                seen.0 |= bit;
                !named || self.video & bit != 0
            } else if t.is_audio() {
                a += 1;
                let bit = 1u64.checked_shl(a - 1).unwrap_or(0);
                seen.1 |= bit;
                let by_lang = self.lang.is_none_or(|l| t.language == Some(l));
                any_lang |= by_lang;
                (!named || self.audio & bit != 0) && by_lang
            } else {
                false
            };
            if keep {
                kept.push(i);
            }
        }
        let missing = |asked: u64, seen: u64, kind: &str, count: u32| {
            let extra = asked & !seen;
            (extra != 0).then(|| {
                format!(
                    "tracks: {kind}{} asked, the film has {count} {}",
                    extra.trailing_zeros() + 1,
                    if kind == "v" {
                        "video tracks"
                    } else {
                        "audio tracks"
                    }
                )
            })
        };
        if let Some(why) =
            missing(self.video, seen.0, "v", v).or(missing(self.audio, seen.1, "a", a))
        {
            return Err(Error::NoSuchTrack(why));
        }
        if let Some(l) = self.lang.filter(|_| !any_lang) {
            return Err(Error::NoSuchTrack(format!(
                "lang: the film has no audio track in '{}'",
                String::from_utf8_lossy(&l)
            )));
        }
        if kept.is_empty() {
            return Err(Error::NoSuchTrack("tracks: no track kept".into()));
        }
        Ok(kept)
    }

    /// The query parameters that say this choice again (`&tracks=…&lang=…`),
    /// for the URLs inside a manifest.
    pub fn query(&self) -> String {
        let mut s = String::new();
        let mut items = Vec::new();
        for (kind, mask) in [("v", self.video), ("a", self.audio)] {
            for n in 0..MAX_ORDINAL {
                if mask & (1u64 << n) != 0 {
                    items.push(format!("{kind}{}", n + 1));
                }
            }
        }
        if !items.is_empty() {
            s.push_str("tracks=");
            s.push_str(&items.join(","));
        }
        if let Some(l) = self.lang {
            if !s.is_empty() {
                s.push('&');
            }
            s.push_str("lang=");
            s.push_str(&String::from_utf8_lossy(&l));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_take_their_shortest_form() {
        let s = |t: &str| shortest_tag(t);
        assert_eq!(s("eng").as_deref(), Some("en"));
        assert_eq!(s("fre").as_deref(), Some("fr"));
        assert_eq!(s("EN-us").as_deref(), Some("en-US"));
        assert_eq!(s("pt-BR").as_deref(), Some("pt-BR"));
        assert_eq!(s("zh-hant-tw").as_deref(), Some("zh-Hant-TW"));
        assert_eq!(s("es-419").as_deref(), Some("es-419"));
        assert_eq!(s("de-CH-x-ZH").as_deref(), Some("de-CH-x-zh"));
        // No ISO 639-1 code: the three letters stay.
        assert_eq!(s("haw").as_deref(), Some("haw"));
        assert_eq!(s("qaa").as_deref(), Some("qaa"));
        for bad in [
            "",
            "und",
            "zz",
            "e",
            "english",
            "en-",
            "en--US",
            "en_US",
            "en-abcdefghi",
            "é",
        ] {
            assert_eq!(s(bad), None, "{bad}");
        }
        assert_eq!(s(&format!("en{}", "-a".repeat(40))), None);
        let p = |t: &str| primary_language(t);
        for tag in ["fr", "fra", "fre", "fr-CA", "FR"] {
            assert_eq!(p(tag), Some(*b"fra"), "{tag}");
        }
        assert_eq!(p("pt-BR"), Some(*b"por"));
        assert_eq!(p("haw"), Some(*b"haw"));
        assert_eq!(p("und"), None);
    }

    #[test]
    fn lists_and_languages_parse() {
        let mut t = Tracks::default();
        t.parse_list("v1,a2").unwrap();
        assert_eq!((t.video, t.audio), (1, 2));
        let mut u = Tracks::default();
        u.parse_list("v1-a2").unwrap();
        assert_eq!(t, u);
        for bad in ["x1", "v0", "v65", "a", "", ",", "v1,b2"] {
            assert!(Tracks::default().parse_list(bad).is_err(), "{bad}");
        }
        for (tag, code) in [
            ("fr", b"fra"),
            ("fra", b"fra"),
            ("fre", b"fra"),
            ("EN", b"eng"),
        ] {
            let mut t = Tracks::default();
            t.parse_lang(tag).unwrap();
            assert_eq!(t.lang, Some(*code), "{tag}");
        }
        for bad in ["f", "zz", "fr-CA", "12", "é"] {
            assert!(Tracks::default().parse_lang(bad).is_err(), "{bad}");
        }
        t.parse_lang("fr").unwrap();
        assert_eq!(t.query(), "tracks=v1,a2&lang=fra");
        assert_eq!(Tracks::default().query(), "");
    }
}
