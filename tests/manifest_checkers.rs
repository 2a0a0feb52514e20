//! The manifest checkers (`common::hls_check`, `common::mpd_check`) report
//! each hand-written fault of RFC 8216, of the MPD's required attributes,
//! and of the seek-bar previews' image playlist and DASH-IF thumbnail set:
//! without this, a checker that accepts everything would let
//! tests/manifest_conformance.rs pass whatever the server writes.

mod common;
#[path = "manifest_checkers/faults.rs"]
mod faults;

use common::{hls_check, mpd_check};
use faults::{IMAGE_STREAM_FAULTS, IMAGES_FAULTS, THUMBNAIL_SET_FAULTS};
use std::collections::HashMap;

const MASTER: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"index-2.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",LANGUAGE=\"fr\",NAME=\"français\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"index-3.m3u8\"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=NO,AUTOSELECT=YES,URI=\"subs-4.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=181777,AVERAGE-BANDWIDTH=179522,CODECS=\"avc1.64000C,mp4a.40.2\",RESOLUTION=320x180,FRAME-RATE=25.000,AUDIO=\"audio\",SUBTITLES=\"subs\"
index-1.m3u8
#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=4320,RESOLUTION=160x90,CODECS=\"jpeg\",URI=\"images.m3u8\"
";

const PLAYLIST: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init-1.mp4\"
#EXTINF:6.000000,
seg-1-1.m4s
#EXTINF:2.000000,
seg-2-1.m4s
#EXT-X-ENDLIST
";

/// `images.m3u8` of a 25 s film: 5x2 tiles of 160x90, one every 2 s.
const IMAGES: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:20
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-IMAGES-ONLY
#EXTINF:20.000000,
#EXT-X-TILES:RESOLUTION=160x90,LAYOUT=5x2,DURATION=2.000000
tiles-1.jpg
#EXTINF:5.000000,
#EXT-X-TILES:RESOLUTION=160x90,LAYOUT=5x2,DURATION=2.000000
tiles-2.jpg
#EXT-X-ENDLIST
";

const MPD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" mediaPresentationDuration="PT20.000S" minBufferTime="PT6.016S" maxSegmentDuration="PT6.016S">
<Period id="0" start="PT0S">
<AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">
<Representation id="1" codecs="avc1.64000C" bandwidth="128663" width="320" height="180">
<SegmentTemplate timescale="12800" initialization="init-$RepresentationID$.mp4" media="seg-$Number$-$RepresentationID$.m4s" startNumber="1">
<SegmentTimeline>
<S t="0" d="76800" r="2"/>
<S d="25600"/>
</SegmentTimeline>
</SegmentTemplate>
</Representation>
</AdaptationSet>
<AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" segmentAlignment="true" startWithSAP="1" lang="en">
<Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
<Representation id="2" codecs="mp4a.40.2" bandwidth="53114" audioSamplingRate="48000">
<AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/>
<SegmentTemplate timescale="48000" initialization="init-$RepresentationID$.mp4" media="seg-$Number$-$RepresentationID$.m4s" startNumber="1">
<SegmentTimeline>
<S t="0" d="288768"/>
<S d="287744" r="1"/>
<S d="95744"/>
</SegmentTimeline>
</SegmentTemplate>
</Representation>
</AdaptationSet>
<AdaptationSet id="100" contentType="text" mimeType="text/vtt" lang="en">
<Role schemeIdUri="urn:mpeg:dash:role:2011" value="subtitle"/>
<Representation id="3" bandwidth="256">
<BaseURL>subs-3.vtt</BaseURL>
</Representation>
</AdaptationSet>
<AdaptationSet id="2000" contentType="image" mimeType="image/jpeg">
<SegmentTemplate timescale="1000" duration="20000" media="tiles-$Number$.jpg" startNumber="1"/>
<Representation id="thumbnails" bandwidth="4320" width="800" height="180">
<EssentialProperty schemeIdUri="http://dashif.org/thumbnail_tile" value="5x2"/>
</Representation>
</AdaptationSet>
</Period>
</MPD>
"#;

/// Applies each fault (`from` → `to`, first occurrence) to `clean` and
/// asserts that `check` reports a violation containing `want`.
fn assert_caught(clean: &str, check: fn(&str) -> Vec<String>, faults: &[(&str, &str, &str)]) {
    assert_eq!(check(clean), Vec::<String>::new(), "the clean one");
    let mut missed = Vec::new();
    for (from, to, want) in faults {
        let bad = clean.replacen(from, to, 1);
        assert_ne!(bad, clean, "{from:?} is not in the clean manifest");
        let found = check(&bad);
        if !found.iter().any(|f| f.contains(want)) {
            missed.push(format!(
                "{from:?} -> {to:?}: wanted {want:?}, got {found:?}"
            ));
        }
    }
    assert!(missed.is_empty(), "not caught:\n{}", missed.join("\n"));
}

#[test]
fn hls_check_catches_master_playlist_faults() {
    assert_caught(
        MASTER,
        hls_check::master,
        &[
            ("#EXTM3U\n", "\n#EXTM3U\n", "first line is not #EXTM3U"),
            ("BANDWIDTH=181777,", "", "has no BANDWIDTH"),
            (
                "BANDWIDTH=181777",
                "BANDWIDTH=18e4",
                "not a decimal-integer",
            ),
            ("DEFAULT=NO", "DEFAULT=YES", "a second DEFAULT=YES"),
            ("\"français\"", "\"English\"", "NAME \"English\" twice"),
            (
                "DEFAULT=YES,AUTOSELECT=YES",
                "DEFAULT=YES,AUTOSELECT=NO",
                "DEFAULT=YES, AUTOSELECT=NO",
            ),
            (
                "AUDIO=\"audio\"",
                "AUDIO=\"aac\"",
                "names no TYPE=AUDIO group",
            ),
            (
                "SUBTITLES=\"subs\"",
                "SUBTITLES=\"audio\"",
                "names no TYPE=SUBTITLES group",
            ),
            (",URI=\"subs-4.m3u8\"", "", "SUBTITLES needs a URI"),
            (
                "TYPE=SUBTITLES",
                "TYPE=CLOSED-CAPTIONS",
                "CLOSED-CAPTIONS takes no URI",
            ),
            ("LANGUAGE=\"fr\"", "LANGUAGE=\"fr_FR\"", "not a BCP 47 tag"),
            ("TYPE=AUDIO", "TYPE=\"AUDIO\"", "one of"),
            (
                "GROUP-ID=\"audio\"",
                "GROUP-ID=audio",
                "not a quoted-string",
            ),
            (
                "GROUP-ID=\"audio\",",
                "GROUP-ID=\"audio\",GROUP-ID=\"x\",",
                "appears twice",
            ),
            ("NAME=\"English\",", "", "has no NAME"),
            (
                "RESOLUTION=320x180",
                "RESOLUTION=320*180",
                "decimal-resolution",
            ),
            (
                "FRAME-RATE=25.000",
                "FRAME-RATE=25fps",
                "decimal-floating-point",
            ),
            ("CODECS=\"avc1.64000C,mp4a.40.2\",", "", "no CODECS"),
            (
                "URI=\"index-3.m3u8\"\n",
                "URI=\"index-3.m3u8\n",
                "unterminated",
            ),
            ("index-1.m3u8\n", "", "not followed by a URI line"),
            (
                "index-1.m3u8\n",
                "index-1.m3u8\nindex-9.m3u8\n",
                "follows no EXT-X-STREAM-INF",
            ),
            ("#EXT-X-INDEPENDENT", "#EXT-X-INDEPENDANT", "unknown tag"),
            (
                "#EXT-X-INDEPENDENT-SEGMENTS\n",
                "#EXT-X-TARGETDURATION:6\n",
                "no place in a master",
            ),
            (
                "#EXT-X-VERSION:7\n",
                "#EXT-X-VERSION:7\n#EXT-X-VERSION:7\n",
                "more than once",
            ),
            (
                "AUDIO=\"audio\"",
                "AUDIO=\"audio\",PROGRAM-ID=1",
                "unknown attribute PROGRAM-ID",
            ),
        ],
    );
    assert_caught(MASTER, hls_check::master, IMAGE_STREAM_FAULTS);
    let streams = hls_check::image_streams(MASTER);
    assert_eq!(streams, [("images.m3u8".into(), Some("160x90".into()))]);
}

/// The image playlist of a presentation of 25 s whose master says its
/// tiles are 160x90.
fn images(text: &str) -> Vec<String> {
    hls_check::images(text, Some("160x90"), Some(25.0))
}

#[test]
fn hls_check_catches_image_playlist_faults() {
    assert_caught(IMAGES, images, IMAGES_FAULTS);
    // A playlist that is not an image one takes no EXT-X-TILES.
    let tiles = "#EXT-X-TILES:RESOLUTION=1x1,LAYOUT=1x1,DURATION=6\nseg-1-1.m4s";
    let v = hls_check::media(&PLAYLIST.replacen("seg-1-1.m4s", tiles, 1));
    assert!(v.iter().any(|e| e.contains("EXT-X-TILES without")), "{v:?}");
    // What the caller does not know is not checked.
    let other = IMAGES.replace("160x90", "320x180");
    assert_eq!(hls_check::images(&other, None, None), Vec::<String>::new());
}

#[test]
fn hls_check_catches_media_playlist_faults() {
    assert_caught(
        PLAYLIST,
        hls_check::media,
        &[
            (
                "#EXTINF:2.000000,",
                "#EXTINF:6.6,",
                "rounds above EXT-X-TARGETDURATION",
            ),
            ("#EXT-X-TARGETDURATION:6\n", "", "no EXT-X-TARGETDURATION"),
            (
                "#EXT-X-TARGETDURATION:6\n",
                "#EXT-X-TARGETDURATION:6\n#EXT-X-TARGETDURATION:6\n",
                "more than once",
            ),
            (
                "#EXT-X-VERSION:7",
                "#EXT-X-VERSION:5",
                "EXT-X-MAP without EXT-X-I-FRAMES-ONLY needs EXT-X-VERSION 6",
            ),
            (
                "#EXT-X-VERSION:7",
                "#EXT-X-VERSION:2",
                "decimal-floating-point EXTINF needs EXT-X-VERSION 3",
            ),
            (
                "#EXT-X-MAP:URI=\"init-1.mp4\"",
                "#EXT-X-MAP:BYTERANGE=\"100@0\"",
                "#EXT-X-MAP has no URI",
            ),
            ("URI=\"init-1.mp4\"", "URI=\"\"", "an empty URI"),
            (
                "seg-1-1.m4s\n",
                "seg-1-1.m4s\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n",
                "after the first segment",
            ),
            ("#EXT-X-ENDLIST\n", "", "VOD without EXT-X-ENDLIST"),
            (
                "#EXT-X-PLAYLIST-TYPE:VOD",
                "#EXT-X-PLAYLIST-TYPE:LIVE",
                "one of",
            ),
            ("#EXTINF:6.000000,\n", "", "has no EXTINF"),
            (
                "#EXTINF:6.000000,",
                "#EXTINF:6.000000",
                "not <duration>,[<title>]",
            ),
            ("seg-2-1.m4s\n", "", "has no URI"),
            (
                "#EXT-X-ENDLIST",
                "#EXT-X-STREAM-INF:BANDWIDTH=1\nx.m3u8\n#EXT-X-ENDLIST",
                "no place in a media",
            ),
        ],
    );
}

#[test]
fn hls_check_catches_a_bandwidth_below_the_segments_bit_rates() {
    // Two 6 s segments of 90 000 and 150 000 bytes: runs of 3 to 9 s, so
    // each segment alone; the peak is 200 000 bit/s, the average 160 000.
    let video = hls_check::bit_rates(&[6.0, 6.0], &[90_000, 150_000], 6);
    assert_eq!((video.peak, video.average), (200_000.0, 160_000.0));
    // Shorter than half the target: the whole playlist's rate.
    let short = hls_check::bit_rates(&[2.0], &[1000], 6);
    assert_eq!((short.peak, short.average), (4000.0, 4000.0));
    let rate = |peak, average| hls_check::Rates { peak, average };
    let mut rates = HashMap::from([
        ("index-1.m3u8".to_string(), video),
        ("index-2.m3u8".to_string(), rate(60_000.0, 50_000.0)),
        ("index-3.m3u8".to_string(), rate(40_000.0, 55_000.0)),
        ("subs-4.m3u8".to_string(), rate(500.0, 100.0)),
    ]);
    // The largest sums: video, subtitles, and the English audio's peak
    // but the French audio's average.
    let master = |bw: u32, average: u32| {
        (MASTER.replace("BANDWIDTH=181777", &format!("BANDWIDTH={bw}"))).replace(
            "AVERAGE-BANDWIDTH=179522",
            &format!("AVERAGE-BANDWIDTH={average}"),
        )
    };
    let none = Vec::<String>::new();
    assert_eq!(
        hls_check::bandwidth(&master(260_500, 215_099), &rates),
        none
    );
    let low = hls_check::bandwidth(&master(260_499, 215_098), &rates);
    assert!(
        low.iter().any(|v| v.contains("BANDWIDTH 260499 < 260500"))
            && low
                .iter()
                .any(|v| v.contains("AVERAGE-BANDWIDTH 215098 < 215099")),
        "{low:?}"
    );
    rates.remove("subs-4.m3u8");
    let missing = hls_check::bandwidth(&master(260_500, 215_100), &rates);
    assert!(
        missing.iter().any(|v| v.contains("subs-4.m3u8")),
        "{missing:?}"
    );
}

#[test]
fn bcp47_tells_well_formed_tags() {
    for good in [
        "en",
        "fr",
        "fra",
        "en-US",
        "zh-Hant-TW",
        "sr-Latn-RS",
        "de-CH-1996",
        "es-419",
        "en-a-bbb-x-a1",
        "x-whatever",
        "zh-yue-HK",
    ] {
        assert!(mpd_check::bcp47(good), "{good}");
    }
    for bad in [
        "",
        "e",
        "en_US",
        "en-",
        "-en",
        "123",
        "en-US-",
        "a-en",
        "en-a",
        "english-language-tags",
        "en-x",
    ] {
        assert!(!mpd_check::bcp47(bad), "{bad}");
    }
}

#[test]
fn mpd_check_catches_mpd_faults() {
    assert_caught(
        MPD,
        mpd_check::check,
        &[
            ("</MPD>", "</MDP>", "not well-formed XML"),
            (
                "<Period id=\"0\" start=\"PT0S\">",
                "<Period id=\"0\" start=\"PT0S\" id=\"1\">",
                "not well-formed XML",
            ),
            (
                "xmlns=\"urn:mpeg:dash:schema:mpd:2011\"",
                "xmlns=\"urn:mpeg:dash:schema:mpd:2012\"",
                "not <MPD> in",
            ),
            (
                " profiles=\"urn:mpeg:dash:profile:isoff-live:2011\"",
                "",
                "no @profiles",
            ),
            (" minBufferTime=\"PT6.016S\"", "", "no @minBufferTime"),
            ("type=\"static\"", "type=\"dynamic\"", "@type is not static"),
            (
                " mediaPresentationDuration=\"PT20.000S\"",
                "",
                "without @mediaPresentationDuration",
            ),
            ("PT20.000S", "PT20.000", "not an xs:duration"),
            ("PT6.016S\" max", "P6.016S\" max", "not an xs:duration"),
            (
                "<Period id=\"0\" start=\"PT0S\">\n<AdaptationSet",
                "<Period id=\"0\" start=\"PT0S\">\n</Period><Period><AdaptationSet",
                "no AdaptationSet",
            ),
            (
                " contentType=\"video\" mimeType=\"video/mp4\"",
                "",
                "neither @contentType nor @mimeType",
            ),
            (
                "contentType=\"video\"",
                "contentType=\"movie\"",
                "@contentType \"movie\"",
            ),
            (
                "contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\"",
                "contentType=\"video\" mimeType=\"video/mp4\"",
                "without @segmentAlignment",
            ),
            (" bandwidth=\"128663\"", "", "no @bandwidth"),
            (
                "bandwidth=\"128663\"",
                "bandwidth=\"128 kbit/s\"",
                "not an unsigned integer",
            ),
            (
                "<Representation id=\"2\"",
                "<Representation id=\"1\"",
                "@id \"1\" twice in the MPD",
            ),
            ("<Representation id=\"2\"", "<Representation", "no @id"),
            (" codecs=\"avc1.64000C\"", "", "no @codecs"),
            (
                "mimeType=\"video/mp4\"",
                "mimeType=\"audio/mp4\"",
                "@mimeType audio/mp4 in a video set",
            ),
            (" width=\"320\"", "", "without @width"),
            (" height=\"180\"", " height=\"0\"", "not a positive integer"),
            (
                " audioSamplingRate=\"48000\"",
                "",
                "without @audioSamplingRate",
            ),
            (
                "<AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"2\"/>",
                "",
                "without AudioChannelConfiguration",
            ),
            (
                "<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"main\"/>",
                "<Role value=\"main\"/>",
                "without @schemeIdUri",
            ),
            (
                "mimeType=\"text/vtt\"",
                "mimeType=\"text/plain\"",
                "not text/vtt or application/mp4",
            ),
            ("lang=\"en\"", "lang=\"en_GB\"", "not a BCP 47 language tag"),
            ("startWithSAP=\"1\"", "startWithSAP=\"7\"", "not a SAP type"),
            ("timescale=\"12800\" ", "", "no @timescale"),
            (
                "initialization=\"init-$RepresentationID$.mp4\" ",
                "",
                "no @initialization",
            ),
            (
                "init-$RepresentationID$.mp4",
                "init-$Number$.mp4",
                "$Number$ in an initialization",
            ),
            (
                " media=\"seg-$Number$-$RepresentationID$.m4s\"",
                "",
                "no @media",
            ),
            ("seg-$Number$-", "seg-$Index$-", "$Index$ is no identifier"),
            ("seg-$Number$-", "seg-$Number%5d$-", "bad format tag"),
            (
                "-$RepresentationID$.m4s",
                "-$RepresentationID%03d$.m4s",
                "bad format tag",
            ),
            ("seg-$Number$-", "seg-$Number-", "unpaired $"),
            (
                "<SegmentTimeline>\n<S t=\"0\" d=\"76800\" r=\"2\"/>\n<S d=\"25600\"/>\n</SegmentTimeline>\n",
                "",
                "neither SegmentTimeline nor @duration",
            ),
            (
                "startNumber=\"1\">\n<SegmentTimeline>",
                "startNumber=\"1\" duration=\"76800\">\n<SegmentTimeline>",
                "both a SegmentTimeline and @duration",
            ),
            ("<S d=\"25600\"/>", "<S/>", "no @d"),
            ("r=\"2\"", "r=\"-2\"", "not -1 or an unsigned integer"),
            (
                "<S d=\"25600\"/>",
                "<S t=\"100\" d=\"25600\"/>",
                "overlaps the segment before",
            ),
            (
                "<S d=\"287744\" r=\"1\"/>",
                "<S d=\"287744\" r=\"-1\"/>",
                "@r -1 before an S without @t",
            ),
            (
                "<BaseURL>subs-3.vtt</BaseURL>",
                "",
                "no segment information",
            ),
        ],
    );
    assert_caught(MPD, mpd_check::check, THUMBNAIL_SET_FAULTS);
    // An image set needs neither @codecs nor an initialization: a video one does.
    let video = MPD.replacen(
        "contentType=\"image\" mimeType=\"image/jpeg\"",
        "contentType=\"video\" mimeType=\"video/jpeg\"",
        1,
    );
    let v = mpd_check::check(&video);
    let has = |want: &str| v.iter().any(|e| e.contains(want));
    assert!(has("no @codecs") && has("no @initialization"), "{v:?}");
}

#[test]
fn mpd_image_sprites_are_the_numbers_the_period_needs() {
    assert_eq!(mpd_check::image_sprites(MPD), ["tiles-1.jpg"]);
    let short = MPD.replacen("\"20000\"", "\"6000\" startNumber=\"0\"", 1);
    let short = short.replacen(" startNumber=\"1\"/>", "/>", 1);
    let names: Vec<String> = (0..4).map(|n| format!("tiles-{n:02}.jpg")).collect();
    let padded = short.replacen("$Number$.jpg", "$Number%02d$.jpg", 1);
    assert_eq!(mpd_check::image_sprites(&padded), names);
    let id = MPD.replacen("tiles-$Number$", "$RepresentationID$-$Number$", 1);
    assert_eq!(mpd_check::image_sprites(&id), ["thumbnails-1.jpg"]);
}

#[test]
fn mpd_durations_parse_as_xs_duration() {
    for (text, secs) in [
        ("PT20.000S", 20.0),
        ("PT0S", 0.0),
        ("PT1H2M3.5S", 3723.5),
        ("P1DT1S", 86_401.0),
        ("P1Y", 31_536_000.0),
    ] {
        assert_eq!(mpd_check::duration(text), Some(secs), "{text}");
    }
    for bad in [
        "", "P", "PT", "T1S", "PT1.5M", "PT1S2M", "P1S", "PT.5S", "20S",
    ] {
        assert_eq!(mpd_check::duration(bad), None, "{bad}");
    }
}
