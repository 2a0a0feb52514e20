//! AES over sample bytes: counter mode for `cenc`, pattern CBC for
//! `cbcs`, whole-segment CBC for HLS AES-128; and the IVs, derived rather
//! than random so that every node writes the same bytes.

use super::{Scheme, Subsample};
use aes::Aes128;
use aes::cipher::{BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit, StreamCipher};

type Ctr = ctr::Ctr64BE<Aes128>;
type Cbc = cbc::Encryptor<Aes128>;

const BLOCK: usize = 16;
/// `cbcs` video: one block encrypted, nine left clear, in turn.
pub(crate) const CRYPT_BLOCKS: usize = 1;
pub(crate) const SKIP_BLOCKS: usize = 9;

/// A key for IVs, apart from the content key, so that no IV is ever a
/// block of the content's key stream.
fn iv_key(key: &[u8; 16]) -> Aes128 {
    let mut tag = *b"mp4-fcgi iv key.";
    Aes128::new(key.into()).encrypt_block((&mut tag).into());
    Aes128::new((&tag).into())
}

/// The 8-byte IV of sample `sample` (0-based, of the source track) of
/// track `track`: unique per film (salt), track and sample, so counter
/// blocks never repeat under one key.
pub(crate) fn sample_iv(key: &[u8; 16], salt: &[u8; 8], track: u32, sample: u64) -> [u8; 8] {
    let mut block = [0u8; 16];
    block[..8].copy_from_slice(salt);
    block[8..12].copy_from_slice(&track.to_be_bytes());
    block[12..16].copy_from_slice(&u32::try_from(sample).unwrap_or(u32::MAX).to_be_bytes());
    iv_key(key).encrypt_block((&mut block).into());
    let mut iv = [0u8; 8];
    iv.copy_from_slice(&block[..8]);
    iv
}

/// `cbcs`'s constant IV for a film.
pub(crate) fn constant_iv(key: &[u8; 16], salt: &[u8; 8]) -> [u8; 16] {
    let mut block = [0xffu8; 16];
    block[..8].copy_from_slice(salt);
    iv_key(key).encrypt_block((&mut block).into());
    block
}

/// Encrypts one sample in place. `iv`: `cenc`'s 8-byte IV (as the first
/// half of the counter block) or `cbcs`'s 16-byte constant IV.
/// `subsamples` empty: the whole sample is protected (audio); else they
/// cover the sample exactly (the caller made them from it).
pub(crate) fn encrypt_sample(
    scheme: Scheme,
    key: &[u8; 16],
    iv: &[u8; 16],
    data: &mut [u8],
    subsamples: &[Subsample],
) {
    match scheme {
        Scheme::Cenc => {
            // One key stream runs through the protected parts of a sample.
            let mut c = Ctr::new(key.into(), iv.into());
            for part in protected(data, subsamples) {
                c.apply_keystream(part);
            }
        }
        Scheme::Cbcs if subsamples.is_empty() => {
            // Audio: whole blocks, one chain; a last partial block is clear.
            let mut c = Cbc::new(key.into(), iv.into());
            for b in data.chunks_exact_mut(BLOCK) {
                c.encrypt_block_mut(b.into());
            }
        }
        Scheme::Cbcs => {
            // Video: each subsample starts a new chain at the constant IV;
            // the chain runs through its encrypted blocks only.
            for part in protected(data, subsamples) {
                let mut c = Cbc::new(key.into(), iv.into());
                for (i, b) in part.chunks_exact_mut(BLOCK).enumerate() {
                    if i % (CRYPT_BLOCKS + SKIP_BLOCKS) < CRYPT_BLOCKS {
                        c.encrypt_block_mut(b.into());
                    }
                }
            }
        }
        Scheme::Aes128 => {}
    }
}

/// The protected parts of a sample, in order (all of it with no subsamples).
fn protected<'a>(data: &'a mut [u8], subsamples: &[Subsample]) -> Vec<&'a mut [u8]> {
    if subsamples.is_empty() {
        return vec![data];
    }
    let mut parts = Vec::with_capacity(subsamples.len());
    let mut rest = data;
    for s in subsamples {
        let clear = usize::from(s.clear).min(rest.len());
        let (_, after) = std::mem::take(&mut rest).split_at_mut(clear);
        let n = usize::try_from(s.protected)
            .unwrap_or(usize::MAX)
            .min(after.len());
        let (part, after) = after.split_at_mut(n);
        if !part.is_empty() {
            parts.push(part);
        }
        rest = after;
    }
    parts
}

/// HLS AES-128: `data` encrypted as one AES-CBC message with PKCS#7
/// padding (RFC 8216 4.3.2.4); 1 to 16 bytes longer.
pub fn whole_segment(key: &[u8; 16], iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let pad = BLOCK - data.len() % BLOCK;
    let mut out = Vec::with_capacity(data.len() + pad);
    out.extend_from_slice(data);
    // pad is 1..=16: fits a byte.
    out.resize(data.len() + pad, pad as u8);
    let mut c = Cbc::new(key.into(), iv.into());
    for b in out.chunks_exact_mut(BLOCK) {
        c.encrypt_block_mut(b.into());
    }
    out
}

/// The AES-128 IV of media segment `sequence`: the media sequence number
/// as a 128-bit big-endian integer, what a player assumes when the
/// `EXT-X-KEY` has no IV attribute.
pub fn sequence_iv(sequence: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[8..].copy_from_slice(&sequence.to_be_bytes());
    iv
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockDecryptMut;

    const KEY: [u8; 16] = *b"0123456789abcdef";

    fn cbc_decrypt(key: &[u8; 16], iv: &[u8; 16], blocks: &mut [u8]) {
        let mut d = cbc::Decryptor::<Aes128>::new(key.into(), iv.into());
        for b in blocks.chunks_exact_mut(BLOCK) {
            d.decrypt_block_mut(b.into());
        }
    }

    #[test]
    fn ivs_differ_by_film_track_and_sample() {
        let a = sample_iv(&KEY, b"film-one", 1, 0);
        assert_ne!(a, sample_iv(&KEY, b"film-two", 1, 0));
        assert_ne!(a, sample_iv(&KEY, b"film-one", 2, 0));
        assert_ne!(a, sample_iv(&KEY, b"film-one", 1, 1));
        assert_eq!(a, sample_iv(&KEY, b"film-one", 1, 0));
    }

    #[test]
    fn cenc_runs_one_key_stream_through_the_protected_parts() {
        let plain: Vec<u8> = (0..100u8).collect();
        let mut data = plain.clone();
        let subs = [
            Subsample {
                clear: 5,
                protected: 20,
            },
            Subsample {
                clear: 10,
                protected: 65,
            },
        ];
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(&[9; 8]);
        encrypt_sample(Scheme::Cenc, &KEY, &iv, &mut data, &subs);
        assert_eq!(data[..5], plain[..5]);
        assert_eq!(data[25..35], plain[25..35]);
        // The protected bytes, joined, are one CTR message.
        let mut joined: Vec<u8> = [&data[5..25], &data[35..100]].concat();
        Ctr::new((&KEY).into(), (&iv).into()).apply_keystream(&mut joined);
        assert_eq!(joined, [&plain[5..25], &plain[35..100]].concat());
    }

    #[test]
    fn cbcs_pattern_restarts_at_each_subsample() {
        let plain: Vec<u8> = (0..=255u8).cycle().take(2 + 200 + 3 + 180).collect();
        let mut data = plain.clone();
        let subs = [
            Subsample {
                clear: 2,
                protected: 200,
            },
            Subsample {
                clear: 3,
                protected: 180,
            },
        ];
        let iv = [7u8; 16];
        encrypt_sample(Scheme::Cbcs, &KEY, &iv, &mut data, &subs);
        // First subsample: blocks 0 and 10 encrypted (one chain), the
        // rest and the 8-byte tail clear.
        assert_eq!(data[..2], plain[..2]);
        assert_ne!(data[2..18], plain[2..18]);
        assert_eq!(data[18..162], plain[18..162]);
        assert_ne!(data[162..178], plain[162..178]);
        assert_eq!(data[178..205], plain[178..205]);
        let mut chain = [&data[2..18], &data[162..178]].concat();
        cbc_decrypt(&KEY, &iv, &mut chain);
        assert_eq!(chain, [&plain[2..18], &plain[162..178]].concat());
        // Second subsample: a new chain from the constant IV.
        let mut first = data[205..221].to_vec();
        cbc_decrypt(&KEY, &iv, &mut first);
        assert_eq!(first, plain[205..221]);
    }

    #[test]
    fn cbcs_audio_is_whole_blocks() {
        let plain = vec![0x5a; 40];
        let mut data = plain.clone();
        encrypt_sample(Scheme::Cbcs, &KEY, &[1; 16], &mut data, &[]);
        assert_eq!(data[32..], plain[32..]);
        cbc_decrypt(&KEY, &[1; 16], &mut data[..32]);
        assert_eq!(data, plain);
    }

    #[test]
    fn whole_segment_pads_to_blocks() {
        for n in [0usize, 1, 15, 16, 17, 1000] {
            let data = vec![3u8; n];
            let mut out = whole_segment(&KEY, &sequence_iv(4), &data);
            assert_eq!(out.len(), (n / 16 + 1) * 16);
            cbc_decrypt(&KEY, &sequence_iv(4), &mut out);
            let pad = usize::from(*out.last().unwrap());
            assert!((1..=16).contains(&pad));
            assert_eq!(&out[..out.len() - pad], &data[..]);
        }
    }

    #[test]
    fn overlong_subsamples_stop_at_the_sample() {
        let mut data = vec![0u8; 10];
        let subs = [Subsample {
            clear: 4,
            protected: 100,
        }];
        encrypt_sample(Scheme::Cenc, &KEY, &[0; 16], &mut data, &subs);
        assert_eq!(data[..4], [0; 4]);
    }
}
