//! Subtitles from files beside a film (pure): `name.srt`, `name.vtt` and
//! `name.<lang>.srt|vtt` next to `name.mp4`, read into the [`Cue`]s a
//! film's `tx3g` track gives. The server lists the folder and reads the
//! file; this module only names and parses.
//!
//! A cue's text here is WebVTT cue text, not plain text: an SRT's `<i>`,
//! `<b>`, `<u>` are kept (and a WebVTT file's text is kept as written), and
//! an SRT's literal `&`, `<`, `>` are escaped. A `tx3g` cue's text is
//! plain and `webvtt`'s writer escapes it, so sidecar cues must be written
//! without that escaping, or their tags would show as text.
//!
//! Bad blocks are skipped and counted, not fatal: a timing line that does
//! not parse, a cue that ends before (or when) it starts, text past
//! [`MAX_TEXT`], lines with no timing line. One broken block is common in
//! SRT files found in the wild, and refusing the file would lose every
//! other cue; [`Subtitles::skipped`] and the first one's line let the
//! server log what was lost. The file as a whole is refused ([`Error`])
//! only when it is not a subtitle file at all or exceeds a bound.

use crate::mp4::cues::Cue;
use std::borrow::Cow;

/// Largest sidecar read, in bytes (the index keeps 1 MiB of a film's
/// `tx3g` cues).
pub const MAX_BYTES: usize = 1 << 20;

/// Longest text of one cue, in bytes, as for a `tx3g` sample.
pub const MAX_TEXT: usize = 16 << 10;

/// Most sidecars one film has.
pub const MAX_SIDECARS: usize = 16;

/// Most digits of an hour: 999 999 hours in milliseconds stays exact
/// through seconds in an `f64` and back.
const MAX_HOUR_DIGITS: usize = 6;

/// A sidecar's format, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// SubRip, `.srt`.
    Srt,
    /// `.vtt`
    WebVtt,
}

impl Format {
    /// The format a file's name says (`.srt` or `.vtt`, in any case).
    pub fn of(name: &str) -> Option<Format> {
        Format::of_extension(name.rsplit_once('.')?.1)
    }

    fn of_extension(ext: &str) -> Option<Format> {
        match ext.to_ascii_lowercase().as_str() {
            "srt" => Some(Format::Srt),
            "vtt" => Some(Format::WebVtt),
            _ => None,
        }
    }
}

/// A sidecar's cues, in start order, and what was skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Subtitles {
    pub cues: Vec<Cue>,
    /// Blocks skipped (see the module's comment).
    pub skipped: usize,
    /// The first skipped block: its line and why.
    pub first_skipped: Option<Error>,
}

/// Why a sidecar, or one block of it, cannot be read, at `line` (from 1;
/// 0: the file as a whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub line: usize,
    pub kind: ErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The name ends neither in `.srt` nor in `.vtt`.
    UnknownFormat,
    /// Over [`MAX_BYTES`].
    TooLarge,
    /// A `.vtt` whose first line is not `WEBVTT`.
    NoHeader,
    /// More cues than the caller allows.
    TooManyCues { max: usize },
    /// A block: a timing line that does not parse.
    BadTiming,
    /// A block: a cue that ends before or when it starts.
    NeverShown,
    /// A block: text over [`MAX_TEXT`].
    TextTooLong,
    /// A block: lines with no timing line.
    NoTiming,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        match self.kind {
            ErrorKind::UnknownFormat => write!(f, "a subtitle file's name ends in .srt or .vtt"),
            ErrorKind::TooLarge => write!(f, "subtitle file over {MAX_BYTES} bytes"),
            ErrorKind::NoHeader => write!(f, "a WebVTT file begins with a WEBVTT line"),
            ErrorKind::TooManyCues { max } => write!(f, "more than {max} cues"),
            ErrorKind::BadTiming => write!(
                f,
                "not a timing line (SRT `00:01:02,345 --> 00:01:04,000`, \
                 WebVTT `01:02.345 --> 01:04.000`)"
            ),
            ErrorKind::NeverShown => write!(f, "the cue ends before or when it starts"),
            ErrorKind::TextTooLong => write!(f, "the cue's text is over {MAX_TEXT} bytes"),
            ErrorKind::NoTiming => write!(f, "text with no timing line"),
        }
    }
}

impl std::error::Error for Error {}

/// The cues of sidecar `name` (its extension gives the format): at most
/// `max_cues`, else an error. Linear in `bytes`.
pub fn parse(name: &str, bytes: &[u8], max_cues: usize) -> Result<Subtitles, Error> {
    let whole = |kind| Error { line: 0, kind };
    let format = Format::of(name).ok_or(whole(ErrorKind::UnknownFormat))?;
    if bytes.len() > MAX_BYTES {
        return Err(whole(ErrorKind::TooLarge));
    }
    let text = decode(bytes);
    let mut lines = Lines(&text).zip(1..);
    let mut p = Parser {
        format,
        max_cues,
        out: Subtitles::default(),
    };
    let mut state = State::Idle;
    if format == Format::WebVtt {
        // `WEBVTT`, alone or followed by a space or tab and a title.
        let header = lines.next().map(|(l, _)| l.strip_prefix("WEBVTT"));
        if !matches!(header, Some(Some(rest)) if rest.is_empty() || rest.starts_with([' ', '\t'])) {
            return Err(Error {
                line: 1,
                kind: ErrorKind::NoHeader,
            });
        }
        state = State::Header;
    }
    for (line, n) in lines {
        state = p.line(state, line, n)?;
    }
    p.line(state, "", 0)?;
    // SRT files are not always in order; WebVTT's cues are.
    (p.out.cues).sort_by(|a, b| a.start.total_cmp(&b.start));
    Ok(p.out)
}

/// Text from a sidecar's bytes: UTF-16 after its byte-order mark, UTF-8
/// (without its mark), else Windows-1252, which most non-UTF-8 SRT files
/// are (and which reads Latin-1 text the same, control codes aside).
fn decode(bytes: &[u8]) -> Cow<'_, str> {
    let utf16 = |b: &[u8], unit: fn([u8; 2]) -> u16| {
        let units: Vec<u16> = b.chunks_exact(2).map(|u| unit([u[0], u[1]])).collect();
        Cow::Owned(String::from_utf16_lossy(&units))
    };
    match bytes {
        [0xff, 0xfe, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xfe, 0xff, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => {
            let b = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
            match std::str::from_utf8(b) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => Cow::Owned(b.iter().map(|&c| windows_1252(c)).collect()),
            }
        }
    }
}

/// Windows-1252: Latin-1 but for 0x80–0x9F; its five unassigned bytes are
/// read as Latin-1's control codes.
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// Lines ended by CR LF, LF or CR (WebVTT's three; old Mac SRTs use CR).
struct Lines<'a>(&'a str);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.0.is_empty() {
            return None;
        }
        let Some(i) = self.0.find(['\r', '\n']) else {
            return Some(std::mem::take(&mut self.0));
        };
        let (line, rest) = self.0.split_at(i);
        let ending = if rest.starts_with("\r\n") { 2 } else { 1 };
        self.0 = rest.get(ending..).unwrap_or("");
        Some(line)
    }
}

/// Where the reader is between two lines.
enum State {
    /// WebVTT's header block, after `WEBVTT`.
    Header,
    /// Between blocks.
    Idle,
    /// After a block's first line, which has no `-->`: an SRT index or a
    /// WebVTT cue identifier, from line `n`.
    Named(usize),
    /// In a cue's text.
    Cue(Open),
    /// In a block that is not read (NOTE, STYLE, REGION, or one skipped).
    Ignored,
}

/// A cue whose text is still being read.
struct Open {
    /// Its timing line.
    line: usize,
    start: u64,
    end: u64,
    text: String,
    too_long: bool,
    /// SRT: where the text's last line starts when that line is a number,
    /// the next cue's index if a timing line follows (no blank line
    /// between the two cues).
    index_at: Option<usize>,
}

struct Parser {
    format: Format,
    max_cues: usize,
    out: Subtitles,
}

impl Parser {
    /// Reads line `n`; `n == 0` ends the input.
    fn line(&mut self, state: State, line: &str, n: usize) -> Result<State, Error> {
        let srt = self.format == Format::Srt;
        let arrow = line.contains("-->");
        // What ends a cue or a skipped block and starts the next cue:
        // WebVTT, a line with `-->` (as its own parser reads it); SRT, a
        // timing line, since text may hold `-->` and a missing blank line
        // between cues is common.
        let next_cue = if srt {
            timing(line, self.format).is_some()
        } else {
            arrow
        };
        if line.trim().is_empty() {
            match state {
                State::Cue(open) => self.close(open)?,
                // A lone number is an SRT index (`Named` holds only those
                // in SRT); a WebVTT line alone is text without a time.
                State::Named(at) if !srt => self.skip(at, ErrorKind::NoTiming),
                _ => {}
            }
            return Ok(State::Idle);
        }
        Ok(match state {
            State::Header | State::Named(_) if arrow => self.open(line, n),
            State::Header => State::Header,
            State::Idle if arrow => self.open(line, n),
            State::Idle if !srt && is_ignored_block(line) => State::Ignored,
            State::Idle if !srt || is_number(line) => State::Named(n),
            State::Idle | State::Named(_) => {
                let at = if let State::Named(at) = state { at } else { n };
                self.skip(at, ErrorKind::NoTiming);
                State::Ignored
            }
            State::Cue(mut open) if next_cue => {
                if let Some(at) = open.index_at.filter(|_| srt) {
                    open.text.truncate(at);
                }
                self.close(open)?;
                self.open(line, n)
            }
            State::Cue(mut open) => {
                open.push(line, self.format);
                State::Cue(open)
            }
            State::Ignored if next_cue => self.open(line, n),
            State::Ignored => State::Ignored,
        })
    }

    /// A cue at its timing line `n`, or a skipped block.
    fn open(&mut self, line: &str, n: usize) -> State {
        match timing(line, self.format) {
            Some((start, end)) => State::Cue(Open {
                line: n,
                start,
                end,
                text: String::new(),
                too_long: false,
                index_at: None,
            }),
            None => {
                self.skip(n, ErrorKind::BadTiming);
                State::Ignored
            }
        }
    }

    /// Keeps a cue whose text has been read. One with no text is dropped
    /// (nothing is lost); one that is never shown is skipped.
    fn close(&mut self, open: Open) -> Result<(), Error> {
        if open.too_long {
            self.skip(open.line, ErrorKind::TextTooLong);
        } else if open.text.is_empty() {
        } else if open.end <= open.start {
            self.skip(open.line, ErrorKind::NeverShown);
        } else if self.out.cues.len() >= self.max_cues {
            return Err(Error {
                line: open.line,
                kind: ErrorKind::TooManyCues { max: self.max_cues },
            });
        } else {
            self.out.cues.push(Cue {
                start: open.start as f64 / 1000.0,
                end: open.end as f64 / 1000.0,
                text: open.text,
            });
        }
        Ok(())
    }

    fn skip(&mut self, line: usize, kind: ErrorKind) {
        self.out.skipped = self.out.skipped.saturating_add(1);
        (self.out.first_skipped).get_or_insert(Error { line, kind });
    }
}

impl Open {
    /// Adds a line of text, as WebVTT cue text.
    fn push(&mut self, line: &str, format: Format) {
        if self.too_long {
            return;
        }
        let before = self.text.len();
        if before > 0 {
            self.text.push('\n');
        }
        let from = self.text.len();
        match format {
            Format::Srt => srt_text(line, &mut self.text),
            Format::WebVtt => self.text.push_str(line),
        }
        // A line of ASS overrides alone (`{\an8}`) is no line.
        if self.text.get(from..).is_none_or(|l| l.trim().is_empty()) {
            self.text.truncate(before);
            return;
        }
        self.index_at = is_number(line).then_some(before);
        if self.text.len() > MAX_TEXT {
            self.too_long = true;
            self.text = String::new();
        }
    }
}

/// `NOTE`, `STYLE` and `REGION` blocks are not cues.
fn is_ignored_block(line: &str) -> bool {
    ["NOTE", "STYLE", "REGION"].iter().any(|k| {
        line.strip_prefix(k)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    })
}

fn is_number(line: &str) -> bool {
    digits(line.trim())
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A timing line's start and end, in milliseconds. What follows the end
/// (WebVTT cue settings, SRT `X1:… Y1:…` coordinates) is not kept.
fn timing(line: &str, format: Format) -> Option<(u64, u64)> {
    let (start, rest) = line.split_once("-->")?;
    let end = rest.trim_start().split([' ', '\t']).next()?;
    Some((time(start.trim(), format)?, time(end, format)?))
}

/// Milliseconds of `hh:mm:ss.ttt` or `mm:ss.ttt` (WebVTT), or of
/// `hh:mm:ss,ttt` (SRT, which is also read with `.`, fields of one digit and
/// one or two digits of fraction).
fn time(s: &str, format: Format) -> Option<u64> {
    let srt = format == Format::Srt;
    let (clock, fraction) = if srt {
        s.split_once([',', '.'])?
    } else {
        s.split_once('.')?
    };
    // SRT: 1 to 3 digits of fraction and 1 or 2 of minutes and seconds.
    let width = |f: &str, vtt: usize| digits(f) && (f.len() == vtt || (srt && f.len() < vtt));
    if !width(fraction, 3) {
        return None;
    }
    let scale = [100, 10, 1][fraction.len() - 1];
    let ms = fraction.parse::<u64>().ok()?.checked_mul(scale)?;
    let mut fields = clock.rsplitn(3, ':');
    let (second, minute, hour) = (fields.next()?, fields.next()?, fields.next());
    let sixty = |f: &str| {
        (width(f, 2).then(|| f.parse::<u64>().ok()))
            .flatten()
            .filter(|&v| v < 60)
    };
    let (minute, second) = (sixty(minute)?, sixty(second)?);
    let hour = match hour {
        None => 0,
        Some(h) if digits(h) && h.len() <= MAX_HOUR_DIGITS => h.parse::<u64>().ok()?,
        Some(_) => return None,
    };
    hour.checked_mul(60)?
        .checked_add(minute)?
        .checked_mul(60)?
        .checked_add(second)?
        .checked_mul(1000)?
        .checked_add(ms)
}

/// An SRT line as WebVTT cue text: `<i>`, `<b>`, `<u>` kept, `<font …>` and
/// ASS overrides (`{\an8}`) dropped, a literal `&`, `<`, `>` escaped. Linear:
/// a tag ends at the first `>` and is text if a `<` comes first.
fn srt_text(line: &str, out: &mut String) {
    let mut rest = line;
    while let Some(i) = rest.find(['<', '>', '&', '{']) {
        let (plain, at) = rest.split_at(i);
        out.push_str(plain);
        let taken = match at.as_bytes().first() {
            Some(b'<') => tag(at, out),
            Some(b'{') if at.starts_with("{\\") => at
                .get(1..)
                .and_then(|a| a.find(['{', '}']))
                .filter(|&e| at.as_bytes().get(e + 1) == Some(&b'}'))
                .map_or(0, |e| e + 2),
            _ => 0,
        };
        let taken = if taken > 0 {
            taken
        } else {
            out.push_str(match at.as_bytes().first() {
                Some(b'<') => "&lt;",
                Some(b'>') => "&gt;",
                Some(b'&') => "&amp;",
                _ => "{",
            });
            1
        };
        rest = at.get(taken..).unwrap_or("");
    }
    out.push_str(rest);
}

/// The SRT tag `at` starts with: its length after writing what WebVTT
/// keeps of it, or 0 when it is text.
fn tag(at: &str, out: &mut String) -> usize {
    let Some(inner) = at.get(1..).and_then(|a| {
        let end = a.find(['<', '>'])?;
        a[end..].starts_with('>').then(|| &a[..end])
    }) else {
        return 0;
    };
    let name = inner.trim();
    let kept = ["i", "b", "u", "/i", "/b", "/u"];
    if let Some(k) = kept.iter().find(|k| name.eq_ignore_ascii_case(k)) {
        out.push('<');
        out.push_str(k);
        out.push('>');
    } else {
        let font = |n: &str| {
            n.get(..4).is_some_and(|f| f.eq_ignore_ascii_case("font"))
                && n.get(4..)
                    .is_some_and(|r| r.is_empty() || r.starts_with(char::is_whitespace))
        };
        if !font(name) && !name.strip_prefix('/').is_some_and(font) {
            return 0;
        }
    }
    inner.len() + 2
}

/// A subtitle file beside a film.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sidecar {
    /// Its name, in the film's folder.
    pub file: String,
    pub format: Format,
    /// The BCP 47 tag its name carries (`en`, `pt-BR`, `eng`), in BCP 47's
    /// cases; `None`: no tag, or `und`.
    pub language: Option<String>,
}

impl Sidecar {
    /// `file` as a sidecar of `film`, both names in one folder: for
    /// `name.mp4`, `name.srt`, `name.vtt` and `name.<lang>.srt|vtt`.
    /// Anything else (`name.en.forced.srt`, `name.txt`) is none.
    pub fn of(film: &str, file: &str) -> Option<Sidecar> {
        let stem = film.rsplit_once('.').map_or(film, |(stem, _)| stem);
        let rest = file.strip_prefix(stem)?.strip_prefix('.')?;
        let (tag, ext) = match rest.rsplit_once('.') {
            Some((tag, ext)) => (Some(tag), ext),
            None => (None, rest),
        };
        let format = Format::of_extension(ext)?;
        let language = match tag {
            Some(tag) => language_tag(tag)?,
            None => None,
        };
        Some(Sidecar {
            file: file.to_string(),
            format,
            language,
        })
    }
}

/// A folder's sidecars of one film.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Sorted by name: the first [`MAX_SIDECARS`].
    pub sidecars: Vec<Sidecar>,
    /// Sidecars past those.
    pub left_out: usize,
}

/// The sidecars of `film` among a folder's `names`. Linear in the
/// listing, and holding at most [`MAX_SIDECARS`] whatever its length.
pub fn beside<I>(film: &str, names: I) -> Found
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut kept: Vec<Sidecar> = Vec::new();
    let mut left_out = 0usize;
    for name in names {
        let Some(s) = Sidecar::of(film, name.as_ref()) else {
            continue;
        };
        if kept.iter().any(|k| k.file == s.file) {
            continue;
        }
        if kept.len() < MAX_SIDECARS {
            kept.push(s);
            continue;
        }
        left_out = left_out.saturating_add(1);
        // Full: the name last in order goes.
        if let Some((i, last)) = kept
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.file.cmp(&b.1.file))
            && s.file < last.file
        {
            kept[i] = s;
        }
    }
    kept.sort_by(|a, b| a.file.cmp(&b.file));
    Found {
        sidecars: kept,
        left_out,
    }
}

/// A language tag as sidecars' names carry it: an ISO 639-1 or 639-2 code
/// (`en`, `eng`, `fre`), then at most a script and a region (`zh-Hant-TW`,
/// `pt-BR`, `es-419`). `Some(None)`: `und`; `None`: no language tag.
fn language_tag(tag: &str) -> Option<Option<String>> {
    let mut subtags = tag.split('-');
    let primary = subtags.next()?.to_ascii_lowercase();
    let known = match primary.len() {
        2 => isolang::Language::from_639_1(&primary).is_some(),
        3 => {
            primary == "und"
                || isolang::Language::from_639_3(crate::mp4::tracks::terminology(&primary))
                    .is_some()
        }
        _ => false,
    };
    if !known {
        return None;
    }
    let mut out = primary;
    let (mut script, mut region) = (true, true);
    for s in subtags {
        let letters = s.bytes().all(|b| b.is_ascii_alphabetic());
        out.push('-');
        if script && s.len() == 4 && letters {
            out.push_str(&s[..1].to_ascii_uppercase());
            out.push_str(&s[1..].to_ascii_lowercase());
            script = false;
        } else if region && ((s.len() == 2 && letters) || (s.len() == 3 && digits(s))) {
            out.push_str(&s.to_ascii_uppercase());
            (script, region) = (false, false);
        } else {
            return None;
        }
    }
    Some((out != "und").then_some(out))
}

/// What the fuzz oracle (`fuzz/oracle/subtitles.rs`) reaches in the crate.
#[cfg(feature = "fuzzing")]
#[path = "sidecar_fuzzing.rs"]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(test)]
#[path = "sidecar_tests.rs"]
mod tests;
