//! Work too long for the event loop: index builds, and plans of large
//! indexes, run on one helper thread per worker (started after fork), and
//! come back through a channel and a `mio::Waker`. Streams already flowing
//! keep flowing meanwhile.

use super::cache::{FileKey, WindowKey};
use super::remote::{Link, Opened};
use crate::mp4::Layout;
use crate::mp4::cmaf::thumbs::Shots;
use crate::mp4::cmaf::{Presentation, Settings};
use crate::mp4::{self, Index};
use crate::origin::{Fault, Object};
use crate::package::{self, Built, Want};
use crate::protect::Lock;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, Receiver, Sender};

/// What a job is for; requests waiting on the same key share one job.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum JobKey {
    Index(FileKey),
    /// Boxed: a window's key is the largest, and keys travel in every message.
    Plan(Box<WindowKey>),
    /// An object of the origin, by key.
    Object(Arc<str>),
    /// A protected media segment, encrypted.
    Seal(Box<WindowKey>),
    /// A thumbnail or sprite, decoded.
    Picture(Box<WindowKey>),
}

pub enum Job {
    Index {
        file: File,
        limits: mp4::Limits,
        /// A local film's folder, for subtitle files beside it.
        sidecars: Option<super::sidecars::Beside>,
    },
    Plan {
        index: Arc<Index>,
        want: Want,
        style: mp4::Style,
        settings: Settings,
        known: Option<Arc<Presentation>>,
        lock: Option<Arc<Lock>>,
    },
    /// Encrypt media segment `n` of track `id`: read its samples from
    /// the film and encrypt them (too long for the event loop).
    Seal {
        film: Film,
        index: Arc<Index>,
        presentation: Arc<Presentation>,
        n: u32,
        id: u32,
        lock: Arc<Lock>,
    },
    /// Decode and encode a thumbnail or a sprite (on the picture thread,
    /// or for an object on the origin's runtime, one at a time either way).
    Picture { film: Film, shots: Box<Shots> },
    /// Open an object (or check `known`, whose index is cached) and build
    /// its index; runs on the origin's runtime, not the helper thread.
    Object {
        key: Arc<str>,
        known: Option<Object>,
        limits: mp4::Limits,
    },
}

/// What a sealing job reads: a file (on the helper thread) or an object
/// of the origin (on its runtime).
pub enum Film {
    File(File),
    Object(Arc<Object>),
}

pub enum Done {
    Index(Result<Arc<Index>, mp4::Error>),
    Plan(Result<Built, mp4::Error>),
    Seal(Result<Arc<Layout>, mp4::Error>),
    Picture(Result<Arc<Layout>, mp4::Error>),
    Object(Result<Opened, Fault>),
    /// The job panicked (caught): its waiters get a 500, the key is
    /// remembered as failed.
    Failed(String),
}

/// Set when every request waiting for a job has gone: a job not yet begun
/// is skipped, one under way checks it where it can.
pub type Cancel = Arc<AtomicBool>;

/// What a panic in a job said, for the answer and the log.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    format!("the job failed ({what})")
}

/// Runs a helper-thread job (`None`: not one of its kind).
pub(super) fn run(job: Job) -> Option<Done> {
    guarded(|| match job {
        Job::Index {
            file,
            limits,
            sidecars,
        } => Some(Done::Index(Index::build(&file, &limits).map(
            |mut index| {
                if let Some(b) = &sidecars {
                    super::sidecars::add(&mut index, b);
                }
                Arc::new(index)
            },
        ))),
        Job::Plan {
            index,
            want,
            style,
            settings,
            known,
            lock,
        } => Some(Done::Plan(package::build(
            &index,
            &want,
            &style,
            &settings,
            known,
            lock.as_deref(),
        ))),
        Job::Seal {
            film: Film::File(file),
            index,
            presentation,
            n,
            id,
            lock,
        } => Some(seal(&index, &presentation, n, id, &lock, &file)),
        Job::Seal { .. } | Job::Picture { .. } | Job::Object { .. } => None,
    })
}

/// Longest a picture may take to decode; past it, it is refused.
const PICTURE_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// The JPEG of `shots` read from `src`, given up when nobody waits any
/// more or it takes longer than [`PICTURE_TIME`].
fn picture(shots: &Shots, src: &dyn mp4::ReadAt, cancel: &Cancel) -> Done {
    let began = std::time::Instant::now();
    let stop = || cancel.load(Relaxed) || began.elapsed() > PICTURE_TIME;
    let made = crate::picture::render(shots, src, &stop);
    // A decoder's frames (tens of MB at 1080p) are freed to glibc, which
    // keeps what is under its thresholds (worker::heap_kept): given back
    // here, a worker returns to its size after each picture.
    super::worker::give_back_heap();
    Done::Picture(made.map(|jpeg| {
        let mut l = Layout::from_slices([mp4::Slice::Bytes(jpeg)]);
        l.set_own(l.len() as usize);
        Arc::new(l)
    }))
}

/// Encrypts media segment `n` of track `id`, reading `src`.
fn seal(
    index: &Arc<Index>,
    p: &Presentation,
    n: u32,
    id: u32,
    lock: &Lock,
    src: &dyn mp4::ReadAt,
) -> Done {
    Done::Seal(mp4::cmaf::sealed::segment(index, p, n, id, &lock.protection, src).map(Arc::new))
}

/// Runs `work`. A panic (a defect of ours, on some file) is caught and
/// answered as an error, so the thread and its waiters go on.
fn guarded(work: impl FnOnce() -> Option<Done>) -> Option<Done> {
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    ran.unwrap_or_else(|p| {
        let why = panic_text(&*p);
        log::error!("{why}; the worker goes on");
        Some(Done::Failed(why))
    })
}

/// The helper thread ended, so no index can be built here again: the
/// worker exits non-zero for the master to start a new one, rather than
/// keep a pid that answers nothing but cached films.
fn helper_gone() -> ! {
    log::error!("the helper thread ended; this worker exits for the master to replace it");
    std::process::exit(70)
}

/// Starts the picture thread: it decodes one picture at a time from a
/// local film, at the helper thread's lower priority.
fn pictures(
    done: Sender<(JobKey, Done)>,
    wake: Arc<dyn Fn() + Send + Sync>,
) -> io::Result<Sender<(JobKey, Job, Cancel)>> {
    let (tx, queue) = mpsc::channel::<(JobKey, Job, Cancel)>();
    std::thread::Builder::new()
        .name("mp4-fcgi-pictures".into())
        .spawn(move || {
            nice();
            for (key, job, cancel) in queue {
                if cancel.load(Relaxed) {
                    continue;
                }
                let Job::Picture {
                    film: Film::File(file),
                    shots,
                } = job
                else {
                    continue;
                };
                let result = guarded(|| Some(picture(&shots, &file, &cancel)))
                    .unwrap_or_else(|| Done::Failed("the job gave nothing".into()));
                if done.send((key, result)).is_err() {
                    return;
                }
                wake();
            }
        })?;
    Ok(tx)
}

/// Lowers the calling thread's priority: streams come first.
fn nice() {
    // SAFETY: setpriority on this thread's own id, no pointers.
    let tid = unsafe { libc::gettid() };
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, u32::try_from(tid).unwrap_or(0), 10) };
}

/// Runs file-system work nobody waits for on the helper thread.
#[derive(Clone)]
pub struct Chores(Sender<Task>);

impl Chores {
    pub fn run(&self, f: impl FnOnce() + Send + 'static) {
        if self.0.send(Task::Chore(Box::new(f))).is_err() {
            helper_gone();
        }
    }
}

/// What the helper thread is asked.
enum Task {
    Run(JobKey, Box<Job>, Cancel),
    /// Freeing a large index takes milliseconds of munmap: not on the loop.
    Drop(Box<dyn Send>),
    /// File-system work nobody waits for (writing an offload header file).
    Chore(Box<dyn FnOnce() + Send>),
}

/// The helper thread's end of the work: dropping it closes the channel,
/// which ends the thread after its current job (it is not waited for: a
/// worker that exits does not wait on a long build).
pub struct Jobs {
    tx: Sender<Task>,
    /// The picture thread's queue: decoding is kept off the helper thread,
    /// so index builds do not wait behind it.
    pictures: Sender<(JobKey, Job, Cancel)>,
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
        let pictures = pictures(done.clone(), wake.clone())?;
        std::thread::Builder::new()
            .name("mp4-fcgi-jobs".into())
            .spawn(move || {
                // Streams come first: on a busy machine a long build yields
                // to the event loop rather than the other way round.
                nice();
                for task in jobs {
                    let (key, job) = match task {
                        Task::Run(_, _, cancel) if cancel.load(Relaxed) => continue,
                        Task::Run(key, job, _) => (key, *job),
                        Task::Drop(x) => {
                            // A panicking destructor must not end the thread.
                            let _ =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                                    drop(x)
                                }));
                            continue;
                        }
                        Task::Chore(f) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                            continue;
                        }
                    };
                    let Some(result) = run(job) else { continue };
                    if done.send((key, result)).is_err() {
                        return;
                    }
                    wake();
                }
            })?;
        Ok(Jobs {
            tx,
            pictures,
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

    /// Starts `job`; `cancel` skips it if nobody waits by the time its turn comes.
    pub fn submit(&self, key: JobKey, job: Job, cancel: Cancel) {
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
                link.open(k, known, limits, cancel, move |r| {
                    if done.send((key, Done::Object(r))).is_ok() {
                        wake();
                    }
                });
            }
            Job::Seal {
                film: Film::Object(object),
                index,
                presentation,
                n,
                id,
                lock,
            } => self.read_object(key, object, cancel, move |src, _| {
                seal(&index, &presentation, n, id, &lock, src)
            }),
            Job::Picture {
                film: Film::Object(object),
                shots,
            } => self.read_object(key, object, cancel, move |src, stop| {
                picture(&shots, src, stop)
            }),
            job @ Job::Picture { .. } => {
                if self.pictures.send((key, job, cancel)).is_err() {
                    helper_gone();
                }
            }
            job => {
                if self.tx.send(Task::Run(key, Box::new(job), cancel)).is_err() {
                    helper_gone();
                }
            }
        }
    }

    /// Runs `work` over a stored film on the origin's runtime (guarded as
    /// helper jobs are); its result comes back as any job's.
    fn read_object(
        &self,
        key: JobKey,
        object: Arc<Object>,
        cancel: Cancel,
        work: impl FnOnce(&dyn mp4::ReadAt, &Cancel) -> Done + Send + 'static,
    ) {
        let (done, wake) = (self.done.clone(), self.wake.clone());
        let Some(link) = &self.link else {
            let _ = done.send((key, Done::Failed("no origin".into())));
            wake();
            return;
        };
        let stop = cancel.clone();
        let work = move |src: &dyn mp4::ReadAt| {
            guarded(|| Some(work(src, &stop)))
                .unwrap_or_else(|| Done::Failed("the job gave nothing".into()))
        };
        link.read_with(object, cancel, work, move |r| {
            if done.send((key, r)).is_ok() {
                wake();
            }
        });
    }

    /// Lets the helper thread drop `x` (a large index or what holds one).
    pub fn discard(&self, x: impl Send + 'static) {
        if self.tx.send(Task::Drop(Box::new(x))).is_err() {
            helper_gone();
        }
    }

    /// A handle that runs chores on the helper thread.
    pub fn chores(&self) -> Chores {
        Chores(self.tx.clone())
    }

    /// Finished jobs, without waiting.
    pub fn finished(&self) -> impl Iterator<Item = (JobKey, Done)> + '_ {
        self.rx.try_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_panicking_job_is_an_answer() {
        let r = guarded(|| panic!("a defect on some file"));
        assert!(matches!(r, Some(Done::Failed(ref why)) if why.contains("a defect on some file")));
    }

    #[test]
    fn a_cancelled_job_is_skipped_and_the_next_runs() {
        let jobs = Jobs::start(|| {}).unwrap();
        let key = |n: u32| JobKey::Object(Arc::from(format!("k{n}").as_str()));
        for n in 1..=3 {
            let cancel = Cancel::default();
            cancel.store(n == 2, Relaxed);
            let job = Job::Index {
                file: tempfile::tempfile().unwrap(),
                sidecars: None,
                limits: mp4::Limits {
                    max_moov: 1 << 20,
                    ..Default::default()
                },
            };
            jobs.submit(key(n), job, cancel);
        }
        let mut done = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while done.len() < 2 && Instant::now() < deadline {
            done.extend(jobs.finished().map(|(k, _)| k));
            std::thread::sleep(Duration::from_millis(5));
        }
        // A late third answer would show here.
        std::thread::sleep(Duration::from_millis(50));
        done.extend(jobs.finished().map(|(k, _)| k));
        assert_eq!(done, [key(1), key(3)]);
    }
}
