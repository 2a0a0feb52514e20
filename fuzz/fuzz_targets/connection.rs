//! A whole FastCGI connection (codec, handler, body writer) under a scripted
//! peer: requests, management records, aborts and raw bytes arrive in
//! arbitrary pieces, writes are short, index jobs finish late. Every answer
//! must be a well-formed record stream and every complete answer exactly
//! the bytes of its response. The first byte picks the film.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, script)) = data.split_first() else {
        return;
    };
    let film = ["tiny_faststart.mp4", "tiny.mp4", "tiny_frag.mp4"][usize::from(pick) % 3];
    let media = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("media")
        .join(film);
    mp4_fcgi::server::fuzzing::run_script(script, &media);
});
