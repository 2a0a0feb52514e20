//! The packager's hostile-file corpus: films whose headers claim what their
//! bytes do not pay for (2^32 samples in 20 bytes, a nanosecond timescale,
//! sums that overflow). Each is planned and written as every HLS/DASH
//! output; each must end in an answer or a typed refusal, never a panic,
//! and within a bound of work that does not grow with the claim.

mod common;

use common::boxes::{Film, be32, bx, film, ftyp, full, mvhd, real_stsd, trak};
use common::media;
use mp4_fcgi::manifest::{self, Part};
use mp4_fcgi::mp4::cmaf::{self, Settings};
use mp4_fcgi::mp4::{Error, Index, Limits, Window};
use std::io::Write;
use std::time::{Duration, Instant};

/// What one plan may cost here (debug build, busy 2-core machine): the
/// claims below would take minutes or gigabytes if walked sample by sample.
const BUDGET: Duration = Duration::from_millis(500);

const SETTINGS: Settings = Settings::fixed(6.0);

fn whole() -> Window {
    Window {
        start: None,
        end: None,
        flash: false,
        tracks: Default::default(),
    }
}

/// Plans and writes every output of `data`: the result of the plan, and
/// how long the whole took.
fn package(film: &Film) -> (Result<(), Error>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("film.mp4");
    film.write(&path);
    let f = std::fs::File::open(&path).unwrap();
    let at = Instant::now();
    let r = (|| {
        let index = std::sync::Arc::new(Index::build(&f, &Limits::default())?);
        let p = cmaf::presentation(&index, &whole(), &SETTINGS)?;
        let part = [Part::of(&p)];
        let master = manifest::master(&part, "");
        let mpd = manifest::mpd(&part, "");
        for line in master.lines().chain(mpd.lines()) {
            for (key, end) in [("BANDWIDTH=", ','), ("bandwidth=\"", '"')] {
                if let Some(rest) = line.split(key).nth(1) {
                    let n: u64 = rest.split(end).next().unwrap().parse().unwrap();
                    assert!(n <= 2 * u64::from(u32::MAX), "{line}");
                }
            }
        }
        for r in &p.renditions {
            cmaf::init(&index, &p, r.id)?;
            for n in 1..=r.segments.len().min(3) {
                cmaf::segment(&index, &p, n as u32, r.id)?;
            }
        }
        Ok(())
    })();
    (r, at.elapsed())
}

#[test]
fn a_nanosecond_timescale_gives_bounded_bit_rates_not_a_panic() {
    // 10 samples over 10 ns: 8e13 bit/s, and audio + video rates summed.
    let data = film(
        1_000_000_000,
        1,
        1_000_000_000,
        &[
            full(b"stts", 0, &be32(&[1, 10, 1])),
            full(b"stsc", 0, &be32(&[1, 1, 10, 1])),
            full(b"stsz", 0, &be32(&[60_000, 10])),
        ],
        600_000,
    );
    let (r, took) = package(&data);
    assert!(r.is_ok(), "{r:?}");
    assert!(took < BUDGET, "{took:?}");
}

#[test]
fn two_to_the_32_samples_without_key_frames_cost_no_walk() {
    // A fixed-size stsz declaring ~2^32 samples of 1 byte, every one a key
    // frame (no stss), 1 ms each: 49 days claimed by 20 bytes of table.
    let n = u32::MAX - 64;
    let data = film(
        1000,
        n,
        1000,
        &[
            full(b"stts", 0, &be32(&[1, n, 1])),
            full(b"stsc", 0, &be32(&[1, 1, n, 1])),
            full(b"stsz", 0, &be32(&[1, n])),
        ],
        u64::from(n),
    );
    let (r, took) = package(&data);
    assert!(matches!(r, Err(Error::Unsupported(_))), "{r:?}");
    assert!(took < BUDGET, "{took:?}");
}

#[test]
fn fifty_million_samples_in_one_segment_are_refused_without_a_walk() {
    // 50 M samples of 1 µs: 50 s, nine segments of 5.5 M samples each.
    let n = 50_000_000;
    let data = film(
        1_000_000,
        n,
        1_000_000,
        &[
            full(b"stts", 0, &be32(&[1, n, 1])),
            full(b"stsc", 0, &be32(&[1, 1, n, 1])),
            full(b"stsz", 0, &be32(&[1, n])),
        ],
        u64::from(n),
    );
    let (r, took) = package(&data);
    assert!(matches!(r, Err(Error::Unsupported(_))), "{r:?}");
    assert!(took < BUDGET, "{took:?}");
}

#[test]
fn an_all_intra_film_of_a_million_frames_is_cut_by_time() {
    // 1 M key frames of 40 ms (11 hours): a real shape (all-intra, or PCM
    // audio), planned from the time table, not frame by frame.
    let n = 1_000_000;
    let data = film(
        1000,
        n * 40,
        1000,
        &[
            full(b"stts", 0, &be32(&[1, n, 40])),
            full(b"stsc", 0, &be32(&[1, 1, n, 1])),
            full(b"stsz", 0, &be32(&[1, n])),
        ],
        u64::from(n),
    );
    let (r, took) = package(&data);
    assert!(r.is_ok(), "{r:?}");
    assert!(took < BUDGET, "{took:?}");
}

/// A fragmented film of `tracks` video tracks and `fragments` fragments,
/// each `moof` holding one `traf` of one 100-byte sample per track.
fn many_tracks_and_fragments(tracks: u32, fragments: u32) -> Vec<u8> {
    let stsd = real_stsd(&std::fs::read(media("a.mp4")).unwrap(), b"vide");
    let empty = [
        stsd,
        full(b"stts", 0, &be32(&[0])),
        full(b"stsc", 0, &be32(&[0])),
        full(b"stsz", 0, &be32(&[0, 0])),
        full(b"stco", 0, &be32(&[0])),
    ]
    .concat();
    let traks: Vec<u8> = (1..=tracks)
        .flat_map(|id| trak(id, 1000, 0, &empty))
        .collect();
    let trexes: Vec<u8> = (1..=tracks)
        .flat_map(|id| full(b"trex", 0, &be32(&[id, 1, 1000, 100, 0])))
        .collect();
    let moov = bx(
        b"moov",
        &[mvhd(1000, 0), traks, bx(b"mvex", &trexes)].concat(),
    );
    let mut film = [ftyp(), moov].concat();
    for f in 0..fragments {
        // default-base-is-moof; the data offset is patched below.
        let traf = |id: u32, at: u32| {
            bx(
                b"traf",
                &[
                    full(b"tfhd", 0x02_0000, &be32(&[id])),
                    full(b"tfdt", 0, &be32(&[f * 1000])),
                    full(b"trun", 0x01, &be32(&[1, at])),
                ]
                .concat(),
            )
        };
        let moof_len = bx(
            b"moof",
            &(1..=tracks).flat_map(|id| traf(id, 0)).collect::<Vec<u8>>(),
        )
        .len() as u32;
        let trafs: Vec<u8> = (1..=tracks)
            .flat_map(|id| traf(id, moof_len + 8 + (id - 1) * 100))
            .collect();
        film.extend(bx(b"moof", &trafs));
        film.extend(bx(b"mdat", &vec![0u8; tracks as usize * 100]));
    }
    film
}

#[test]
fn many_tracks_times_many_fragments_are_parsed_once_per_moof() {
    // 200 tracks x 200 fragments: each moof once, not once per track
    // (tracks^2 x fragments took 42 s for 1000 x 900).
    let data = many_tracks_and_fragments(200, 200);
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&data).unwrap();
    let at = Instant::now();
    let index = std::sync::Arc::new(Index::build(&f, &Limits::default()).unwrap());
    let p = cmaf::presentation(&index, &whole(), &SETTINGS).unwrap();
    let took = at.elapsed();
    assert_eq!(p.renditions.len(), 200);
    assert!(took < BUDGET * 2, "{took:?}");
}

/// `--max-segment-samples` is the named bound on a segment's samples,
/// checked when the plan is made: a film whose segments hold more is
/// refused with the setting's name, for a sampled and a fragmented film.
#[test]
fn a_segment_over_max_segment_samples_is_refused_by_name() {
    for film in ["a.mp4", "frag.mp4"] {
        let bytes = std::fs::read(media(film)).unwrap();
        let index = Index::build(&bytes, &Limits::default()).unwrap();
        assert!(cmaf::presentation(&index, &whole(), &SETTINGS).is_ok());
        let tight = Settings {
            max_segment_samples: 100,
            ..SETTINGS
        };
        match cmaf::presentation(&index, &whole(), &tight) {
            Err(Error::Unsupported(why)) => {
                assert!(why.contains("--max-segment-samples"), "{film}: {why}")
            }
            other => panic!("{film}: {:?}", other.map(|p| p.renditions.len())),
        }
    }
    // The flag's bounds: the pool refuses a value outside them at start.
    let out = std::process::Command::new(common::BIN)
        .args(["--check", "--max-segment-samples", "10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-segment-samples"));
}
