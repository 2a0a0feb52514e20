//! The pool as another FastCGI implementation (the `fastcgi-client` crate)
//! sees it: one-shot and keep-alive connections over TCP.

mod common;

use common::media;
use fastcgi_client::{Client, Params, Request, io};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct TcpPool(std::process::Child, u16);

impl Drop for TcpPool {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_tcp_pool() -> TcpPool {
    let port = common::free_port();
    let child = Command::new(common::BIN)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--workers", "2"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "pool did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    TcpPool(child, port)
}

fn params<'a>(file: &'a str, query: &'a str) -> Params<'a> {
    Params::default()
        .request_method("GET")
        .script_filename(file)
        .script_name("/clip.mp4")
        .query_string(query)
        .custom("HTTP_RANGE", "bytes=0-7")
}

#[tokio::test(flavor = "current_thread")]
async fn one_shot_and_keep_alive() {
    let pool = start_tcp_pool();
    let file = media("a.mp4");
    let file = file.to_str().unwrap();

    let stream = tokio::net::TcpStream::connect(("127.0.0.1", pool.1))
        .await
        .unwrap();
    let out = Client::new_tokio(stream)
        .execute_once(Request::new(params(file, "start=5&end=9"), io::empty()))
        .await
        .unwrap();
    let (status, headers, body) = common::parse_cgi(&out.stdout.unwrap());
    assert_eq!(status, 206);
    assert_eq!(&body[4..8], b"ftyp");
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "Content-Range" && v.starts_with("bytes 0-7/"))
    );

    let stream = tokio::net::TcpStream::connect(("127.0.0.1", pool.1))
        .await
        .unwrap();
    let mut client = Client::new_keep_alive_tokio(stream);
    for q in ["start=1", "start=2.5&end=7", "end=3", "start=abc"] {
        let out = client
            .execute(Request::new(params(file, q), io::empty()))
            .await
            .unwrap();
        let (status, _, body) = common::parse_cgi(&out.stdout.unwrap());
        if q == "start=abc" {
            assert_eq!(status, 400);
            assert!(String::from_utf8_lossy(&body).contains("not a number"));
        } else {
            assert_eq!((status, body.len()), (206, 8), "{q}");
        }
    }
}
