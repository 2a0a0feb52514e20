//! What a `trak` says about itself, samples aside: read once by the index,
//! used by the fragment scan, the planner and the writer.

use super::boxes::FourCC;
use super::tables::elst;
use super::tracks::{MAX_TAG, shortest_tag};

/// Longest track name kept, in bytes (a longer one is cut).
pub const MAX_NAME: usize = 256;

/// What a `trak` says about itself, samples aside.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TrakInfo {
    /// The `trak` box within `Index::moov`.
    pub start: usize,
    pub id: u32,
    pub handler: FourCC,
    pub codec: FourCC,
    pub timescale: u32,
    /// ISO 639-2/T: `mdhd`'s, or the language of `elng`'s tag.
    pub language: Option<[u8; 3]>,
    pub edit: elst::TrackEdit,
    /// `tkhd` flag 1, track_enabled: a player plays the track unless told
    /// otherwise.
    pub enabled: bool,
    /// `elng`'s BCP 47 tag, in its shortest form.
    pub tag: Option<Inline<MAX_TAG>>,
    /// The track's own name (`udta`'s `name`, or QuickTime's `©nam`), such
    /// as "Director's commentary".
    pub name: Option<Inline<MAX_NAME>>,
}

impl TrakInfo {
    pub fn is_video(&self) -> bool {
        &self.handler == b"vide"
    }
    pub fn is_audio(&self) -> bool {
        &self.handler == b"soun"
    }

    /// The track's language as a tag: `elng`'s, else `mdhd`'s code.
    pub fn language_tag(&self) -> Option<String> {
        match (&self.tag, self.language) {
            (Some(t), _) => Some(t.as_str().to_string()),
            (None, Some(l)) => Some(String::from_utf8_lossy(&l).into_owned()),
            (None, None) => None,
        }
    }
}

/// Text of at most `N` bytes held inline, so that [`TrakInfo`] stays
/// `Copy` (every track and rendition holds one).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Inline<const N: usize> {
    len: usize,
    bytes: [u8; N],
}

impl<const N: usize> Inline<N> {
    /// `text` cut to `N` bytes at a character boundary; `None` when empty.
    pub fn new(text: &str) -> Option<Self> {
        let end = (0..=text.len().min(N))
            .rev()
            .find(|&i| text.is_char_boundary(i))?;
        let mut bytes = [0u8; N];
        bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        (end > 0).then_some(Inline { len: end, bytes })
    }

    pub fn as_str(&self) -> &str {
        // Copied from a `str` up to a character boundary.
        std::str::from_utf8(&self.bytes[..self.len.min(N)]).unwrap_or_default()
    }
}

/// As [`Inline::new`]; `Err` when empty.
impl<const N: usize> TryFrom<&str> for Inline<N> {
    type Error = ();
    fn try_from(text: &str) -> Result<Self, ()> {
        Inline::new(text).ok_or(())
    }
}

impl<const N: usize> std::fmt::Debug for Inline<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// `elng` (ISO/IEC 14496-12 8.4.6): a full box holding a NUL-terminated
/// BCP 47 tag. `None`: no tag of a language.
pub(crate) fn elng(body: &[u8]) -> Option<Inline<MAX_TAG>> {
    let text = body.get(4..)?;
    let text = text.split(|&b| b == 0).next()?;
    let tag = shortest_tag(std::str::from_utf8(text).ok()?)?;
    Inline::new(&tag).filter(|t| t.as_str() == tag)
}

/// A `udta` child naming its track: `name` (what ffmpeg writes for a
/// stream's title: the UTF-8 name, perhaps NUL-terminated), or QuickTime's
/// `©nam` (a 16-bit length, a 16-bit language, the text). Control
/// characters become spaces; `None` when nothing is left.
pub(crate) fn name(fourcc: &FourCC, body: &[u8]) -> Option<Inline<MAX_NAME>> {
    let text = match fourcc {
        b"name" => body,
        b"\xa9nam" => {
            let [hi, lo, _, _, rest @ ..] = body else {
                return None;
            };
            rest.get(..usize::from(u16::from_be_bytes([*hi, *lo])))?
        }
        _ => return None,
    };
    let text = text.split(|&b| b == 0).next()?;
    // A character cut at the bound becomes U+FFFD, past the bound.
    let text = String::from_utf8_lossy(&text[..text.len().min(MAX_NAME + 3)]);
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Inline::new(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elng_holds_a_tag() {
        let tag = |b: &[u8]| elng(b).map(|t| t.as_str().to_string());
        assert_eq!(tag(b"\0\0\0\0pt-br\0").as_deref(), Some("pt-BR"));
        assert_eq!(tag(b"\0\0\0\0eng").as_deref(), Some("en"));
        assert_eq!(tag(b"\0\0\0\0\0"), None);
        assert_eq!(tag(b"\0\0\0\0und\0"), None);
        assert_eq!(tag(b"\0\0\0\0en US\0"), None);
        assert_eq!(tag(b"\0\0\0"), None);
        assert_eq!(tag(b"\0\0\0\0\xff\xfe"), None);
    }

    #[test]
    fn names_are_bounded_text() {
        let n = |f: &[u8; 4], b: &[u8]| name(f, b).map(|t| t.as_str().to_string());
        assert_eq!(
            n(b"name", b"Director's commentary").as_deref(),
            Some("Director's commentary")
        );
        assert_eq!(n(b"name", b"Stereo\0junk").as_deref(), Some("Stereo"));
        assert_eq!(n(b"name", b"a\r\nb\xff").as_deref(), Some("a  b\u{fffd}"));
        assert_eq!(n(b"name", b""), None);
        assert_eq!(n(b"name", b" \0x"), None);
        assert_eq!(
            n(b"\xa9nam", b"\0\x03\x55\xc4Mixxx").as_deref(),
            Some("Mix")
        );
        assert_eq!(n(b"\xa9nam", b"\0\x09\x55\xc4Mix"), None);
        assert_eq!(n(b"titl", b"Mix"), None);
        // Cut at 256 bytes, never inside a character.
        let long = "é".repeat(200);
        let cut = n(b"name", long.as_bytes()).unwrap();
        assert_eq!(cut, "é".repeat(128));
        let odd = format!("a{long}");
        assert_eq!(n(b"name", odd.as_bytes()).unwrap().len(), 255);
    }
}
