//! What HLS and DASH call a film's audio and subtitle tracks: a track's own
//! name (`udta`'s `name`, ffmpeg's `title`), else its language's name, else
//! "Audio N"; BCP 47 tags from `elng` or `mdhd`; one default per group,
//! from `--default-language` or the tracks' enabled flags.

mod common;

use common::dev_http::{get, serve_root};
use common::media;
use std::path::Path;
use std::process::Command;

const SRT: &str = "1\n00:00:01,000 --> 00:00:02,500\nHello\n";

/// Runs ffmpeg with `args` (after `-v error -y`).
fn ffmpeg(args: &[&[&str]]) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args.concat())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The boxes of `data[from..to]`: (start, size, type); 32-bit sizes only.
fn boxes(data: &[u8], from: usize, to: usize) -> Vec<(usize, usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut at = from;
    while at + 8 <= to {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        assert!(
            size >= 8 && at + size <= to,
            "a box of {size} bytes at {at}"
        );
        out.push((at, size, data[at + 4..at + 8].try_into().unwrap()));
        at += size;
    }
    out
}

fn find(list: &[(usize, usize, [u8; 4])], kind: &[u8; 4]) -> Vec<(usize, usize)> {
    (list.iter())
        .filter(|b| &b.2 == kind)
        .map(|b| (b.0, b.1))
        .collect()
}

/// `film` with an `elng` box holding `tag` at the end of the `mdia` of its
/// `n`-th `trak` (from 0), and the sizes of that `mdia`, its `trak` and the
/// `moov` grown by as much. The `moov` must come last, so that no chunk
/// moves.
fn with_elng(film: &[u8], n: usize, tag: &str) -> Vec<u8> {
    let (moov, moov_size) = find(&boxes(film, 0, film.len()), b"moov")[0];
    assert_eq!(moov + moov_size, film.len(), "the moov comes last");
    let (trak, trak_size) = find(&boxes(film, moov + 8, moov + moov_size), b"trak")[n];
    let (mdia, mdia_size) = find(&boxes(film, trak + 8, trak + trak_size), b"mdia")[0];
    let elng = common::boxes::full(b"elng", 0, format!("{tag}\0").as_bytes());
    let at = mdia + mdia_size;
    let mut out = [&film[..at], &elng, &film[at..]].concat();
    for (start, size) in [(moov, moov_size), (trak, trak_size), (mdia, mdia_size)] {
        let grown = u32::try_from(size + elng.len()).unwrap();
        out[start..start + 4].copy_from_slice(&grown.to_be_bytes());
    }
    out
}

/// An attribute of an HLS tag's attribute list ("" when absent).
fn attribute(line: &str, name: &str) -> String {
    let mut rest = line.split_once(':').map_or("", |(_, r)| r);
    while !rest.is_empty() {
        let (key, value) = rest.split_once('=').unwrap();
        let (value, next) = match value.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"').unwrap();
                (&q[..end], q[end + 1..].strip_prefix(',').unwrap_or(""))
            }
            None => value.split_once(',').unwrap_or((value, "")),
        };
        if key == name {
            return value.to_string();
        }
        rest = next;
    }
    String::new()
}

/// Each `EXT-X-MEDIA` of a master playlist: TYPE, LANGUAGE, NAME,
/// DEFAULT, AUTOSELECT and URI.
fn media_lines(master: &str) -> Vec<[String; 6]> {
    (master.lines())
        .filter(|l| l.starts_with("#EXT-X-MEDIA:"))
        .map(|l| {
            ["TYPE", "LANGUAGE", "NAME", "DEFAULT", "AUTOSELECT", "URI"].map(|a| attribute(l, a))
        })
        .collect()
}

fn alternative(kind: &str, lang: &str, name: &str, default: bool, uri: &str) -> [String; 6] {
    let yes = if default { "YES" } else { "NO" };
    [kind, lang, name, yes, "YES", uri].map(str::to_string)
}

/// An XML attribute of an element's start tag ("" when absent).
fn xml_attribute(tag: &str, name: &str) -> String {
    tag.split(&format!(" {name}=\""))
        .nth(1)
        .and_then(|v| v.split('"').next())
        .unwrap_or("")
        .to_string()
}

/// An adaptation set: its contentType, lang, Label, Role values and
/// representations' ids.
type Set = (String, String, String, String, String);

/// Each audio and text adaptation set of an MPD.
fn adaptation_sets(mpd: &str) -> Vec<Set> {
    let mut out = Vec::new();
    for set in mpd.split("<AdaptationSet").skip(1) {
        let set = set.split("</AdaptationSet>").next().unwrap();
        let head = &set[..set.find('>').unwrap()];
        let kind = xml_attribute(head, "contentType");
        // Named sets only: video has none, nor do the seek-bar previews.
        if kind == "video" || kind == "image" {
            continue;
        }
        let label = (set.split("<Label>").nth(1))
            .and_then(|l| l.split("</Label>").next())
            .unwrap_or("");
        let tags = |name: &str, attr: &str| {
            (set.split(&format!("<{name} ")).skip(1))
                .map(|t| xml_attribute(&format!(" {t}"), attr))
                .collect::<Vec<_>>()
                .join(",")
        };
        out.push((
            kind,
            xml_attribute(head, "lang"),
            label.to_string(),
            tags("Role", "value"),
            tags("Representation", "id"),
        ));
    }
    out
}

fn set(kind: &str, lang: &str, label: &str, role: &str, ids: &str) -> Set {
    let own = |s: &str| s.to_string();
    (own(kind), own(lang), own(label), own(role), own(ids))
}

/// The films of the test, in `dir`.
fn make_films(dir: &Path) {
    let two = media("two_audio.mp4");
    let two = two.to_str().unwrap();
    let srt = dir.join("subs.srt");
    std::fs::write(&srt, SRT).unwrap();
    let srt = srt.to_str().unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    // English (enabled) and French audio, the French titled; English and
    // German subtitles, the English titled.
    ffmpeg(&[
        &[
            "-i", two, "-i", srt, "-i", srt, "-map", "0", "-map", "1", "-map", "2",
        ],
        &["-c", "copy", "-c:s", "mov_text"],
        &["-metadata:s:a:1", "title=Director's commentary"],
        &[
            "-metadata:s:s:0",
            "language=eng",
            "-metadata:s:s:0",
            "title=Signs & songs",
        ],
        &["-metadata:s:s:1", "language=deu", &path("named.mp4")],
    ]);
    // The second audio track the enabled one.
    ffmpeg(&[
        &["-i", two, "-map", "0", "-c", "copy"],
        &["-disposition:a:0", "0", "-disposition:a:1", "default"],
        &[&path("second.mp4")],
    ]);
    // Two English tracks and one of no language.
    ffmpeg(&[
        &[
            "-i", two, "-map", "0:v", "-map", "0:a:0", "-map", "0:a:0", "-map", "0:a:1",
        ],
        &[
            "-c",
            "copy",
            "-metadata:s:a:2",
            "language=und",
            &path("twins.mp4"),
        ],
    ]);
    // elng: en-US on the English track, pt-BR on the French one.
    let film = std::fs::read(media("two_audio.mp4")).unwrap();
    let film = with_elng(&with_elng(&film, 1, "en-US"), 2, "pt-br");
    std::fs::write(dir.join("elng.mp4"), film).unwrap();
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn tracks_are_named_and_one_per_group_is_the_default() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    make_films(dir.path());
    let (_pool, port) = serve_root(dir.path(), &[]);
    let master = |film: &str| media_lines(&get(port, &format!("/{film}/master.m3u8")).text());
    let mpd = |film: &str| adaptation_sets(&get(port, &format!("/{film}/manifest.mpd")).text());

    // A track's own name wins; the enabled English track is the default.
    assert_eq!(
        master("named.mp4"),
        [
            alternative("AUDIO", "en", "English", true, "index-2.m3u8"),
            alternative(
                "AUDIO",
                "fr",
                "Director's commentary",
                false,
                "index-3.m3u8"
            ),
            alternative("SUBTITLES", "en", "Signs & songs", false, "subs-4.m3u8"),
            alternative("SUBTITLES", "de", "Deutsch", false, "subs-5.m3u8"),
        ]
    );
    assert_eq!(
        mpd("named.mp4"),
        [
            set("audio", "en", "English", "main", "2"),
            set("audio", "fr", "Director's commentary", "alternate", "3"),
            set("text", "en", "Signs &amp; songs", "subtitle", "4"),
            set("text", "de", "Deutsch", "subtitle", "5"),
        ]
    );

    // tkhd's enabled flag on the second track makes it the default.
    assert_eq!(
        master("second.mp4"),
        [
            alternative("AUDIO", "en", "English", false, "index-2.m3u8"),
            alternative("AUDIO", "fr", "français", true, "index-3.m3u8"),
        ]
    );
    assert_eq!(
        mpd("second.mp4"),
        [
            set("audio", "en", "English", "alternate", "2"),
            set("audio", "fr", "français", "main", "3"),
        ]
    );

    // Two tracks of one language are told apart; one of no language is
    // named by its place. DASH keeps one adaptation set per language.
    assert_eq!(
        master("twins.mp4"),
        [
            alternative("AUDIO", "en", "English", true, "index-2.m3u8"),
            alternative("AUDIO", "en", "English (2)", false, "index-3.m3u8"),
            alternative("AUDIO", "", "Audio 3", false, "index-4.m3u8"),
        ]
    );
    assert_eq!(
        mpd("twins.mp4"),
        [
            set("audio", "en", "English", "main", "2,3"),
            set("audio", "", "Audio 3", "alternate", "4"),
        ]
    );

    // elng's tag overrides mdhd's code, its region kept, shortest form.
    assert_eq!(
        master("elng.mp4"),
        [
            alternative("AUDIO", "en-US", "English", true, "index-2.m3u8"),
            alternative("AUDIO", "pt-BR", "português", false, "index-3.m3u8"),
        ]
    );
    assert_eq!(
        mpd("elng.mp4"),
        [
            set("audio", "en-US", "English", "main", "2"),
            set("audio", "pt-BR", "português", "alternate", "3"),
        ]
    );
    // lang= chooses by elng's language too.
    let only = media_lines(&get(port, "/elng.mp4/master.m3u8?lang=pt").text());
    assert_eq!(
        only,
        [alternative(
            "AUDIO",
            "pt-BR",
            "português",
            true,
            "index-3.m3u8?lang=por"
        )]
    );
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn default_language_chooses_the_default_rendition() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    make_films(dir.path());

    // French audio over the enabled English, by language (fr-CA's region
    // is not compared); no subtitle is shown with audio in the language.
    let (pool, port) = serve_root(dir.path(), &["--default-language", "fr-CA"]);
    let text = get(port, "/named.mp4/master.m3u8").text();
    assert_eq!(
        media_lines(&text),
        [
            alternative("AUDIO", "en", "English", false, "index-2.m3u8"),
            alternative("AUDIO", "fr", "Director's commentary", true, "index-3.m3u8"),
            alternative("SUBTITLES", "en", "Signs & songs", false, "subs-4.m3u8"),
            alternative("SUBTITLES", "de", "Deutsch", false, "subs-5.m3u8"),
        ]
    );
    let sets = adaptation_sets(&get(port, "/named.mp4/manifest.mpd").text());
    let roles: Vec<&str> = sets.iter().map(|s| s.3.as_str()).collect();
    assert_eq!(roles, ["alternate", "main", "subtitle", "subtitle"]);
    // elng's pt-BR is Portuguese, whatever mdhd says (fra).
    assert_eq!(
        media_lines(&get(port, "/elng.mp4/master.m3u8").text()),
        [
            alternative("AUDIO", "en-US", "English", true, "index-2.m3u8"),
            alternative("AUDIO", "pt-BR", "português", false, "index-3.m3u8"),
        ]
    );
    drop(pool);

    // German has no audio: the enabled English plays, German subtitles show.
    let (_pool, port) = serve_root(dir.path(), &["--default-language", "de"]);
    assert_eq!(
        media_lines(&get(port, "/named.mp4/master.m3u8").text()),
        [
            alternative("AUDIO", "en", "English", true, "index-2.m3u8"),
            alternative(
                "AUDIO",
                "fr",
                "Director's commentary",
                false,
                "index-3.m3u8"
            ),
            alternative("SUBTITLES", "en", "Signs & songs", false, "subs-4.m3u8"),
            alternative("SUBTITLES", "de", "Deutsch", true, "subs-5.m3u8"),
        ]
    );
}

#[test]
fn an_unknown_default_language_is_refused() {
    for bad in ["english", "xx", "en_US", ""] {
        let out = Command::new(common::BIN)
            .args(["--check", "--default-language", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: {err}");
        assert!(
            err.contains("--default-language") && err.contains("is not a language"),
            "{bad}: {err}"
        );
    }
}
