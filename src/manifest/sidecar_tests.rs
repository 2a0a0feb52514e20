use super::*;

fn srt(s: &str) -> Subtitles {
    parse("film.srt", s.as_bytes(), 100).unwrap()
}

fn vtt(s: &str) -> Subtitles {
    parse("film.vtt", s.as_bytes(), 100).unwrap()
}

/// Each cue as `(start, end, text)`.
fn cues(s: &Subtitles) -> Vec<(f64, f64, &str)> {
    (s.cues.iter())
        .map(|c| (c.start, c.end, c.text.as_str()))
        .collect()
}

/// How many blocks were skipped, and the first one's line and why.
fn skipped(s: &Subtitles) -> (usize, Option<(usize, ErrorKind)>) {
    (s.skipped, s.first_skipped.map(|e| (e.line, e.kind)))
}

fn error(name: &str, bytes: &[u8], max_cues: usize) -> (usize, ErrorKind) {
    let e = parse(name, bytes, max_cues).unwrap_err();
    (e.line, e.kind)
}

#[test]
fn srt_cues_keep_what_webvtt_can_show() {
    let s = srt("1\n00:00:01,000 --> 00:00:02,500\nHello\n<i>world</I>\n\n\
         2\n00:01:02,345 --> 00:01:04,000\n\
         {\\an8}<font color=\"#ff0000\">Tom</font> & <B>Jerry</b> <3 >\n{\\an8}\n");
    assert_eq!(
        cues(&s),
        [
            (1.0, 2.5, "Hello\n<i>world</i>"),
            (62.345, 64.0, "Tom &amp; <b>Jerry</b> &lt;3 &gt;"),
        ]
    );
    assert_eq!(skipped(&s), (0, None));
}

#[test]
fn srt_as_found_in_the_wild() {
    // A byte-order mark, CR LF, no index lines, extra blank lines, hours
    // past 99, coordinates after the times, `.` for `,`, short fields.
    let s = srt(
        "\u{feff}\r\n\r\n00:00:01,000 --> 00:00:02,000  X1:100 X2:600 Y1:50 Y2:80\r\n\
         one\r\n\r\n\r\n \t\r\n123:04:05.678 --> 123:04:06,5\r\ntwo\r\nlines\r\n\r\n\
         7\r\n0:0:9,000-->0:0:10,000\r\nthree\r\n",
    );
    assert_eq!(
        cues(&s),
        [
            (1.0, 2.0, "one"),
            (9.0, 10.0, "three"),
            (443_045.678, 443_046.5, "two\nlines"),
        ],
        "in start order"
    );
    assert_eq!(skipped(&s), (0, None));
    // Old Mac line ends (CR alone), and cues with no blank line between
    // them: the number before a timing line is the next cue's index.
    let s =
        srt("1\r00:00:01,000 --> 00:00:02,000\rone\r1984\r2\r00:00:03,000 --> 00:00:04,000\rtwo");
    assert_eq!(cues(&s), [(1.0, 2.0, "one\n1984"), (3.0, 4.0, "two")]);
    // An arrow in text that is no timing line stays text; a lone index
    // (its cue's timing lost to a blank line) is no text.
    let s = srt("1\n\n00:00:01,000 --> 00:00:02,000\nA --> B\n");
    assert_eq!(cues(&s), [(1.0, 2.0, "A --&gt; B")]);
    assert_eq!(skipped(&s), (0, None));
}

#[test]
fn webvtt_cues_as_written() {
    let s = vtt("WEBVTT - a title\nKind: captions\nLanguage: en\n\n\
         NOTE a comment\nover two lines\n\n\
         STYLE\n::cue { color: red }\n\n\
         REGION\nid:fred width:40%\n\n\
         intro\n00:01.000 --> 00:02.500 align:start line:0%\n<v Roger>Hi &amp; <c.big>bye</c>\n\n\
         01:00:00.000 --> 01:00:01.000 region:fred\nlate\n\n\n\
         00:10.000 --> 00:11.000\nafter blank lines\nNOTE this is text\n");
    assert_eq!(
        cues(&s),
        [
            (1.0, 2.5, "<v Roger>Hi &amp; <c.big>bye</c>"),
            (10.0, 11.0, "after blank lines\nNOTE this is text"),
            (3600.0, 3601.0, "late"),
        ]
    );
    assert_eq!(skipped(&s), (0, None));
    // A cue right after the header, and a line with an arrow that ends a
    // cue or a NOTE and starts the next cue, as WebVTT's parser reads them.
    let s = vtt(
        "\u{feff}WEBVTT\n00:01.000 --> 00:02.000\none\n00:03.000 --> 00:04.000\ntwo\n\n\
         NOTE\n00:05.000 --> 00:06.000\nthree\r\n",
    );
    assert_eq!(
        cues(&s),
        [(1.0, 2.0, "one"), (3.0, 4.0, "two"), (5.0, 6.0, "three")]
    );
    for header in ["WEBVTT", "WEBVTT\tx", "WEBVTT "] {
        assert!(parse("a.VTT", header.as_bytes(), 1).is_ok(), "{header}");
    }
}

#[test]
fn bad_blocks_are_skipped_and_counted() {
    // A broken timing line, an end before the start, one at the start,
    // text with no timing line: each skipped, the cues around kept.
    let s = srt("1\n00:00:01,000 --> 00:00:02,000\none\n\n\
         2\n00:00:03,000 -> 00:00:04,000\nlost\n\n\
         3\n00:00:05,000 --> 00:00:0x,000\nlost too\nmore\n\n\
         4\n00:00:09,000 --> 00:00:08,000\nbackwards\n\n\
         5\n00:00:09,000 --> 00:00:09,000\nnever shown\n\n\
         stray text\n\n\
         6\n00:00:10,000 --> 00:00:11,000\nsix\n");
    assert_eq!(cues(&s), [(1.0, 2.0, "one"), (10.0, 11.0, "six")]);
    assert_eq!(skipped(&s), (5, Some((5, ErrorKind::NoTiming))));
    let kinds = |text: &str| {
        let s = srt(text);
        (s.cues.len(), skipped(&s))
    };
    assert_eq!(
        kinds("1\n00:00:05,000 --> 00:00:0x,000\nlost\n"),
        (0, (1, Some((2, ErrorKind::BadTiming))))
    );
    assert_eq!(
        kinds("00:00:09,000 --> 00:00:08,000\nbackwards\n"),
        (0, (1, Some((1, ErrorKind::NeverShown))))
    );
    // A cue with no text loses nothing: dropped, not counted.
    assert_eq!(kinds("00:00:01,000 --> 00:00:02,000\n\n"), (0, (0, None)));
    // WebVTT: a block with no timing line, a bad time, an SRT time.
    let s = vtt("WEBVTT\n\nlonely line\n\nid\nstill no time\n\n\
         00:01.000 --> 00:02.000\nkept\n\n\
         1:00.000 --> 1:02.000\nbad minutes\n\n\
         00:00:01,000 --> 00:00:02,000\nsrt time\n\nlast line alone");
    assert_eq!(cues(&s), [(1.0, 2.0, "kept")]);
    assert_eq!(skipped(&s), (5, Some((3, ErrorKind::NoTiming))));
}

#[test]
fn whole_file_errors() {
    assert_eq!(error("film.txt", b"", 1), (0, ErrorKind::UnknownFormat));
    assert_eq!(error("srt", b"", 1), (0, ErrorKind::UnknownFormat));
    assert_eq!(error("a.vtt", b"", 1), (1, ErrorKind::NoHeader));
    assert_eq!(error("a.vtt", b"WEBVTTX\n", 1), (1, ErrorKind::NoHeader));
    let srt_file = b"1\n00:00:01,000 --> 00:00:02,000\nHi\n";
    assert_eq!(error("a.vtt", srt_file, 1), (1, ErrorKind::NoHeader));
    let three = "00:00:01,000 --> 00:00:02,000\na\n\n00:00:03,000 --> 00:00:04,000\nb\n\n\
                 00:00:05,000 --> 00:00:06,000\nc\n";
    assert_eq!(
        error("a.srt", three.as_bytes(), 2),
        (7, ErrorKind::TooManyCues { max: 2 })
    );
    assert_eq!(srt(three).cues.len(), 3);
    assert_eq!(
        error("a.srt", &vec![b'\n'; MAX_BYTES + 1], 1),
        (0, ErrorKind::TooLarge)
    );
    // Messages say where and what.
    let e = parse("a.srt", three.as_bytes(), 2).unwrap_err();
    assert_eq!(e.to_string(), "line 7: more than 2 cues");
    let e = parse("a.srt", b"00:61:00,000 --> 00:62:00,000\nx", 9);
    let e = e.unwrap().first_skipped.unwrap().to_string();
    assert!(
        e.starts_with("line 1: not a timing line (SRT `00:01:02,345"),
        "{e}"
    );
}

#[test]
fn times_that_overflow_are_bad_timing_lines() {
    for bad in [
        "99999999999999999999:00:00,000 --> 99999999999999999999:00:01,000",
        "1000000:00:00,000 --> 1000000:00:01,000",
        "00:60:00,000 --> 00:61:00,000",
        "00:00:60,000 --> 00:00:61,000",
        "00:00:01,0000 --> 00:00:02,000",
        "-1:00:00,000 --> 00:00:02,000",
        "+1:00:00,000 --> 00:00:02,000",
        "00:00:01 --> 00:00:02",
        "::, --> ::,",
        "1:2:3:4,000 --> 00:00:02,000",
        " --> ",
    ] {
        let s = srt(&format!("{bad}\ntext\n"));
        assert_eq!(
            (s.cues.len(), skipped(&s)),
            (0, (1, Some((1, ErrorKind::BadTiming)))),
            "{bad}"
        );
    }
    // The largest time read: 999 999 hours, exact to the millisecond.
    let s = srt("999999:59:59,998 --> 999999:59:59,999\nlast\n");
    assert_eq!(s.cues[0].end, 3_599_999_999.999);
}

#[test]
fn hostile_inputs_stay_bounded() {
    // A million empty lines.
    let s = srt(&"\n".repeat(1_000_000));
    assert_eq!((s.cues.len(), s.skipped), (0, 0));
    let s = parse(
        "a.vtt",
        format!("WEBVTT{}", "\r".repeat(1_000_000)).as_bytes(),
        1,
    )
    .unwrap();
    assert_eq!((s.cues.len(), s.skipped), (0, 0));
    // A line of 10 MB is refused whole; a line of nearly 1 MiB in a cue
    // skips that cue only.
    let long = "x".repeat(10 << 20);
    assert_eq!(error("a.srt", long.as_bytes(), 1), (0, ErrorKind::TooLarge));
    let text = "&".repeat(MAX_BYTES - 200);
    let s = srt(&format!(
        "00:00:01,000 --> 00:00:02,000\n{text}\n\n00:00:03,000 --> 00:00:04,000\nnext\n"
    ));
    assert_eq!(cues(&s), [(3.0, 4.0, "next")]);
    assert_eq!(skipped(&s), (1, Some((1, ErrorKind::TextTooLong))));
    // Text is bounded across lines too; exactly the bound is kept.
    let at_bound = "y".repeat(MAX_TEXT - 2);
    let s = srt(&format!("00:00:01,000 --> 00:00:02,000\n{at_bound}\nz\n"));
    assert_eq!(s.cues[0].text.len(), MAX_TEXT);
    let s = srt(&format!("00:00:01,000 --> 00:00:02,000\n{at_bound}\nzz\n"));
    assert_eq!(skipped(&s), (1, Some((1, ErrorKind::TextTooLong))));
    // Many cues: the caller's bound, whatever the file holds.
    let many = "00:00:01,000 --> 00:00:02,000\nx\n\n".repeat(30_000);
    assert_eq!(
        parse("a.srt", many.as_bytes(), 30_000).unwrap().cues.len(),
        30_000
    );
    assert_eq!(
        error("a.srt", many.as_bytes(), 29_999),
        (89_998, ErrorKind::TooManyCues { max: 29_999 })
    );
    // Tag-like text in every shape, in one long line: linear, and kept.
    let tags = "<<a<font<".repeat(50_000) + "{\\{\\{" + &"&<i".repeat(50_000);
    let s = srt(&format!("00:00:01,000 --> 00:00:02,000\n{tags}\n"));
    assert_eq!(skipped(&s), (1, Some((1, ErrorKind::TextTooLong))));
}

#[test]
fn tags_nested_unclosed_or_broken_lose_no_text() {
    let one = |line: &str| {
        srt(&format!("00:00:01,000 --> 00:00:02,000\n{line}\n")).cues[0]
            .text
            .clone()
    };
    assert_eq!(one("<i><b>both</i></b>"), "<i><b>both</i></b>");
    assert_eq!(one("<i>never closed"), "<i>never closed");
    assert_eq!(one("</u>closed first<u>"), "</u>closed first<u>");
    assert_eq!(one("<font color=red"), "&lt;font color=red");
    assert_eq!(one("<font color=<b>red</b>"), "&lt;font color=<b>red</b>");
    assert_eq!(one("<fontain>"), "&lt;fontain&gt;");
    assert_eq!(one("a <span>b</span>"), "a &lt;span&gt;b&lt;/span&gt;");
    assert_eq!(one("<I >shout< /i>"), "<i>shout</i>");
    assert_eq!(one("{\\an8"), "{\\an8");
    assert_eq!(one("{\\pos(1,2)}{not ass}x{\\b1}y"), "{not ass}xy");
    assert_eq!(one("{\\a{\\an8}b"), "{\\ab");
    assert_eq!(one("<<i>>"), "&lt;<i>&gt;");
    assert_eq!(one("é ü ☃ &amp;"), "é ü ☃ &amp;amp;");
    // A line of markup only is no line; a cue of markup only is no cue.
    assert_eq!(one("a\n{\\an8}<font>\nb"), "a\nb");
    assert!(
        srt("00:00:01,000 --> 00:00:02,000\n<font>{\\an1}</font>\n")
            .cues
            .is_empty()
    );
}

#[test]
fn text_that_is_not_utf8() {
    // Windows-1252, the common encoding of SRT files that are not UTF-8.
    let s = parse(
        "a.srt",
        b"00:00:01,000 --> 00:00:02,000\nCaf\xe9 \x80 \x93quoted\x94 \x81\xff\n",
        1,
    )
    .unwrap();
    assert_eq!(s.cues[0].text, "Café € “quoted” \u{81}ÿ");
    // UTF-16 after its byte-order mark, both ways round.
    let text = "WEBVTT\n\n00:01.000 --> 00:02.000\nnaïve ☃\n";
    let le: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let be: Vec<u8> = [0xfe, 0xff]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    for bytes in [le, be] {
        assert_eq!(
            cues(&parse("a.vtt", &bytes, 1).unwrap()),
            [(1.0, 2.0, "naïve ☃")]
        );
    }
    // Odd bytes and lone surrogates: replaced, never a panic.
    let s = parse("a.srt", b"\xff\xfe\x00\xd8\x31", 1).unwrap();
    assert!(s.cues.is_empty());
}

#[test]
fn sidecars_are_named_after_their_film() {
    let of = |film: &str, file: &str| Sidecar::of(film, file).map(|s| (s.format, s.language));
    let some = |f, l: Option<&str>| Some((f, l.map(String::from)));
    assert_eq!(of("film.mp4", "film.srt"), some(Format::Srt, None));
    assert_eq!(of("film.mp4", "film.VTT"), some(Format::WebVtt, None));
    assert_eq!(of("film.mp4", "film.en.srt"), some(Format::Srt, Some("en")));
    assert_eq!(
        of("film.mp4", "film.FR.vtt"),
        some(Format::WebVtt, Some("fr"))
    );
    assert_eq!(
        of("film.mp4", "film.pt-br.srt"),
        some(Format::Srt, Some("pt-BR"))
    );
    assert_eq!(
        of("film.mp4", "film.eng.srt"),
        some(Format::Srt, Some("eng"))
    );
    assert_eq!(
        of("film.mp4", "film.fre.srt"),
        some(Format::Srt, Some("fre"))
    );
    assert_eq!(
        of("film.mp4", "film.zh-hant-tw.srt"),
        some(Format::Srt, Some("zh-Hant-TW"))
    );
    assert_eq!(
        of("film.mp4", "film.es-419.vtt"),
        some(Format::WebVtt, Some("es-419"))
    );
    assert_eq!(of("film.mp4", "film.und.srt"), some(Format::Srt, None));
    assert_eq!(of("a.b.mp4", "a.b.de.srt"), some(Format::Srt, Some("de")));
    assert_eq!(of("film", "film.srt"), some(Format::Srt, None));
    for not in [
        "film.mp4",
        "film.txt",
        "film.en.forced.srt",
        "film.en.sdh.srt",
        "film.english.srt",
        "film.zz.srt",
        "film.e.srt",
        "film.en-.srt",
        "film.en-US-US.srt",
        "film.en-Latn-Latn.srt",
        "film.pt-BR-Latn.srt",
        "film.en_US.srt",
        "film..srt",
        "film.srt.bak",
        "filmen.srt",
        "films.srt",
        "other.srt",
        "Film.srt",
        "film.mp4.srt",
    ] {
        assert_eq!(of("film.mp4", not), None, "{not}");
    }
}

#[test]
fn a_folder_gives_sorted_bounded_sidecars() {
    let listing = [
        "film.mp4",
        "film.fr.srt",
        "film.srt",
        "other.en.srt",
        "film.en.vtt",
        "film.jpg",
        "film.fr.srt",
    ];
    let found = beside("film.mp4", listing);
    let names: Vec<&str> = found.sidecars.iter().map(|s| s.file.as_str()).collect();
    assert_eq!(names, ["film.en.vtt", "film.fr.srt", "film.srt"]);
    assert_eq!(found.left_out, 0);
    // Many: the first 16 in order, whatever the listing's order.
    let mut codes: Vec<String> = ["de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt"]
        .iter()
        .flat_map(|c| [format!("film.{c}.srt"), format!("film.{c}.vtt")])
        .collect();
    codes.reverse();
    let others = vec!["other.srt".to_string(); 10_000];
    let found = beside("film.mp4", codes.iter().chain(&others));
    assert_eq!(found.sidecars.len(), MAX_SIDECARS);
    assert_eq!(found.left_out, 4);
    assert_eq!(found.sidecars[0].file, "film.de.srt");
    assert_eq!(found.sidecars[15].file, "film.nl.vtt");
    let mut sorted = found.sidecars.clone();
    sorted.sort_by(|a, b| a.file.cmp(&b.file));
    assert_eq!(sorted, found.sidecars);
}
