//! Damaged input: every fixture truncated at 64 points and hit by 1000 random
//! byte flips. The engine answers Ok or a typed error: never a panic or a hang.

mod common;

use mp4_fcgi::mp4::{self, Index, Limits, Slice, Window};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FILES: [&str; 7] = [
    "a.mp4",
    "a_faststart.mp4",
    "hevc.mp4",
    "two_audio.mp4",
    "frag.mp4",
    "audio.m4a",
    "audio_stz2.m4a",
];

fn windows() -> [Window; 4] {
    let w = |s, e, flash| Window {
        start: s,
        end: e,
        flash,
        tracks: Default::default(),
    };
    [
        w(None, None, false),
        w(Some(7.3), Some(15.0), false),
        w(Some(0.0), None, true),
        w(None, Some(3.0), false),
    ]
}

/// Builds and plans; any result is fine as long as it is one, in bounded time,
/// and never points outside the file.
#[allow(clippy::ptr_arg)] // `&dyn ReadAt` needs a sized source: Vec, not [u8].
fn exercise(data: &Vec<u8>, what: &str) {
    let t = Instant::now();
    if let Ok(index) = Index::build(data, &Limits::default()) {
        let _ = index.info();
        let index = Arc::new(index);
        for w in windows() {
            if let Ok(layout) = mp4::plan(&index, &w, &Default::default()) {
                let mut buf = Vec::new();
                for p in layout.slices(0..layout.len()) {
                    match p {
                        Slice::File { offset, len } => assert!(
                            offset + len <= data.len() as u64,
                            "{what}: span past the end"
                        ),
                        Slice::Patched { offset, len, at } => {
                            assert!(
                                offset + len as u64 <= data.len() as u64,
                                "{what}: patched span past the end"
                            );
                            buf.resize(len, 0);
                            layout.patch(at, &mut buf);
                        }
                        Slice::Generated { at, len } => {
                            buf.resize(len, 0);
                            layout.generate(at, &mut buf);
                        }
                        Slice::Bytes(_) => {}
                    }
                }
            }
        }
    }
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "{what}: took {:?}",
        t.elapsed()
    );
}

/// Where the moov lies, so flips can aim at the tables.
fn moov_range(data: &[u8]) -> (usize, usize) {
    let at = data
        .windows(4)
        .position(|w| w == b"moov")
        .map_or(0, |p| p.saturating_sub(4));
    let size = data
        .get(at..at + 4)
        .map_or(0, |b| u32::from_be_bytes(b.try_into().unwrap()) as usize);
    (at, (at + size.max(8)).min(data.len()))
}

#[test]
fn truncated_files_give_errors_not_panics() {
    for file in FILES {
        let data = std::fs::read(common::media(file)).unwrap();
        for i in 0..64 {
            let cut = data.len() * i / 64;
            exercise(&data[..cut].to_vec(), &format!("{file} cut at {cut}"));
        }
        // Cuts through the moov itself.
        let (m0, m1) = moov_range(&data);
        for i in 0..16 {
            let cut = m0 + (m1 - m0) * i / 16;
            exercise(
                &data[..cut].to_vec(),
                &format!("{file} cut at {cut} in moov"),
            );
        }
    }
}

#[test]
fn flipped_bytes_give_errors_not_panics() {
    let mut rng = common::XorShift(0x9e37_79b9_7f4a_7c15);
    for file in FILES {
        let clean = std::fs::read(common::media(file)).unwrap();
        let (m0, m1) = moov_range(&clean);
        for round in 0..1000 / FILES.len() + 1 {
            let mut data = clean.clone();
            for _ in 0..1 + rng.below(4) {
                // Mostly in the moov, where every byte means something.
                let at = if rng.below(4) == 0 {
                    rng.below(data.len())
                } else {
                    m0 + rng.below(m1 - m0)
                };
                data[at] = match rng.below(3) {
                    0 => data[at] ^ (1 << rng.below(8)),
                    1 => 0xff,
                    _ => 0,
                };
            }
            exercise(&data, &format!("{file} flip round {round}"));
        }
    }
}
