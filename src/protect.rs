//! Which films are encrypted, how, and with which key: the key file
//! (`--keys`), read once at start (and again on reload). Pure: the server
//! reads the file and names the film; this says what protects it.
#![forbid(unsafe_code)]

use crate::mp4::cenc::{self, Protection, Scheme, System};
use base64::Engine;
use std::fmt;

/// Most lines a key file may hold.
const MAX_RULES: usize = 10_000;

/// One line of the key file: the films it matches and their protection.
#[derive(Clone)]
struct Rule {
    pattern: glob::Pattern,
    scheme: Scheme,
    keys: KeySource,
    systems: Vec<System>,
    key_uri: Option<String>,
    key_format: Option<String>,
    license_url: Option<String>,
    serve_key: bool,
}

/// Where a line's key comes from.
#[derive(Clone)]
enum KeySource {
    /// One key id and key for every film the line matches.
    Given { kid: [u8; 16], key: [u8; 16] },
    /// Each film its own, from a secret and the film's name (`derive`):
    /// HMAC-SHA256 of the name, as nginx-vod-module's `vod_secret_key`
    /// derives one from a secret and the file's path.
    Derived(ring::hmac::Key),
}

impl KeySource {
    fn for_film(&self, path: &str) -> ([u8; 16], [u8; 16]) {
        match self {
            KeySource::Given { kid, key } => (*kid, *key),
            KeySource::Derived(secret) => {
                let half = |what: &str| {
                    let tag = ring::hmac::sign(secret, format!("{what}\0{path}").as_bytes());
                    let mut out = [0u8; 16];
                    out.copy_from_slice(&tag.as_ref()[..16]);
                    out
                };
                (half("kid"), half("key"))
            }
        }
    }
}

/// The key file, parsed.
#[derive(Clone, Default)]
pub struct Keys {
    rules: Vec<Rule>,
}

/// Never prints keys.
impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys({} rules)", self.rules.len())
    }
}

/// What protects one film: the engine's part and the manifests' part.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lock {
    pub protection: Protection,
    /// HLS `EXT-X-KEY` URI (relative to the playlist, or absolute).
    pub key_uri: Option<String>,
    /// HLS `KEYFORMAT` (none: `identity`).
    pub key_format: Option<String>,
    /// DASH: the license server of the DRM systems (`dashif:Laurl`).
    pub license_url: Option<String>,
    /// The pool answers `film.mp4/encryption.key` with the key itself
    /// (AES-128, or Clear Key without a license server); the front
    /// server's access rules protect it as they protect the film.
    pub serve_key: bool,
}

/// The URI players fetch an AES-128 key from, when the line names none.
pub const KEY_NAME: &str = "encryption.key";

impl Keys {
    /// Parses a key file; errors name the line.
    pub fn parse(text: &str) -> Result<Keys, String> {
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if rules.len() == MAX_RULES {
                return Err(format!("more than {MAX_RULES} lines"));
            }
            rules.push(rule(line).map_err(|e| format!("line {}: {e}", i + 1))?);
        }
        Ok(Keys { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// What protects the film at `path` (relative to the root, or the
    /// store's key); `None`: it is served clear. The first matching line wins.
    pub fn lock(&self, path: &str) -> Option<Lock> {
        let path = path.trim_start_matches('/');
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let r = self
            .rules
            .iter()
            .find(|r| r.pattern.matches_with(path, options))?;
        let (kid, key) = r.keys.for_film(path);
        Some(Lock {
            protection: Protection {
                scheme: r.scheme,
                kid,
                key,
                salt: salt(path),
                systems: r.systems.clone(),
            },
            key_uri: r.key_uri.clone().or_else(|| {
                (r.scheme == Scheme::Aes128 || r.serve_key).then(|| KEY_NAME.to_string())
            }),
            key_format: r.key_format.clone(),
            license_url: r.license_url.clone(),
            serve_key: r.serve_key || (r.scheme == Scheme::Aes128 && r.key_uri.is_none()),
        })
    }
}

/// A film's IV salt: from its name, so every node derives the same.
fn salt(path: &str) -> [u8; 8] {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x6d70_3466_6367_6921, 0x7361_6c74);
    h.write(path.as_bytes());
    h.finish().to_be_bytes()
}

fn rule(line: &str) -> Result<Rule, String> {
    let mut words = line.split_whitespace();
    let mut next = |what: &str| words.next().ok_or(format!("{what} is missing"));
    let pattern = next("the film pattern")?;
    let pattern =
        glob::Pattern::new(pattern.trim_start_matches('/')).map_err(|e| format!("pattern: {e}"))?;
    let scheme = next("the scheme")?;
    let scheme = Scheme::parse(scheme)
        .ok_or(format!("unknown scheme '{scheme}' (cenc, cbcs or aes-128)"))?;
    let keys = match next("the key id (or derive)")? {
        "derive" => {
            let secret = hex(next("the secret")?)
                .filter(|s| s.len() >= 16)
                .ok_or("the secret is not at least 32 hex digits")?;
            KeySource::Derived(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret))
        }
        kid => KeySource::Given {
            kid: cenc::parse_hex16(kid).ok_or("the key id is not 32 hex digits")?,
            key: cenc::parse_hex16(next("the key")?).ok_or("the key is not 32 hex digits")?,
        },
    };
    let mut r = Rule {
        pattern,
        scheme,
        keys,
        systems: Vec::new(),
        key_uri: None,
        key_format: None,
        license_url: None,
        serve_key: false,
    };
    for option in words {
        let (name, value) = option
            .split_once('=')
            .ok_or(format!("'{option}' is not name=value"))?;
        match name {
            "pssh" => {
                let (id, data) = value.split_once(':').unwrap_or((value, ""));
                let id = cenc::parse_hex16(id).ok_or("a pssh system id is not a UUID")?;
                let data = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|e| format!("pssh data: {e}"))?;
                r.systems.push(System { id, data });
            }
            "key-uri" => r.key_uri = Some(quoted_free(value)?),
            "key-format" => r.key_format = Some(quoted_free(value)?),
            "license-url" => r.license_url = Some(quoted_free(value)?),
            "serve-key" => {
                r.serve_key = match value {
                    "yes" | "on" => true,
                    "no" | "off" => false,
                    _ => return Err(format!("serve-key={value}: yes or no")),
                }
            }
            _ => return Err(format!("unknown option '{name}'")),
        }
    }
    if r.scheme == Scheme::Aes128 && r.key_format.is_some() {
        return Err("aes-128 takes no key-format".into());
    }
    Ok(r)
}

/// Hex digits as bytes (at most 64 of them).
fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A value written into a quoted manifest attribute.
fn quoted_free(v: &str) -> Result<String, String> {
    if v.is_empty() || v.contains(['"', '<', '>', '&', '\'']) || v.chars().any(char::is_control) {
        return Err(format!("'{v}' may not be empty or hold quotes, <, > or &"));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KID: &str = "0123456789abcdef0123456789abcdef";
    const KEY: &str = "00112233-4455-6677-8899-aabbccddeeff";
    const DERIVED_KEY: &str = "8a3864c5562ab58a8f9ea30685cc328c";

    #[test]
    fn first_matching_line_wins() {
        let keys = Keys::parse(&format!(
            "# comment\n\nprotected/*.mp4 cbcs {KID} {KEY}\nprotected/** cenc {KID} {KEY}\n\
             hls/* aes-128 {KID} {KEY}\n"
        ))
        .unwrap();
        let a = keys.lock("/protected/a.mp4").unwrap();
        assert_eq!(a.protection.scheme, Scheme::Cbcs);
        assert_eq!(a.key_uri, None);
        assert!(!a.serve_key);
        let b = keys.lock("protected/x/b.mp4").unwrap();
        assert_eq!(b.protection.scheme, Scheme::Cenc);
        assert_ne!(a.protection.salt, b.protection.salt);
        let c = keys.lock("hls/c.mp4").unwrap();
        assert_eq!(c.key_uri.as_deref(), Some(KEY_NAME));
        assert!(c.serve_key);
        assert!(keys.lock("open/d.mp4").is_none());
        assert!(keys.lock("hls/sub/d.mp4").is_none());
        assert_eq!(c.protection.key[15], 0xff);
    }

    #[test]
    fn options() {
        let keys = Keys::parse(&format!(
            "* cbcs {KID} {KEY} pssh=edef8ba9-79d6-4ace-a3c8-27dcd51d21ed:AAEC \
             key-uri=skd://k1 key-format=com.apple.streamingkeydelivery serve-key=no \
             license-url=https://lic.example/wv"
        ))
        .unwrap();
        let l = keys.lock("a.mp4").unwrap();
        assert_eq!(l.license_url.as_deref(), Some("https://lic.example/wv"));
        assert_eq!(l.protection.systems[0].data, vec![0, 1, 2]);
        assert_eq!(l.key_uri.as_deref(), Some("skd://k1"));
        assert!(!l.serve_key);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, want) in [
            (format!("a.mp4 cenc {KID}"), "line 1: the key is missing"),
            (
                format!("\na.mp4 rot13 {KID} {KEY}"),
                "line 2: unknown scheme",
            ),
            (format!("a.mp4 cenc 12 {KEY}"), "line 1: the key id is not"),
            (
                format!("a.mp4 cenc {KID} {KEY} colour=red"),
                "unknown option",
            ),
            (format!("a.mp4 cenc {KID} {KEY} key-uri=\"x\""), "may not"),
            (format!("[ cenc {KID} {KEY}"), "pattern"),
        ] {
            let e = Keys::parse(&text).unwrap_err();
            assert!(e.starts_with(want) || e.contains(want), "{e}");
        }
    }

    #[test]
    fn derived_keys_differ_by_film_and_are_stable() {
        let secret = "00112233445566778899aabbccddeeff00112233";
        let keys = Keys::parse(&format!("paid/* cbcs derive {secret} serve-key=yes")).unwrap();
        let a = keys.lock("paid/a.mp4").unwrap().protection;
        let b = keys.lock("paid/b.mp4").unwrap().protection;
        assert_ne!((a.kid, a.key), (b.kid, b.key));
        assert_ne!(a.kid, a.key);
        let again = Keys::parse(&format!("paid/* cbcs derive {secret}")).unwrap();
        assert_eq!(again.lock("paid/a.mp4").unwrap().protection.key, a.key);
        // HMAC-SHA256(secret, "key\0paid/a.mp4"), first half: computed
        // with Python's hmac module.
        assert_eq!(cenc::hex(&a.key), DERIVED_KEY);
        for bad in [
            "paid/* cbcs derive 0011",
            "paid/* cbcs derive xyz0",
            "paid/* cbcs derive",
        ] {
            assert!(Keys::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_prints_a_key() {
        let keys = Keys::parse(&format!("* cenc {KID} {KEY}")).unwrap();
        let l = keys.lock("a.mp4").unwrap();
        let shown = format!("{keys:?} {l:?}");
        assert!(
            !shown.contains("aabbcc") && !shown.contains("170, 187"),
            "{shown}"
        );
    }
}
