//! Work too long for the event loop: index builds, and plans of large
//! indexes, run on one helper thread per worker (started after fork), and
//! come back through a channel and a `mio::Waker`. Streams already flowing
//! keep flowing meanwhile.

use super::cache::{FileKey, WindowKey};
use crate::mp4::{self, Index, Layout, Window};
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

/// What a job is for; requests waiting on the same key share one job.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum JobKey {
    Index(FileKey),
    Plan(WindowKey),
}

pub enum Job {
    Index {
        file: File,
        limits: mp4::Limits,
    },
    Plan {
        index: Arc<Index>,
        window: Window,
        style: mp4::Style,
    },
}

pub enum Done {
    Index(Result<Arc<Index>, mp4::Error>),
    Plan(Result<Arc<Layout>, mp4::Error>),
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
}

impl Jobs {
    /// Starts the helper thread; `wake` is called after each finished job.
    pub fn start(wake: impl Fn() + Send + 'static) -> io::Result<Jobs> {
        let (tx, jobs) = mpsc::channel::<Task>();
        let (done, rx) = mpsc::channel();
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
                            window,
                            style,
                        } => Done::Plan(mp4::plan(&index, &window, &style).map(Arc::new)),
                    };
                    if done.send((key, result)).is_err() {
                        return;
                    }
                    wake();
                }
            })?;
        Ok(Jobs { tx, rx })
    }

    pub fn submit(&self, key: JobKey, job: Job) {
        let _ = self.tx.send(Task::Run(key, job));
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
