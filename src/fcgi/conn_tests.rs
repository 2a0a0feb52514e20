//! The codec's tests: input whole and trickled, every refusal, the output
//! queue's order under management records, back-pressure.

use super::super::record::{Header, encode_begin_request, encode_params};
use super::*;
use crate::output::Next;

fn conn() -> Conn {
    Conn::new(
        Limits {
            max_params: 1024,
            max_stdin: 100,
            max_records: 16,
        },
        Capabilities {
            max_conns: 1000,
            max_reqs: 1000,
            mpxs_conns: false,
        },
    )
}

/// Feeds everything, byte by byte when `trickle`, collecting events.
fn feed(c: &mut Conn, input: &[u8], trickle: bool) -> Result<Vec<Event>, ProtocolError> {
    let mut events = Vec::new();
    let step = if trickle { 1 } else { input.len().max(1) };
    for chunk in input.chunks(step) {
        assert_eq!(c.feed(chunk), chunk.len(), "the codec takes the input");
        while let Some(ev) = c.next_event()? {
            events.push(ev);
        }
    }
    Ok(events)
}

fn request(id: u16, keep: bool, pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    encode_begin_request(id, FCGI_RESPONDER, keep, &mut b);
    encode_params(pairs, id, &mut b);
    encode_record(FCGI_STDIN, id, &[], &mut b);
    b
}

/// The output as records; file spans read as `0xee` bytes.
fn output(c: &mut Conn) -> Vec<(Header, Vec<u8>)> {
    let mut raw = Vec::new();
    while let Some(n) = c.output().next() {
        let k = match n {
            Next::Bytes(b) => {
                raw.extend_from_slice(b);
                b.len()
            }
            Next::File { len, .. } => {
                raw.resize(raw.len() + len, 0xee);
                len
            }
        };
        c.output().advance(k);
    }
    let mut v = Vec::new();
    let mut b = &raw[..];
    while let Status::Complete(h) = parse_header(b) {
        assert_eq!(h.version, 1);
        v.push((h, b[8..8 + usize::from(h.content_length)].to_vec()));
        b = &b[h.record_len()..];
    }
    assert!(b.is_empty(), "a partial record in the output");
    v
}

#[test]
fn trickled_and_whole_input_agree() {
    let pairs: &[(&[u8], &[u8])] = &[
        (b"SCRIPT_FILENAME", b"/m/a.mp4"),
        (b"QUERY_STRING", b"start=1%2E5"),
        (b"HTTP_X\xff", &[0xc3, 0x28]),
    ];
    for trickle in [false, true] {
        let mut c = conn();
        let ev = feed(&mut c, &request(1, true, pairs), trickle).unwrap();
        let [Event::Request(r)] = &ev[..] else {
            panic!("{ev:?}")
        };
        assert_eq!(r.request_id, 1);
        assert!(r.keep_conn && !r.params_overflow);
        assert_eq!(r.params.get(b"QUERY_STRING"), Some(&b"start=1%2E5"[..]));
        assert_eq!(r.params.get(b"HTTP_X\xff"), Some(&[0xc3, 0x28][..]));
        assert!(!c.receiving());
    }
}

#[test]
fn pair_split_across_records() {
    let mut stream = Vec::new();
    encode_pair(b"SCRIPT_FILENAME", &[b'a'; 200], &mut stream);
    let mut b = Vec::new();
    encode_begin_request(9, FCGI_RESPONDER, false, &mut b);
    for part in stream.chunks(20) {
        encode_record(FCGI_PARAMS, 9, part, &mut b);
    }
    encode_record(FCGI_PARAMS, 9, &[], &mut b);
    let mut c = conn();
    let ev = feed(&mut c, &b, false).unwrap();
    let [Event::Request(r)] = &ev[..] else {
        panic!()
    };
    assert_eq!(r.params.get(b"SCRIPT_FILENAME").map(<[u8]>::len), Some(200));
}

#[test]
fn get_values_is_truthful() {
    let mut q = Vec::new();
    for n in [
        &b"FCGI_MAX_CONNS"[..],
        b"FCGI_MPXS_CONNS",
        b"FCGI_MAX_REQS",
        b"OTHER",
    ] {
        encode_pair(n, b"", &mut q);
    }
    let mut b = Vec::new();
    encode_record(FCGI_GET_VALUES, 0, &q, &mut b);
    let mut c = conn();
    assert!(feed(&mut c, &b, false).unwrap().is_empty());
    let out = output(&mut c);
    assert_eq!(out[0].0.rtype, FCGI_GET_VALUES_RESULT);
    let p = Params::parse(out[0].1.clone()).unwrap();
    assert_eq!(p.get(b"FCGI_MAX_CONNS"), Some(&b"1000"[..]));
    assert_eq!(p.get(b"FCGI_MPXS_CONNS"), Some(&b"0"[..]));
    assert_eq!(p.get(b"OTHER"), None);
}

#[test]
fn unknown_management_type() {
    let mut b = Vec::new();
    encode_record(42, 0, &[], &mut b);
    let mut c = conn();
    feed(&mut c, &b, false).unwrap();
    let out = output(&mut c);
    assert_eq!(out[0].0.rtype, FCGI_UNKNOWN_TYPE);
    assert_eq!(out[0].1[0], 42);
    assert!(c.is_idle());
}

#[test]
fn unknown_role_and_second_request_are_refused() {
    let mut b = Vec::new();
    encode_begin_request(2, FCGI_AUTHORIZER, true, &mut b);
    let mut c = conn();
    feed(&mut c, &b, false).unwrap();
    let out = output(&mut c);
    assert_eq!(out[1].0.rtype, FCGI_END_REQUEST);
    assert_eq!(out[1].1[4], FCGI_UNKNOWN_ROLE);
    assert!(c.keep_open());

    let mut c = conn();
    let mut b = request(1, true, &[]);
    encode_begin_request(2, FCGI_RESPONDER, true, &mut b);
    let ev = feed(&mut c, &b, false).unwrap();
    assert_eq!(ev.len(), 1);
    let out = output(&mut c);
    assert_eq!((out[1].0.request_id, out[1].1[4]), (2, FCGI_CANT_MPX_CONN));
    // After the first finishes, a new request is accepted.
    assert_eq!(c.answering(), Some(1));
    c.end_request(0, FCGI_REQUEST_COMPLETE);
    assert!(c.keep_open());
    assert_eq!(
        feed(&mut c, &request(3, false, &[]), false).unwrap().len(),
        1
    );
    c.end_request(0, FCGI_REQUEST_COMPLETE);
    assert!(!c.keep_open(), "no FCGI_KEEP_CONN: close after the request");
}

#[test]
fn abort_before_and_after_params() {
    let mut c = conn();
    let mut b = Vec::new();
    encode_begin_request(5, FCGI_RESPONDER, true, &mut b);
    encode_record(FCGI_ABORT_REQUEST, 5, &[], &mut b);
    assert!(feed(&mut c, &b, false).unwrap().is_empty());
    assert_eq!(output(&mut c)[1].0.rtype, FCGI_END_REQUEST);
    assert_eq!(c.answering(), None);

    let mut b = request(6, true, &[]);
    encode_record(FCGI_ABORT_REQUEST, 6, &[], &mut b);
    let ev = feed(&mut c, &b, false).unwrap();
    assert!(matches!(ev[1], Event::Abort { request_id: 6 }));
}

#[test]
fn params_over_the_limit_are_flagged_not_kept() {
    let big = vec![b'v'; 2000];
    let mut c = conn();
    let ev = feed(&mut c, &request(1, true, &[(b"X", &big)]), false).unwrap();
    let [Event::Request(r)] = &ev[..] else {
        panic!()
    };
    assert!(r.params_overflow);
    assert!(r.params.is_empty());
}

#[test]
fn stdin_limit_and_bad_version_stick() {
    let mut c = conn();
    let mut b = request(1, true, &[]);
    encode_record(FCGI_STDIN, 1, &[0; 101], &mut b);
    assert!(matches!(
        feed(&mut c, &b, false),
        Err(ProtocolError::StdinTooLarge { .. })
    ));
    assert!(c.next_event().is_err(), "errors stick");
    assert!(!c.keep_open() && !c.wants_read());

    let mut c = conn();
    c.feed(&[2, 1, 0, 1, 0, 0, 0, 0]);
    assert_eq!(c.next_event(), Err(ProtocolError::BadVersion(2)));
}

#[test]
fn truncated_pair_is_a_protocol_error() {
    let mut b = Vec::new();
    encode_begin_request(1, FCGI_RESPONDER, true, &mut b);
    encode_record(FCGI_PARAMS, 1, &[5, 1, b'a'], &mut b);
    encode_record(FCGI_PARAMS, 1, &[], &mut b);
    assert_eq!(feed(&mut conn(), &b, false), Err(ProtocolError::BadParams));
}

#[test]
fn records_for_other_ids_are_ignored() {
    let mut b = Vec::new();
    encode_record(FCGI_PARAMS, 77, b"junk", &mut b);
    encode_record(FCGI_STDIN, 77, b"junk", &mut b);
    let mut c = conn();
    assert!(feed(&mut c, &b, true).unwrap().is_empty());
    assert!(c.output_ref().is_empty());
}

#[test]
fn management_answers_never_split_a_body_record() {
    let mut c = conn();
    feed(&mut c, &request(1, true, &[]), false).unwrap();
    c.stdout(b"Status: 200 OK\r\n\r\n");
    assert_eq!(c.stdout_file(1000, 70_000), STDOUT_MAX);
    // Half the record's payload goes out, then a GET_VALUES arrives.
    let mut sent = 0;
    while let Some(Next::Bytes(b)) = c.output().next() {
        let n = b.len();
        sent += n;
        c.output().advance(n);
    }
    c.output().advance(100);
    let mut q = Vec::new();
    encode_record(FCGI_GET_VALUES, 0, &[], &mut q);
    encode_record(99, 0, &[], &mut q);
    feed(&mut c, &q, false).unwrap();
    c.end_request(0, FCGI_REQUEST_COMPLETE);
    let mut tail = Vec::new();
    while let Some(n) = c.output().next() {
        let k = match n {
            Next::Bytes(b) => {
                tail.extend_from_slice(b);
                b.len()
            }
            Next::File { len, .. } => {
                tail.resize(tail.len() + len, 0xee);
                len
            }
        };
        c.output().advance(k);
    }
    // The head's record (18 bytes padded to 24) and the body record's
    // header went first; the payload's remainder comes next, then whole records.
    assert_eq!(sent, 8 + 24 + 8);
    let after = STDOUT_MAX - 100;
    assert!(tail[..after].iter().all(|&b| b == 0xee));
    let types: Vec<u8> = {
        let mut v = Vec::new();
        let mut b = &tail[after..];
        while let Status::Complete(h) = parse_header(b) {
            v.push(h.rtype);
            b = &b[h.record_len()..];
        }
        assert!(b.is_empty());
        v
    };
    assert_eq!(
        types,
        [
            FCGI_GET_VALUES_RESULT,
            FCGI_UNKNOWN_TYPE,
            FCGI_STDOUT,
            FCGI_END_REQUEST
        ]
    );
}

#[test]
fn a_peer_that_never_reads_stops_being_read() {
    let mut c = conn();
    let mut flood = Vec::new();
    for _ in 0..20_000 {
        encode_record(77, 0, &[], &mut flood);
    }
    let taken = c.feed(&flood);
    while c.next_event().unwrap().is_some() {}
    assert!(!c.wants_read(), "output at its bound: reading stops");
    assert!(c.output_ref().buffered() < crate::output::BOUND + 64);
    assert!(taken < flood.len(), "the rest stays in the peer's socket");
    // Once the output drains, reading resumes.
    let n = c.output_ref().pending();
    c.output().advance(n);
    while c.next_event().unwrap().is_some() {}
    assert!(c.wants_read() || c.output_ref().buffered() >= crate::output::BOUND);
}

#[test]
fn records_built_in_place_are_the_records_stdout_writes() {
    let mut c = conn();
    feed(&mut c, &request(3, true, &[]), false).unwrap();
    let mut want = conn();
    feed(&mut want, &request(3, true, &[]), false).unwrap();
    for payload in [&b"x"[..], &[7u8; 13], &[1u8; STDOUT_MAX]] {
        let start = c.stdout_open().unwrap();
        c.output().buf_mut().extend_from_slice(payload);
        assert_eq!(c.stdout_close(start), payload.len());
        want.stdout(payload);
    }
    // An empty one leaves nothing, not an empty record (which would end
    // the stream).
    let start = c.stdout_open().unwrap();
    assert_eq!(c.stdout_close(start), 0);
    assert_eq!(output(&mut c), output(&mut want));
    // More than a record's payload is not a record: dropped, not sent.
    let start = c.stdout_open().unwrap();
    c.output().buf_mut().resize(start + STDOUT_MAX + 1, 0);
    assert_eq!(c.stdout_close(start), 0);
    assert!(c.output_ref().is_empty());
    // Nothing is answered once the request ended.
    c.end_request(0, FCGI_REQUEST_COMPLETE);
    assert_eq!(c.stdout_open(), None);
}
