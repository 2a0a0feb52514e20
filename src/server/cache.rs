//! Per-worker caches: indexes by file identity, bounded in bytes, and the
//! layouts of recent windows (players ask one window again with other Ranges).

use crate::mp4::{Index, Layout, Window};
use std::collections::HashMap;
use std::rc::Rc;

/// A file's identity: a changed or replaced file gets a new key.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
}

type WindowKey = (FileKey, u64, u64, bool);

fn window_key(f: FileKey, w: &Window) -> WindowKey {
    let bits = |v: Option<f64>| v.map_or(u64::MAX, f64::to_bits);
    (f, bits(w.start), bits(w.end), w.flash)
}

struct Entry<T> {
    value: T,
    bytes: usize,
    used: u64,
}

/// A byte-bounded map evicting the least recently used entry.
struct Lru<K, T> {
    map: HashMap<K, Entry<T>>,
    bytes: usize,
    budget: usize,
    clock: u64,
}

impl<K: std::hash::Hash + Eq + Copy, T: Clone> Lru<K, T> {
    fn new(budget: usize) -> Self {
        Lru {
            map: HashMap::new(),
            bytes: 0,
            budget,
            clock: 0,
        }
    }

    fn get(&mut self, k: &K) -> Option<T> {
        self.clock += 1;
        let e = self.map.get_mut(k)?;
        e.used = self.clock;
        Some(e.value.clone())
    }

    fn insert(&mut self, k: K, value: T, bytes: usize) {
        if bytes > self.budget {
            return;
        }
        self.clock += 1;
        if let Some(old) = self.map.insert(
            k,
            Entry {
                value,
                bytes,
                used: self.clock,
            },
        ) {
            self.bytes -= old.bytes;
        }
        self.bytes += bytes;
        while self.bytes > self.budget {
            let Some(oldest) = self.map.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| *k) else {
                break;
            };
            if let Some(e) = self.map.remove(&oldest) {
                self.bytes -= e.bytes;
            }
        }
    }
}

/// Most windows remembered per worker.
const LAYOUT_BUDGET: usize = 8 << 20;

pub struct Caches {
    indexes: Lru<FileKey, Rc<Index>>,
    layouts: Lru<WindowKey, Rc<Layout>>,
}

impl Caches {
    pub fn new(index_budget: u64) -> Caches {
        let budget = usize::try_from(index_budget).unwrap_or(usize::MAX);
        Caches {
            indexes: Lru::new(budget),
            layouts: Lru::new(LAYOUT_BUDGET.min(budget)),
        }
    }

    pub fn index(&mut self, key: FileKey) -> Option<Rc<Index>> {
        self.indexes.get(&key)
    }

    pub fn put_index(&mut self, key: FileKey, index: Rc<Index>) {
        let bytes = index.heap_bytes();
        self.indexes.insert(key, index, bytes);
    }

    pub fn layout(&mut self, key: FileKey, w: &Window) -> Option<Rc<Layout>> {
        self.layouts.get(&window_key(key, w))
    }

    pub fn put_layout(&mut self, key: FileKey, w: &Window, layout: Rc<Layout>) {
        let bytes = layout.mem_bytes() + 64 * layout.parts().len();
        self.layouts.insert(window_key(key, w), layout, bytes);
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
        l.insert(3, 3, 40);
        assert_eq!(l.get(&2), None, "2 was least recently used");
        assert_eq!(l.get(&1), Some(1));
        assert_eq!(l.get(&3), Some(3));
        assert_eq!(l.bytes, 80);
        l.insert(4, 4, 1000);
        assert_eq!(l.get(&4), None, "larger than the whole budget: not kept");
    }
}
