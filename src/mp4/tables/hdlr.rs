//! Handler reference (`hdlr`): what kind of track this is.

use crate::mp4::Error;
use crate::mp4::boxes::{FourCC, Reader};

/// The handler type: `vide`, `soun`, `subt`, `text`, `tmcd`, ...
pub fn read(body: &[u8]) -> Result<FourCC, Error> {
    let mut r = Reader::new(body, *b"hdlr");
    r.full_box()?;
    r.skip(4)?;
    let mut h = [0u8; 4];
    h.copy_from_slice(r.bytes(4)?);
    Ok(h)
}
