//! What the log says of a request: its method and target, and the note a
//! handler leaves on its answer.

use crate::fcgi::Params;
use std::net::{IpAddr, Ipv6Addr};

/// Longest `REMOTE_ADDR` kept as a peer's name (an IPv6 address with a
/// zone fits); longer ones are cut, so a peer costs a bounded key.
const PEER_MAX: usize = 64;

/// What the log says of a request, besides its method, target, status and
/// time (the connection knows those).
#[derive(Clone, Debug, Default)]
pub struct Note {
    /// Why it was refused (with advice on flags, which the client never sees).
    pub reason: Option<String>,
    /// The window, the key frame chosen, what the caches held.
    pub detail: String,
    /// Logged with others like it, not on its own line.
    pub quiet: bool,
    /// The peer whose share (`--max-per-peer`) this answer holds until it ends.
    pub peer: Option<Box<str>>,
}

/// Who sent a request, for `--max-per-peer`: its `REMOTE_ADDR` (front servers
/// send the client's address), an IPv6 address as its /64 (what one host or
/// one subscriber gets, and could otherwise rotate through by the billion),
/// an IPv4-mapped one as IPv4. None without a `REMOTE_ADDR`: a local client
/// speaking FastCGI itself.
pub fn peer(params: &Params) -> Option<Box<str>> {
    let raw = params.get(b"REMOTE_ADDR").filter(|a| !a.is_empty())?;
    let text = String::from_utf8_lossy(&raw[..raw.len().min(PEER_MAX)]);
    Some(match text.parse::<IpAddr>() {
        Ok(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string().into(),
            None => {
                let net = Ipv6Addr::from(u128::from(a) & !((1u128 << 64) - 1));
                format!("{net}/64").into()
            }
        },
        Ok(a) => a.to_string().into(),
        Err(_) => text.into(),
    })
}

/// The request's method and target (`/path?query`) for log lines.
pub fn describe(params: &Params) -> (String, String) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let method = params
        .get(b"REQUEST_METHOD")
        .map_or_else(|| "GET".into(), text);
    let target = match (params.get(b"REQUEST_URI"), params.get(b"SCRIPT_NAME")) {
        (Some(uri), _) => text(uri),
        (None, name) => {
            let path = name
                .or(params.get(b"SCRIPT_FILENAME"))
                .map_or_else(|| "-".into(), text);
            match params.get(b"QUERY_STRING").filter(|q| !q.is_empty()) {
                Some(q) => format!("{path}?{}", text(q)),
                None => path,
            }
        }
    };
    (method, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(addr: &str) -> Option<Box<str>> {
        peer(&Params::from_pairs([(
            &b"REMOTE_ADDR"[..],
            addr.as_bytes(),
        )]))
    }

    #[test]
    fn a_peer_is_its_address_or_its_ipv6_64() {
        assert_eq!(of("10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(of("2001:db8:1:2::7").as_deref(), Some("2001:db8:1:2::/64"));
        assert_eq!(of("2001:db8:1:2:ffff::1"), of("2001:db8:1:2::1"));
        assert_ne!(of("2001:db8:1:3::1"), of("2001:db8:1:2::1"));
        assert_eq!(of("::ffff:10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(of("unix:").as_deref(), Some("unix:"));
        assert_eq!(of(""), None);
        assert_eq!(peer(&Params::default()), None);
        assert_eq!(of(&"x".repeat(1000)).map(|p| p.len()), Some(PEER_MAX));
    }
}
