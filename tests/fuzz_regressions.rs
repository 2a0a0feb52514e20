//! Every input a fuzzer crashed on stays here as a test (tests/fuzz/).
//! Engine inputs start with 3 window bytes, as in fuzz/fuzz_targets/engine.rs.

use mp4_fcgi::mp4::{self, Index, Limits, Window};
use std::sync::Arc;

fn engine_input(name: &str) {
    let data = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz")
            .join(name),
    )
    .unwrap();
    let (w, file) = data.split_at(3);
    let pick = |i: usize| Some(f64::from(w[i]) / 4.0);
    let window = Window {
        start: pick(0).filter(|s| *s < 60.0),
        end: pick(1).filter(|e| *e > 1.0),
        flash: w[2] & 1 == 1,
    };
    if let Ok(index) = Index::build(&file.to_vec(), &Limits { max_moov: 1 << 20 }) {
        let _ = index.info();
        let index = Arc::new(index);
        for w in [window, Window::default()] {
            if let Ok(layout) = mp4::plan(&index, &w, &Default::default()) {
                let mut out = Vec::new();
                layout
                    .copy_to(0..layout.len().min(1 << 20), &file.to_vec(), &mut out)
                    .ok();
            }
        }
    }
}

/// An stts whose runs sum past u64 overflowed `Runs::total` (found by fuzzing, 6.3 M executions in).
#[test]
fn stts_total_overflow() {
    engine_input("engine-stts-total-overflow");
}

/// Chunks whose offsets increase but whose data overlap made a track's media
/// range end before it started; laying out the mdat subtracted past zero
/// (found by the engine fuzzer with the new seeds, at once).
#[test]
fn overlapping_chunks_in_order() {
    engine_input("engine-overlapping-chunks");
}

/// Issue 11's crafted file: an empty stco, then a 1000-entry co64 with
/// offsets near 2^64, moov after mdat. It panicked the fast-start writer.
#[test]
fn crafted_co64_near_2_pow_64() {
    engine_input("crafted-co64-near-2-pow-64");
}
