//! What the manifests say of a film's dynamic range, Dolby Vision and Dolby
//! audio, asked of the server: `VIDEO-RANGE` from a `colr` box or, without
//! one, from the SPS's VUI (HEVC and H.264); Dolby Vision inserted into a
//! real film by box surgery (`CODECS` of the base layer with
//! `SUPPLEMENTAL-CODECS`, or the Dolby Vision string itself for profile 5);
//! E-AC-3 and AC-3 channels from `dec3`/`dac3`, and JOC (Dolby Atmos) by a
//! patched `dec3`. ffprobe says what each film is on the source side.

mod common;

use common::dev_http::{get, serve_root};
use common::{Pool, boxes::bx};
use std::path::Path;
use std::process::Command;

/// Encodes `name` in `dir` with ffmpeg: `args` between the inputs and the
/// output (one second of test pattern; `audio` adds a tone).
fn encode(dir: &Path, name: &str, audio: bool, args: &[&str]) {
    let mut c = Command::new("ffmpeg");
    c.args(["-v", "error", "-y", "-f", "lavfi"]);
    c.args(["-i", "testsrc2=size=320x240:rate=25"]);
    if audio {
        c.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    c.args(["-t", "2"]).args(args).arg(dir.join(name));
    let out = c.output().expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffprobe's `entries` of the first stream of `kind` (`v`, `a`), as
/// `key=value` lines.
fn probe(path: &Path, kind: &str, entries: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", &format!("{kind}:0")])
        .args(["-show_entries", entries, "-of", "default=nw=1"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// The box `fourcc` among the boxes of `data[from..to]`: its start, size.
fn child(data: &[u8], from: usize, to: usize, fourcc: &[u8; 4]) -> Option<(usize, usize)> {
    let mut at = from;
    while at + 8 <= to {
        let size = be32(data, at);
        assert!(size >= 8 && at + size <= to, "a 32-bit box at {at}");
        if &data[at + 4..at + 8] == fourcc {
            return Some((at, size));
        }
        at += size;
    }
    None
}

/// The boxes from `moov` down to the first sample entry of the track whose
/// handler is `handler`: `(start, size)` each, the entry last.
fn entry_path(film: &[u8], handler: &[u8; 4]) -> Vec<(usize, usize)> {
    let moov = child(film, 0, film.len(), b"moov").unwrap();
    let mdat = child(film, 0, film.len(), b"mdat").unwrap();
    // Growing moov moves nothing the chunk offsets point at.
    assert!(mdat.0 < moov.0, "ffmpeg writes moov after mdat");
    let mut at = moov.0 + 8;
    while let Some(trak) = child(film, at, moov.0 + moov.1, b"trak") {
        at = trak.0 + trak.1;
        let mdia = child(film, trak.0 + 8, trak.0 + trak.1, b"mdia").unwrap();
        let hdlr = child(film, mdia.0 + 8, mdia.0 + mdia.1, b"hdlr").unwrap();
        if &film[hdlr.0 + 16..hdlr.0 + 20] != handler {
            continue;
        }
        let minf = child(film, mdia.0 + 8, mdia.0 + mdia.1, b"minf").unwrap();
        let stbl = child(film, minf.0 + 8, minf.0 + minf.1, b"stbl").unwrap();
        let stsd = child(film, stbl.0 + 8, stbl.0 + stbl.1, b"stsd").unwrap();
        let entry = (stsd.0 + 16, be32(film, stsd.0 + 16));
        return vec![moov, trak, mdia, minf, stbl, stsd, entry];
    }
    panic!("no {} track", String::from_utf8_lossy(handler));
}

/// Inserts `bytes` at `at`, inside every box of `path`, whose sizes grow.
fn insert(film: &mut Vec<u8>, path: &[(usize, usize)], at: usize, bytes: &[u8]) {
    for &(start, size) in path {
        assert!(start < at && at <= start + size);
        let grown = u32::try_from(size + bytes.len()).unwrap();
        film[start..start + 4].copy_from_slice(&grown.to_be_bytes());
    }
    film.splice(at..at, bytes.iter().copied());
}

/// A `DOVIDecoderConfigurationRecord` box: version 1.0, RPU and base
/// layer present.
fn dovi(fourcc: &[u8; 4], profile: u8, level: u8, compatibility: u8) -> Vec<u8> {
    let mut b = vec![0u8; 24];
    b[0] = 1;
    b[2] = (profile << 1) | (level >> 5);
    b[3] = ((level & 0x1f) << 3) | 0b101;
    b[4] = compatibility << 4;
    bx(fourcc, &b)
}

/// `source` with a Dolby Vision box at the end of its video sample entry,
/// renamed `rename` if given, written as `name`.
fn with_dolby_vision(dir: &Path, source: &str, name: &str, dv: &[u8], rename: Option<&[u8; 4]>) {
    let mut film = std::fs::read(dir.join(source)).unwrap();
    let path = entry_path(&film, b"vide");
    let (entry, size) = path[path.len() - 1];
    insert(&mut film, &path, entry + size, dv);
    if let Some(fourcc) = rename {
        film[entry + 4..entry + 8].copy_from_slice(fourcc);
    }
    std::fs::write(dir.join(name), film).unwrap();
}

/// The attributes of an HLS tag line, by name.
fn attribute<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (_, rest) = line.split_once(':')?;
    let mut rest = rest;
    while !rest.is_empty() {
        let (key, value) = rest.split_once('=')?;
        let (value, after) = match value.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
            }
            None => value.split_once(',').unwrap_or((value, "")),
        };
        if key == name {
            return Some(value);
        }
        rest = after;
    }
    None
}

/// The first line of `text` that starts with `tag`.
fn line<'a>(text: &'a str, tag: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(tag))
        .unwrap_or_else(|| panic!("no {tag} in\n{text}"))
}

/// The video `Representation` start tag of an MPD.
fn video_representation(mpd: &str) -> &str {
    let set = &mpd[mpd.find("contentType=\"video\"").expect("a video set")..];
    line(
        &set[set.find("<Representation").unwrap()..],
        "<Representation",
    )
}

struct Server {
    port: u16,
    _pool: Pool,
}

impl Server {
    fn start(root: &Path) -> Server {
        let (pool, port) = serve_root(root, &[]);
        Server { port, _pool: pool }
    }

    fn master(&self, film: &str) -> String {
        get(self.port, &format!("/{film}/master.m3u8")).text()
    }

    fn mpd(&self, film: &str) -> String {
        get(self.port, &format!("/{film}/manifest.mpd")).text()
    }
}

const X265_PQ: &str = "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc";
const X265_HLG: &str =
    "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc";

fn hevc(params: &str) -> Vec<&str> {
    let mut v = vec!["-c:v", "libx265", "-x265-params", params];
    v.extend(["-pix_fmt", "yuv420p10le", "-tag:v", "hvc1"]);
    v
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn video_range_comes_from_colr_or_else_from_the_sps() {
    common::require_tool("ffprobe");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let colr_pq = [
        "-color_primaries",
        "bt2020",
        "-color_trc",
        "smpte2084",
        "-colorspace",
        "bt2020nc",
    ];
    let x264_hlg = "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc";
    let x264_pq = "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc";
    // (film, ffmpeg's video options, ffprobe's color_transfer, whether
    // the sample entry has a colr box, VIDEO-RANGE)
    type Film<'a> = (&'a str, Vec<&'a str>, &'a str, bool, Option<&'a str>);
    let films: [Film<'_>; 7] = [
        // ffmpeg writes colr (9, 16, 9) from its own colour options.
        (
            "hevc_pq_colr.mp4",
            [&hevc("log-level=error")[..], &colr_pq].concat(),
            "smpte2084",
            true,
            Some("PQ"),
        ),
        // Only the encoder knows the colour: no colr, the VUI says it.
        (
            "hevc_pq_vui.mp4",
            hevc(X265_PQ),
            "smpte2084",
            false,
            Some("PQ"),
        ),
        (
            "hevc_hlg_vui.mp4",
            hevc(X265_HLG),
            "arib-std-b67",
            false,
            Some("HLG"),
        ),
        // write_colr with nothing known: a colr of unspecified codes (2).
        (
            "hevc_pq_colr_unspecified.mp4",
            [&hevc(X265_PQ)[..], &["-movflags", "+write_colr"]].concat(),
            "smpte2084",
            true,
            Some("PQ"),
        ),
        (
            "avc_hlg_vui.mp4",
            vec![
                "-c:v",
                "libx264",
                "-x264-params",
                x264_hlg,
                "-pix_fmt",
                "yuv420p10le",
            ],
            "arib-std-b67",
            false,
            Some("HLG"),
        ),
        (
            "avc_pq_vui.mp4",
            vec![
                "-c:v",
                "libx264",
                "-x264-params",
                x264_pq,
                "-pix_fmt",
                "yuv420p",
            ],
            "smpte2084",
            false,
            Some("PQ"),
        ),
        (
            "avc_sdr.mp4",
            vec!["-c:v", "libx264", "-pix_fmt", "yuv420p"],
            "",
            false,
            None,
        ),
    ];
    for (name, args, _, _, _) in &films {
        encode(d, name, false, args);
    }
    let server = Server::start(d);
    for (name, _, transfer, has_colr, range) in &films {
        let path = d.join(name);
        // The source is what the test thinks.
        let probed = probe(&path, "v", "stream=color_transfer");
        if transfer.is_empty() {
            assert!(
                !probed.contains("smpte2084") && !probed.contains("arib"),
                "{name}: {probed}"
            );
        } else {
            assert_eq!(
                probed.trim(),
                format!("color_transfer={transfer}"),
                "{name}"
            );
        }
        let film = std::fs::read(&path).unwrap();
        let entry = *entry_path(&film, b"vide").last().unwrap();
        let colr = child(&film, entry.0 + 8 + 78, entry.0 + entry.1, b"colr");
        assert_eq!(colr.is_some(), *has_colr, "{name}: colr");

        let master = server.master(name);
        let inf = line(&master, "#EXT-X-STREAM-INF:");
        assert_eq!(attribute(inf, "VIDEO-RANGE"), *range, "{name}: {inf}");
        let codecs = attribute(inf, "CODECS").unwrap();
        let prefix = if name.starts_with("hevc") {
            "hvc1.2.4.L"
        } else {
            "avc1.6"
        };
        assert!(codecs.starts_with(prefix), "{name}: {inf}");
        assert_eq!(attribute(inf, "SUPPLEMENTAL-CODECS"), None, "{name}: {inf}");
        let mpd = server.mpd(name);
        assert!(
            video_representation(&mpd).contains(&format!("codecs=\"{codecs}\"")),
            "{mpd}"
        );
        assert!(!mpd.contains("scte214"), "{name}: {mpd}");
    }
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn dolby_vision_is_announced_over_its_base_layer_or_alone() {
    common::require_tool("ffprobe");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    encode(d, "pq.mp4", false, &hevc(X265_PQ));
    encode(d, "hlg.mp4", false, &hevc(X265_HLG));
    // 8.1 (HDR10 base layer), 8.4 (HLG), 5 (no compatible base layer, in
    // a dvh1 entry).
    with_dolby_vision(d, "pq.mp4", "dv81.mp4", &dovi(b"dvvC", 8, 1, 1), None);
    with_dolby_vision(d, "hlg.mp4", "dv84.mp4", &dovi(b"dvvC", 8, 4, 4), None);
    with_dolby_vision(
        d,
        "pq.mp4",
        "dv5.mp4",
        &dovi(b"dvcC", 5, 1, 0),
        Some(b"dvh1"),
    );
    for (name, profile, compatibility) in
        [("dv81.mp4", 8, 1), ("dv84.mp4", 8, 4), ("dv5.mp4", 5, 0)]
    {
        // ffprobe reads the record as the test wrote it.
        let side = probe(&d.join(name), "v", "stream_side_data");
        assert!(
            side.contains(&format!("dv_profile={profile}\n")),
            "{name}: {side}"
        );
        assert!(
            side.contains(&format!("dv_bl_signal_compatibility_id={compatibility}\n")),
            "{name}: {side}"
        );
    }
    let server = Server::start(d);
    let base = |film: &str| {
        let master = server.master(film);
        attribute(line(&master, "#EXT-X-STREAM-INF:"), "CODECS")
            .unwrap()
            .to_string()
    };
    let (pq, hlg) = (base("pq.mp4"), base("hlg.mp4"));
    assert!(
        pq.starts_with("hvc1.2.4.L") && hlg.starts_with("hvc1.2.4.L"),
        "{pq} {hlg}"
    );
    for (film, codecs, supplemental, range, profiles) in [
        (
            "dv81.mp4",
            pq.as_str(),
            Some("dvh1.08.01/db1p"),
            "PQ",
            Some("db1p"),
        ),
        (
            "dv84.mp4",
            hlg.as_str(),
            Some("dvh1.08.04/db4h"),
            "HLG",
            Some("db4h"),
        ),
        ("dv5.mp4", "dvh1.05.01", None, "PQ", None),
    ] {
        let master = server.master(film);
        let inf = line(&master, "#EXT-X-STREAM-INF:");
        assert_eq!(attribute(inf, "CODECS"), Some(codecs), "{film}: {inf}");
        assert_eq!(
            attribute(inf, "SUPPLEMENTAL-CODECS"),
            supplemental,
            "{film}: {inf}"
        );
        assert_eq!(attribute(inf, "VIDEO-RANGE"), Some(range), "{film}: {inf}");
        let mpd = server.mpd(film);
        let rep = video_representation(&mpd);
        assert!(
            rep.contains(&format!(" codecs=\"{codecs}\" ")),
            "{film}: {rep}"
        );
        match (supplemental, profiles) {
            (Some(s), Some(brand)) => {
                let dv = s.split('/').next().unwrap();
                assert!(
                    rep.contains(&format!(
                        " scte214:supplementalCodecs=\"{dv}\" scte214:supplementalProfiles=\"{brand}\""
                    )),
                    "{film}: {rep}"
                );
                assert!(
                    mpd.contains(" xmlns:scte214=\"urn:scte:dash:scte214-extensions\" "),
                    "{mpd}"
                );
            }
            _ => assert!(!mpd.contains("scte214"), "{film}: {mpd}"),
        }
        // The segments are served, the record kept in the init segment.
        let uri = master.lines().find(|l| l.starts_with("index-")).unwrap();
        let playlist = get(server.port, &format!("/{film}/{uri}")).text();
        let init = attribute(line(&playlist, "#EXT-X-MAP:"), "URI").unwrap();
        let init = get(server.port, &format!("/{film}/{init}")).body;
        let record = if film == "dv5.mp4" {
            &b"dvcC"[..]
        } else {
            &b"dvvC"[..]
        };
        assert!(
            init.windows(4).any(|w| w == record),
            "{film}: init keeps the record"
        );
        let first = playlist.lines().find(|l| l.starts_with("seg-")).unwrap();
        assert!(
            !get(server.port, &format!("/{film}/{first}"))
                .body
                .is_empty()
        );
    }
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn dolby_audio_channels_and_atmos() {
    common::require_tool("ffprobe");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let video = ["-c:v", "libx264", "-pix_fmt", "yuv420p"];
    encode(
        d,
        "eac3.mp4",
        true,
        &[&video[..], &["-c:a", "eac3", "-ac", "6"]].concat(),
    );
    encode(
        d,
        "ac3.mp4",
        true,
        &[&video[..], &["-c:a", "ac3", "-ac", "2"]].concat(),
    );
    let probed = probe(&d.join("eac3.mp4"), "a", "stream=codec_name,channels");
    assert_eq!(probed, "codec_name=eac3\nchannels=6\n");
    let probed = probe(&d.join("ac3.mp4"), "a", "stream=codec_name,channels");
    assert_eq!(probed, "codec_name=ac3\nchannels=2\n");
    // JOC can only be told by the box: the dec3 of eac3.mp4 with the
    // extension after its substream (flag_ec3_extension_type_a, complexity
    // index 16).
    let mut film = std::fs::read(d.join("eac3.mp4")).unwrap();
    let path = entry_path(&film, b"soun");
    let entry = *path.last().unwrap();
    let dec3 = child(&film, entry.0 + 8 + 28, entry.0 + entry.1, b"dec3").unwrap();
    assert_eq!(dec3.1, 13, "one independent substream, no extension");
    let mut inside = path.clone();
    inside.push(dec3);
    insert(&mut film, &inside, dec3.0 + dec3.1, &[0x01, 16]);
    std::fs::write(d.join("joc.mp4"), film).unwrap();
    assert_eq!(
        probe(&d.join("joc.mp4"), "a", "stream=codec_name,channels"),
        "codec_name=eac3\nchannels=6\n"
    );

    let server = Server::start(d);
    let dolby = "<AudioChannelConfiguration schemeIdUri=\"tag:dolby.com,2014:dash:audio_channel_configuration:2011\"";
    let joc = [
        "<SupplementalProperty schemeIdUri=\"tag:dolby.com,2018:dash:EC3_ExtensionType:2018\" value=\"JOC\"/>",
        "<SupplementalProperty schemeIdUri=\"tag:dolby.com,2018:dash:EC3_ExtensionComplexityIndex:2018\" value=\"16\"/>",
    ];
    for (film, codec, channels, layout, atmos) in [
        ("eac3.mp4", "ec-3", "6", "F801", false),
        ("joc.mp4", "ec-3", "16/JOC", "F801", true),
        ("ac3.mp4", "ac-3", "2", "A000", false),
    ] {
        let master = server.master(film);
        let media = line(&master, "#EXT-X-MEDIA:TYPE=AUDIO");
        assert_eq!(
            attribute(media, "CHANNELS"),
            Some(channels),
            "{film}: {media}"
        );
        let inf = line(&master, "#EXT-X-STREAM-INF:");
        let codecs = attribute(inf, "CODECS").unwrap();
        assert!(codecs.ends_with(&format!(",{codec}")), "{film}: {inf}");
        let mpd = server.mpd(film);
        let set = &mpd[mpd.find("contentType=\"audio\"").unwrap()..];
        let set = &set[..set.find("</AdaptationSet>").unwrap()];
        assert!(
            set.contains(&format!(" codecs=\"{codec}\" ")),
            "{film}: {set}"
        );
        let want = format!("{dolby} value=\"{layout}\"/>");
        assert!(set.lines().any(|l| l == want), "{film}: {set}");
        assert!(!set.contains("urn:mpeg:dash:23003:3"), "{film}: {set}");
        for property in joc {
            assert_eq!(set.lines().any(|l| l == property), atmos, "{film}: {set}");
        }
    }
}
