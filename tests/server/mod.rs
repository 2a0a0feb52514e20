//! What the tests/server_*.rs share.
#![allow(dead_code, unused_imports)]

use super::common::{Client, Pool, media, require_tool};

pub type UnixClient = Client<std::os::unix::net::UnixStream>;
use mp4_fcgi::fcgi;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn ok_mp4(r: &super::common::Reply, dir: &Path, name: &str) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.complete && r.protocol_status == fcgi::FCGI_REQUEST_COMPLETE);
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
    require_tool("ffmpeg");
    let out = dir.join(name);
    std::fs::write(&out, &r.body).unwrap();
    assert_eq!(
        super::common::decode_errors(&out),
        "",
        "{name} must decode clean"
    );
}
