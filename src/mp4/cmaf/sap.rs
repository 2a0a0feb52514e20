//! Which stream access point (ISO/IEC 14496-12 Annex I) a track's segments
//! start with, for DASH's `startWithSAP`.

use super::write;
use crate::mp4::index::{Index, Track};

/// The highest SAP type segments of track `t` starting at sync samples
/// `starts` may start with.
///
/// Audio frames and H.264 sync samples are SAP type 1: ISO/IEC 14496-15
/// makes an AVC sync sample an IDR picture (an open GOP's recovery point is
/// marked by a 'roll' or 'rap ' group, not `stss`), and no picture after an
/// IDR is shown before it. An HEVC sync sample is any IRAP picture: IDR
/// (SAP 1, or 2 with leading pictures), but also CRA or BLA, whose skipped
/// leading pictures make SAP type 3 (open GOP; x265 writes CRA by
/// default). Type 1 is claimed only where the film's 'sync' sample group
/// says every segment starts with IDR_N_LP, 2 where IDR_W_RADL is among
/// them; else 3, which is true of every IRAP picture and which the live
/// profile accepts (`startWithSAP` absent, a player may ignore the set).
pub(super) fn start_sap(index: &Index, t: &Track, starts: &[u64]) -> u8 {
    match &t.info.codec {
        // HEVC, and Dolby Vision's own HEVC entries.
        b"hvc1" | b"hev1" | b"dvh1" | b"dvhe" => {
            let group = t
                .sbgp
                .iter()
                .flatten()
                .find(|g| &g.grouping_type == b"sync");
            match (group, write::sync_nal_types(index, &t.info)) {
                (Some(g), Some(types)) => hevc_sap(&types, &g.runs, starts),
                _ => HEVC_IRAP_SAP,
            }
        }
        _ => 1,
    }
}

/// What any HEVC IRAP picture can claim: SAP type 1, 2 or 3.
pub(super) const HEVC_IRAP_SAP: u8 = 3;

/// The highest SAP type of samples `starts` (ascending) by their 'sync'
/// sample group: `runs` map samples to entries (from 1; 0: none) of
/// `types`, the NAL unit types of its `sgpd`.
fn hevc_sap(types: &[u8], runs: &crate::mp4::tables::runs::Runs, starts: &[u64]) -> u8 {
    const IDR_W_RADL: u8 = 19;
    const IDR_N_LP: u8 = 20;
    let mut runs = runs.runs.iter();
    let (mut end, mut group) = (0u64, 0u32);
    let mut sap = 1;
    for &s in starts {
        while end <= s {
            let Some(r) = runs.next() else {
                return HEVC_IRAP_SAP;
            };
            end = end.saturating_add(u64::from(r.count));
            group = r.value;
        }
        let nal = (group.checked_sub(1))
            .and_then(|g| types.get(usize::try_from(g).ok()?))
            .copied();
        sap = sap.max(match nal {
            Some(IDR_N_LP) => 1,
            Some(IDR_W_RADL) => 2,
            _ => HEVC_IRAP_SAP,
        });
    }
    sap
}

#[cfg(test)]
mod tests {
    use super::super::{Kind, Settings, presentation};
    use super::*;
    use crate::mp4::Window;

    fn film(name: &str) -> Index {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/media/").to_string() + name;
        let bytes = std::fs::read(path).unwrap();
        Index::build(&bytes, &crate::mp4::Limits::default()).unwrap()
    }

    const SIX: Settings = Settings::fixed(6.0);

    #[test]
    fn hevc_segments_claim_sap_1_only_on_idr_without_leading_pictures() {
        use crate::mp4::tables::runs::{Run, Runs};
        // Entries: IDR_N_LP, CRA, IDR_W_RADL.
        let types = [20, 21, 19];
        let run = |count, value| Run { count, value };
        let runs = Runs {
            runs: vec![
                run(1, 1),
                run(49, 0),
                run(1, 2),
                run(49, 0),
                run(1, 3),
                run(9, 0),
                run(1, 1),
            ],
            samples: 111,
        };
        assert_eq!(hevc_sap(&types, &runs, &[0, 110]), 1);
        assert_eq!(hevc_sap(&types, &runs, &[0, 100, 110]), 2);
        assert_eq!(hevc_sap(&types, &runs, &[0, 50, 100]), 3);
        // In no group, or past the group's samples: any IRAP picture.
        assert_eq!(hevc_sap(&types, &runs, &[0, 10]), 3);
        assert_eq!(hevc_sap(&types, &runs, &[0, 111]), 3);
        // hevc.mp4 (x265, open GOP) has no 'sync' group: type 3.
        let index = film("hevc.mp4");
        let p = presentation(&index, &Window::default(), &SIX).unwrap();
        let sap = |k| p.renditions.iter().find(|r| r.kind == k).unwrap().sap;
        assert_eq!((sap(Kind::Video), sap(Kind::Audio)), (Some(3), Some(1)));
        let p = presentation(&film("frag.mp4"), &Window::default(), &SIX).unwrap();
        assert!(p.renditions.iter().all(|r| r.sap == Some(1)));
    }
}
