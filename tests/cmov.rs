//! Compressed movie headers: `moov` holding `cmov` → `dcom` ('zlib') and
//! `cmvd` (u32 uncompressed size + a zlib stream of a whole `moov` box).
//!
//! Read: a film whose moov is compressed cuts like the plain film; a cmov
//! that inflates past `--max-moov` is refused quickly in bounded memory.
//! Write: `--compress-moov` answers clips with a cmov (not for flash).
//!
//! zlib comes from python3's `zlib` module (flate2 is not a dependency).

mod common;

use common::{
    BIN, Pool, cut, decode_errors, ffprobe_opens, media, probe_duration, probe_streams,
    require_tool,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DURATION: f64 = 20.0;
const SLACK: f64 = 0.05;

/// Runs python3 with `script`, feeding `input`; its stdout.
fn python(script: &str, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn zlib(data: &[u8]) -> Vec<u8> {
    python(
        "import zlib,sys; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read(), 9))",
        data,
    )
}

fn unzlib(data: &[u8]) -> Vec<u8> {
    python(
        "import zlib,sys; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read()))",
        data,
    )
}

/// A zlib stream of `mib` MiB of zeros, cached under the target dir.
fn zeros_stream(mib: u32) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("cmov-zeros-{mib}M.zlib"));
    if let Ok(z) = std::fs::read(&path) {
        return z;
    }
    let z = python(
        &format!(
            "import zlib,sys\nc=zlib.compressobj(1)\nw=sys.stdout.buffer.write\n\
             for _ in range({mib}): w(c.compress(bytes(1<<20)))\nw(c.flush())"
        ),
        b"",
    );
    let tmp = dir.join(format!("cmov-zeros-{mib}M.{}.tmp", std::process::id()));
    std::fs::write(&tmp, &z).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    z
}

/// Top-level (or child) boxes: (type, offset, size).
fn boxes(data: &[u8]) -> Vec<([u8; 4], usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let mut size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[pos + 4..pos + 8].try_into().unwrap();
        if size == 1 && pos + 16 <= data.len() {
            size = u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()) as usize;
        } else if size == 0 {
            size = data.len() - pos;
        }
        if size < 8 || pos + size > data.len() {
            break;
        }
        out.push((kind, pos, size));
        pos += size;
    }
    out
}

fn find<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data)
        .into_iter()
        .find(|(k, _, _)| k == kind)
        .map(|(_, o, s)| &data[o..o + s])
}

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// moov{cmov{dcom('zlib'), cmvd(claimed, stream)}}
fn cmov_moov(claimed: u32, stream: &[u8]) -> Vec<u8> {
    let dcom = bx(b"dcom", b"zlib");
    let mut cmvd_body = claimed.to_be_bytes().to_vec();
    cmvd_body.extend_from_slice(stream);
    let cmvd = bx(b"cmvd", &cmvd_body);
    bx(b"moov", &bx(b"cmov", &[dcom, cmvd].concat()))
}

/// `src` with its moov replaced by `moov`; padded with a `free` box to the
/// old moov's size when `pad` (so the mdat and its chunk offsets stay put).
fn replace_moov(src: &[u8], moov: &[u8], pad: bool) -> Vec<u8> {
    let (_, at, size) = boxes(src)
        .into_iter()
        .find(|(k, _, _)| k == b"moov")
        .expect("a moov");
    let mut out = src[..at].to_vec();
    out.extend_from_slice(moov);
    if pad {
        assert!(moov.len() + 8 <= size, "compressed moov does not fit");
        out.extend_from_slice(&bx(b"free", &vec![0; size - moov.len() - 8]));
        assert_eq!(out.len(), at + size);
    }
    out.extend_from_slice(&src[at + size..]);
    out
}

/// a_faststart.mp4 with a compressed moov, mdat at the same offset.
fn fixture(dir: &Path) -> PathBuf {
    let src = std::fs::read(media("a_faststart.mp4")).unwrap();
    let moov = find(&src, b"moov").expect("a moov");
    let data = replace_moov(&src, &cmov_moov(moov.len() as u32, &zlib(moov)), true);
    let mdat = |d: &[u8]| boxes(d).into_iter().find(|(k, _, _)| k == b"mdat");
    assert_eq!(mdat(&data).map(|m| m.1), mdat(&src).map(|m| m.1));
    let path = dir.join("cmov.mp4");
    std::fs::write(&path, data).unwrap();
    path
}

fn tools() {
    require_tool("ffmpeg");
    require_tool("ffprobe");
    require_tool("python3");
}

fn assert_plays(path: &Path, expect: f64, label: &str) {
    assert_eq!(decode_errors(path), "", "{label}: must decode clean");
    let d = probe_duration(path);
    assert!(
        (d - expect).abs() <= SLACK,
        "{label}: lasts {d} s, want {expect}"
    );
    let kinds: Vec<String> = probe_streams(path)
        .into_iter()
        .map(|s| s.codec_type)
        .collect();
    assert_eq!(kinds, ["video", "audio"], "{label}");
}

#[test]
#[cfg_attr(
    not(all(has_ffmpeg, has_ffprobe, has_python3)),
    ignore = "needs ffmpeg, ffprobe, python3: apt-get install -y ffmpeg python3"
)]
fn a_compressed_moov_is_read_like_a_plain_one() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let fix = fixture(dir.path());
    // The fixture itself is good: ffmpeg reads cmov.
    assert!(ffprobe_opens(&fix), "ffprobe cannot open the cmov fixture");
    assert_plays(&fix, DURATION, "the fixture");

    let clip = dir.path().join("clip.mp4");
    cut(&fix, &clip, &["--start", "5"]).unwrap_or_else(|e| panic!("cut --start 5: {e}"));
    assert_plays(&clip, DURATION - 5.0, "cut --start 5");
    assert!(common::first_video_packet_is_key(&clip));

    let whole = dir.path().join("whole.mp4");
    cut(&fix, &whole, &[]).unwrap_or_else(|e| panic!("cut (no window): {e}"));
    assert_plays(&whole, DURATION, "cut (no window)");
}

/// Runs `cut --max-moov 64M` on `input` under /usr/bin/time -v when present:
/// (exit ok, the `mp4-fcgi:` line, elapsed, max RSS in KiB if measured).
fn cut_measured(input: &Path, out: &Path) -> (bool, String, Duration, Option<u64>) {
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.is_file() {
        let mut c = Command::new(time);
        c.arg("-v").arg(BIN);
        c
    } else {
        eprintln!("note: /usr/bin/time is missing; memory is not measured");
        Command::new(BIN)
    };
    cmd.arg("cut")
        .arg(input)
        .arg(out)
        .args(["--max-moov", "64M"]);
    let t0 = Instant::now();
    let o = cmd.output().expect("runs");
    let took = t0.elapsed();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "cut panicked: {stderr}");
    let line = stderr
        .lines()
        .filter(|l| l.starts_with("mp4-fcgi: "))
        .collect::<Vec<_>>()
        .join("\n");
    let rss = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok());
    (o.status.success(), line, took, rss)
}

#[test]
#[cfg_attr(not(has_python3), ignore = "needs python3: apt-get install -y python3")]
fn a_cmov_bomb_is_refused_quickly_in_bounded_memory() {
    require_tool("python3");
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read(media("a_faststart.mp4")).unwrap();
    let z80 = zeros_stream(80);
    let z512 = zeros_stream(512);
    let cases: [(&str, Vec<u8>, bool); 3] = [
        // Says (truthfully) it inflates to 80 MiB, above the 64 MiB limit.
        ("claims 80 MiB", cmov_moov(80 << 20, &z80), true),
        // Claims 4 GiB - 1.
        ("claims 4 GiB", cmov_moov(u32::MAX, &z80), true),
        // Claims 16 MiB (allowed) but its stream inflates to 512 MiB.
        (
            "lies: 16 MiB claimed, 512 MiB inside",
            cmov_moov(16 << 20, &z512),
            false,
        ),
    ];
    for (label, moov, must_name_limit) in cases {
        let input = dir.path().join("bomb.mp4");
        std::fs::write(&input, replace_moov(&src, &moov, false)).unwrap();
        let out = dir.path().join("bomb-out.mp4");
        let (ok, line, took, rss) = cut_measured(&input, &out);
        assert!(!ok, "{label}: accepted");
        assert_eq!(
            line.lines().count(),
            1,
            "{label}: one message line: {line:?}"
        );
        if must_name_limit {
            let l = line.to_ascii_lowercase();
            assert!(
                l.contains("max-moov") || l.contains("67108864") || l.contains("64m"),
                "{label}: the message does not mention the limit: {line}"
            );
        }
        assert!(took < Duration::from_secs(5), "{label}: took {took:?}");
        if let Some(kib) = rss {
            assert!(kib < 200 * 1024, "{label}: used {} MiB", kib / 1024);
        }
        assert!(!out.exists(), "{label}: left an output file");
    }
}

/// The response body's moov children.
fn moov_children(body: &[u8]) -> Vec<[u8; 4]> {
    let moov = find(body, b"moov").expect("a moov");
    boxes(&moov[8..]).into_iter().map(|(k, _, _)| k).collect()
}

#[test]
#[cfg_attr(
    not(all(has_ffmpeg, has_ffprobe, has_python3)),
    ignore = "needs ffmpeg, ffprobe, python3: apt-get install -y ffmpeg python3"
)]
fn compress_moov_answers_clips_with_a_cmov_except_for_flash() {
    tools();
    let pool = Pool::start(&["--workers", "1", "--compress-moov"]);
    let dir = tempfile::tempdir().unwrap();
    let r = pool.client().get(&media("a.mp4"), "start=5", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        moov_children(&r.body),
        [*b"cmov"],
        "moov must hold only cmov"
    );
    // The cmov is well formed: dcom 'zlib', cmvd = size + zlib(moov).
    let moov = find(&r.body, b"moov").unwrap();
    let cmov = find(&moov[8..], b"cmov").unwrap();
    assert_eq!(find(&cmov[8..], b"dcom").expect("dcom")[8..], *b"zlib");
    let cmvd = find(&cmov[8..], b"cmvd").expect("cmvd");
    let size = u32::from_be_bytes(cmvd[8..12].try_into().unwrap()) as usize;
    let inflated = unzlib(&cmvd[12..]);
    assert_eq!(inflated.len(), size, "cmvd's size is the inflated size");
    assert_eq!(&inflated[4..8], b"moov");
    assert_eq!(
        u32::from_be_bytes(inflated[..4].try_into().unwrap()) as usize,
        size
    );
    let clip = dir.path().join("clip.mp4");
    std::fs::write(&clip, &r.body).unwrap();
    assert_plays(&clip, DURATION - 5.0, "--compress-moov start=5");

    let r = pool
        .client()
        .get(&media("a.mp4"), "start=5&client=flash", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let kids = moov_children(&r.body);
    assert!(!kids.contains(b"cmov"), "flash gets a plain moov");
    assert!(kids.contains(b"mvhd") && kids.contains(b"trak"));
    let flash = dir.path().join("flash.mp4");
    std::fs::write(&flash, &r.body).unwrap();
    assert_eq!(decode_errors(&flash), "", "flash clip decodes clean");
}

#[test]
fn without_compress_moov_the_moov_is_plain() {
    let pool = Pool::start(&["--workers", "1"]);
    for q in ["start=5", "", "start=5&end=12"] {
        let r = pool.client().get(&media("a.mp4"), q, &[]);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let kids = moov_children(&r.body);
        assert!(!kids.contains(b"cmov"), "{q}: cmov without --compress-moov");
        assert!(kids.contains(b"mvhd"), "{q}: {kids:?}");
    }
}
