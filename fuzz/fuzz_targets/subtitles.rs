//! SRT and WebVTT sidecars, `tx3g` samples and the WebVTT writer on
//! arbitrary bytes (the oracle: fuzz/oracle/subtitles.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../oracle/subtitles.rs"]
mod oracle;

fuzz_target!(|data: &[u8]| oracle::subtitles(data));
