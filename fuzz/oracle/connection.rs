//! A whole FastCGI connection (codec, request stages, body writer) under a
//! scripted peer: requests, management records, aborts and raw bytes
//! arrive in arbitrary pieces, writes are short, index jobs finish late.
//! Every answer must be a well-formed record stream and every complete
//! answer exactly the bytes of its response, rendered independently. The
//! first byte picks the film. Shared by the fuzz target and
//! tests/fuzz_regressions.rs, which replays the committed corpus through it.

use mp4_fcgi::fcgi;
use mp4_fcgi::server::fuzzing::{Harness, render};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

/// Runs one input against the tiny films in `media` (fuzz/media); panics on
/// a broken invariant.
pub fn connection(data: &[u8], media: &Path) {
    let Some((&pick, script)) = data.split_first() else {
        return;
    };
    let film = ["tiny_faststart.mp4", "tiny.mp4", "tiny_frag.mp4"][usize::from(pick) % 3];
    run_script(script, &media.join(film));
}

/// One run: interprets `data` as a script, then checks what the peer got.
/// Panics when the oracle fails; returns how many answers it compared whole.
pub fn run_script(data: &[u8], media: &Path) -> usize {
    let media = PathBuf::from(media);
    let requests = canned(&media);
    // Scripts starting with an even byte find the caches warm (fast runs);
    // odd ones start cold, so their requests wait for index jobs.
    let warm = data.first().is_some_and(|b| b % 2 == 0);
    let mut h = Harness::new(warm);
    let mut to_send: Vec<u8> = Vec::new();
    // The canned requests sent under each id, in order (each gets one
    // END_REQUEST); `pure` while no raw bytes were sent.
    let mut sent: HashMap<u16, VecDeque<usize>> = HashMap::new();
    let mut pure = true;
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next();
    let mut steps = 0;
    while let Some(op) = next() {
        steps += 1;
        if steps > 400 {
            break;
        }
        match op % 16 {
            0..=3 => {
                let k = usize::from(next().unwrap_or(0)) % requests.len();
                let id = u16::from(next().unwrap_or(1)) % 4 + 1;
                let keep = next().unwrap_or(1) & 3 != 0;
                sent.entry(id).or_default().push_back(k);
                fcgi::encode_begin_request(id, fcgi::FCGI_RESPONDER, keep, &mut to_send);
                let pairs: Vec<(&[u8], &[u8])> =
                    requests[k].iter().map(|(n, v)| (&n[..], &v[..])).collect();
                fcgi::encode_params(&pairs, id, &mut to_send);
                fcgi::encode_record(fcgi::FCGI_STDIN, id, &[], &mut to_send);
            }
            4 | 5 => {
                // A management record, or anything else under id 0.
                let rtype = next().unwrap_or(9);
                let len = usize::from(next().unwrap_or(0) % 24);
                let content: Vec<u8> = (0..len).map(|_| next().unwrap_or(0)).collect();
                fcgi::encode_record(rtype, 0, &content, &mut to_send);
            }
            6 => {
                let id = u16::from(next().unwrap_or(1)) % 4 + 1;
                fcgi::encode_record(fcgi::FCGI_ABORT_REQUEST, id, &[], &mut to_send);
            }
            15 => {
                // Raw bytes: anything at all.
                pure = false;
                let len = usize::from(next().unwrap_or(0) % 32);
                to_send.extend((0..len).map(|_| next().unwrap_or(0)));
            }
            7..=9 => {
                let n = usize::from(next().unwrap_or(0)) * 8 + 1;
                let n = n.min(to_send.len());
                h.deliver(to_send.drain(..n));
            }
            10..=12 => h.room(usize::from(next().unwrap_or(0)) * 97 + 1),
            13 => h.run_jobs(),
            _ => {
                if next().unwrap_or(0) == 0 {
                    h.close();
                }
            }
        }
        h.pump();
    }
    // The rest goes out and everything drains.
    h.deliver(to_send.drain(..));
    check(h.drain(), &mut sent, pure, &requests, &media)
}

/// The requests a script may send whole: the params of each.
fn canned(media: &Path) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    let file = media.as_os_str().as_encoded_bytes().to_vec();
    let req = |query: &str, extra: &[(&str, &str)]| {
        let mut v = vec![
            (b"SCRIPT_FILENAME".to_vec(), file.clone()),
            (b"REQUEST_METHOD".to_vec(), b"GET".to_vec()),
            (b"QUERY_STRING".to_vec(), query.as_bytes().to_vec()),
        ];
        for (n, x) in extra {
            v.push((n.as_bytes().to_vec(), x.as_bytes().to_vec()));
        }
        v
    };
    // Windows that fit a 2-second film.
    vec![
        req("", &[]),
        req("start=0.5&end=1.5", &[]),
        req("start=1.2", &[("HTTP_RANGE", "bytes=100-5000,9000-")]),
        req("end=0.6", &[("REQUEST_METHOD", "HEAD")]),
        req("start=99", &[]),
        req("start=0.3", &[("HTTP_RANGE", "bytes=-300")]),
    ]
}

/// What a request's full answer must be: its head, then its body's bytes
/// (rendered once per film and request).
fn expected(k: usize, params: &[(Vec<u8>, Vec<u8>)], media: &Path) -> Vec<u8> {
    thread_local! {
        static DONE: std::cell::RefCell<HashMap<(PathBuf, usize), Vec<u8>>> =
            std::cell::RefCell::new(HashMap::new());
    }
    let key = (media.to_path_buf(), k);
    if let Some(v) = DONE.with(|d| d.borrow().get(&key).cloned()) {
        return v;
    }
    let v = render(params, media);
    DONE.with(|d| d.borrow_mut().insert(key, v.clone()));
    v
}

/// The oracle.
fn check(
    got: &[u8],
    sent: &mut HashMap<u16, VecDeque<usize>>,
    pure: bool,
    requests: &[Vec<(Vec<u8>, Vec<u8>)>],
    media: &Path,
) -> usize {
    let mut stdout: HashMap<u16, Vec<u8>> = HashMap::new();
    let mut compared = 0;
    let mut b = got;
    while !b.is_empty() {
        let fcgi::Status::Complete(h) = fcgi::parse_header(b) else {
            // A cut connection may end inside a header.
            return compared;
        };
        assert_eq!(h.version, 1, "a record header that is not one");
        assert!(
            (fcgi::FCGI_END_REQUEST..=fcgi::FCGI_UNKNOWN_TYPE).contains(&h.rtype)
                && h.rtype != fcgi::FCGI_PARAMS
                && h.rtype != fcgi::FCGI_STDIN,
            "record type {} from a responder",
            h.rtype
        );
        let Some(record) = b.get(..h.record_len()) else {
            // A cut connection may end inside a record.
            return compared;
        };
        let content = &record[8..8 + usize::from(h.content_length)];
        match h.rtype {
            fcgi::FCGI_STDOUT => stdout
                .entry(h.request_id)
                .or_default()
                .extend_from_slice(content),
            fcgi::FCGI_END_REQUEST => {
                assert_eq!(content.len(), 8);
                let answer = stdout.remove(&h.request_id).unwrap_or_default();
                let app = u32::from_be_bytes([content[0], content[1], content[2], content[3]]);
                let complete = content[4] == fcgi::FCGI_REQUEST_COMPLETE && app == 0;
                let k = sent.get_mut(&h.request_id).and_then(VecDeque::pop_front);
                if let (true, true, Some(k)) = (pure, complete, k) {
                    let want = expected(k, &requests[k], media);
                    assert!(
                        answer == want,
                        "request {} (canned {k}): {} bytes answered, {} expected",
                        h.request_id,
                        answer.len(),
                        want.len()
                    );
                    compared += 1;
                }
            }
            _ => {}
        }
        b = &b[h.record_len()..];
    }
    compared
}
