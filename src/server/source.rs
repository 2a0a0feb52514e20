//! Where a request's film comes from: a file on disk or an object of the
//! origin. The rest of a request asks its [`Source`] (which job builds the
//! index, what the body reads, whether lighttpd may read the file itself,
//! what the body holds in memory) and never matches on where a film lives.

use super::answer::Prepared;
use super::cache::FileKey;
use super::config::Config;
use super::jobs::{Film, Job, JobKey};
use super::remote::Link;
use crate::mp4;
use crate::origin::Object;
use std::fs::File;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

pub(super) enum Source {
    File(Rc<File>),
    /// An object of the origin: known once opened (or remembered).
    Object {
        key: Arc<str>,
        object: Option<Arc<Object>>,
    },
}

impl Source {
    pub(super) fn file(f: File) -> Source {
        Source::File(Rc::new(f))
    }

    /// An object of the origin, not opened yet.
    pub(super) fn object(key: Arc<str>) -> Source {
        Source::Object { key, object: None }
    }

    /// An object not opened or confirmed yet: its key.
    pub(super) fn unconfirmed(&self) -> Option<&Arc<str>> {
        match self {
            Source::Object { key, object: None } => Some(key),
            _ => None,
        }
    }

    /// The object's key, for an object.
    pub(super) fn object_key(&self) -> Option<&Arc<str>> {
        match self {
            Source::Object { key, .. } => Some(key),
            Source::File(_) => None,
        }
    }

    /// The object as the origin described it, once known.
    pub(super) fn confirm(&mut self, o: Arc<Object>) {
        if let Source::Object { object, .. } = self {
            *object = Some(o);
        }
    }

    /// The job that builds the film's index (`file` is the film's identity).
    pub(super) fn index_job(
        &self,
        file: FileKey,
        limits: &mp4::Limits,
        sidecars: Option<super::sidecars::Beside>,
    ) -> io::Result<(JobKey, Job)> {
        Ok(match self {
            Source::File(f) => (
                JobKey::Index(file),
                Job::Index {
                    file: f.try_clone()?,
                    limits: limits.clone(),
                    sidecars,
                },
            ),
            Source::Object { key, .. } => open_job(key.clone(), None, limits),
        })
    }

    /// The film for a job that reads it (a sealing): the file, or the
    /// object once known.
    pub(super) fn film(&self) -> Option<Film> {
        match self {
            Source::File(f) => f.try_clone().ok().map(Film::File),
            Source::Object { object, .. } => object.clone().map(Film::Object),
        }
    }

    /// The file lighttpd may send itself (`X-Sendfile2`): a local one.
    pub(super) fn local_file(&self) -> Option<&File> {
        match self {
            Source::File(f) => Some(f),
            Source::Object { .. } => None,
        }
    }

    /// The upper bound of the film's index in bytes that can be known
    /// without building it: its `moov`'s size (0 when unknown).
    pub(super) fn moov_bound(&self, size: u64, moov_size: impl Fn(&File, u64) -> u64) -> u64 {
        match self {
            Source::File(f) => moov_size(f, size),
            Source::Object { .. } => 0,
        }
    }

    /// Bytes the body holds beyond its layout while it is read: up to two
    /// chunks of a remote film.
    pub(super) fn body_charge(&self, config: &Config) -> usize {
        match (self, &config.origin) {
            (Source::Object { .. }, Some(o)) => usize::try_from(2 * o.chunk).unwrap_or(usize::MAX),
            _ => 0,
        }
    }

    /// Points the answer's body at the film: the file, or the object read
    /// through the link.
    pub(super) fn feed(&self, p: &mut Prepared, link: Option<&Arc<Link>>) {
        match self {
            Source::File(f) => p.file = Some(f.clone()),
            Source::Object { object, .. } => {
                p.remote = link
                    .zip(object.as_ref())
                    .map(|(l, o)| (l.clone(), o.clone()))
            }
        }
    }
}

/// The job that opens the object `key` (or checks `known`, whose index the
/// worker holds) and builds its index.
pub(super) fn open_job(
    key: Arc<str>,
    known: Option<Object>,
    limits: &mp4::Limits,
) -> (JobKey, Job) {
    (
        JobKey::Object(key.clone()),
        Job::Object {
            key,
            known,
            limits: limits.clone(),
        },
    )
}
