//! What the pool answers over FastCGI: trimmed clips equal to `cut`, full
//! records, kept and one-shot connections, GET_VALUES, aborts, limits,
//! status codes, Apache's form, Range, conditionals and HEAD.

mod common;
#[path = "server/mod.rs"]
mod server;

use common::{Client, Pool, media};
use mp4_fcgi::fcgi;
use server::*;
use std::io::Write;
use std::path::Path;

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn trimmed_response_equals_cut_output() {
    let pool = Pool::start(&["--workers", "2"]);
    let mut c = pool.client();
    let r = c.get(&media("a.mp4"), "start=5.5&end=12", &[]);
    ok_mp4(&r, pool.dir.path(), "trim.mp4");
    let cut = pool.dir.path().join("cut.mp4");
    common::cut(&media("a.mp4"), &cut, &["--start", "5.5", "--end", "12"]).unwrap();
    assert_eq!(
        std::fs::read(&cut).unwrap(),
        r.body,
        "cut and the server send the same bytes"
    );
    assert_eq!(r.header("Content-Type"), Some("video/mp4"));
    assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    assert!(r.header("ETag").is_some_and(|e| e.starts_with('"')));
    assert!(r.header("Last-Modified").is_some());
    // Asked again and again (from the second use on, a cached layout keeps
    // its generated head): the same bytes, whole and as a Range.
    for _ in 0..4 {
        assert!(c.get(&media("a.mp4"), "start=5.5&end=12", &[]).body == r.body);
        let part = c.get(
            &media("a.mp4"),
            "start=5.5&end=12",
            &[("HTTP_RANGE", "bytes=100-30000")],
        );
        assert!(part.body[..] == r.body[100..30001]);
    }
}

/// A long answer goes out in full records: one per 65528 bytes of body,
/// not a full record and a 7-byte one for every 64 KiB of file (which
/// doubled the front server's reads and the pool's syscalls).
#[test]
fn media_goes_out_in_full_records() {
    let pool = Pool::start(&["--workers", "1"]);
    let mut c = pool.client();
    let f = media("a.mp4").as_os_str().as_encoded_bytes().to_vec();
    let id = c.send(
        &[
            (b"SCRIPT_FILENAME", &f),
            (b"QUERY_STRING", b"start=10.5&end=20"),
            (b"REQUEST_METHOD", b"GET"),
        ],
        true,
    );
    let mut sizes = Vec::new();
    while let Some((t, rid, content)) = c.record() {
        assert_eq!(rid, id);
        if t == fcgi::FCGI_END_REQUEST {
            break;
        }
        if t == fcgi::FCGI_STDOUT && !content.is_empty() {
            sizes.push(content.len());
        }
    }
    let total: usize = sizes.iter().sum();
    assert!(
        total > 3 * fcgi::STDOUT_MAX,
        "a clip of ~220 KB, got {total} bytes"
    );
    // The CGI head is one record; then the generated head (ftyp, moov,
    // mdat header) in full records but its last, then the media the same way.
    let short = sizes[1..].iter().filter(|&&n| n < fcgi::STDOUT_MAX).count();
    assert!(
        short <= 2 && sizes.len() <= total.div_ceil(fcgi::STDOUT_MAX) + 2,
        "{} records for {total} bytes: {sizes:?}",
        sizes.len()
    );
}

#[test]
fn keep_conn_and_one_shot_connections() {
    let pool = Pool::start(&["--workers", "1"]);
    let mut c = pool.client();
    for q in ["start=1", "start=2&end=4", ""] {
        let r = c.get(&media("a_faststart.mp4"), q, &[]);
        assert_eq!(r.status, 200, "{q}");
    }
    // Without FCGI_KEEP_CONN the responder closes after the reply.
    let mut c = pool.client();
    let f = media("a.mp4");
    let id = c.send(
        &[
            (b"SCRIPT_FILENAME", f.as_os_str().as_encoded_bytes()),
            (b"REQUEST_METHOD", b"GET"),
        ],
        false,
    );
    assert_eq!(c.reply(id).status, 200);
    assert!(
        c.record().is_none(),
        "connection closed after a one-shot request"
    );
}

#[test]
fn get_values_answers_truthfully() {
    let pool = Pool::start(&["--workers", "2", "--max-conns", "100"]);
    let mut c = pool.client();
    let mut q = Vec::new();
    fcgi::encode_record(
        fcgi::FCGI_GET_VALUES,
        0,
        &{
            let mut b = Vec::new();
            for n in ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"] {
                b.push(n.len() as u8);
                b.push(0);
                b.extend_from_slice(n.as_bytes());
            }
            b
        },
        &mut q,
    );
    c.stream.write_all(&q).unwrap();
    let (t, _, content) = c.record().unwrap();
    assert_eq!(t, fcgi::FCGI_GET_VALUES_RESULT);
    let p = fcgi::Params::parse(content).unwrap();
    assert_eq!(p.get(b"FCGI_MAX_CONNS"), Some(&b"200"[..]));
    assert_eq!(p.get(b"FCGI_MPXS_CONNS"), Some(&b"0"[..]));
    // A second request while one runs is refused as GET_VALUES said.
    let f = media("a.mp4");
    let pairs: &[(&[u8], &[u8])] = &[(b"SCRIPT_FILENAME", f.as_os_str().as_encoded_bytes())];
    let mut both = Vec::new();
    let first = c.encode(pairs, true, &mut both);
    let second = c.encode(pairs, true, &mut both);
    c.stream.write_all(&both).unwrap();
    let r2 = c.reply(second);
    assert_eq!(r2.protocol_status, fcgi::FCGI_CANT_MPX_CONN);
    assert_eq!(c.reply(first).status, 200);
}

#[test]
fn abort_mid_stream_frees_the_slot() {
    let pool = Pool::start(&["--workers", "1"]);
    let mut c = pool.client();
    let f = media("two_audio.mp4");
    let id = c.send(
        &[(b"SCRIPT_FILENAME", f.as_os_str().as_encoded_bytes())],
        true,
    );
    c.first_stdout(id);
    let mut abort = Vec::new();
    fcgi::encode_record(fcgi::FCGI_ABORT_REQUEST, id, &[], &mut abort);
    c.stream.write_all(&abort).unwrap();
    let r = c.reply(id);
    assert!(r.complete, "END_REQUEST follows the abort");
    // The connection serves the next request.
    let r = c.get(&media("a.mp4"), "start=3", &[]);
    assert_eq!(r.status, 200);
}

#[test]
fn params_over_the_limit_are_refused_and_the_worker_lives() {
    let pool = Pool::start(&["--workers", "1", "--max-params", "4K"]);
    let mut c = pool.client();
    let big = "x".repeat(8000);
    let r = c.get(&media("a.mp4"), "", &[("HTTP_COOKIE", &big)]);
    assert_eq!(r.status, 431, "{}", r.text());
    let r = c.get(&media("a.mp4"), "end=2", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(pool.wait_workers(1).len(), 1);
}

#[test]
fn non_utf8_params_are_kept() {
    let pool = Pool::start(&["--workers", "1"]);
    let dir = pool.dir.path();
    let name: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(b"film-\xff\xfe.mp4");
    let path = dir.join(name);
    std::fs::copy(media("a.mp4"), &path).unwrap();
    let mut c = pool.client();
    let id = c.send(
        &[
            (b"SCRIPT_FILENAME", path.as_os_str().as_encoded_bytes()),
            (b"HTTP_X_\xc3\x28", b"\xff"),
            (b"QUERY_STRING", b"start=2"),
        ],
        true,
    );
    assert_eq!(c.reply(id).status, 200);
}

#[test]
fn status_codes() {
    let root = tempfile::tempdir().unwrap();
    let served = root.path().join("videos");
    std::fs::create_dir(&served).unwrap();
    std::fs::copy(media("a.mp4"), served.join("a.mp4")).unwrap();
    std::fs::write(served.join("notes.mp4"), b"this is not a film").unwrap();
    std::fs::create_dir(served.join("dir.mp4")).unwrap();
    std::fs::copy(media("a.mp4"), root.path().join("secret.mp4")).unwrap();
    std::os::unix::fs::symlink(root.path().join("secret.mp4"), served.join("escape.mp4")).unwrap();
    let root_arg = served.to_str().unwrap().to_string();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--root",
        &root_arg,
        "--status-path",
        "/status",
    ]);
    let mut c = pool.client();
    let a = served.join("a.mp4");
    type Case<'a> = (
        Box<dyn Fn(&mut UnixClient) -> common::Reply + 'a>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (Box::new(|c| c.get(&a, "", &[])), 200, ""),
        (
            Box::new(|c| c.get(&served.join("nope.mp4"), "", &[])),
            404,
            "no such file",
        ),
        (
            Box::new(|c| c.get(&served.join("escape.mp4"), "", &[])),
            403,
            "--root",
        ),
        (
            Box::new(|c| c.get(&served.join("../secret.mp4"), "", &[])),
            403,
            "--root",
        ),
        (
            Box::new(|c| c.get(&served.join("dir.mp4"), "", &[])),
            403,
            "not a regular file",
        ),
        (
            Box::new(|c| c.get(&a, "start=abc", &[])),
            400,
            "not a number",
        ),
        (
            Box::new(|c| c.get(&a, "start=-5", &[])),
            400,
            "not a number",
        ),
        (
            Box::new(|c| c.get(&a, "start=1e999", &[])),
            400,
            "not a number",
        ),
        (
            Box::new(|c| c.get(&a, "start=25", &[])),
            400,
            "past the end",
        ),
        (
            Box::new(|c| c.get(&a, "start=10&end=5", &[])),
            400,
            "not after start",
        ),
        (
            Box::new(|c| c.get(&a, "", &[("REQUEST_METHOD", "POST")])),
            405,
            "GET and HEAD",
        ),
        (
            Box::new(|c| c.get(&served.join("notes.mp4"), "", &[])),
            415,
            "not an MP4",
        ),
        (
            Box::new(|c| c.get(&a, "", &[("HTTP_RANGE", "bytes=999999999-")])),
            416,
            "outside",
        ),
    ];
    for (req, status, reason) in &cases {
        let r = req(&mut c);
        assert_eq!(r.status, *status, "{}", r.text());
        assert!(
            r.text().contains(reason),
            "{status}: body '{}' lacks '{reason}'",
            r.text()
        );
        if *status >= 400 {
            assert!(
                !r.text().contains(root.path().to_str().unwrap()),
                "no server paths in bodies"
            );
            assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
        }
    }
    assert_eq!(
        c.get(&a, "", &[("REQUEST_METHOD", "POST")]).header("Allow"),
        Some("GET, HEAD")
    );
    // Every failure got one log line: method, target, status, reason, the
    // file, the time it took.
    let log = pool.log_text();
    let line = |file: &str, status: &str| {
        log.lines().any(|l| {
            l.contains(&format!("GET /clip.mp4 {status} "))
                && l.contains(file)
                && l.ends_with(" ms")
        })
    };
    assert!(line("escape.mp4", "403"), "{log}");
    assert!(line("notes.mp4", "415"), "{log}");
    // The status page counts them.
    let r = c.get(Path::new("/none"), "", &[("SCRIPT_NAME", "/status")]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("requests:"), "{}", r.text());
    let r = c.get(Path::new("/none"), "json", &[("SCRIPT_NAME", "/status")]);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(r.text().contains("\"errors\":13"), "{}", r.text());
}

#[test]
fn apache_proxy_fcgi_form_and_document_root() {
    let pool = Pool::start(&["--workers", "1"]);
    let mut c = pool.client();
    let f = media("a.mp4");
    let apache = format!("proxy:fcgi://localhost{}", f.display()).replace(".mp4", "%2Emp4");
    let r = c.get(Path::new(&apache), "end=3", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let dir = f.parent().unwrap().to_str().unwrap().to_string();
    let id = c.send(
        &[
            (b"DOCUMENT_ROOT", dir.as_bytes()),
            (b"SCRIPT_NAME", b"/a.mp4"),
        ],
        true,
    );
    assert_eq!(c.reply(id).status, 200);
}

#[test]
fn ranges_conditionals_and_head() {
    let pool = Pool::start(&["--workers", "1"]);
    let mut c = pool.client();
    let f = media("a.mp4");
    let full = c.get(&f, "start=4", &[]);
    let len = full.body.len();
    let etag = full.header("ETag").unwrap().to_string();
    let lm = full.header("Last-Modified").unwrap().to_string();
    let range = |c: &mut Client<_>, h: &str| c.get(&f, "start=4", &[("HTTP_RANGE", h)]);
    let r = range(&mut c, "bytes=0-99");
    assert_eq!((r.status, r.body.as_slice()), (206, &full.body[..100]));
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 0-99/{len}").as_str())
    );
    let r = range(&mut c, "bytes=-100");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (206, &full.body[len - 100..])
    );
    let r = range(&mut c, "bytes=1000-");
    assert_eq!((r.status, r.body.as_slice()), (206, &full.body[1000..]));
    let r = range(&mut c, "bytes=0-9,100-109");
    assert_eq!(r.status, 206);
    let ct = r.header("Content-Type").unwrap();
    assert!(ct.starts_with("multipart/byteranges; boundary="));
    assert_eq!(
        r.header("Content-Length").unwrap(),
        r.body.len().to_string()
    );
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains(&format!("Content-Range: bytes 100-109/{len}")));
    let r = range(&mut c, &format!("bytes={len}-"));
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes */{len}").as_str())
    );
    // If-Range: a matching tag ranges, a stale one gets the whole clip.
    let r = c.get(
        &f,
        "start=4",
        &[("HTTP_RANGE", "bytes=0-9"), ("HTTP_IF_RANGE", &etag)],
    );
    assert_eq!(r.status, 206);
    let r = c.get(
        &f,
        "start=4",
        &[("HTTP_RANGE", "bytes=0-9"), ("HTTP_IF_RANGE", "\"stale\"")],
    );
    assert_eq!((r.status, r.body.len()), (200, len));
    // Conditionals.
    let r = c.get(&f, "start=4", &[("HTTP_IF_NONE_MATCH", &etag)]);
    assert_eq!((r.status, r.body.len()), (304, 0));
    let r = c.get(&f, "start=5", &[("HTTP_IF_NONE_MATCH", &etag)]);
    assert_eq!(r.status, 200, "another window has another tag");
    let r = c.get(&f, "start=4", &[("HTTP_IF_MODIFIED_SINCE", &lm)]);
    assert_eq!(r.status, 304);
    // HEAD: the same headers, no body.
    let r = c.get(&f, "start=4", &[("REQUEST_METHOD", "HEAD")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some(len.to_string().as_str()));
    assert!(r.body.is_empty());
}
