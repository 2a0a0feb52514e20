//! URL sets (nginx-vod-module's `/films/lecture_,360,720,.mp4.urlset`) under
//! the operator's control and within bounds: at most 8 films, their indexes
//! within half of `--cache-size`, key frames compared at the index stage
//! (before any segment plan), and `--url-sets off|on|param`. Refusals come
//! before the work they would have cost: the status page's index cache
//! misses count the index builds.

mod common;

use common::{Pool, Reply};
use std::path::{Path, PathBuf};

/// Films of one lecture (20 s each): two encodes with key frames every 2 s,
/// and one with key frames every 2.4 s (`odd`).
struct Films {
    dir: tempfile::TempDir,
}

impl Films {
    fn new() -> Films {
        common::require_tool("ffmpeg");
        let dir = tempfile::tempdir().unwrap();
        let films = dir.path().join("films");
        std::fs::create_dir(&films).unwrap();
        common::encode(&films, "lecture_360.mp4", "320x180", "150k", 50);
        common::encode(&films, "lecture_720.mp4", "640x360", "600k", 50);
        common::encode(&films, "lecture_odd.mp4", "320x180", "150k", 60);
        Films { dir }
    }

    fn root(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join("films").join(name)
    }

    /// A pool over the films: one worker, so its caches are the pool's.
    fn pool(&self, extra: &[&str]) -> Pool {
        let mut args = vec![
            "--root",
            self.root(),
            "--workers",
            "1",
            "--status-path",
            "/status",
        ];
        args.extend_from_slice(extra);
        Pool::start(&args)
    }
}

/// `output` (`master.m3u8`, …) of `name` (a film or a URL set) over FastCGI,
/// as nginx's `fastcgi_split_path_info` passes it.
fn get(pool: &Pool, films: &Films, name: &str, output: &str, extra: &[(&str, &str)]) -> Reply {
    let info = format!("/{output}");
    let mut params = vec![("PATH_INFO", info.as_str())];
    params.extend_from_slice(extra);
    pool.client().get(&films.path(name), "", &params)
}

fn index_builds(pool: &Pool) -> u64 {
    pool.counter("index_cache_misses")
}

/// The moov's size, from `mp4-fcgi info --json`.
fn moov_size(film: &Path) -> u64 {
    let out = std::process::Command::new(common::BIN)
        .arg("info")
        .arg(film)
        .arg("--json")
        .output()
        .unwrap();
    common::json_number(&String::from_utf8_lossy(&out.stdout), "moov_size")
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn a_set_of_too_many_films_is_refused_before_any_index() {
    let films = Films::new();
    for n in 1..=17 {
        std::fs::copy(
            films.path("lecture_360.mp4"),
            films.path(&format!("c_{n}.mp4")),
        )
        .unwrap();
    }
    let pool = films.pool(&[]);
    let set = |n: usize| {
        let list: String = (1..=n).map(|i| format!("{i},")).collect();
        format!("c_,{list}.mp4.urlset")
    };
    // Eight films are a set; nine, or seventeen (more than the names
    // allow at all), are refused with the cap, before any index is built.
    assert_eq!(get(&pool, &films, &set(8), "master.m3u8", &[]).status, 200);
    let before = index_builds(&pool);
    for n in [9, 17] {
        for output in ["master.m3u8", "manifest.mpd", "index-f1-1.m3u8"] {
            let r = get(&pool, &films, &set(n), output, &[]);
            assert_eq!(r.status, 400, "{n} films, {output}: {}", r.text());
            assert!(
                r.text().contains("at most 8 films"),
                "{n} films: {}",
                r.text()
            );
        }
    }
    assert_eq!(index_builds(&pool), before, "no index was built");
    assert!(pool.log_text().contains("at most 8 films"));
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn a_set_over_the_index_budget_is_refused_before_any_index() {
    let films = Films::new();
    // Half of --cache-size is the set's budget: here less than the two
    // films' moovs, which their indexes hold whole.
    let moovs =
        moov_size(&films.path("lecture_360.mp4")) + moov_size(&films.path("lecture_720.mp4"));
    let cache = moovs.to_string();
    let pool = films.pool(&["--cache-size", &cache]);
    let set = "lecture_,360,720,.mp4.urlset";
    let before = index_builds(&pool);
    for output in ["master.m3u8", "manifest.mpd"] {
        let r = get(&pool, &films, set, output, &[]);
        assert_eq!(r.status, 413, "{output}: {}", r.text());
        assert!(
            r.text().contains("half of --cache-size"),
            "{output}: {}",
            r.text()
        );
    }
    assert_eq!(
        index_builds(&pool),
        before,
        "refused before any index build"
    );
    // Each film alone is served, and with their indexes known the set is
    // still refused, without a build.
    for film in ["lecture_360.mp4", "lecture_720.mp4"] {
        assert_eq!(get(&pool, &films, film, "master.m3u8", &[]).status, 200);
    }
    let built = index_builds(&pool);
    let r = get(&pool, &films, set, "master.m3u8", &[]);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(index_builds(&pool), built);
    assert!(pool.log_text().contains("known before any index build"));
    // The same set is served once the cache holds it twice over.
    let big = (4 * moovs + (1 << 20)).to_string();
    let pool = films.pool(&["--cache-size", &big]);
    assert_eq!(get(&pool, &films, set, "master.m3u8", &[]).status, 200);
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn a_misaligned_set_is_refused_at_the_index_stage() {
    let films = Films::new();
    let pool = films.pool(&["--log-level", "debug"]);
    let before = index_builds(&pool);
    // Film 2's key frames differ: film 3 is never read, nothing is planned.
    let r = get(
        &pool,
        &films,
        "lecture_,360,odd,720,.mp4.urlset",
        "master.m3u8",
        &[],
    );
    assert_eq!(r.status, 415, "{}", r.text());
    assert!(
        r.text().contains("key frames at the same times") && r.text().contains("film 2"),
        "{}",
        r.text()
    );
    assert_eq!(index_builds(&pool), before + 2, "films 1 and 2 only");
    let log = pool.log_text();
    assert!(
        log.contains("found at the index stage, before any segment plan"),
        "{log}"
    );
    // The films alone are served.
    for film in ["lecture_odd.mp4", "lecture_720.mp4"] {
        assert_eq!(get(&pool, &films, film, "master.m3u8", &[]).status, 200);
    }
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn url_sets_off_refuses_sets_and_still_serves_films() {
    let films = Films::new();
    let set = "lecture_,360,720,.mp4.urlset";
    let pool = films.pool(&["--url-sets", "off"]);
    for output in ["master.m3u8", "manifest.mpd", "seg-1-f2-1.m4s"] {
        // The front server cannot turn them back on.
        for extra in [&[][..], &[("MP4_FCGI_URL_SETS", "1")][..]] {
            let r = get(&pool, &films, set, output, extra);
            assert_eq!(r.status, 403, "{output}: {}", r.text());
            assert!(r.text().contains("--url-sets"), "{}", r.text());
        }
    }
    assert_eq!(index_builds(&pool), 0);
    let master = get(&pool, &films, "lecture_720.mp4", "master.m3u8", &[]);
    assert_eq!(master.status, 200);
    assert!(master.text().contains("index-1.m3u8"));
    let seg = get(&pool, &films, "lecture_720.mp4", "seg-1-1.m4s", &[]);
    assert_eq!(seg.status, 200);

    // Under `param`, only where the front server says so; under the
    // default, everywhere but where it says no.
    let pool = films.pool(&["--url-sets", "param"]);
    assert_eq!(get(&pool, &films, set, "master.m3u8", &[]).status, 403);
    let r = get(
        &pool,
        &films,
        set,
        "master.m3u8",
        &[("MP4_FCGI_URL_SETS", "0")],
    );
    assert_eq!(r.status, 403);
    assert!(r.text().contains("MP4_FCGI_URL_SETS"), "{}", r.text());
    let pool = films.pool(&[]);
    let r = get(
        &pool,
        &films,
        set,
        "master.m3u8",
        &[("MP4_FCGI_URL_SETS", "0")],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(get(&pool, &films, set, "master.m3u8", &[]).status, 200);
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn a_valid_set_is_served_where_the_front_server_allows_it() {
    let films = Films::new();
    let pool = films.pool(&["--url-sets", "param"]);
    let on = [("MP4_FCGI_URL_SETS", "1")];
    let set = "lecture_,360,720,.mp4.urlset";
    let master = get(&pool, &films, set, "master.m3u8", &on);
    assert_eq!(master.status, 200, "{}", master.text());
    let text = master.text();
    assert_eq!(text.matches("#EXT-X-STREAM-INF").count(), 2, "{text}");
    assert!(
        text.contains("index-f1-1.m3u8") && text.contains("index-f2-1.m3u8"),
        "{text}"
    );
    let mpd = get(&pool, &films, set, "manifest.mpd", &on);
    assert_eq!(mpd.status, 200);
    assert_eq!(mpd.text().matches("<Representation id=\"f").count(), 3);
    // A clip of the set, and film 2's segment as the film's own.
    let clip = pool.client().get(
        &films.path(set),
        "start=4&end=12",
        &[("PATH_INFO", "/master.m3u8"), on[0]],
    );
    assert_eq!(clip.status, 200);
    assert!(clip.text().contains("index-f2-1.m3u8?start=4&end=12"));
    let in_set = get(&pool, &films, set, "seg-2-f2-1.m4s", &on);
    let alone = get(&pool, &films, "lecture_720.mp4", "seg-2-1.m4s", &[]);
    assert_eq!(in_set.status, 200);
    assert!(in_set.body == alone.body);
    // Asked again, the set's indexes are in the cache: no build.
    let before = index_builds(&pool);
    assert_eq!(get(&pool, &films, set, "master.m3u8", &on).status, 200);
    assert_eq!(index_builds(&pool), before);
}
