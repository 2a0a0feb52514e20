//! Work too long for the event loop: index builds, and plans of large
//! indexes, run on one helper thread per worker (started after fork), and
//! come back through a channel and a `mio::Waker`. Streams already flowing
//! keep flowing meanwhile.

use super::cache::{FileKey, Want, WindowKey};
use super::package::{self, Built};
use super::remote::{Link, Opened};
use crate::mp4::cmaf::{Presentation, Settings};
use crate::mp4::{self, Index};
use crate::origin::{Fault, Object};
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

/// What a job is for; requests waiting on the same key share one job.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum JobKey {
    Index(FileKey),
    Plan(WindowKey),
    /// An object of the origin, by key.
    Object(Arc<str>),
}

pub enum Job {
    Index {
        file: File,
        limits: mp4::Limits,
    },
    Plan {
        index: Arc<Index>,
        want: Want,
        style: mp4::Style,
        settings: Settings,
        known: Option<Arc<Presentation>>,
    },
    /// Open an object (or check `known`, whose index is cached) and build
    /// its index; runs on the origin's runtime, not the helper thread.
    Object {
        key: Arc<str>,
        known: Option<Object>,
        limits: mp4::Limits,
    },
}

pub enum Done {
    Index(Result<Arc<Index>, mp4::Error>),
    Plan(Result<Built, mp4::Error>),
    Object(Result<Opened, Fault>),
}

/// What the helper thread is asked.
enum Task {
    Run(JobKey, Job),
    /// Freeing a large index takes milliseconds of munmap: not on the loop.
    Drop(Box<dyn Send>),
}

/// The helper thread's end of the work: dropping it closes the channel,
/// which ends the thread after its current job (it is not waited for: a
/// worker that exits does not wait on a long build).
pub struct Jobs {
    tx: Sender<Task>,
    rx: Receiver<(JobKey, Done)>,
    /// Where origin jobs post their results, and how they wake the loop.
    done: Sender<(JobKey, Done)>,
    wake: Arc<dyn Fn() + Send + Sync>,
    link: Option<Arc<Link>>,
}

impl Jobs {
    /// Starts the helper thread; `wake` is called after each finished job.
    pub fn start(wake: impl Fn() + Send + Sync + 'static) -> io::Result<Jobs> {
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(wake);
        let (tx, jobs) = mpsc::channel::<Task>();
        let (done, rx) = mpsc::channel();
        let (done_remote, wake_remote) = (done.clone(), wake.clone());
        std::thread::Builder::new()
            .name("mp4-fcgi-jobs".into())
            .spawn(move || {
                // Streams come first: on a busy machine a long build yields
                // to the event loop rather than the other way round.
                // SAFETY: setpriority on this thread's own id, no pointers.
                let tid = unsafe { libc::gettid() };
                let _ = unsafe {
                    libc::setpriority(libc::PRIO_PROCESS, u32::try_from(tid).unwrap_or(0), 10)
                };
                for task in jobs {
                    let (key, job) = match task {
                        Task::Run(key, job) => (key, job),
                        Task::Drop(x) => {
                            drop(x);
                            continue;
                        }
                    };
                    let result = match job {
                        Job::Index { file, limits } => {
                            Done::Index(Index::build(&file, &limits).map(Arc::new))
                        }
                        Job::Plan {
                            index,
                            want,
                            style,
                            settings,
                            known,
                        } => Done::Plan(package::build(&index, &want, &style, &settings, known)),
                        Job::Object { .. } => continue,
                    };
                    if done.send((key, result)).is_err() {
                        return;
                    }
                    wake();
                }
            })?;
        Ok(Jobs {
            tx,
            rx,
            done: done_remote,
            wake: wake_remote,
            link: None,
        })
    }

    /// Origin jobs run on `link`'s runtime.
    pub fn set_link(&mut self, link: Arc<Link>) {
        self.link = Some(link);
    }

    pub fn submit(&self, key: JobKey, job: Job) {
        match job {
            Job::Object {
                key: k,
                known,
                limits,
            } => {
                let (done, wake) = (self.done.clone(), self.wake.clone());
                let Some(link) = &self.link else {
                    let _ = done.send((key, Done::Object(Err(Fault::Failed("no origin".into())))));
                    wake();
                    return;
                };
                link.open(k, known, limits, move |r| {
                    if done.send((key, Done::Object(r))).is_ok() {
                        wake();
                    }
                });
            }
            job => {
                let _ = self.tx.send(Task::Run(key, job));
            }
        }
    }

    /// Lets the helper thread drop `x` (a large index or what holds one).
    pub fn discard(&self, x: impl Send + 'static) {
        let _ = self.tx.send(Task::Drop(Box::new(x)));
    }

    /// Finished jobs, without waiting.
    pub fn finished(&self) -> impl Iterator<Item = (JobKey, Done)> + '_ {
        self.rx.try_iter()
    }
}
