//! The engine on arbitrary bytes (the oracle: fuzz/oracle/engine.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../oracle/engine.rs"]
mod oracle;

fuzz_target!(|data: &[u8]| oracle::engine(data));
