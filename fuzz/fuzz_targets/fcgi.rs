//! The FastCGI connection state machine on arbitrary record streams, fed
//! in the split points the input's first byte picks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mp4_fcgi::fcgi::{Capabilities, Conn, Event, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else { return };
    let step = usize::from(step).max(1);
    let mut conn = Conn::new(
        Limits {
            max_params: 4096,
            max_stdin: 8192,
            max_records: 64,
        },
        Capabilities {
            max_conns: 10,
            max_reqs: 10,
            mpxs_conns: false,
        },
    );
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for chunk in stream.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            let Ok(p) = conn.process(&buf) else { return };
            assert!(p.consumed <= buf.len());
            buf.drain(..p.consumed);
            match p.event {
                Some(Event::Request(r)) => {
                    let _ = r.params.iter().count();
                    conn.finish_request(r.request_id);
                }
                Some(Event::Abort { request_id }) => conn.finish_request(request_id),
                None if p.consumed == 0 => break,
                None => {}
            }
        }
        conn.take_output(&mut out);
        // The codec's own output stays bounded by what it was sent.
        assert!(out.len() <= 64 * (stream.len() + 64));
        out.clear();
    }
});
