//! On-the-fly encryption of HLS/DASH outputs (`--keys`, issue 22): cenc
//! and cbcs segments that ffmpeg decrypts to the clear film's frames,
//! AES-128 segments that openssl decrypts to the clear film's bytes, the
//! same bytes from every pool, and keys that never leak.

mod common;

use common::dev_http::{Got, get, request};
use common::{Pool, media};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const KEY: &str = "00112233445566778899aabbccddeeff";
const KID: &str = "0123456789abcdef0123456789abcdef";
const KID_UUID: &str = "01234567-89ab-cdef-0123-456789abcdef";
/// The key in base64, as a careless manifest would carry it.
const KEY_BASE64: &str = "ABEiM0RVZneImaq7zN3u/w==";

/// A root with the clear films and their protected copies, and a key file.
struct Films {
    dir: tempfile::TempDir,
}

impl Films {
    fn new(extra_lines: &str) -> Films {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        for (name, from) in [
            ("clear.mp4", "a.mp4"),
            ("cenc.mp4", "a.mp4"),
            ("cbcs.mp4", "a.mp4"),
            ("aes.mp4", "a.mp4"),
            ("served.mp4", "a.mp4"),
            ("hevc.mp4", "hevc.mp4"),
            ("hevc-cenc.mp4", "hevc.mp4"),
            ("hevc-cbcs.mp4", "hevc.mp4"),
        ] {
            std::fs::copy(media(from), root.join(name)).unwrap();
        }
        let keys = format!(
            "# test keys\n\
             cenc.mp4 cenc {KID} {KEY}\n\
             cbcs.mp4 cbcs {KID} {KEY}\n\
             aes.mp4 aes-128 {KID} {KEY}\n\
             served.mp4 cenc {KID} {KEY} serve-key=yes\n\
             hevc-cenc.mp4 cenc {KID} {KEY}\n\
             hevc-cbcs.mp4 cbcs {KID} {KEY}\n\
             {extra_lines}"
        );
        std::fs::write(dir.path().join("keys"), keys).unwrap();
        Films { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn keys(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// A pool serving the root over `--http`; its port.
    fn start(&self, envs: &[(&str, &str)]) -> (Pool, u16) {
        let port = common::free_port();
        let addr = format!("127.0.0.1:{port}");
        let pool = Pool::start_env(
            &[
                "--http",
                &addr,
                "--root",
                self.root().to_str().unwrap(),
                "--keys",
                self.keys().to_str().unwrap(),
                "--workers",
                "1",
            ],
            envs,
        );
        common::wait_port(port);
        (pool, port)
    }
}

/// The film's track ids, from its MPD.
fn tracks(port: u16, film: &str) -> Vec<String> {
    let mpd = get(port, &format!("/{film}/manifest.mpd")).text();
    // A clear film's seek-bar previews are a Representation too ("thumbnails").
    let ids: Vec<String> = mpd
        .split("<Representation id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|id| id.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    assert!(!ids.is_empty(), "{mpd}");
    ids
}

/// The segment URIs of the track's media playlist.
fn segments(port: u16, film: &str, track: &str) -> Vec<String> {
    let playlist = get(port, &format!("/{film}/index-{track}.m3u8")).text();
    let segs: Vec<String> = playlist
        .lines()
        .filter(|l| l.starts_with("seg-"))
        .map(str::to_string)
        .collect();
    assert!(!segs.is_empty(), "{playlist}");
    segs
}

/// The payload of the first mdat of a segment.
fn mdat(seg: &[u8]) -> &[u8] {
    let mut at = 0;
    while at + 8 <= seg.len() {
        let size = u32::from_be_bytes(seg[at..at + 4].try_into().unwrap()) as usize;
        assert!(size >= 8 && at + size <= seg.len(), "box sizes");
        if &seg[at + 4..at + 8] == b"mdat" {
            return &seg[at + 8..at + size];
        }
        at += size;
    }
    panic!("no mdat in the segment")
}

/// `ffmpeg [-decryption_key KEY] -i FILE -f framemd5 -`: (success, hashes).
fn framemd5(file: &Path, key: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error"]);
    if let Some(k) = key {
        cmd.args(["-decryption_key", k]);
    }
    let out = cmd
        .arg("-i")
        .arg(file)
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A tool build.rs has no cfg for: its path; outside CI, None after saying
/// "not run"; under CI=true a missing tool fails the test.
fn tool_or_skip(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if on_path.is_none() && std::env::var("CI").is_ok_and(|v| v == "true") {
        return Some(common::require_tool(name));
    }
    if on_path.is_none() {
        println!("not run: '{name}' is not installed");
    }
    on_path
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn ffmpeg_decrypts_every_segment() {
    common::require_tool("ffmpeg");
    let films = Films::new("");
    let (_pool, port) = films.start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let (enc_file, clear_file) = (tmp.path().join("enc.mp4"), tmp.path().join("clear.mp4"));
    let mut checked = 0;
    // Boxes a moof lacks: reported after every segment is decrypted.
    let mut missing = Vec::new();
    for (film, clear) in [
        ("cenc.mp4", "clear.mp4"),
        ("cbcs.mp4", "clear.mp4"),
        ("hevc-cenc.mp4", "hevc.mp4"),
        ("hevc-cbcs.mp4", "hevc.mp4"),
    ] {
        let ids = tracks(port, film);
        assert_eq!(ids, tracks(port, clear), "{film}: the clear film's tracks");
        // Pictures would show what the key protects: none announced.
        let tile = "http://dashif.org/thumbnail_tile";
        assert!(
            get(port, &format!("/{clear}/manifest.mpd"))
                .text()
                .contains(tile)
        );
        assert!(
            !get(port, &format!("/{film}/manifest.mpd"))
                .text()
                .contains(tile)
        );
        for track in &ids {
            let init = get(port, &format!("/{film}/init-{track}.mp4")).body;
            let clear_init = get(port, &format!("/{clear}/init-{track}.mp4")).body;
            let is_video = init.windows(4).any(|w| w == b"encv");
            assert!(
                is_video || init.windows(4).any(|w| w == b"enca"),
                "{film} init-{track}: encv or enca"
            );
            for b in [&b"sinf"[..], b"tenc", b"pssh"] {
                assert!(
                    init.windows(4).any(|w| w == b),
                    "{film} init-{track}: no {b:?}"
                );
            }
            let segs = segments(port, film, track);
            assert_eq!(segs, segments(port, clear, track), "{film} {track}");
            // ffmpeg 5.1 cannot map encryption info over several concatenated
            // fragments, so each segment is checked on its own behind the init.
            for seg in &segs {
                let enc = get(port, &format!("/{film}/{seg}")).body;
                let plain = get(port, &format!("/{clear}/{seg}")).body;
                // cbcs audio has neither IVs (the constant one is in tenc)
                // nor subsamples: no auxiliary information, so none of these
                // boxes; every other protected fragment carries all three.
                let aux = !film.contains("cbcs") || is_video;
                for b in [&b"saiz"[..], b"saio", b"senc"] {
                    if enc.windows(4).any(|w| w == b) != aux {
                        missing.push(format!(
                            "{film}/{seg}: {} {}",
                            String::from_utf8_lossy(b),
                            if aux { "missing" } else { "unexpected" }
                        ));
                    }
                }
                let (m_enc, m_plain) = (mdat(&enc), mdat(&plain));
                assert_eq!(m_enc.len(), m_plain.len(), "{film}/{seg}: mdat length");
                assert!(m_enc != m_plain, "{film}/{seg}: the mdat is not encrypted");
                std::fs::write(&enc_file, [&init[..], &enc[..]].concat()).unwrap();
                std::fs::write(&clear_file, [&clear_init[..], &plain[..]].concat()).unwrap();
                let (ok, want) = framemd5(&clear_file, None);
                assert!(ok && !want.is_empty(), "{clear}/{seg} decodes");
                let (ok, got) = framemd5(&enc_file, Some(KEY));
                assert!(ok, "{film}/{seg}: ffmpeg fails with the key");
                assert_eq!(got, want, "{film}/{seg}: frames decrypted with the key");
                if is_video {
                    let (ok, without) = framemd5(&enc_file, None);
                    assert!(
                        !ok || without != want,
                        "{film}/{seg}: the same frames without the key"
                    );
                }
                checked += 1;
            }
        }
    }
    println!("{checked} encrypted segments decrypted to the clear frames");
    assert!(missing.is_empty(), "moofs without their boxes: {missing:?}");
}

#[test]
fn aes128_segments_decrypt_with_openssl_or_python() {
    let Some(openssl) = tool_or_skip("openssl") else {
        return;
    };
    let films = Films::new("");
    let (_pool, port) = films.start(&[]);
    let key = get(port, "/aes.mp4/encryption.key");
    assert_eq!(hex(&key.body), KEY, "the key endpoint");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("seg");
    let mut checked = 0;
    for track in tracks(port, "aes.mp4") {
        let playlist = get(port, &format!("/aes.mp4/index-{track}.m3u8")).text();
        let map = playlist.find("#EXT-X-MAP:").expect("an EXT-X-MAP");
        let line = "#EXT-X-KEY:METHOD=AES-128,URI=\"encryption.key\"";
        let key_at = playlist.find(line).unwrap_or_else(|| panic!("{playlist}"));
        assert!(key_at > map, "EXT-X-KEY after EXT-X-MAP: {playlist}");
        for (i, seg) in segments(port, "aes.mp4", &track).iter().enumerate() {
            let n = seg
                .strip_prefix("seg-")
                .and_then(|s| s.split('-').next())
                .and_then(|s| s.parse::<u128>().ok())
                .unwrap_or_else(|| panic!("{seg}"));
            assert_eq!(n, i as u128 + 1, "{seg}: numbered from 1");
            let enc = get(port, &format!("/aes.mp4/{seg}")).body;
            let plain = get(port, &format!("/clear.mp4/{seg}")).body;
            assert_eq!(enc.len() % 16, 0, "{seg}: whole blocks");
            assert!(enc.len() > plain.len(), "{seg}: PKCS#7 padding");
            std::fs::write(&file, &enc).unwrap();
            let out = Command::new(&openssl)
                .args(["enc", "-d", "-aes-128-cbc", "-K", KEY, "-iv"])
                .arg(format!("{n:032x}"))
                .arg("-in")
                .arg(&file)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "{seg}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.stdout == plain,
                "{seg}: decrypted differs from the clear segment"
            );
            checked += 1;
        }
    }
    println!("{checked} AES-128 segments decrypted to the clear bytes");
}

#[test]
fn two_pools_write_the_same_encrypted_bytes() {
    let films = Films::new("");
    let (one, p1) = films.start(&[]);
    let (two, p2) = films.start(&[]);
    assert_ne!(one.pid(), two.pid());
    let mut compared = 0;
    for film in [
        "cenc.mp4",
        "cbcs.mp4",
        "aes.mp4",
        "hevc-cenc.mp4",
        "hevc-cbcs.mp4",
    ] {
        for track in tracks(p1, film) {
            let mut names = vec![format!("init-{track}.mp4")];
            names.extend(segments(p1, film, &track));
            for name in names {
                let target = format!("/{film}/{name}");
                let (a, b) = (get(p1, &target), get(p2, &target));
                assert!(a.body == b.body, "{target}: the pools' bytes differ");
                let etag = a.header("ETag");
                assert!(etag.is_some(), "{target}: no ETag\n{}", a.head);
                assert_eq!(etag, b.header("ETag"), "{target}: ETag");
                compared += 1;
            }
        }
    }
    println!("{compared} answers byte-identical across two pools");
}

#[test]
fn protected_films_refuse_progressive_and_hide_keys() {
    let films = Films::new("");
    // The most talkative log the server has.
    let (pool, port) = films.start(&[("RUST_LOG", "trace")]);
    assert_eq!(get(port, "/clear.mp4").status, 200);
    for film in [
        "cenc.mp4",
        "cbcs.mp4",
        "aes.mp4",
        "served.mp4",
        "hevc-cenc.mp4",
    ] {
        let r = request(port, "GET", &format!("/{film}"), &[]);
        assert_eq!(r.status, 403, "{film}: progressive\n{}", r.head);
        no_key(&r, film);
    }
    for film in ["cenc.mp4", "cbcs.mp4", "hevc-cbcs.mp4"] {
        let r = request(port, "GET", &format!("/{film}/encryption.key"), &[]);
        assert_eq!(r.status, 404, "{film}/encryption.key\n{}", r.head);
        no_key(&r, film);
    }
    let served = get(port, "/served.mp4/encryption.key");
    assert_eq!(hex(&served.body), KEY, "serve-key=yes");
    for film in ["cenc.mp4", "cbcs.mp4", "aes.mp4", "hevc-cenc.mp4"] {
        let mpd = get(port, &format!("/{film}/manifest.mpd")).text();
        if film != "aes.mp4" {
            assert!(
                mpd.contains(&format!("cenc:default_KID=\"{KID_UUID}\"")),
                "{film}: {mpd}"
            );
        }
        let mut texts = vec![mpd, get(port, &format!("/{film}/master.m3u8")).text()];
        for track in tracks(port, film) {
            texts.push(get(port, &format!("/{film}/index-{track}.m3u8")).text());
            no_key(&get(port, &format!("/{film}/init-{track}.mp4")), film);
        }
        for t in texts {
            assert!(
                !t.to_lowercase().contains(KEY) && !t.contains(KEY_BASE64),
                "{film}: a manifest carries the key: {t}"
            );
        }
    }
    let log = pool.log_text();
    assert!(!log.is_empty(), "the server logged nothing");
    assert!(
        !log.to_lowercase().contains(KEY) && !log.contains(KEY_BASE64),
        "the log holds the key"
    );
}

/// The answer carries neither the key's hex nor its bytes.
fn no_key(r: &Got, what: &str) {
    let bytes: Vec<u8> = (0..16u8).map(|i| i * 0x11).collect();
    assert!(
        !r.text().to_lowercase().contains(KEY)
            && !r.head.to_lowercase().contains(KEY)
            && !r.body.windows(16).any(|w| w == bytes),
        "{what}: the answer holds the key"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn bad_key_file_is_refused_at_start() {
    let films =
        Films::new("# line 9 is wrong\nbad.mp4 cenc 0123 00112233445566778899aabbccddeeff\n");
    let root = films.root();
    let keys = films.keys();
    let out = Command::new(common::BIN)
        .arg("--check")
        .arg("--root")
        .arg(&root)
        .arg("--keys")
        .arg(&keys)
        .output()
        .expect("mp4-fcgi runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "--check accepts a bad key file: {err}"
    );
    assert!(err.contains("line 9"), "the message names the line: {err}");

    // A plain start is refused the same way, before it listens.
    let port = common::free_port();
    let mut child = Command::new(common::BIN)
        .args(["--http", &format!("127.0.0.1:{port}"), "--workers", "1"])
        .arg("--root")
        .arg(&root)
        .arg("--keys")
        .arg(&keys)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mp4-fcgi starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started with a bad key file");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success(), "{err}");
    assert!(err.contains("line 9"), "the message names the line: {err}");
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn crafted_samples_get_a_clear_error() {
    common::require_tool("ffprobe");
    let films = Films::new(&format!("crafted.mp4 cenc {KID} {KEY}\n"));
    let crafted = films.root().join("crafted.mp4");
    std::fs::copy(media("a.mp4"), &crafted).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_packets"])
        .args(["-of", "csv=p=0", "-show_entries", "packet=pos"])
        .arg(&crafted)
        .output()
        .expect("ffprobe runs");
    let first = String::from_utf8_lossy(&out.stdout);
    let pos: usize = first
        .lines()
        .next()
        .and_then(|l| l.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no first video packet: {first}"));
    // Only pos is asked: ffprobe's CSV puts size before pos whatever the
    // order asked.
    let mut bytes = std::fs::read(&crafted).unwrap();
    // The first NAL's length field: far past the sample's end.
    bytes[pos..pos + 4].copy_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
    std::fs::write(&crafted, bytes).unwrap();

    let (mut pool, port) = films.start(&[]);
    let video = tracks(port, "clear.mp4").into_iter().next().unwrap();
    let r = request(port, "GET", &format!("/crafted.mp4/seg-1-{video}.m4s"), &[]);
    assert_eq!(r.status, 415, "the crafted sample\n{}", r.head);
    assert!(
        pool.wait_exit(Duration::ZERO).is_none(),
        "the server exited"
    );
    let good = request(port, "GET", &format!("/cenc.mp4/seg-1-{video}.m4s"), &[]);
    assert_eq!(good.status, 200, "a good film after the crafted one");
}

fn status(port: u16, target: &str) -> u16 {
    request(port, "GET", target, &[]).status
}

/// SIGHUP reads the key file again before the new workers start: a film
/// the new file names is encrypted from then on; a broken file keeps the
/// keys as they were, and the log names its line.
#[test]
fn sighup_reads_the_key_file_again() {
    let films = Films::new("");
    let (pool, port) = films.start(&[]);
    assert_eq!(status(port, "/clear.mp4"), 200);
    // A reload is done when the master has said so and a new worker runs.
    let said = |what: &str| pool.log_text().matches(what).count();
    let reload = |what: &str| {
        let before = said(what);
        pool.signal(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(10);
        while said(what) == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(said(what) > before, "no '{what}' in the log");
        pool.wait_workers(1);
    };
    let mut keys = std::fs::read_to_string(films.keys()).unwrap();
    keys.push_str(&format!("clear.mp4 cbcs {KID} {KEY}\n"));
    std::fs::write(films.keys(), &keys).unwrap();
    reload("the key file is read again");
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(port, "/clear.mp4") != 403 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        status(port, "/clear.mp4"),
        403,
        "encrypted after the reload"
    );
    let list = get(port, "/clear.mp4/index-1.m3u8").text();
    assert!(list.contains("#EXT-X-KEY:METHOD=SAMPLE-AES"), "{list}");
    // A broken file: the keys stay, the log says which line.
    std::fs::write(films.keys(), format!("{keys}clear.mp4 cbcs {KID}\n")).unwrap();
    reload("the keys stay as they were");
    assert_eq!(
        status(port, "/clear.mp4"),
        403,
        "the keys stay as they were"
    );
    assert_eq!(status(port, "/cenc.mp4"), 403);
    let log = pool.log_text();
    assert!(
        log.contains("the keys stay as they were") && log.contains("line 9: the key is missing"),
        "{log}"
    );
}

/// A URL set naming an encrypted film: its manifests are refused (415),
/// never sent without the protection; the film's own manifest serves.
#[test]
fn url_sets_of_encrypted_films_are_refused() {
    let films = Films::new("");
    let (_pool, port) = films.start(&[]);
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let r = request(
            port,
            "GET",
            &format!("/,clear,cenc,.mp4.urlset/{manifest}"),
            &[],
        );
        assert_eq!(r.status, 415, "{manifest}: {}", r.text());
        assert!(r.text().contains("encrypted"), "{}", r.text());
    }
    assert_eq!(status(port, "/,clear,hevc,.mp4.urlset/master.m3u8"), 200);
    assert_eq!(status(port, "/cenc.mp4/master.m3u8"), 200);
}
