//! A whole FastCGI connection (codec, handler, body writer) under a scripted
//! peer: requests, management records, aborts and raw bytes arrive in
//! arbitrary pieces, writes are short, index jobs finish late. Every answer
//! must be a well-formed record stream and every complete answer exactly
//! the bytes of its response. The first byte picks the film.
//! Shared by the fuzz target and tests/fuzz_regressions.rs, which replays
//! the committed corpus through it.

use std::path::Path;

/// Runs one input against the tiny films in `media` (fuzz/media); panics on
/// a broken invariant.
pub fn connection(data: &[u8], media: &Path) {
    let Some((&pick, script)) = data.split_first() else {
        return;
    };
    let film = ["tiny_faststart.mp4", "tiny.mp4", "tiny_frag.mp4"][usize::from(pick) % 3];
    mp4_fcgi::server::fuzzing::run_script(script, &media.join(film));
}
