//! A whole FastCGI connection under a scripted peer (the oracle:
//! fuzz/oracle/connection.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../oracle/connection.rs"]
mod oracle;

fuzz_target!(|data: &[u8]| {
    let media = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("media");
    oracle::connection(data, &media)
});
