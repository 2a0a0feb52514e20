//! Subtitle files beside a local film (`film.en.srt`, `film.fr.vtt`):
//! found and read when the film's index is built, on the helper thread,
//! each opened as safely as a film (inside `--root`, a regular file) and
//! bounded in number and bytes. They join the film's own text tracks.

use super::local::open;
use crate::manifest::sidecar;
use crate::mp4::Index;
use crate::mp4::cues::Cues;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Names a folder listing may hold before the rest go unread.
const MAX_LISTED: usize = 100_000;
/// Cues one sidecar may hold (a day of one-second cues, as a film's track).
const MAX_CUES: usize = 86_400;
/// Bytes one sidecar may have.
const MAX_BYTES: u64 = 1 << 20;

/// Where to look: the film's folder and name, and the folder it must stay in.
#[derive(Clone, Debug)]
pub struct Beside {
    pub film: PathBuf,
    pub root: Option<PathBuf>,
}

/// Adds the sidecars of `b.film` to `index` as text tracks, numbered after
/// the film's own tracks. A sidecar that cannot be read is logged and left
/// out; the film is served all the same.
pub(super) fn add(index: &mut Index, b: &Beside) {
    let (Some(dir), Some(name)) = (b.film.parent(), b.film.file_name()) else {
        return;
    };
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    let names = listing
        .take(MAX_LISTED)
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok());
    let found = sidecar::beside(&name.to_string_lossy(), names);
    if found.left_out > 0 {
        log::info!(
            "{}: {} more subtitle files beside it are left out",
            b.film.display(),
            found.left_out
        );
    }
    let mut next = index.last_track_id();
    let mut more = Vec::new();
    for s in found.sidecars {
        let path = dir.join(&s.file);
        match read(&path, b.root.as_deref()) {
            Ok(cues) if !cues.cues.is_empty() => {
                if cues.skipped > 0 {
                    log::info!(
                        "{}: {} cues skipped, the first {}",
                        path.display(),
                        cues.skipped,
                        cues.first_skipped
                            .map(|e| e.to_string())
                            .unwrap_or_default()
                    );
                }
                next = next.saturating_add(1);
                more.push(Cues {
                    id: next,
                    cues: cues.cues,
                    markup: true,
                    tag: s.language,
                    ..Cues::default()
                });
            }
            Ok(_) => {}
            Err(e) => log::info!("{}: not served: {e}", path.display()),
        }
    }
    index.add_cues(more);
}

fn read(path: &Path, root: Option<&Path>) -> Result<sidecar::Subtitles, String> {
    let (file, meta, _) = open(path, root).map_err(|r| r.reason.into_owned())?;
    if meta.len() > MAX_BYTES {
        return Err(format!("{} bytes, more than {MAX_BYTES}", meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    sidecar::parse(&name, &bytes, MAX_CUES).map_err(|e| e.to_string())
}
