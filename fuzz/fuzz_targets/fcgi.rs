//! The FastCGI codec on arbitrary record streams (the oracle:
//! fuzz/oracle/fcgi.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../oracle/fcgi.rs"]
mod oracle;

fuzz_target!(|data: &[u8]| oracle::fcgi(data));
