//! Compressed movie box (`cmov`, from QuickTime): `dcom` names the method
//! (`zlib`), `cmvd` holds the uncompressed size and the compressed `moov`.

use crate::mp4::Error;
use crate::mp4::boxes::{RawBox, Reader};
use std::io::Read;

/// Inflates the `moov` a `cmov` holds, refusing more than `limit` bytes
/// (checked while inflating: a small bomb cannot allocate its claim).
pub fn inflate(cmov: &RawBox<'_>, limit: u64) -> Result<Vec<u8>, Error> {
    let (mut method, mut data) = (None, None);
    for child in cmov.children() {
        let child = child?;
        match &child.fourcc {
            b"dcom" => method = Some(Reader::new(child.body, *b"dcom").bytes(4)?),
            b"cmvd" => data = Some(child.body),
            _ => {}
        }
    }
    let invalid = |reason| Error::Invalid {
        fourcc: *b"cmov",
        reason,
    };
    match method {
        Some(b"zlib") => {}
        Some(_) => {
            return Err(Error::Unsupported(
                "compressed moov with a method other than zlib".into(),
            ));
        }
        None => return Err(invalid("no dcom box")),
    }
    let mut r = Reader::new(data.ok_or(invalid("no cmvd box"))?, *b"cmvd");
    let size = u64::from(r.u32()?);
    if size > limit {
        return Err(Error::MoovTooLarge { size, limit });
    }
    let compressed = r.bytes(r.remaining())?;
    let mut out = Vec::new();
    // Read one byte past the claim: a stream longer than it said is refused.
    flate2::read::ZlibDecoder::new(compressed)
        .take(size + 1)
        .read_to_end(&mut out)
        .map_err(|_| invalid("the zlib stream is damaged"))?;
    if out.len() as u64 != size {
        return Err(invalid("inflates to another size than cmvd says"));
    }
    Ok(out)
}

/// Bytes of a `moov` holding a `cmov` around `z` bytes of zlib: the moov,
/// cmov, dcom and cmvd heads.
pub fn moov_len(z: usize) -> u64 {
    8 + 8 + 12 + 12 + z as u64
}

/// The `dcom` box and the head of the `cmvd` box whose `z` bytes of zlib,
/// inflating to `plain` bytes, follow.
pub fn write_heads(out: &mut Vec<u8>, plain: usize, z: usize) {
    out.extend_from_slice(&12u32.to_be_bytes());
    out.extend_from_slice(b"dcom");
    out.extend_from_slice(b"zlib");
    out.extend_from_slice(&u32::try_from(12 + z).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(b"cmvd");
    out.extend_from_slice(&u32::try_from(plain).unwrap_or(u32::MAX).to_be_bytes());
}

/// zlib (deflate with its header), as `cmvd` holds it.
pub fn deflate(data: &[u8]) -> Result<Vec<u8>, Error> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).map_err(Error::Io)?;
    e.finish().map_err(Error::Io)
}
