//! Builds a synthetic film's `ftyp` + `moov` without an encoder: H.264-like
//! video (25 fps, a key frame every 2 s, B-frame composition offsets) and
//! AAC-like audio (48 kHz, 1024 samples per frame), interleaved in chunks.
//! The media bytes are zeros; a [`Sparse`] source stands in for the file.

use mp4_fcgi::mp4::ReadAt;
use std::io;

fn boxed(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 8);
    v.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    v.extend_from_slice(fourcc);
    v.extend_from_slice(body);
    v
}

fn full(fourcc: &[u8; 4], version_flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = version_flags.to_be_bytes().to_vec();
    b.extend_from_slice(body);
    boxed(fourcc, &b)
}

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

struct TrackSpec {
    id: u32,
    handler: &'static [u8; 4],
    timescale: u32,
    delta: u32,
    count: u32,
    sample_size: u32,
    per_chunk: u32,
    sync_every: Option<u32>,
    ctts: bool,
    media_time: u32,
}

fn trak(t: &TrackSpec, chunk_offsets: &[u64], movie_ts: u32) -> Vec<u8> {
    let dur = u64::from(t.delta) * u64::from(t.count);
    let movie_dur = (dur * u64::from(movie_ts) / u64::from(t.timescale)) as u32;
    let mut tkhd = vec![0u8; 80];
    tkhd[8..12].copy_from_slice(&t.id.to_be_bytes());
    tkhd[16..20].copy_from_slice(&movie_dur.to_be_bytes());
    let tkhd = full(b"tkhd", 3, &tkhd);
    let elst = full(
        b"elst",
        0,
        &u32s(&[1, movie_dur, t.media_time, 0x0001_0000]),
    );
    let edts = boxed(b"edts", &elst);
    let mdhd = full(
        b"mdhd",
        0,
        &u32s(&[0, 0, t.timescale, dur as u32, 0x55c4_0000]),
    );
    let mut hdlr = vec![0u8; 4];
    hdlr.extend_from_slice(t.handler);
    hdlr.extend_from_slice(&[0; 13]);
    let hdlr = full(b"hdlr", 0, &hdlr);
    // Sample entries with the configuration boxes a packager reads codecs from.
    let entry = if t.handler == b"vide" {
        let mut fixed = vec![0u8; 78];
        fixed[7] = 1;
        fixed[24..28].copy_from_slice(&[0, 64, 0, 36]);
        let avcc = boxed(b"avcC", &[1, 0x64, 0, 0x0a, 0xff, 0xe0, 0]);
        boxed(b"avc1", &[fixed, avcc].concat())
    } else {
        let mut fixed = vec![0u8; 28];
        fixed[7] = 1;
        fixed[17] = 2;
        fixed[19] = 16;
        fixed[24..26].copy_from_slice(&48000u16.to_be_bytes());
        let mut esds = vec![0x03, 22, 0, 1, 0, 0x04, 17, 0x40, 0x15];
        esds.extend_from_slice(&[0; 11]);
        esds.extend_from_slice(&[0x05, 2, 0x11, 0x90]);
        boxed(b"mp4a", &[fixed, full(b"esds", 0, &esds)].concat())
    };
    let stsd = full(b"stsd", 0, &[u32s(&[1]), entry].concat());
    let stts = full(b"stts", 0, &u32s(&[1, t.count, t.delta]));
    let mut stbl = [stsd, stts].concat();
    if t.ctts {
        // I P B B pattern: offsets 2, 5, 0, 1 frames (decode order), as x264 writes.
        let mut e = vec![t.count];
        for i in 0..t.count {
            e.extend_from_slice(&[1, [2, 5, 0, 1][(i % 4) as usize] * t.delta]);
        }
        stbl.extend(full(b"ctts", 0, &u32s(&e)));
    }
    if let Some(n) = t.sync_every {
        let sync: Vec<u32> = (0..t.count).step_by(n as usize).map(|s| s + 1).collect();
        stbl.extend(full(
            b"stss",
            0,
            &[u32s(&[sync.len() as u32]), u32s(&sync)].concat(),
        ));
    }
    let chunks = t.count.div_ceil(t.per_chunk);
    let last = t.count - (chunks - 1) * t.per_chunk;
    let mut stsc = vec![if last == t.per_chunk { 1 } else { 2 }, 1, t.per_chunk, 1];
    if last != t.per_chunk {
        stsc.extend_from_slice(&[chunks, last, 1]);
    }
    stbl.extend(full(b"stsc", 0, &u32s(&stsc)));
    let mut stsz = vec![0, t.count];
    stsz.extend((0..t.count).map(|i| t.sample_size + i % 7));
    stbl.extend(full(b"stsz", 0, &u32s(&stsz)));
    let mut co64 = (chunk_offsets.len() as u32).to_be_bytes().to_vec();
    co64.extend(chunk_offsets.iter().flat_map(|o| o.to_be_bytes()));
    stbl.extend(full(b"co64", 0, &co64));
    let minf = boxed(b"minf", &boxed(b"stbl", &stbl));
    let mdia = boxed(b"mdia", &[mdhd, hdlr, minf].concat());
    boxed(b"trak", &[tkhd, edts, mdia].concat())
}

/// A file whose first bytes are `head` and whose rest reads as zeros.
pub struct Sparse {
    pub head: Vec<u8>,
    pub size: u64,
}

impl ReadAt for Sparse {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = buf.len().min((self.size - offset) as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = self.head.get(offset as usize + i).copied().unwrap_or(0);
        }
        Ok(n)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

/// A film of `seconds` with moov first: `ftyp`, `moov`, then a 64-bit `mdat`.
#[allow(dead_code)]
pub fn film(seconds: u32) -> Sparse {
    film_sized(seconds, 600)
}

/// [`film`] with video samples of about `video_sample_size` bytes.
pub fn film_sized(seconds: u32, video_sample_size: u32) -> Sparse {
    let video = TrackSpec {
        id: 1,
        handler: b"vide",
        timescale: 12800,
        delta: 512,
        count: seconds * 25,
        sample_size: video_sample_size,
        per_chunk: 12,
        sync_every: Some(50),
        ctts: true,
        media_time: 1024,
    };
    let audio = TrackSpec {
        id: 2,
        handler: b"soun",
        timescale: 48000,
        delta: 1024,
        count: seconds * 48000 / 1024,
        sample_size: 200,
        per_chunk: 23,
        sync_every: None,
        ctts: false,
        media_time: 1024,
    };
    let ftyp = boxed(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41");
    // Lay the chunks out interleaved, then size the moov, then place the mdat.
    let mut order = Vec::new();
    for (ti, t) in [&video, &audio].iter().enumerate() {
        let chunks = t.count.div_ceil(t.per_chunk);
        let per_chunk_time = f64::from(t.per_chunk * t.delta) / f64::from(t.timescale);
        for c in 0..chunks {
            order.push((f64::from(c) * per_chunk_time, ti, c));
        }
    }
    order.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let chunk_len = |t: &TrackSpec, c: u32| -> u64 {
        let first = c * t.per_chunk;
        let last = (first + t.per_chunk).min(t.count);
        (first..last)
            .map(|i| u64::from(t.sample_size + i % 7))
            .sum()
    };
    let mut rel = [vec![], vec![]];
    let mut pos = 0u64;
    for &(_, ti, c) in &order {
        let t = if ti == 0 { &video } else { &audio };
        rel[ti].push(pos);
        pos += chunk_len(t, c);
    }
    let movie_ts = 1000;
    let build = |base: u64| {
        let offs = |v: &Vec<u64>| v.iter().map(|o| o + base).collect::<Vec<_>>();
        let mvhd = full(
            b"mvhd",
            0,
            &[u32s(&[0, 0, movie_ts, seconds * movie_ts]), vec![0; 80]].concat(),
        );
        let udta = boxed(b"udta", &boxed(b"\xa9too", b"synthetic"));
        boxed(
            b"moov",
            &[
                mvhd,
                trak(&video, &offs(&rel[0]), movie_ts),
                trak(&audio, &offs(&rel[1]), movie_ts),
                udta,
            ]
            .concat(),
        )
    };
    let moov_len = build(0).len() as u64;
    let data_start = ftyp.len() as u64 + moov_len + 16;
    let moov = build(data_start);
    let mut head = [ftyp, moov].concat();
    head.extend_from_slice(&1u32.to_be_bytes());
    head.extend_from_slice(b"mdat");
    head.extend_from_slice(&(pos + 16).to_be_bytes());
    Sparse {
        size: data_start + pos,
        head,
    }
}
