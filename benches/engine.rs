//! Engine speed on a 2-hour film (~180 k video + ~337 k audio samples):
//! building the index, and planning + writing the header of a 60 s window.
//! Targets: index ≤ 20 ms, header ≤ 2 ms.

mod synth;

use mp4_fcgi::mp4::{self, Index, Limits, Window};
use std::sync::{Arc, LazyLock};

static FILM: LazyLock<synth::Sparse> = LazyLock::new(|| synth::film(7200));
static INDEX: LazyLock<Arc<Index>> = LazyLock::new(|| {
    Arc::new(Index::build(&*FILM, &Limits::default()).expect("synthetic film indexes"))
});

/// Plans a window and produces its whole generated head, as a server
/// sending it would.
fn header(w: &Window) -> usize {
    let layout = mp4::plan(&INDEX, w, &Default::default()).expect("plan");
    let mut out = Vec::new();
    layout
        .copy_to(0..layout.head_len(), &*FILM, &mut out)
        .expect("head");
    out.len()
}

fn main() {
    divan::main();
}

#[divan::bench]
fn index_2h_film() -> Index {
    Index::build(&*FILM, &Limits::default()).expect("index")
}

#[divan::bench]
fn header_60s_window_mid_film() -> usize {
    let w = Window {
        start: Some(3600.0),
        end: Some(3660.0),
        flash: false,
        tracks: Default::default(),
    };
    header(&w)
}

#[divan::bench]
fn header_start_60_to_end() -> usize {
    let w = Window {
        start: Some(60.0),
        end: None,
        flash: false,
        tracks: Default::default(),
    };
    header(&w)
}

// HLS/DASH (issue 15). Targets: the 2-hour film's master and media
// playlist ≤ 2 ms; one media segment's header ≤ 50 µs with the plan kept.

use mp4_fcgi::manifest::{self, Part, TrackId};
use mp4_fcgi::mp4::cmaf::{self, Presentation, Settings};

const SETTINGS: Settings = Settings::fixed(6.0);

static PLAN: LazyLock<Arc<Presentation>> = LazyLock::new(|| {
    Arc::new(cmaf::presentation(&INDEX, &Window::default(), &SETTINGS).expect("a segment plan"))
});

/// The master and the video track's media playlist, from the plan a worker keeps.
fn playlists(p: &Presentation) -> usize {
    let parts = [Part::of(p)];
    let master = manifest::master(&parts, "");
    let video = manifest::playlist(p, TrackId { file: 0, id: 1 }, "", None).expect("track 1");
    master.len() + video.len()
}

#[divan::bench]
fn hls_playlists_2h_film_plan_kept() -> usize {
    playlists(&PLAN)
}

#[divan::bench]
fn hls_playlists_2h_film_plan_built() -> usize {
    let p = cmaf::presentation(&INDEX, &Window::default(), &SETTINGS).expect("plan");
    playlists(&p)
}

#[divan::bench]
fn dash_mpd_2h_film_plan_kept() -> usize {
    manifest::mpd(&[Part::of(&PLAN)], "").len()
}

#[divan::bench(args = [1, 2])]
fn segment_header_mid_film(track: u32) -> usize {
    let layout = cmaf::segment(&INDEX, &PLAN, 600, track).expect("segment 600");
    let mut out = Vec::new();
    layout
        .copy_to(0..layout.head_len(), &*FILM, &mut out)
        .expect("head");
    out.len()
}
