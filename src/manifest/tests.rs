//! Output names, URL sets and languages of the manifests.

use super::*;

#[test]
fn languages_are_bcp47_with_their_names() {
    let l = |code: &str| language_of(code).map(|l| (l.tag, l.name));
    let pair = |t: &str, n: &str| Some((t.to_string(), n.to_string()));
    assert_eq!(l("eng"), pair("en", "English"));
    assert_eq!(l("fra"), pair("fr", "français"));
    assert_eq!(l("fre"), pair("fr", "français"));
    assert_eq!(l("ger"), pair("de", "Deutsch"));
    // elng's tags keep their region.
    assert_eq!(l("pt-br"), pair("pt-BR", "português"));
    assert_eq!(l("en-US"), pair("en-US", "English"));
    // No ISO 639-1 code: the three letters stay.
    assert_eq!(l("haw").map(|l| l.0), Some("haw".into()));
    assert_eq!(l("und"), None);
    assert_eq!(l("e\"g"), None);
    assert_eq!(l("qaa"), pair("qaa", "qaa"));
    assert_eq!(language_of("fr-CA").and_then(|l| l.code), Some(*b"fra"));
}

/// A presentation of a video track and audio tracks of `(language,
/// own name, default)`, ids from 2; subtitle tracks of `(language, own
/// name)`, ids from 10.
fn film(audio: &[(&str, Option<&str>, bool)], texts: &[(&str, Option<&str>)]) -> Presentation {
    use crate::mp4::cmaf::{Kind, Text, testing};
    let mut v = vec![testing::rendition(
        1,
        Kind::Video,
        "avc1.64001F",
        &[(6.0, 1000)],
    )];
    for (i, (lang, name, default)) in audio.iter().enumerate() {
        let mut r = testing::rendition(i as u32 + 2, Kind::Audio, "mp4a.40.2", &[(6.0, 1000)]);
        r.language = Some(lang.to_string());
        r.info.name = name.and_then(|n| n.try_into().ok());
        r.default = *default;
        v.push(r);
    }
    let mut p = testing::presentation(v);
    for (i, (lang, name)) in texts.iter().enumerate() {
        p.texts.push(Text {
            id: i as u32 + 10,
            language: Some(lang.to_string()),
            name: name.map(str::to_string),
            default: i == 1,
        });
    }
    p
}

/// (name, default) of each alternative.
fn shown(alts: &[Alternative]) -> Vec<(String, bool)> {
    alts.iter().map(|a| (a.name.clone(), a.default)).collect()
}

fn pairs(v: &[(&str, bool)]) -> Vec<(String, bool)> {
    v.iter().map(|(n, d)| (n.to_string(), *d)).collect()
}

#[test]
fn alternatives_are_named_uniquely() {
    // Own names first (no `"`), then the language's, then the kind's.
    let p = film(
        &[
            ("eng", Some("Director's \"cut\""), false),
            ("fra", None, true),
            ("eng", None, false),
            ("und", None, false),
        ],
        &[
            ("eng", None),
            ("eng", None),
            ("und", Some("Signs")),
            ("und", None),
        ],
    );
    let (audio, texts) = alternatives(&p);
    assert_eq!(
        shown(&audio),
        pairs(&[
            ("Director's 'cut'", false),
            ("français", true),
            ("English", false),
            ("Audio 4", false)
        ])
    );
    assert_eq!(
        shown(&texts),
        pairs(&[
            ("English", false),
            ("English (2)", true),
            ("Signs", false),
            ("Subtitles 4", false)
        ])
    );
    assert_eq!(audio[3].language, None);
    // A name a track has already is skipped over.
    let p = film(
        &[
            ("eng", None, true),
            ("eng", Some("English (2)"), false),
            ("eng", None, false),
            ("pt-br", None, false),
        ],
        &[],
    );
    let (audio, _) = alternatives(&p);
    assert_eq!(
        shown(&audio),
        pairs(&[
            ("English", true),
            ("English (2)", false),
            ("English (3)", false),
            ("português", false)
        ])
    );
    assert_eq!(
        audio[3].language.as_ref().map(|l| l.tag.as_str()),
        Some("pt-BR")
    );
}

#[test]
fn names() {
    let p = |s: &str| Resource::parse(s.as_bytes());
    assert_eq!(p("/master.m3u8"), Some(Resource::Master));
    assert_eq!(p("/manifest.mpd"), Some(Resource::Mpd));
    let t = |file, id| TrackId { file, id };
    assert_eq!(p("/index-2.m3u8"), Some(Resource::Playlist(t(0, 2))));
    assert_eq!(p("/init-1.mp4"), Some(Resource::Init(t(0, 1))));
    assert_eq!(p("/seg-12-1.m4s"), Some(Resource::Segment(12, t(0, 1))));
    assert_eq!(p("/seg-3-f2-1.m4s"), Some(Resource::Segment(3, t(2, 1))));
    assert_eq!(p("/index-f16-2.m3u8"), Some(Resource::Playlist(t(16, 2))));
    assert_eq!(p("/iframes-1.m3u8"), Some(Resource::IFrames(t(0, 1))));
    assert_eq!(p("/key-7-f2-1.m4s"), Some(Resource::KeyFrame(7, t(2, 1))));
    assert_eq!(t(2, 1).to_string(), "f2-1");
    assert_eq!(p(""), None);
    assert_eq!(p("/"), Some(Resource::Progressive));
    for bad in [
        "/seg-0-1.m4s",
        "/seg-1.m4s",
        "/seg--1-1.m4s",
        "/seg-1-1.mp4",
        "/init-.mp4",
        "/init-+1.mp4",
        "/index-99999999999.m3u8",
        "/master.m3u8/x",
        "/init-f0-1.mp4",
        "/init-f17-1.mp4",
        "/init-f1.mp4",
        "/key-0-1.m4s",
        "/key-1.m4s",
        "/iframes-.m3u8",
        "/../master.m3u8",
    ] {
        assert_eq!(p(bad), None, "{bad}");
    }
}

#[test]
fn path_info_splits_after_the_film() {
    let s = |p: &str| {
        let (a, b) = split(p.as_bytes());
        (
            String::from_utf8_lossy(a).into_owned(),
            String::from_utf8_lossy(b).into_owned(),
        )
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(s("/f/a.mp4/master.m3u8"), pair("/f/a.mp4", "/master.m3u8"));
    assert_eq!(s("/f/a.MP4/seg-1-1.m4s"), pair("/f/a.MP4", "/seg-1-1.m4s"));
    assert_eq!(
        s("/x.mp4/b.mov/manifest.mpd"),
        pair("/x.mp4/b.mov", "/manifest.mpd")
    );
    assert_eq!(s("/f/a.mp4"), pair("/f/a.mp4", ""));
    assert_eq!(s("/f/a.mp4/"), pair("/f/a.mp4/", ""));
    assert_eq!(s("/f/a.mp4x/y"), pair("/f/a.mp4x/y", ""));
}

#[test]
fn url_sets() {
    let set = |p: &str| {
        url_set(p.as_bytes()).map(|v| {
            v.into_iter()
                .map(|f| String::from_utf8(f).unwrap())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(
        set("/films/lecture_,360,720,.mp4.urlset"),
        Some(vec![
            "/films/lecture_360.mp4".into(),
            "/films/lecture_720.mp4".into()
        ])
    );
    assert_eq!(
        set("/a,b.mp4,c.mp4,.urlset"),
        Some(vec!["/ab.mp4".into(), "/ac.mp4".into()])
    );
    assert_eq!(set("/films/lecture.mp4.urlset"), None);
    assert_eq!(set("/films/lecture_,,.mp4.urlset"), None);
    assert_eq!(set("/films/a.mp4"), None);
    let many = format!("/x_{}.mp4.urlset", ",1".repeat(17) + ",");
    assert_eq!(set(&many), None);
    assert_eq!(
        split(b"/f/l_,1,2,.mp4.urlset/master.m3u8"),
        (&b"/f/l_,1,2,.mp4.urlset"[..], &b"/master.m3u8"[..])
    );
}

#[test]
fn window_query() {
    let w = |start, end| Window {
        start,
        end,
        flash: false,
        tracks: Default::default(),
    };
    assert_eq!(query(&w(None, None)), "");
    assert_eq!(query(&w(Some(45.5), Some(60.0))), "?start=45.5&end=60");
    assert_eq!(query(&w(None, Some(3.25))), "?end=3.25");
}
