//! Every input a fuzzer crashed on stays here as a test (tests/fuzz/).
//! Engine inputs start with 3 window bytes, read by the fuzz target's own
//! oracle (fuzz/oracle/engine.rs).

#[path = "../fuzz/oracle/connection.rs"]
mod connection;
#[path = "../fuzz/oracle/fcgi.rs"]
mod fcgi;
#[path = "../fuzz/oracle/engine.rs"]
mod oracle;
#[path = "../fuzz/oracle/subtitles.rs"]
mod subtitles;

use std::path::Path;

fn engine_input(name: &str) {
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz")
            .join(name),
    )
    .unwrap();
    oracle::engine(&data);
}

/// Runs `oracle` on every input of the committed corpus of `target`: what
/// the fuzzer explored stays explored on every test run.
fn replay(target: &str, oracle: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let ran = std::panic::catch_unwind(|| oracle(&data));
        assert!(ran.is_ok(), "{} fails the {target} oracle", path.display());
        n += 1;
    }
    assert!(n > 20, "only {n} inputs in {}", dir.display());
}

#[test]
fn engine_corpus_replays_clean() {
    replay("engine", oracle::engine);
}

#[test]
fn fcgi_corpus_replays_clean() {
    replay("fcgi", fcgi::fcgi);
}

#[test]
fn subtitles_corpus_replays_clean() {
    replay("subtitles", subtitles::subtitles);
}

/// Scripts the corpus may not hold: a known one, and many random ones.
#[test]
fn scripted_connections_keep_their_records_whole() {
    let media = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/media/a_faststart.mp4");
    // Requests, mid-stream management records, short writes, late jobs.
    let script = [
        0, 1, 1, 1, // canned 1 as id 2, kept
        7, 255, 10, 3, 13, 10, 1, // deliver, a little room, jobs, more room
        4, 9, 0, 7, 4, // GET_VALUES mid-body
        10, 255, 10, 255, 0, 2, 3, 1, 7, 255, 13, 10, 255,
    ];
    assert!(
        connection::run_script(&script, &media) >= 1,
        "the scripted answer is compared"
    );
    // Many random scripts: the oracle must have compared some answers.
    let mut compared = 0;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..300 {
        let data: Vec<u8> = (0..96)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        compared += connection::run_script(&data, &media);
    }
    assert!(compared > 20, "only {compared} answers compared");
}

#[test]
fn connection_corpus_replays_clean() {
    let media = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/media");
    replay("connection", |data| connection::connection(data, &media));
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
