//! The thumbnail room's hostile films: counts that cost no bytes, samples
//! that claim more than the file holds, a broken decoder record, a picture
//! size no decoder should be handed. Each is refused quickly with 415 (or
//! 404), and the same one-worker pool goes on to answer a good picture.

mod common;

use common::boxes::{be32, film, find, full};
use common::{Pool, media};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A film of `n` samples of `size` bytes, one chunk, key frames as `stss`
/// lists (none: every sample is one), and `payload` bytes of `mdat`.
fn crafted(
    dir: &Path,
    name: &str,
    (n, size, payload): (u32, u32, u64),
    stss: Option<&[u32]>,
) -> PathBuf {
    // A size of 0: a table of n zero sizes.
    let mut stsz = be32(&[size, n]);
    if size == 0 {
        stsz.extend(vec![0u8; n as usize * 4]);
    }
    let mut tables = vec![
        full(b"stts", 0, &be32(&[1, n, 40])),
        full(b"stsc", 0, &be32(&[1, 1, n, 1])),
        full(b"stsz", 0, &stsz),
    ];
    if let Some(keys) = stss {
        let mut body = be32(&[keys.len() as u32]);
        body.extend(be32(keys));
        tables.push(full(b"stss", 0, &body));
    }
    let path = dir.join(name);
    film(1000, n * 40, 1000, &tables, payload).write(&path);
    path
}

/// `path` with its first video sample entry's bytes changed by `edit`
/// (the entry's body, after its 8-byte header).
fn with_entry(src: &Path, dir: &Path, name: &str, edit: impl Fn(&mut [u8])) -> PathBuf {
    let mut data = std::fs::read(src).unwrap();
    let entry = find(
        &data,
        &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"],
    )[0];
    let at = entry.as_ptr() as usize - data.as_ptr() as usize + 16;
    let len = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    edit(&mut data[at + 8..at + len]);
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn hostile_films_are_refused_quickly_and_the_worker_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A key frame every 100 000 frames (of zeros), 2 M frames: a picture
    // at 99 000 frames past one would decode them all; it decodes 300.
    let keys: Vec<u32> = (0..20).map(|k| k * 100_000 + 1).collect();
    let long_gop = crafted(d, "long-gop.mp4", (2_000_000, 16, 32_000_000), Some(&keys));
    // 1000 empty samples.
    let empty = crafted(d, "empty.mp4", (1000, 0, 16), None);
    // a.mp4 with its avcC garbled, and with a 65535x65535 picture.
    let garbled = with_entry(&media("a.mp4"), d, "garbled.mp4", |e| {
        let avcc = e.windows(4).position(|w| w == b"avcC").unwrap();
        let len = u32::from_be_bytes(e[avcc - 4..avcc].try_into().unwrap()) as usize;
        for (i, b) in e[avcc + 4..avcc - 4 + len].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
    });
    let giant = with_entry(&media("a.mp4"), d, "giant.mp4", |e| {
        e[24..28].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    });
    let pool = Pool::start(&["--workers", "1"]);
    let good = media("a.mp4").join("thumb-5500.jpg");
    let r = pool.client().get(&good, "", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let worker = pool.workers()[0];
    let cases: [(&Path, &str, &[u16]); 9] = [
        (&long_gop, "thumb-7960000.jpg", &[415]),
        (&long_gop, "tiles-3.jpg", &[415]),
        (&empty, "thumb-20000.jpg", &[415]),
        (&empty, "tiles-1.jpg", &[415]),
        (&garbled, "thumb-5500.jpg", &[415]),
        (&garbled, "tiles-1.jpg", &[415]),
        (&giant, "thumb-5500.jpg", &[415]),
        (&giant, "tiles-1.jpg", &[404, 415]),
        (&giant, "images.m3u8", &[404]),
    ];
    for (film, name, statuses) in cases {
        let t = Instant::now();
        let r = pool.client().get(&film.join(name), "", &[]);
        let took = t.elapsed();
        eprintln!("{name} {} {:?} {}", r.status, took, r.text());
        assert!(
            statuses.contains(&r.status),
            "{}/{name}: {} {}",
            film.display(),
            r.status,
            r.text()
        );
        assert!(
            took < Duration::from_secs(5),
            "{}/{name} took {took:?}",
            film.display()
        );
        let r = pool.client().get(&good, "", &[]);
        assert_eq!(r.status, 200, "after {name}: {}", r.text());
        assert!(r.body.starts_with(b"\xff\xd8\xff"));
    }
    assert_eq!(pool.workers(), vec![worker], "the worker was replaced");
    // The refusals say why.
    let r = pool.client().get(&giant.join("thumb-5500.jpg"), "", &[]);
    assert!(r.text().contains("pixels"), "{}", r.text());
}
