//! `cut` is exactly as strict as the server: what the server refuses with
//! 400 and a one-line reason, `cut` refuses with the same reason, leaving no
//! output; what the server serves, `cut` writes byte for byte. Also `cut` to
//! stdout, its one-line summary, and `info` (text and `--json`).

mod common;

use common::{BIN, Pool, media, require_tool};
use std::path::Path;
use std::process::{Command, Output};

/// Values both front doors must refuse.
const BAD: [&str; 12] = [
    "-5",
    "-inf",
    "inf",
    "nan",
    "1e3",
    "abc",
    "",
    "99999999999999999999999",
    " 1",
    "+5",
    "0x10",
    "1,5",
];
const HUGE: &str = "99999999999999999999999";

/// Percent-encodes everything but unreserved characters (so `+` stays a plus).
fn pct(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `mp4-fcgi ARGS` run in `cwd`.
fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("mp4-fcgi runs")
}

/// The server's refusal: 400 and a one-line body; the reason.
fn server_refusal(pool: &Pool, query: &str) -> Result<String, String> {
    let r = pool.client().get(&media("a.mp4"), query, &[]);
    let body = r.text();
    if r.status != 400 {
        return Err(format!("server: {query:?} → {} (want 400)", r.status));
    }
    let reason = body.strip_suffix('\n').unwrap_or(&body);
    if reason.is_empty() || reason.contains('\n') {
        return Err(format!(
            "server: {query:?} → body is not one line: {body:?}"
        ));
    }
    Ok(reason.to_string())
}

/// `cut a.mp4 OUT ARGS` must fail with one stderr line `mp4-fcgi: …REASON…`
/// and leave no OUT.
fn cut_refuses(args: &[&str], reason: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let a = media("a.mp4");
    let mut all = vec!["cut", a.to_str().unwrap(), out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = run(dir.path(), &all);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let line = stderr.trim_end();
    let shown: String = line.chars().take(160).collect();
    let mut why = Vec::new();
    if o.status.success() {
        why.push("exit 0".to_string());
    }
    if !(line.lines().count() == 1 && line.starts_with("mp4-fcgi: ") && line.contains(reason)) {
        why.push(format!(
            "stderr {shown:?} is not one 'mp4-fcgi: …REASON' line"
        ));
    }
    if out.exists() {
        why.push("left OUT behind".into());
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(format!("cut {args:?}: {}", why.join("; ")))
    }
}

/// For each bad value of `key`: the server's reason, then `cut` with
/// `--key=V` and with `--key V` (two arguments).
fn refused_alike(pool: &Pool, key: &str, values: &[&str]) -> Vec<String> {
    let mut failures = Vec::new();
    for v in values {
        let reason = match server_refusal(pool, &format!("{key}={}", pct(v))) {
            Ok(r) => r,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let joined = format!("--{key}={v}");
        let flag = format!("--{key}");
        for args in [vec![joined.as_str()], vec![flag.as_str(), v]] {
            if let Err(e) = cut_refuses(&args, &reason) {
                failures.push(format!("{e} (server said {reason:?})"));
            }
        }
    }
    failures
}

#[test]
fn malformed_start_is_refused_alike_by_server_and_cut() {
    let pool = Pool::start(&["--workers", "1"]);
    let failures = refused_alike(&pool, "start", &BAD);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn malformed_end_is_refused_alike_by_server_and_cut() {
    let pool = Pool::start(&["--workers", "1"]);
    // A huge end is a well-formed "to the end of the film": see below.
    let bad: Vec<&str> = BAD.iter().copied().filter(|v| *v != HUGE).collect();
    let mut failures = refused_alike(&pool, "end", &bad);
    // end=HUGE: either both refuse with the same reason, or both serve the
    // same bytes.
    let r = pool
        .client()
        .get(&media("a.mp4"), &format!("end={HUGE}"), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let a = media("a.mp4");
    let o = run(
        dir.path(),
        &[
            "cut",
            a.to_str().unwrap(),
            out.to_str().unwrap(),
            &format!("--end={HUGE}"),
        ],
    );
    match (r.status, o.status.success()) {
        (200, true) => {
            if std::fs::read(&out).unwrap() != r.body {
                failures.push(format!("end={HUGE}: cut and server bytes differ"));
            }
        }
        (400, false) => {
            if let Err(e) = cut_refuses(&[&format!("--end={HUGE}")], r.text().trim_end()) {
                failures.push(e);
            }
        }
        (s, ok) => failures.push(format!(
            "end={HUGE}: server {s} ({}), cut success={ok} ({})",
            r.text().trim_end(),
            String::from_utf8_lossy(&o.stderr).trim_end()
        )),
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_start_far_past_the_end_is_past_the_end_not_a_malformed_number() {
    let pool = Pool::start(&["--workers", "1"]);
    let reason = server_refusal(&pool, &format!("start={HUGE}")).unwrap();
    assert!(
        reason.contains("past the end") && !reason.contains("not a number"),
        "server: {reason}"
    );
    cut_refuses(&[&format!("--start={HUGE}")], &reason).unwrap();
    cut_refuses(&["--start", HUGE], &reason).unwrap();
}

#[test]
fn an_unknown_client_is_refused_alike() {
    let pool = Pool::start(&["--workers", "1"]);
    let reason = server_refusal(&pool, "start=5&client=ios").unwrap();
    assert!(reason.contains("client"), "server: {reason}");
    cut_refuses(&["--start", "5", "--client", "ios"], &reason).unwrap();
    cut_refuses(&["--start=5", "--client=ios"], &reason).unwrap();
}

#[test]
fn unknown_parameters_are_ignored_and_cut_writes_the_server_bytes() {
    let pool = Pool::start(&["--workers", "1"]);
    let plain = pool.client().get(&media("a.mp4"), "start=5", &[]);
    assert_eq!(plain.status, 200, "{}", plain.text());
    let busted = pool
        .client()
        .get(&media("a.mp4"), "start=5&cb=123&_=999", &[]);
    assert_eq!(busted.status, 200, "{}", busted.text());
    assert!(
        busted.body == plain.body,
        "unknown parameters changed the clip"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    common::cut(&media("a.mp4"), &out, &["--start", "5"]).unwrap();
    assert!(
        std::fs::read(&out).unwrap() == plain.body,
        "cut and the server differ"
    );
}

#[test]
fn cut_to_stdout_writes_the_clip() {
    let dir = tempfile::tempdir().unwrap();
    let a = media("a.mp4");
    let file = dir.path().join("file.mp4");
    let o = run(
        dir.path(),
        &[
            "cut",
            a.to_str().unwrap(),
            file.to_str().unwrap(),
            "--start",
            "5",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(
        dir.path(),
        &["cut", a.to_str().unwrap(), "-", "--start", "5"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !dir.path().join("-").exists(),
        "wrote a file named '-' instead of stdout"
    );
    let want = std::fs::read(&file).unwrap();
    assert_eq!(o.stdout.len(), want.len(), "stdout length");
    assert!(o.stdout == want, "stdout differs from the file");
}

/// Numbers in a line (runs of digits and dots).
fn numbers(line: &str) -> Vec<f64> {
    line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|t| t.trim_matches('.').parse().ok())
        .collect()
}

/// `n` as digits, plain or grouped by thousands with `sep`.
fn spellings(n: u64) -> Vec<String> {
    let plain = n.to_string();
    let mut v = vec![plain.clone()];
    for sep in [",", "_", " ", "\u{202f}", "\u{a0}"] {
        let mut s = String::new();
        for (i, c) in plain.chars().enumerate() {
            if i > 0 && (plain.len() - i).is_multiple_of(3) {
                s.push_str(sep);
            }
            s.push(c);
        }
        v.push(s);
    }
    v
}

#[test]
#[cfg_attr(not(has_ffprobe), ignore = "needs ffprobe: apt-get install -y ffmpeg")]
fn cut_prints_one_summary_line() {
    require_tool("ffprobe");
    let a = media("a.mp4");
    // The key frame at or before 5 s, from ffprobe.
    let keys = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-skip_frame",
            "nokey",
        ])
        .args(["-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(&a)
        .output()
        .unwrap();
    let key = String::from_utf8_lossy(&keys.stdout)
        .lines()
        .filter_map(|l| l.trim_end_matches(',').parse::<f64>().ok())
        .filter(|t| *t <= 5.0)
        .fold(f64::MIN, f64::max);
    assert!(key > 0.0 && key < 5.0, "key frame {key}");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let o = run(
        dir.path(),
        &[
            "cut",
            a.to_str().unwrap(),
            out.to_str().unwrap(),
            "--start",
            "5",
        ],
    );
    assert!(o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    let line = stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "one line on stderr: {stderr:?}");
    let nums = numbers(line);
    let has = |x: f64| nums.iter().any(|n| (n - x).abs() < 0.001);
    assert!(has(5.0), "the window asked (5): {line}");
    assert!(has(key), "the key frame ({key}): {line}");
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(
        spellings(size).iter().any(|s| line.contains(s.as_str())),
        "the output size ({size} bytes): {line}"
    );
    let l = line.to_ascii_lowercase();
    assert!(
        ["vide", "avc1", "video"].iter().any(|w| l.contains(w))
            && ["soun", "mp4a", "audio"].iter().any(|w| l.contains(w)),
        "the tracks: {line}"
    );
}

fn info_json(file: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let f = media(file);
    let o = run(dir.path(), &["info", "--json", f.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "info --json {file}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "info --json {file}: not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

#[test]
#[cfg_attr(not(has_ffprobe), ignore = "needs ffprobe: apt-get install -y ffmpeg")]
fn info_json_describes_tracks() {
    require_tool("ffprobe");
    let j = info_json("a.mp4");
    let tracks = j["tracks"].as_array().expect("a 'tracks' array");
    assert_eq!(tracks.len(), 2, "{j}");
    // Sample counts and timescales as ffprobe reads them.
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=time_base,nb_frames"])
        .args(["-of", "csv=p=0"])
        .arg(media("a.mp4"))
        .output()
        .unwrap();
    let expect: Vec<(u64, u64)> = String::from_utf8_lossy(&probe.stdout)
        .lines()
        .map(|l| {
            let (tb, n) = l.split_once(',').unwrap();
            (
                tb.trim_start_matches("1/").parse().unwrap(),
                n.parse().unwrap(),
            )
        })
        .collect();
    for (i, ((handler, codec), (timescale, samples))) in [("vide", "avc1"), ("soun", "mp4a")]
        .into_iter()
        .zip(expect)
        .enumerate()
    {
        let t = &tracks[i];
        assert_eq!(t["id"].as_u64(), Some(i as u64 + 1), "{t}");
        assert_eq!(t["handler"].as_str(), Some(handler), "{t}");
        assert_eq!(t["codec"].as_str(), Some(codec), "{t}");
        assert_eq!(t["timescale"].as_u64(), Some(timescale), "{t}");
        assert_eq!(t["samples"].as_u64(), Some(samples), "{t}");
        // Seconds, or ticks of the timescale: 20 s either way.
        let d = t["duration"].as_f64().expect("a numeric duration");
        assert!(
            (d - 20.0).abs() < 0.1 || (d / timescale as f64 - 20.0).abs() < 0.1,
            "duration {d}: {t}"
        );
    }
}

#[test]
fn info_lists_the_tracks_of_a_fragmented_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = media("frag.mp4");
    let o = run(dir.path(), &["info", f.to_str().unwrap()]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("track 1: vide avc1") && text.contains("track 2: soun mp4a"),
        "{text}"
    );
    let j = info_json("frag.mp4");
    let tracks = j["tracks"].as_array().expect("a 'tracks' array");
    let kinds: Vec<(Option<&str>, Option<&str>)> = tracks
        .iter()
        .map(|t| (t["handler"].as_str(), t["codec"].as_str()))
        .collect();
    assert_eq!(
        kinds,
        [(Some("vide"), Some("avc1")), (Some("soun"), Some("mp4a"))],
        "{j}"
    );
}

/// MD5 of the first video frame ffmpeg shows of `file`, after seeking to
/// `at` seconds (ffmpeg decodes from the key frame before and drops the
/// frames before `at`) or from its start.
fn first_frame_md5(file: &Path, at: Option<f64>) -> String {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error"]);
    if let Some(t) = at {
        cmd.args(["-ss", &format!("{t:.3}")]);
    }
    let o = cmd
        .arg("-i")
        .arg(file)
        .args(["-map", "0:v", "-frames:v", "1", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text.lines().rfind(|l| !l.starts_with('#')).unwrap_or("");
    line.rsplit(',').next().unwrap_or("").trim().to_string()
}

/// The number after `word ` in the summary line.
fn after(line: &str, word: &str) -> f64 {
    let at = line
        .find(word)
        .unwrap_or_else(|| panic!("no '{word}' in {line}"))
        + word.len();
    numbers(&line[at..])[0]
}

/// The summary says where the output is shown from, and the output's first
/// frame is the film's frame at that time: with client=flash (no edit
/// list) the key frame at 44 s, not the 45.48 s asked; otherwise 45.48 s.
/// A 50 s film with a key frame every 4 s and B-frames, as in issue 26.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn the_summary_says_where_the_output_is_shown_from() {
    require_tool("ffmpeg");
    require_tool("ffprobe");
    let dir = tempfile::tempdir().unwrap();
    let film = dir.path().join("film.mp4");
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=160x90:rate=25:duration=50")
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=50",
        ])
        .args([
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args([
            "-bf",
            "2",
            "-g",
            "100",
            "-keyint_min",
            "100",
            "-sc_threshold",
            "0",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k"])
        .arg(&film)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let probe = |file: &Path, args: &[&str]| {
        let o = Command::new("ffprobe")
            .args(["-v", "error"])
            .args(args)
            .args(["-of", "csv=p=0"])
            .arg(file)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let start = 45.48;
    let keys = ["-select_streams", "v:0", "-skip_frame", "nokey"];
    let key = probe(
        &film,
        &[&keys[..], &["-show_entries", "frame=pts_time"]].concat(),
    )
    .lines()
    .filter_map(|l| l.trim_end_matches(',').parse::<f64>().ok())
    .filter(|t| *t <= start)
    .fold(f64::MIN, f64::max);
    assert!(
        (key - 44.0).abs() < 0.001,
        "the key frame before {start}: {key}"
    );

    let mut failures = Vec::new();
    for (client, shown) in [(Some("flash"), key), (None, start)] {
        let out = dir
            .path()
            .join(format!("{}.mp4", client.unwrap_or("plain")));
        let mut args = vec![
            "cut".to_string(),
            film.to_str().unwrap().into(),
            out.to_str().unwrap().into(),
            "--start".into(),
            start.to_string(),
        ];
        if let Some(c) = client {
            args.extend(["--client".into(), c.into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(dir.path(), &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stderr = String::from_utf8_lossy(&o.stderr);
        let line = stderr.trim_end();
        let what = format!("client={client:?}: {line}");
        let from = after(line, "shown from");
        if (from - shown).abs() > 0.001 {
            failures.push(format!(
                "{what}: shown from {from}, the output from {shown}"
            ));
        }
        if (after(line, "key frame at") - key).abs() > 0.001 {
            failures.push(format!("{what}: the key frame is at {key}"));
        }
        // The first frame the output shows is the film's at `from`.
        if first_frame_md5(&out, None) != first_frame_md5(&film, Some(from)) {
            failures.push(format!(
                "{what}: the output's first frame is not the film's at {from} s"
            ));
        }
        // And it lasts what the summary says, as ffprobe reads it.
        let duration: f64 = probe(&out, &["-show_entries", "format=duration"])
            .trim()
            .parse()
            .unwrap();
        let said = after(line, " for ");
        if (duration - said).abs() > 0.05 || (duration - (50.0 - from)).abs() > 0.05 {
            failures.push(format!("{what}: ffprobe says {duration} s long"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
