//! Common encryption (ISO/IEC 23001-7) of packaged tracks: the schemes
//! `cenc` (AES-CTR) and `cbcs` (AES-CBC, 1:9 pattern for video), and the
//! whole-segment AES-128 of HLS.
//!
//! Everything here is deterministic: a sample's IV follows from the key,
//! the film's salt, the track and the sample's number, so two nodes write
//! the same bytes and caches in front of them keep working.

mod boxes;
mod cipher;
mod subsamples;

pub(crate) use boxes::{Aux, write_aux};
pub use boxes::{pssh, pssh_boxes, stsd};
pub(crate) use cipher::{encrypt_sample, sample_iv};
pub use cipher::{sequence_iv, whole_segment};
pub(crate) use subsamples::{Subsample, Subsamples};

use std::fmt;

/// How samples are encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// AES-CTR, an 8-byte IV per sample; subsamples of video.
    Cenc,
    /// AES-CBC with a constant IV; video in a 1:9 pattern (one block in
    /// ten encrypted), audio whole blocks. What HLS SAMPLE-AES in fMP4 is.
    Cbcs,
    /// HLS `METHOD=AES-128`: each media segment AES-CBC as a whole, with
    /// PKCS#7 padding; its samples are clear inside.
    Aes128,
}

impl Scheme {
    pub fn parse(s: &str) -> Option<Scheme> {
        match s {
            "cenc" => Some(Scheme::Cenc),
            "cbcs" => Some(Scheme::Cbcs),
            "aes-128" | "aes128" => Some(Scheme::Aes128),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Cenc => "cenc",
            Scheme::Cbcs => "cbcs",
            Scheme::Aes128 => "aes-128",
        }
    }

    /// Whether samples are encrypted inside the MP4 (`sinf`, `senc`).
    pub fn in_samples(self) -> bool {
        self != Scheme::Aes128
    }

    pub(crate) fn fourcc(self) -> [u8; 4] {
        match self {
            Scheme::Cenc => *b"cenc",
            _ => *b"cbcs",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A protection system's `pssh` box contents (DRM signalling).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct System {
    pub id: [u8; 16],
    /// The system's own data (`Data` of the `pssh`), maybe empty.
    pub data: Vec<u8>,
}

/// The W3C "common" system (Clear Key): its `pssh` lists the key ids.
pub const COMMON_SYSTEM: [u8; 16] = [
    0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b,
];

/// How one film's tracks are protected.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Protection {
    pub scheme: Scheme,
    pub kid: [u8; 16],
    pub key: [u8; 16],
    /// Sets this film's IVs apart from every other film's under the same
    /// key (a hash of its name): a counter-mode IV never repeats.
    pub salt: [u8; 8],
    /// Systems whose `pssh` goes into init segments, besides the common one.
    pub systems: Vec<System>,
}

/// Never prints the key.
impl fmt::Debug for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protection")
            .field("scheme", &self.scheme)
            .field("kid", &hex(&self.kid))
            .finish_non_exhaustive()
    }
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// A key id as a UUID (`cenc:default_KID`).
pub fn uuid(kid: &[u8; 16]) -> String {
    let h = hex(kid);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// 32 hex digits (dashes allowed, as in a UUID) as 16 bytes.
pub fn parse_hex16(s: &str) -> Option<[u8; 16]> {
    let digits: Vec<u8> = s.bytes().filter(|&c| c != b'-').collect();
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(digits.chunks(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

impl Protection {
    /// `cbcs`'s constant IV (in `tenc`), the same for every sample of
    /// the film.
    pub fn constant_iv(&self) -> [u8; 16] {
        cipher::constant_iv(&self.key, &self.salt)
    }
}
