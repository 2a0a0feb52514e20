//! The engine on arbitrary bytes: box walker, index, plan and header write,
//! for a window taken from the input's first bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mp4_fcgi::mp4::{Index, Limits, Window};

fuzz_target!(|data: &[u8]| {
    let (w, file) = data.split_at(data.len().min(3));
    let pick = |i: usize| w.get(i).map(|&b| f64::from(b) / 4.0);
    let window = Window {
        start: pick(0).filter(|s| *s < 60.0),
        end: pick(1).filter(|e| *e > 1.0),
        flash: w.get(2).is_some_and(|b| b & 1 == 1),
    };
    let limits = Limits { max_moov: 1 << 20 };
    if let Ok(index) = Index::build(&file.to_vec(), &limits) {
        let _ = index.info();
        for win in [window, Window::default()] {
            if let Ok(layout) = index.plan(&win) {
                // Every file span must lie inside the source.
                for seg in layout.segments(0..layout.len()) {
                    if let mp4_fcgi::mp4::Segment::File { offset, len } = seg {
                        assert!(offset + len <= file.len() as u64);
                    }
                }
            }
        }
    }
});
