//! A request on its way through the stages ([`super::flow`]): what it
//! asked, its film, and where it is ([`Stage`]). A stage takes the walk
//! and returns a [`Step`]: the next stage, the job to wait for, or the
//! answer. It never calls another stage.

use super::answer::Prepared;
use super::cache::FileKey;
use super::jobs::{Job, JobKey};
use super::remote;
use super::source::Source;
use crate::manifest::Resource;
use crate::mp4::cmaf::Presentation;
use crate::mp4::{Index, Layout, Window};
use crate::origin::Object;
use crate::package::Want;
use crate::protect::Lock;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where a walk is.
pub(super) enum Stage {
    /// The film is named (and opened, for a file): its index is next.
    Find,
    /// The film's index is read.
    Indexed(Arc<Index>),
    /// The window is planned over this index next.
    Plan(Arc<Index>),
    /// The plan is built.
    Planned(Arc<Layout>, Option<Arc<Presentation>>),
    /// A protected film's media segment, laid out clear: to be encrypted.
    Seal(Arc<Layout>, Option<Arc<Presentation>>),
    /// The answer is made of this layout.
    Answer(Arc<Layout>),
}

/// What a stage returns.
pub(super) enum Step {
    Next(Stage),
    /// Run the job (or wait for the one already running under the key);
    /// its result says the next stage.
    Wait(JobKey, Job),
    Done(Box<Prepared>),
}

impl Step {
    pub(super) fn done(p: Prepared) -> Step {
        Step::Done(Box::new(p))
    }
}

/// A request with all it needs to go on.
pub struct Walk {
    pub(super) path: PathBuf,
    pub(super) opened: PathBuf,
    pub(super) source: Source,
    pub(super) key: FileKey,
    pub(super) modified: SystemTime,
    pub(super) window: Window,
    /// The film itself, or one of its HLS/DASH outputs (`PATH_INFO`).
    pub(super) resource: Resource,
    pub(super) method: Vec<u8>,
    pub(super) range: Option<Vec<u8>>,
    pub(super) if_range: Option<Vec<u8>>,
    pub(super) if_none_match: Option<Vec<u8>>,
    pub(super) if_modified_since: Option<Vec<u8>>,
    /// The page's origin (`Origin`), for `--cors`.
    pub(super) origin: Option<Vec<u8>>,
    /// What the caches held, for the log.
    pub(super) cache: &'static str,
    /// In a URL set: which film this is (from 1); 0 for a film on its own.
    pub(super) file: u8,
    /// A URL set's manifest goes in two stages. First every film's index
    /// is read (`set`: the films still to read; `indexed`: those read),
    /// their bytes counted against the set's budget and their key frames
    /// compared (`cuts`: where the segments of the first film whose cuts
    /// are known will start, and which film that is); then (`planning`)
    /// each film is planned, as a job if the plans together are large
    /// (`plan_jobs`).
    pub(super) set: VecDeque<Vec<u8>>,
    pub(super) indexed: VecDeque<Indexed>,
    pub(super) cuts: Option<(u8, Vec<f64>)>,
    pub(super) planning: bool,
    pub(super) plan_jobs: bool,
    /// The plans so far.
    pub(super) gathered: Vec<Arc<Presentation>>,
    /// A hash of the identities of the films gathered (for the entity tag).
    pub(super) set_tag: u64,
    /// How the film is protected (`--keys`), if it is.
    pub(super) lock: Option<Arc<Lock>>,
}

/// A film of a URL set's manifest whose index is read, waiting for its plan.
pub(super) struct Indexed {
    pub(super) file: u8,
    pub(super) key: FileKey,
    pub(super) path: PathBuf,
    pub(super) modified: SystemTime,
    pub(super) index: Arc<Index>,
}

impl Walk {
    /// A request that asks nothing yet: every field a placeholder.
    pub(super) fn blank() -> Walk {
        Walk {
            key: FileKey {
                dev: 0,
                ino: 0,
                size: 0,
                mtime: 0,
                mtime_nsec: 0,
            },
            modified: UNIX_EPOCH,
            window: Window::default(),
            resource: Resource::Progressive,
            path: PathBuf::new(),
            opened: PathBuf::new(),
            source: Source::object(Arc::from("")),
            method: b"GET".to_vec(),
            range: None,
            if_range: None,
            if_none_match: None,
            if_modified_since: None,
            origin: None,
            cache: "",
            file: 0,
            set: VecDeque::new(),
            indexed: VecDeque::new(),
            cuts: None,
            planning: false,
            plan_jobs: false,
            gathered: Vec::new(),
            set_tag: 0,
            lock: None,
        }
    }

    pub(super) fn want(&self) -> Want {
        Want {
            window: self.window,
            resource: self.resource,
        }
    }

    /// Whether the answer is a media segment to encrypt first.
    pub(super) fn seals(&self) -> bool {
        self.lock.is_some() && matches!(self.resource, Resource::Segment(..))
    }

    /// A URL set's manifest, which needs the plans of all its films.
    pub(super) fn gathering(&self) -> bool {
        self.file > 0 && matches!(self.resource, Resource::Master | Resource::Mpd)
    }

    /// Bytes the indexes read so far hold.
    pub(super) fn index_bytes(&self) -> usize {
        self.indexed.iter().map(|f| f.index.heap_bytes()).sum()
    }

    /// Keeps this film's index and moves to the set's next film to read,
    /// if any.
    pub(super) fn keep_index(&mut self, index: Arc<Index>) -> Option<Vec<u8>> {
        self.indexed.push_back(Indexed {
            file: self.file,
            key: self.key,
            path: self.path.clone(),
            modified: self.modified,
            index,
        });
        let next = self.set.pop_front()?;
        self.file = self.file.saturating_add(1);
        Some(next)
    }

    /// Moves to the next film to plan (its index, once read), if any.
    pub(super) fn next_plan(&mut self) -> Option<Arc<Index>> {
        let f = self.indexed.pop_front()?;
        self.file = f.file;
        self.key = f.key;
        self.path = f.path;
        self.modified = f.modified;
        Some(f.index)
    }

    /// Keeps this film's plan (in the set's order).
    pub(super) fn gather(&mut self, p: Arc<Presentation>) {
        self.gathered.push(p);
        let k = self.key;
        for word in [k.dev, k.ino, k.size, k.mtime as u64, k.mtime_nsec as u64] {
            self.set_tag = (self.set_tag ^ word).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The object is known: its identity keys the caches.
    pub(super) fn set_object(&mut self, o: Arc<Object>) {
        self.key = remote::file_key(&o);
        self.modified = o.modified;
        self.source.confirm(o);
    }
}
