//! From a request's path to an object key under the origin's prefix. Pure:
//! the mapping can never leave the prefix.

pub use crate::http::Refusal;

/// Why a path names no object.
const fn refusal(status: u16, reason: &'static str) -> Refusal {
    Refusal::new(status, reason)
}

/// Keys longer than this are refused (S3 allows 1024 bytes).
const MAX_KEY: usize = 1024;

/// The object key for `path` (`SCRIPT_NAME`, already percent-decoded by the
/// front server) under `prefix` (no leading or trailing `/`).
///
/// Refused: a NUL, a backslash, a `.` or `..` segment, an empty segment,
/// and a `%` that would decode to any of those when a store decodes again.
pub fn object_key(prefix: &str, path: &[u8]) -> Result<String, Refusal> {
    let path = std::str::from_utf8(path)
        .map_err(|_| refusal(400, "the path is not UTF-8, so it names no object"))?;
    if path
        .bytes()
        .any(|b| b == 0 || b == b'\\' || b < 0x20 || b == 0x7f)
    {
        return Err(refusal(
            400,
            "the path holds a NUL, a control character or a backslash",
        ));
    }
    if path.contains('%') {
        // Decoding is the front server's job: a '%' left over is either a
        // literal name (rare for films) or an attempt to smuggle "%2e%2e".
        return Err(refusal(400, "the path holds a '%' after decoding"));
    }
    let rel = path.strip_prefix('/').unwrap_or(path);
    if rel.is_empty() {
        return Err(refusal(404, "no object named"));
    }
    for segment in rel.split('/') {
        match segment {
            "" => return Err(refusal(400, "the path has an empty segment")),
            "." | ".." => return Err(refusal(403, "the path leaves the origin's prefix")),
            _ => {}
        }
    }
    let key = if prefix.is_empty() {
        rel.to_string()
    } else {
        format!("{prefix}/{rel}")
    };
    if key.len() > MAX_KEY {
        return Err(refusal(414, "the object key is longer than 1024 bytes"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_under_the_prefix() {
        assert_eq!(object_key("films", b"/a/b.mp4").unwrap(), "films/a/b.mp4");
        assert_eq!(object_key("", b"/b.mp4").unwrap(), "b.mp4");
        assert_eq!(object_key("p/q", b"x y+.mp4").unwrap(), "p/q/x y+.mp4");
        for bad in [
            &b"/../secret.mp4"[..],
            b"/a/../../b.mp4",
            b"/a/./b.mp4",
            b"/..",
            b"/a/..",
        ] {
            assert_eq!(object_key("films", bad).unwrap_err().status, 403, "{bad:?}");
        }
        for bad in [
            &b"/%2e%2e/secret.mp4"[..],
            b"/%2E%2E/x",
            b"/a\\..\\b.mp4",
            b"/a\0.mp4",
            b"/a//b.mp4",
            b"/a\n.mp4",
            b"/\xff.mp4",
        ] {
            assert_eq!(object_key("films", bad).unwrap_err().status, 400, "{bad:?}");
        }
        assert_eq!(object_key("films", b"/").unwrap_err().status, 404);
        let long = format!("/{}", "a".repeat(1100));
        assert_eq!(
            object_key("films", long.as_bytes()).unwrap_err().status,
            414
        );
    }
}
