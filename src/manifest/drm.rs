//! How manifests announce a protected film: HLS `EXT-X-KEY` lines in its
//! media playlists, DASH `ContentProtection` elements in its adaptation
//! sets. The keys themselves never appear; key ids and `pssh` data do.

use crate::mp4::cenc::{self, Protection, Scheme};
use crate::mp4::cmaf::{Kind, Rendition};
use base64::Engine;
use std::fmt::Write;

/// What the manifests say of a film's protection.
#[derive(Clone, Copy, Debug)]
pub struct Drm<'a> {
    pub protection: &'a Protection,
    /// HLS `URI` of the key (relative to the playlist, or absolute).
    pub key_uri: Option<&'a str>,
    /// HLS `KEYFORMAT`; none: `identity` (the key itself at `key_uri`).
    pub key_format: Option<&'a str>,
    /// DASH: the DRM systems' license server (`dashif:Laurl`).
    pub license_url: Option<&'a str>,
}

/// Subsamples a video sample is assumed to have when a segment's bit rate
/// counts its `senc` (the samples are not read to plan): x264 and x265
/// write one or two (an SEI's clear run, the slice).
const SUBSAMPLES: u64 = 4;

/// A rendition's peak and average bits per second (`BANDWIDTH`,
/// `AVERAGE-BANDWIDTH`, DASH `@bandwidth`) as sent: protected, each
/// segment carries its `saiz`, `saio` and `senc` (AES-128: up to a block of
/// padding) beyond the clear bytes the plan counted.
pub fn rates(r: &Rendition, drm: Option<&Drm<'_>>) -> (u64, u64) {
    let clear = (r.peak_bandwidth, r.average_bandwidth);
    let Some(d) = drm else { return clear };
    let per_sample = match (d.protection.scheme, r.kind) {
        (Scheme::Aes128, _) => 0,
        // The cbcs constant IV: no senc for audio at all.
        (Scheme::Cbcs, Kind::Audio) => return clear,
        (Scheme::Cbcs, Kind::Video) => 1 + 2 + 6 * SUBSAMPLES,
        (Scheme::Cenc, Kind::Audio) => 1 + 8,
        (Scheme::Cenc, Kind::Video) => 1 + 8 + 2 + 6 * SUBSAMPLES,
    };
    // saiz, saio and senc's own bytes; AES-128's padding.
    let fixed = if d.protection.scheme == Scheme::Aes128 {
        16
    } else {
        17 + 20 + 16
    };
    let extra = |s: &crate::mp4::cmaf::Segment| fixed + s.samples.saturating_mul(per_sample);
    let (mut peak, mut bytes, mut seconds) = (0f64, 0u64, 0f64);
    for s in &r.segments {
        if s.shown_for > 0.0 {
            peak = peak.max(extra(s) as f64 * 8.0 / s.shown_for);
        }
        bytes = bytes.saturating_add(extra(s));
        seconds += s.shown_for;
    }
    let average = if seconds > 0.0 {
        bytes as f64 * 8.0 / seconds
    } else {
        0.0
    };
    (
        clear.0.saturating_add(peak.ceil() as u64),
        clear.1.saturating_add(average.ceil() as u64),
    )
}

/// `xmlns:cenc` (and `xmlns:dashif`, for `Laurl`), for an MPD that
/// announces protection.
pub const CENC_NAMESPACE: &str =
    " xmlns:cenc=\"urn:mpeg:cenc:2013\" xmlns:dashif=\"https://dashif.org/CPS\"";

fn base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The `EXT-X-KEY` line of a media playlist (before its segments, after
/// `EXT-X-MAP`: the init segment stays clear). `query` follows a key URI
/// that is relative, as it follows every other URI of the playlist.
pub fn hls_key(d: &Drm<'_>, query: &str) -> String {
    let p = d.protection;
    let uri = |u: &str| {
        if u.contains(':') {
            u.to_string()
        } else {
            format!("{u}{query}")
        }
    };
    match p.scheme {
        Scheme::Aes128 => {
            let u = d.key_uri.map(uri).unwrap_or_default();
            format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{u}\"\n")
        }
        scheme => {
            let method = if scheme == Scheme::Cbcs {
                "SAMPLE-AES"
            } else {
                "SAMPLE-AES-CTR"
            };
            // A key URI is the key itself (`identity`) unless told what it
            // is; without one, the URI is the common system's pssh (the key
            // id a player asks its license server for), and says so.
            let systems = cenc::pssh_boxes(p);
            let data = |b: &[u8]| format!("data:text/plain;base64,{}", base64(b));
            let common = format!("urn:uuid:{}", cenc::uuid(&cenc::COMMON_SYSTEM));
            let (u, format) = match (d.key_uri, systems.first()) {
                (Some(k), _) => (uri(k), d.key_format.unwrap_or("identity").to_string()),
                (None, Some((_, b))) => (data(b), d.key_format.map_or(common, str::to_string)),
                (None, None) => (String::new(), common),
            };
            let mut s = String::new();
            let mut line = |u: &str, format: &str| {
                let _ = writeln!(
                    s,
                    "#EXT-X-KEY:METHOD={method},URI=\"{u}\",KEYFORMAT=\"{format}\",\
                     KEYFORMATVERSIONS=\"1\""
                );
            };
            line(&u, &format);
            // Each configured DRM system: its pssh, as Widevine's and
            // PlayReady's HLS players read it.
            for (id, b) in systems.iter().skip(1) {
                line(&data(b), &format!("urn:uuid:{}", cenc::uuid(id)));
            }
            s
        }
    }
}

/// The `ContentProtection` elements of an adaptation set: the scheme with
/// its default key id, then each `pssh` (the common system's included).
pub fn dash_protection(d: &Drm<'_>) -> String {
    let p = d.protection;
    if !p.scheme.in_samples() {
        return String::new();
    }
    let mut s = format!(
        "<ContentProtection schemeIdUri=\"urn:mpeg:dash:mp4protection:2011\" value=\"{}\" \
         cenc:default_KID=\"{}\"/>\n",
        p.scheme.name(),
        cenc::uuid(&p.kid)
    );
    for (system, one) in cenc::pssh_boxes(p) {
        // DASH-IF IOP 6.2.6: where the player asks for a license.
        let laurl = d
            .license_url
            .map(|u| format!("<dashif:Laurl>{u}</dashif:Laurl>"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "<ContentProtection schemeIdUri=\"urn:uuid:{}\">\
             <cenc:pssh>{}</cenc:pssh>{laurl}</ContentProtection>",
            cenc::uuid(&system),
            base64(&one)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protection(scheme: Scheme) -> Protection {
        Protection {
            scheme,
            kid: [0xab; 16],
            key: [0x01; 16],
            salt: [0; 8],
            systems: vec![cenc::System {
                id: [0xed; 16],
                data: vec![1, 2, 3],
            }],
        }
    }

    #[test]
    fn hls_methods() {
        let p = protection(Scheme::Aes128);
        let d = Drm {
            protection: &p,
            key_uri: Some("encryption.key"),
            key_format: None,
            license_url: None,
        };
        assert_eq!(
            hls_key(&d, "?start=5"),
            "#EXT-X-KEY:METHOD=AES-128,URI=\"encryption.key?start=5\"\n"
        );
        let p = protection(Scheme::Cbcs);
        let d = Drm {
            protection: &p,
            key_uri: Some("skd://k1"),
            key_format: Some("com.apple.streamingkeydelivery"),
            license_url: None,
        };
        let lines = hls_key(&d, "?a=1");
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(
            lines[0],
            "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k1\",\
             KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\""
        );
        // The configured system's own line: its pssh as a data URI.
        let pssh = &cenc::pssh_boxes(&p)[1].1;
        assert_eq!(
            lines[1],
            format!(
                "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"data:text/plain;base64,{}\",\
                 KEYFORMAT=\"urn:uuid:edededed-eded-eded-eded-edededededed\",\
                 KEYFORMATVERSIONS=\"1\"",
                base64(pssh)
            )
        );
        assert_eq!(lines.len(), 2);
        let p = protection(Scheme::Cenc);
        let d = Drm {
            protection: &p,
            key_uri: None,
            key_format: None,
            license_url: None,
        };
        let line = hls_key(&d, "");
        assert!(
            line.starts_with("#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:text/plain;base64,")
                && line.contains("KEYFORMAT=\"urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b\""),
            "{line}"
        );
    }

    #[test]
    fn dash_names_the_key_id_and_each_system() {
        let p = protection(Scheme::Cbcs);
        let d = Drm {
            protection: &p,
            key_uri: None,
            key_format: None,
            license_url: Some("https://lic.example/x"),
        };
        let s = dash_protection(&d);
        assert!(
            s.contains("value=\"cbcs\" cenc:default_KID=\"abababab-abab-abab-abab-abababababab\"")
        );
        assert!(s.contains("urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"));
        assert!(s.contains("urn:uuid:edededed-eded-eded-eded-edededededed"));
        assert_eq!(s.matches("<cenc:pssh>").count(), 2);
        assert_eq!(
            s.matches("<dashif:Laurl>https://lic.example/x</dashif:Laurl>")
                .count(),
            2
        );
        assert!(!s.contains(&cenc::hex(&p.key)));
        let p = protection(Scheme::Aes128);
        let d = Drm {
            protection: &p,
            key_uri: None,
            key_format: None,
            license_url: None,
        };
        assert_eq!(dash_protection(&d), "");
    }
}
