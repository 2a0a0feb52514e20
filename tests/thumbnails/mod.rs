//! ffmpeg's side of tests/thumbnails.rs: a film's frames as ffprobe lists
//! them, ffmpeg's decode of chosen frames scaled to a size (the
//! reference), PSNR between two pictures, and the test films made at test
//! time.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cmd`; its stdout, or a panic with its stderr.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One video frame: its presentation time and whether it is a key frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    pub pts: f64,
    pub key: bool,
}

/// The first video stream's frames in presentation order (ffprobe's
/// packets, timestamps as the film has them, edit list applied) and its
/// size: one ffprobe run.
pub fn probe(film: &Path) -> (Vec<Frame>, (u32, u32)) {
    let text = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args([
            "stream=width,height:packet=pts_time,flags",
            "-of",
            "compact",
        ])
        .arg(film));
    let field = |line: &str, name: &str| -> String {
        (line.split('|'))
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            .to_string()
    };
    let mut list = Vec::new();
    let mut size = None;
    for line in text.lines() {
        if line.starts_with("packet|") {
            list.push(Frame {
                pts: field(line, "pts_time").parse().expect(line),
                key: field(line, "flags").starts_with('K'),
            });
        } else if line.starts_with("stream|") {
            size = Some((
                field(line, "width").parse().expect(line),
                field(line, "height").parse().expect(line),
            ));
        }
    }
    list.sort_by(|a, b| a.pts.total_cmp(&b.pts));
    assert!(list.len() > 1, "{}: {text}", film.display());
    (list, size.expect("a video stream"))
}

/// [`probe`]'s frames.
pub fn frames(film: &Path) -> Vec<Frame> {
    probe(film).0
}

/// The frame shown at `t` seconds: the last one whose pts is at or before it.
pub fn shown_at(frames: &[Frame], t: f64) -> Frame {
    *frames
        .iter()
        .rev()
        .find(|f| f.pts <= t + 1e-6)
        .unwrap_or_else(|| panic!("no frame is shown at {t}"))
}

/// The last key frame whose pts is at or before `t`.
pub fn key_at_or_before(frames: &[Frame], t: f64) -> Frame {
    *frames
        .iter()
        .rev()
        .find(|f| f.key && f.pts <= t + 1e-6)
        .unwrap_or_else(|| panic!("no key frame at or before {t}"))
}

/// The first video stream's size.
pub fn size(file: &Path) -> (u32, u32) {
    let csv = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(file));
    let (w, h) = csv.trim().split_once(',').expect("width,height");
    (w.parse().unwrap(), h.parse().unwrap())
}

/// ffmpeg's decode of the frames of `film` at `pts` (seconds), each
/// scaled to `w`x`h` by `scale` (bicubic) and written as a PNG in `dir`
/// (`tag` names the files), in one ffmpeg run: the PNG of each asked pts,
/// in the order asked.
pub fn references(
    film: &Path,
    pts: &[f64],
    (w, h): (u32, u32),
    dir: &Path,
    tag: &str,
) -> Vec<PathBuf> {
    let mut distinct: Vec<f64> = pts.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
    let pick = (distinct.iter())
        .map(|t| format!("lt(abs(t-{t:.6})\\,0.0002)"))
        .collect::<Vec<_>>()
        .join("+");
    let stem = format!(
        "ref-{}-{tag}-{w}x{h}",
        film.file_stem().unwrap().to_string_lossy()
    );
    let pattern = dir.join(format!("{stem}-%03d.png"));
    // -copyts: the select filter sees the pts ffprobe printed.
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-copyts", "-i"])
        .arg(film)
        .args(["-map", "0:v:0", "-vf"])
        .arg(format!("select='{pick}',scale={w}:{h}:flags=bicubic"))
        .args(["-fps_mode", "passthrough"])
        .arg(&pattern));
    let made: Vec<PathBuf> = (1..=distinct.len())
        .map(|i| dir.join(format!("{stem}-{i:03}.png")))
        .collect();
    assert!(
        made.iter().all(|p| p.is_file())
            && !dir
                .join(format!("{stem}-{:03}.png", made.len() + 1))
                .exists(),
        "{}: ffmpeg selected other frames than {distinct:?}",
        film.display()
    );
    (pts.iter())
        .map(|t| {
            let i = distinct.iter().position(|d| (d - t).abs() < 1e-6).unwrap();
            made[i].clone()
        })
        .collect()
}

/// What a picture is compared with.
pub enum Reference {
    /// A PNG (ffmpeg's decode).
    File(PathBuf),
    /// Black, this size.
    Black(u32, u32),
}

/// One comparison: our JPEG (through `crop`, e.g. `crop=160:90:320:0`,
/// when given) against a reference.
pub struct Pair {
    pub ours: PathBuf,
    pub crop: Option<String>,
    pub reference: Reference,
}

impl Pair {
    pub fn new(ours: &Path, reference: &Path) -> Pair {
        Pair {
            ours: ours.to_path_buf(),
            crop: None,
            reference: Reference::File(reference.to_path_buf()),
        }
    }
}

/// ffmpeg's psnr filter over each pair, all in one ffmpeg run: (Y,
/// average) in dB of each, infinite for identical pictures. Pictures of
/// different sizes fail the run.
pub fn psnr(pairs: &[Pair]) -> Vec<(f64, f64)> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostats"]);
    let mut graph = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        cmd.arg("-i").arg(&p.ours);
        match &p.reference {
            Reference::File(f) => cmd.arg("-i").arg(f),
            Reference::Black(w, h) => cmd
                .args(["-f", "lavfi", "-i"])
                .arg(format!("color=c=black:s={w}x{h}:d=0.04")),
        };
        let (a, b) = (2 * i, 2 * i + 1);
        graph.push(match &p.crop {
            Some(c) => format!("[{a}:v]{c}[c{i}];[c{i}][{b}:v]psnr[p{i}]"),
            None => format!("[{a}:v][{b}:v]psnr[p{i}]"),
        });
    }
    cmd.arg("-filter_complex").arg(graph.join(";"));
    for i in 0..pairs.len() {
        cmd.args(["-map", &format!("[p{i}]"), "-f", "null", "-"]);
    }
    let out = cmd.output().expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?}: {text}");
    // `[Parsed_psnr_<n> @ 0x...] PSNR y:... average:...`, n in graph order.
    let mut lines: Vec<(usize, &str)> = (text.lines())
        .filter(|l| l.contains("PSNR y:"))
        .map(|l| {
            let n = l
                .split("Parsed_psnr_")
                .nth(1)
                .and_then(|r| r.split(' ').next());
            (n.and_then(|n| n.parse().ok()).expect(l), l)
        })
        .collect();
    lines.sort_by_key(|(n, _)| *n);
    assert_eq!(lines.len(), pairs.len(), "{text}");
    let value = |line: &str, tag: &str| -> f64 {
        match line
            .split(tag)
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
        {
            Some("inf") | Some("") | None => f64::INFINITY,
            Some(v) => v.parse().unwrap_or_else(|_| panic!("{tag} in {line}")),
        }
    };
    (lines.iter())
        .map(|(_, l)| (value(l, " y:"), value(l, "average:")))
        .collect()
}

/// Maps `f` over `items` on a few threads; the results in order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut out);
    std::thread::scope(|s| {
        for _ in 0..4.min(items.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    slots.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    out.into_iter()
        .map(|r| r.expect("every item mapped"))
        .collect()
}

/// Encodes `name` in `dir` from ffmpeg's testsrc2: `size`, `seconds` long
/// at 25 fps, video only, with `codec` arguments.
pub fn encode(dir: &Path, name: &str, size: &str, seconds: u32, codec: &[&str]) -> PathBuf {
    let path = dir.join(name);
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=25:duration={seconds}"))
        .args(codec)
        .args(["-pix_fmt", "yuv420p"])
        .arg(&path));
    path
}

/// H.264 with B-frames (3, pyramid) and a key frame every 4 s (100
/// frames): a picture between key frames needs up to 99 frames decoded
/// before it. 25 s, 320x180.
pub fn long_gop(dir: &Path) -> PathBuf {
    encode(
        dir,
        "long.mp4",
        "320x180",
        25,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "100",
            "-keyint_min",
            "100",
            "-sc_threshold",
            "0",
            "-bf",
            "3",
        ],
    )
}

/// `a.mp4` with every byte of its `mdat` payload replaced by noise: the
/// `moov` (and so the plan) is intact, nothing decodes.
pub fn garbage_copy(from: &Path, to: &Path) {
    let mut bytes = std::fs::read(from).unwrap();
    let mut at = 0usize;
    let mut noise = super::common::XorShift(0x9e37_79b9_7f4a_7c15);
    let mut found = false;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        assert!(size >= 8 && at + size <= bytes.len(), "a 32-bit box size");
        if &bytes[at + 4..at + 8] == b"mdat" {
            for b in &mut bytes[at + 8..at + size] {
                *b = noise.next() as u8;
            }
            found = true;
        }
        at += size;
    }
    assert!(found, "{} has an mdat", from.display());
    std::fs::write(to, bytes).unwrap();
}
