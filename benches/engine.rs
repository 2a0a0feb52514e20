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
    };
    header(&w)
}

#[divan::bench]
fn header_start_60_to_end() -> usize {
    let w = Window {
        start: Some(60.0),
        end: None,
        flash: false,
    };
    header(&w)
}
