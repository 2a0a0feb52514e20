//! The FastCGI connection state machine on arbitrary record streams, fed
//! in the split points the input's first byte picks; requests are answered
//! at once, and the codec's own output must stay bounded.
//! Shared by the fuzz target and tests/fuzz_regressions.rs, which replays
//! the committed corpus through it.

use mp4_fcgi::fcgi::{Capabilities, Conn, Event, Limits};
use mp4_fcgi::output::BOUND;

/// Runs one input; panics on a broken invariant.
pub fn fcgi(data: &[u8]) {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
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
    for chunk in stream.chunks(step) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let took = conn.feed(rest);
            rest = &rest[took..];
            loop {
                match conn.next_event() {
                    Ok(Some(Event::Request(r))) => {
                        let _ = r.params.iter().count();
                        conn.stdout(b"Status: 200 OK\r\n\r\n");
                        conn.end_request(0, 0);
                    }
                    Ok(Some(Event::Abort { .. })) => conn.end_request(1, 0),
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            // The output is bounded whatever is fed: a peer that never reads
            // stops being read.
            assert!(conn.output_ref().buffered() < BOUND + 2 * 65_600);
            if took == 0 {
                // Drain, as a reading peer would.
                let n = conn.output_ref().pending();
                conn.output().advance(n);
                if !conn.wants_read() {
                    return;
                }
            }
        }
    }
}
