//! The engine on arbitrary bytes: box walker, index, plan and header write,
//! for a window taken from the input's first bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mp4_fcgi::mp4::{self, Index, Limits, Piece, Window};
use std::sync::Arc;

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
        let index = Arc::new(index);
        for win in [window, Window::default()] {
            if let Ok(layout) = mp4::plan(&index, &win, &Default::default()) {
                // Every file span lies inside the source; every generated
                // piece can be produced; the pieces add up to the length.
                let mut total = 0;
                let mut buf = Vec::new();
                for piece in layout.pieces(0..layout.len()) {
                    total += piece.len();
                    match piece {
                        Piece::File { offset, len } => {
                            assert!(offset + len <= file.len() as u64)
                        }
                        Piece::Generated { at, len } => {
                            buf.resize(len.min(1 << 20), 0);
                            layout.generate(at, &mut buf);
                        }
                        Piece::Patched { offset, len, at } => {
                            assert!(offset + len as u64 <= file.len() as u64);
                            buf.resize(len.min(1 << 20), 0);
                            layout.patch(at, &mut buf);
                        }
                        Piece::Bytes(_) => {}
                    }
                }
                assert_eq!(total, layout.len());
            }
        }
    }
});
