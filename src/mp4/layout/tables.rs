//! Producing a cropped sample table's entries, from the index's decoded
//! tables and the crop the planner chose.

use super::{Table, Which};
use crate::mp4::index::Track;
use crate::mp4::tables::{stco, stss, stsz};

pub(super) fn fill_table(t: &Track, table: &Table, map: &stco::Map, from: u64, out: &mut [u8]) {
    match table {
        Table::Sizes { first, n } => stsz::fill(&t.sizes, *first, *n, from, out),
        Table::Runs(which, crop) => {
            let runs = match which {
                Which::Stts => Some(&t.stts),
                Which::Ctts => t.ctts.as_ref(),
                Which::Sbgp(k) => t.sbgp.get(*k).and_then(Option::as_ref).map(|s| &s.runs),
            };
            if let Some(r) = runs {
                r.fill(crop, from, out);
            }
        }
        Table::Sync { kept, a } => {
            stss::fill(t.stss.as_deref().unwrap_or(&[]), kept, *a, from, out);
        }
        Table::Chunks(crop) => crop.fill(t.stsc.entries(), from, out),
        Table::Offsets(crop) => crop.fill(&t.chunk_offsets, map, from, out),
    }
}
