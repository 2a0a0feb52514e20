//! Per-worker caches: indexes by file identity within `--cache-size`, files
//! that failed to index (so a bad file costs one build, not one per
//! request), indexes too big for the budget while requests still hold them,
//! and the layouts of recent windows (players ask one window again with
//! other Ranges).

use crate::manifest::Resource;
use crate::mp4::cmaf::Presentation;
use crate::mp4::{Index, Layout, Window};
use crate::origin::Object;
use crate::package::Want;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// A file's identity: a changed or replaced file gets a new key.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
}

pub type WindowKey = (FileKey, u64, u64, bool, Resource, crate::mp4::Tracks);

pub fn window_key(f: FileKey, w: &Want) -> WindowKey {
    let bits = |v: Option<f64>| v.map_or(u64::MAX, f64::to_bits);
    (
        f,
        bits(w.window.start),
        bits(w.window.end),
        w.window.flash,
        w.resource,
        w.window.tracks,
    )
}

/// The key of a window's segment plan (shared by all its packaged outputs).
fn plan_key(f: FileKey, w: &Window) -> WindowKey {
    window_key(
        f,
        &Want {
            window: *w,
            resource: Resource::Progressive,
        },
    )
}

/// Why a file cannot be served: the answer to give every request for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub reason: String,
}

struct Entry<T> {
    value: T,
    bytes: usize,
    used: u64,
    /// Times it was found.
    hits: u32,
}

/// A byte-bounded map evicting the least recently used entry.
struct Lru<K, T> {
    map: HashMap<K, Entry<T>>,
    order: BTreeMap<u64, K>,
    bytes: usize,
    budget: usize,
    clock: u64,
}

impl<K: Hash + Eq + Copy, T: Clone> Lru<K, T> {
    fn new(budget: usize) -> Self {
        Lru {
            map: HashMap::new(),
            order: BTreeMap::new(),
            bytes: 0,
            budget,
            clock: 0,
        }
    }

    fn get(&mut self, k: &K) -> Option<T> {
        self.get_counted(k).map(|(v, _)| v)
    }

    /// The value and how many times it has been found, this time included.
    fn get_counted(&mut self, k: &K) -> Option<(T, u32)> {
        self.clock += 1;
        let e = self.map.get_mut(k)?;
        self.order.remove(&e.used);
        e.used = self.clock;
        e.hits = e.hits.saturating_add(1);
        self.order.insert(e.used, *k);
        Some((e.value.clone(), e.hits))
    }

    /// Counts `more` bytes against the budget for an entry that grew.
    fn grow(&mut self, k: &K, more: usize) -> Vec<(K, T)> {
        let Some(e) = self.map.get_mut(k) else {
            return Vec::new();
        };
        e.bytes += more;
        self.bytes += more;
        self.evict()
    }

    fn evict(&mut self) -> Vec<(K, T)> {
        let mut evicted = Vec::new();
        while self.bytes > self.budget {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(e) = self.map.remove(&oldest) {
                self.bytes -= e.bytes;
                evicted.push((oldest, e.value));
            }
        }
        evicted
    }

    fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    /// Inserts, evicting the least recently used; returns what it evicted.
    /// An entry larger than the whole budget is not kept.
    fn insert(&mut self, k: K, value: T, bytes: usize) -> Vec<(K, T)> {
        let mut evicted = Vec::new();
        if bytes > self.budget {
            return evicted;
        }
        self.remove(&k);
        self.clock += 1;
        self.map.insert(
            k,
            Entry {
                value,
                bytes,
                used: self.clock,
                hits: 0,
            },
        );
        self.order.insert(self.clock, k);
        self.bytes += bytes;
        evicted.extend(self.evict());
        evicted
    }

    fn remove(&mut self, k: &K) {
        if let Some(e) = self.map.remove(k) {
            self.order.remove(&e.used);
            self.bytes -= e.bytes;
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        let gone: Vec<K> = self.map.keys().filter(|k| !keep(k)).copied().collect();
        for k in gone {
            self.remove(&k);
        }
    }
}

/// Share of the index budget the layouts may use on top of it: a quarter
/// (16 MB by default) keeps the heads of a few popular windows of a long
/// film (a 2-hour film's moov is about 5 MB).
const LAYOUT_SHARE: usize = 4;
/// Byte budget of the failures remembered per worker.
const FAILURE_BUDGET: usize = 1 << 20;

pub struct Caches {
    indexes: Lru<FileKey, Arc<Index>>,
    failures: Lru<FileKey, Failure>,
    /// Every index some request still holds, cached or not: an index over
    /// the budget is shared by its concurrent requests, not rebuilt.
    live: HashMap<FileKey, Weak<Index>>,
    layouts: Lru<WindowKey, Arc<Layout>>,
    /// Windows whose plan failed (a film's claims too large to package,
    /// say): refused again without planning.
    plan_failures: Lru<WindowKey, Failure>,
    /// Segment plans of packaged windows, beside their indexes.
    presentations: Lru<WindowKey, Arc<Presentation>>,
    /// Objects of the origin, with when each was last confirmed.
    pub objects: Objects,
}

impl Caches {
    pub fn new(index_budget: u64) -> Caches {
        let budget = usize::try_from(index_budget).unwrap_or(usize::MAX);
        Caches {
            indexes: Lru::new(budget),
            failures: Lru::new(FAILURE_BUDGET),
            live: HashMap::new(),
            layouts: Lru::new(budget / LAYOUT_SHARE),
            plan_failures: Lru::new(FAILURE_BUDGET),
            presentations: Lru::new(budget / LAYOUT_SHARE),
            objects: Default::default(),
        }
    }

    /// The index of a file, or why it cannot be served; `None`: unknown.
    pub fn index(&mut self, key: FileKey) -> Option<Result<Arc<Index>, Failure>> {
        if let Some(i) = self.indexes.get(&key) {
            return Some(Ok(i));
        }
        if let Some(i) = self.live.get(&key).and_then(Weak::upgrade) {
            return Some(Ok(i));
        }
        self.failures.get(&key).map(Err)
    }

    /// Bytes the caches hold.
    pub fn bytes(&self) -> usize {
        self.indexes.bytes
            + self.layouts.bytes
            + self.failures.bytes
            + self.plan_failures.bytes
            + self.presentations.bytes
    }

    /// Whether the index budget holds this file's index (else a request
    /// that uses it keeps it alive on its own).
    pub fn retains(&self, key: FileKey) -> bool {
        self.indexes.contains(&key)
    }

    /// Caches an index; returns the indexes evicted to make room (freeing
    /// a large one takes a while: the caller chooses where).
    pub fn put_index(&mut self, key: FileKey, index: Arc<Index>) -> Vec<Arc<Index>> {
        let bytes = index.heap_bytes();
        self.live.insert(key, Arc::downgrade(&index));
        let mut gone = Vec::new();
        for (k, old) in self.indexes.insert(key, index, bytes) {
            // A cached layout keeps its index alive: let both go.
            self.layouts.retain(|w| w.0 != k);
            self.presentations.retain(|w| w.0 != k);
            gone.push(old);
        }
        if self.live.len() > 2 * self.indexes.map.len() + 64 {
            self.live.retain(|_, w| w.strong_count() > 0);
        }
        gone
    }

    pub fn put_failure(&mut self, key: FileKey, f: Failure) {
        let bytes = 64 + f.reason.len();
        self.failures.insert(key, f, bytes);
    }

    /// Why a window could not be planned, if that is remembered.
    pub fn plan_failure(&mut self, key: &WindowKey) -> Option<Failure> {
        self.plan_failures.get(key)
    }

    pub fn put_plan_failure(&mut self, key: WindowKey, f: Failure) {
        let bytes = 128 + f.reason.len();
        self.plan_failures.insert(key, f, bytes);
    }

    /// A window's layout. From its second use on, its generated head is
    /// kept with it (within the layouts' budget), so repeats copy bytes.
    pub fn layout(&mut self, key: FileKey, w: &Want) -> Option<Arc<Layout>> {
        let k = window_key(key, w);
        let (layout, hits) = self.layouts.get_counted(&k)?;
        // A head over half the budget would push out every other window.
        let fits = usize::try_from(layout.head_len()).is_ok_and(|n| n <= self.layouts.budget / 2);
        if hits >= 2 && !layout.is_materialized() && fits {
            let more = layout.materialize();
            // What the budget lets go are layouts only: their indexes stay cached.
            drop(self.layouts.grow(&k, more));
        }
        Some(layout)
    }

    /// Whether the layouts' budget holds this window's layout.
    pub fn holds_layout(&self, key: FileKey, w: &Want) -> bool {
        self.layouts.contains(&window_key(key, w))
    }

    pub fn put_layout(&mut self, key: FileKey, w: &Want, layout: Arc<Layout>) {
        // Only layouts whose index stays cached: else the layout would keep
        // an index the budget let go.
        if self.indexes.contains(&key) {
            let bytes = layout.heap_bytes();
            self.layouts.insert(window_key(key, w), layout, bytes);
        }
    }

    /// The most one segment plan may take and still be kept.
    pub fn plan_budget(&self) -> usize {
        self.presentations.budget
    }

    /// A window's segment plan, if kept.
    pub fn presentation(&mut self, key: FileKey, w: &Window) -> Option<Arc<Presentation>> {
        self.presentations.get(&plan_key(key, w))
    }

    pub fn put_presentation(&mut self, key: FileKey, w: &Window, p: Arc<Presentation>) {
        if self.indexes.contains(&key) {
            let bytes = p.heap_bytes();
            self.presentations.insert(plan_key(key, w), p, bytes);
        }
    }
}

/// Objects remembered per worker; beyond it, stale ones are forgotten first.
const MAX_OBJECTS: usize = 8192;

/// Objects the worker knows, and when the origin last confirmed each.
#[derive(Default)]
pub struct Objects {
    map: HashMap<Arc<str>, (Arc<Object>, Instant)>,
}

impl Objects {
    /// The object and whether it was confirmed within `fresh`.
    pub fn get(&self, key: &str, fresh: Duration, now: Instant) -> Option<(Arc<Object>, bool)> {
        self.map
            .get(key)
            .map(|(o, at)| (o.clone(), now.saturating_duration_since(*at) < fresh))
    }

    pub fn put(&mut self, key: Arc<str>, o: Arc<Object>, now: Instant, fresh: Duration) {
        if self.map.len() >= MAX_OBJECTS && !self.map.contains_key(&key) {
            self.map
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < fresh);
            if self.map.len() >= MAX_OBJECTS {
                self.map.clear();
            }
        }
        self.map.insert(key, (o, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let mut l: Lru<u32, u32> = Lru::new(100);
        l.insert(1, 1, 40);
        l.insert(2, 2, 40);
        assert_eq!(l.get(&1), Some(1));
        assert_eq!(
            l.insert(3, 3, 40),
            vec![(2, 2)],
            "2 was least recently used"
        );
        assert_eq!(l.get(&2), None);
        assert_eq!(l.get(&1), Some(1));
        assert_eq!(l.get(&3), Some(3));
        assert_eq!(l.bytes, 80);
        l.insert(4, 4, 1000);
        assert_eq!(l.get(&4), None, "larger than the whole budget: not kept");
        l.insert(1, 9, 10);
        assert_eq!((l.get(&1), l.bytes), (Some(9), 50), "replaced, not doubled");
    }
}
