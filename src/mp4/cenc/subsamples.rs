//! Which bytes of a video sample are encrypted: each slice NAL unit's
//! data after its slice header; its length field, NAL header and slice
//! header, and every other NAL unit (parameter sets, SEI), stay clear, as
//! ISO/IEC 23001-7 and CMAF require and decoders that read the headers
//! before decrypting need.

use super::Scheme;
use crate::mp4::Error;
use crate::mp4::nal::{self, Codec, SliceHeaders};

/// A run of clear bytes followed by a run of protected bytes (a `senc`
/// subsample entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Subsample {
    pub clear: u16,
    pub protected: u32,
}

/// The subsample maker of one track: its NAL length size and parameter
/// sets (in-band ones are learnt as samples pass).
pub(crate) struct Subsamples {
    length_size: usize,
    codec: Codec,
    headers: SliceHeaders,
    /// `cenc` wants whole blocks protected (CMAF); `cbcs` starts right
    /// after the slice header and its pattern leaves a partial block clear.
    align: bool,
}

fn bad(reason: &'static str) -> Error {
    Error::Invalid {
        fourcc: *b"mdat",
        reason,
    }
}

impl Subsamples {
    /// For a track whose sample entry's configuration (`avcC` or `hvcC`
    /// body) is `config`.
    pub(crate) fn new(codec: Codec, config: &[u8], scheme: Scheme) -> Result<Subsamples, Error> {
        let at = match codec {
            Codec::Avc => 4,
            Codec::Hevc => 21,
        };
        let length_size = usize::from(config.get(at).ok_or(bad("a short avcC or hvcC"))? & 3) + 1;
        if length_size == 3 {
            return Err(Error::Unsupported(
                "a NAL unit length of 3 bytes cannot be encrypted".into(),
            ));
        }
        Ok(Subsamples {
            length_size,
            codec,
            headers: SliceHeaders::new(codec, config),
            align: scheme == Scheme::Cenc,
        })
    }

    /// The subsamples of one sample, covering it exactly.
    pub(crate) fn of(&mut self, sample: &[u8]) -> Result<Vec<Subsample>, Error> {
        let mut out = Vec::new();
        let mut clear = 0usize;
        let mut rest = sample;
        while !rest.is_empty() {
            let (len_field, after) = rest
                .split_at_checked(self.length_size)
                .ok_or(bad("a NAL unit length runs past its sample"))?;
            let len = len_field
                .iter()
                .fold(0usize, |a, &b| (a << 8) | usize::from(b));
            let nal = after
                .get(..len)
                .ok_or(bad("a NAL unit runs past its sample"))?;
            rest = &after[len..];
            let slice = nal.first().is_some_and(|&h| nal::is_slice(self.codec, h));
            let header = if slice {
                self.headers.header_size(nal).filter(|&h| h < len)
            } else {
                self.headers.parameter_set(nal);
                None
            };
            match header {
                Some(h) => {
                    let mut protected = len - h;
                    let mut open = self.length_size + h;
                    if self.align {
                        open += protected % 16;
                        protected -= protected % 16;
                    }
                    clear += open;
                    if protected > 0 {
                        push(&mut out, &mut clear, protected)?;
                    }
                }
                None => clear += self.length_size + len,
            }
        }
        if clear > 0 || out.is_empty() {
            push(&mut out, &mut clear, 0)?;
        }
        Ok(out)
    }
}

/// Appends `clear` clear bytes (split where a `u16` cannot hold them)
/// and then `protected` bytes.
fn push(out: &mut Vec<Subsample>, clear: &mut usize, protected: usize) -> Result<(), Error> {
    while *clear > usize::from(u16::MAX) {
        out.push(Subsample {
            clear: u16::MAX,
            protected: 0,
        });
        *clear -= usize::from(u16::MAX);
    }
    out.push(Subsample {
        clear: u16::try_from(*clear).unwrap_or(u16::MAX),
        protected: u32::try_from(protected).map_err(|_| bad("a NAL unit of 4 GiB"))?,
    });
    *clear = 0;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `avcC` body with `length_size` and no parameter sets.
    fn avcc(length_size: u8) -> Vec<u8> {
        vec![1, 0x64, 0, 0x1f, 0xfc | (length_size - 1), 0xe0, 0]
    }

    fn nal(length_size: usize, body: &[u8]) -> Vec<u8> {
        let len = body.len().to_be_bytes();
        let mut v = len[len.len() - length_size..].to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn every_length_size_is_framed_and_covered() {
        for length_size in [1u8, 2, 4] {
            let n = usize::from(length_size);
            let mut m = Subsamples::new(Codec::Avc, &avcc(length_size), Scheme::Cenc).unwrap();
            let mut sample = nal(n, &[0x06, 1, 2, 3]);
            sample.extend(nal(n, &[0x65; 100]));
            let subs = m.of(&sample).unwrap();
            let covered: usize = subs
                .iter()
                .map(|s| usize::from(s.clear) + s.protected as usize)
                .sum();
            assert_eq!(covered, sample.len(), "length size {length_size}");
            // A NAL unit that claims more than the sample holds.
            let mut bad = nal(n, &[0x65; 10]);
            bad.truncate(bad.len() - 1);
            assert!(m.of(&bad).is_err(), "length size {length_size}");
            // A length field cut short.
            assert!(m.of(&[0u8; 4][..n - 1]).is_err() || n == 1);
        }
        assert!(Subsamples::new(Codec::Avc, &avcc(3), Scheme::Cenc).is_err());
        assert!(Subsamples::new(Codec::Avc, &[1, 2], Scheme::Cenc).is_err());
    }

    #[test]
    fn an_empty_sample_is_one_empty_subsample() {
        let mut m = Subsamples::new(Codec::Avc, &avcc(4), Scheme::Cbcs).unwrap();
        assert_eq!(
            m.of(&[]).unwrap(),
            [Subsample {
                clear: 0,
                protected: 0
            }]
        );
    }

    #[test]
    fn long_clear_runs_are_split_at_u16() {
        let mut m = Subsamples::new(Codec::Avc, &avcc(4), Scheme::Cenc).unwrap();
        // An SEI of 100 000 bytes: clear, in two entries.
        let sample = nal(4, &vec![0x06; 100_000]);
        let subs = m.of(&sample).unwrap();
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0].clear, u16::MAX);
        assert_eq!(
            usize::from(subs[0].clear) + usize::from(subs[1].clear),
            sample.len()
        );
    }
}
