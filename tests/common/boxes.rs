//! Box builders for crafted films: the hostile corpora build their files
//! from these, box by box, so each defect is one visible change.

pub fn bx(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 8);
    v.extend_from_slice(&u32::try_from(body.len() + 8).unwrap().to_be_bytes());
    v.extend_from_slice(fourcc);
    v.extend_from_slice(body);
    v
}

pub fn full(fourcc: &[u8; 4], version_flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = version_flags.to_be_bytes().to_vec();
    b.extend_from_slice(body);
    bx(fourcc, &b)
}

pub fn be32(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

pub fn be64(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

pub fn ftyp() -> Vec<u8> {
    bx(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41")
}

pub fn mvhd(timescale: u32, duration: u32) -> Vec<u8> {
    full(
        b"mvhd",
        0,
        &[be32(&[0, 0, timescale, duration]), vec![0; 80]].concat(),
    )
}

pub fn tkhd(id: u32, duration: u32) -> Vec<u8> {
    let mut b = vec![0u8; 80];
    b[8..12].copy_from_slice(&id.to_be_bytes());
    b[16..20].copy_from_slice(&duration.to_be_bytes());
    full(b"tkhd", 3, &b)
}

pub fn mdhd(timescale: u32, duration: u32) -> Vec<u8> {
    full(b"mdhd", 0, &be32(&[0, 0, timescale, duration, 0x55c4_0000]))
}

pub fn hdlr_vide() -> Vec<u8> {
    let mut b = vec![0u8; 4];
    b.extend_from_slice(b"vide");
    b.extend_from_slice(&[0; 13]);
    full(b"hdlr", 0, &b)
}

pub fn stsd() -> Vec<u8> {
    full(b"stsd", 0, &[be32(&[1]), bx(b"avc1", &[0; 70])].concat())
}

pub fn stco(offsets: &[u64]) -> Vec<u8> {
    let o: Vec<u32> = offsets.iter().map(|&o| o as u32).collect();
    full(b"stco", 0, &[be32(&[o.len() as u32]), be32(&o)].concat())
}

pub fn co64(offsets: &[u64]) -> Vec<u8> {
    full(
        b"co64",
        0,
        &[be32(&[offsets.len() as u32]), be64(offsets)].concat(),
    )
}

/// A video `trak` around `stbl_children`.
pub fn trak(id: u32, timescale: u32, duration: u32, stbl_children: &[u8]) -> Vec<u8> {
    let minf = bx(b"minf", &bx(b"stbl", stbl_children));
    let mdia = bx(
        b"mdia",
        &[mdhd(timescale, duration), hdlr_vide(), minf].concat(),
    );
    bx(b"trak", &[tkhd(id, duration), mdia].concat())
}

/// Every box at `path` (a chain of fourccs from the top of `data`).
pub fn find<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        if size < 8 || pos + size > data.len() {
            break;
        }
        if &data[pos + 4..pos + 8] == path[0] {
            if path.len() == 1 {
                out.push(&data[pos..pos + size]);
            } else {
                out.extend(find(&data[pos + 8..pos + size], &path[1..]));
            }
        }
        pos += size;
    }
    out
}

/// The `stsd` of the first `trak` of a real film whose handler is `handler`
/// (`vide`, `soun`): a sample description decoders and the packager accept.
pub fn real_stsd(film: &[u8], handler: &[u8; 4]) -> Vec<u8> {
    for trak in find(film, &[b"moov", b"trak"]) {
        let body = &trak[8..];
        let hdlr = find(body, &[b"mdia", b"hdlr"]);
        if hdlr.first().is_some_and(|h| &h[16..20] == handler) {
            return find(body, &[b"mdia", b"minf", b"stbl", b"stsd"])[0].to_vec();
        }
    }
    panic!("no {} track", String::from_utf8_lossy(handler));
}

/// A one-video-track film: the sample description of `a.mp4` (so the
/// codec check passes), `stbl` tables as given, `payload` bytes of `mdat`.
pub fn film(
    mvhd_timescale: u32,
    mvhd_duration: u32,
    mdhd_timescale: u32,
    tables: &[Vec<u8>],
    payload: u64,
) -> Film {
    let stsd = real_stsd(&std::fs::read(super::media("a.mp4")).unwrap(), b"vide");
    let ftyp = ftyp();
    // The mdat's payload follows ftyp + its 8-byte header.
    let data_at = ftyp.len() as u64 + 8;
    let stbl = [&[stsd, stco(&[data_at])][..], tables].concat().concat();
    let moov = bx(
        b"moov",
        &[
            mvhd(mvhd_timescale, mvhd_duration),
            trak(1, mdhd_timescale, mvhd_duration, &stbl),
        ]
        .concat(),
    );
    let mut mdat = u32::try_from(payload + 8).unwrap().to_be_bytes().to_vec();
    mdat.extend_from_slice(b"mdat");
    Film {
        head: [ftyp, mdat].concat(),
        payload,
        moov,
    }
}

/// A film as written: its head, a payload of zeros (a hole in a sparse
/// file: only its length matters), its `moov`.
pub struct Film {
    pub head: Vec<u8>,
    pub payload: u64,
    pub moov: Vec<u8>,
}

impl Film {
    /// Writes it to `path`, its payload a hole of a sparse file.
    pub fn write(&self, path: &std::path::Path) {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(path).unwrap();
        f.write_all(&self.head).unwrap();
        f.seek(SeekFrom::Current(self.payload as i64)).unwrap();
        f.write_all(&self.moov).unwrap();
    }
}
