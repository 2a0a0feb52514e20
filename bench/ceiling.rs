//! The ceiling for packaged outputs behind a front server: a trivial
//! FastCGI responder that answers each request with a file it read into
//! memory at start (by the request path's last component), in full records
//! written with one `writev` per record pair. It parses nothing it does not
//! need and never touches the disk while serving, so what a front server
//! relaying it achieves is what FastCGI allows at all.
//!
//!   cargo build --release --example fcgi-ceiling
//!   target/release/examples/fcgi-ceiling SOCKET DIR
//!
//! Bench use only (bench/hls.sh): one thread per connection, no limits.

use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;

const BEGIN_REQUEST: u8 = 1;
const END_REQUEST: u8 = 3;
const PARAMS: u8 = 4;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;
/// The longest record payload that needs no padding.
const RECORD: usize = 65528;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, socket, dir] = &args[..] else {
        eprintln!("usage: fcgi-ceiling SOCKET DIR");
        std::process::exit(2);
    };
    let mut files = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        files.insert(name, std::fs::read(entry.path())?);
    }
    let files = Arc::new(files);
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    for conn in listener.incoming() {
        let conn = conn?;
        let files = files.clone();
        std::thread::spawn(move || {
            let _ = serve(conn, &files);
        });
    }
    Ok(())
}

fn header(kind: u8, id: u16, len: usize) -> [u8; 8] {
    let [a, b] = id.to_be_bytes();
    let [c, d] = (len as u16).to_be_bytes();
    [1, kind, a, b, c, d, 0, 0]
}

/// The value of `name` in a PARAMS stream.
fn param<'a>(mut p: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    fn length(p: &mut &[u8]) -> Option<usize> {
        let first = *p.first()?;
        if first < 0x80 {
            *p = &p[1..];
            return Some(first as usize);
        }
        let b = p.get(..4)?;
        let n = u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]) as usize;
        *p = &p[4..];
        Some(n)
    }
    while !p.is_empty() {
        let n = length(&mut p)?;
        let v = length(&mut p)?;
        let (k, rest) = p.split_at_checked(n)?;
        let (value, rest) = rest.split_at_checked(v)?;
        if k == name {
            return Some(value);
        }
        p = rest;
    }
    None
}

fn serve(mut conn: UnixStream, files: &HashMap<String, Vec<u8>>) -> io::Result<()> {
    let redirect = std::env::var_os("CEILING_REDIRECT").is_some();
    let mut params = Vec::new();
    let mut keep = false;
    let mut content = vec![0u8; 65535 + 255];
    loop {
        let mut h = [0u8; 8];
        conn.read_exact(&mut h)?;
        let id = u16::from_be_bytes([h[2], h[3]]);
        let len = u16::from_be_bytes([h[4], h[5]]) as usize + h[6] as usize;
        conn.read_exact(&mut content[..len])?;
        let body = &content[..u16::from_be_bytes([h[4], h[5]]) as usize];
        match h[1] {
            BEGIN_REQUEST => {
                keep = body.get(2).is_some_and(|f| f & 1 == 1);
                params.clear();
            }
            PARAMS => params.extend_from_slice(body),
            STDIN if body.is_empty() => {
                let uri = param(&params, b"DOCUMENT_URI").unwrap_or(b"");
                let name =
                    String::from_utf8_lossy(uri.rsplit(|&c| c == b'/').next().unwrap_or(b""));
                let (head, body): (String, &[u8]) = match files.get(name.as_ref()) {
                    Some(_) if redirect => (
                        format!(
                            "Status: 200 OK\r\nContent-Type: video/mp4\r\nX-Accel-Redirect: /offload/{name}\r\n\r\n"
                        ),
                        &[],
                    ),
                    Some(f) => (
                        format!(
                            "Status: 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\n\r\n",
                            f.len()
                        ),
                        f,
                    ),
                    None => (
                        "Status: 404 Not Found\r\nContent-Length: 0\r\n\r\n".into(),
                        &[],
                    ),
                };
                let h = header(STDOUT, id, head.len());
                write_all(
                    &mut conn,
                    &mut [IoSlice::new(&h), IoSlice::new(head.as_bytes())],
                )?;
                for chunk in body.chunks(RECORD) {
                    let h = header(STDOUT, id, chunk.len());
                    write_all(&mut conn, &mut [IoSlice::new(&h), IoSlice::new(chunk)])?;
                }
                let end = [
                    header(STDOUT, id, 0),
                    header(END_REQUEST, id, 8),
                    [0, 0, 0, 0, 0, 0, 0, 0],
                ]
                .concat();
                conn.write_all(&end)?;
                if !keep {
                    return Ok(());
                }
            }
            _ => {}
        }
    }
}

fn write_all(conn: &mut UnixStream, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !bufs.is_empty() {
        let n = conn.write_vectored(bufs)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}
