//! Sample-to-chunk box (`stsc`): runs of chunks with equal sample counts.

use super::{put_full, put_u32};
use crate::mp4::Error;
use crate::mp4::boxes::Reader;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// 1-based number of the run's first chunk.
    pub first_chunk: u32,
    pub samples_per_chunk: u32,
    pub sample_description_index: u32,
}

fn invalid(reason: &'static str) -> Error {
    Error::Invalid {
        fourcc: *b"stsc",
        reason,
    }
}

pub fn read(body: &[u8]) -> Result<Vec<Entry>, Error> {
    let mut r = Reader::new(body, *b"stsc");
    r.full_box()?;
    let n = r.count(12)?;
    let mut v: Vec<Entry> = Vec::with_capacity(n);
    for _ in 0..n {
        let e = Entry {
            first_chunk: r.u32()?,
            samples_per_chunk: r.u32()?,
            sample_description_index: r.u32()?,
        };
        let after = v.last().map_or(0, |p| p.first_chunk);
        if e.first_chunk <= after {
            return Err(invalid("first_chunk values must start at 1 and increase"));
        }
        // Every chunk holds a sample, so output chunk i is source chunk c0 + i.
        if e.samples_per_chunk == 0 {
            return Err(invalid("samples_per_chunk is 0"));
        }
        v.push(e);
    }
    if v.first().is_some_and(|e| e.first_chunk != 1) {
        return Err(invalid("the first entry must start at chunk 1"));
    }
    Ok(v)
}

/// One source chunk as the walk meets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based chunk number.
    pub index: u64,
    /// The `stsc` entry it belongs to.
    pub entry: usize,
    /// 0-based number of its first sample.
    pub first_sample: u64,
    pub samples: u32,
    pub sample_description_index: u32,
}

/// Walks chunks in order, starting at the chunk that holds a given sample.
pub struct Chunks<'a> {
    entries: &'a [Entry],
    chunk_count: u64,
    entry: usize,
    chunk: u64,
    first_sample: u64,
}

impl<'a> Chunks<'a> {
    /// Positions the walk at the chunk holding `sample`, stepping through
    /// the entries from the first: the reference [`Table::chunks_at`]'s
    /// jump is tested against.
    #[cfg(test)]
    pub fn at(entries: &'a [Entry], chunk_count: u64, sample: u64) -> Chunks<'a> {
        Chunks {
            entries,
            chunk_count,
            entry: 0,
            chunk: 0,
            first_sample: 0,
        }
        .seek(sample)
    }

    /// Steps from the current entry to the chunk holding `sample`.
    fn seek(mut self, sample: u64) -> Chunks<'a> {
        while let Some(e) = self.entries.get(self.entry) {
            let spc = u64::from(e.samples_per_chunk);
            let run_samples = (self.run_end() - self.chunk).saturating_mul(spc);
            if sample < self.first_sample.saturating_add(run_samples) {
                // spc > 0 here, since run_samples > 0.
                let k = (sample - self.first_sample) / spc;
                self.chunk += k;
                self.first_sample += k * spc;
                return self;
            }
            self.skip_run(run_samples);
        }
        self
    }

    /// Moves to the next entry's first chunk, past the current entry's run
    /// of `run_samples` samples.
    fn skip_run(&mut self, run_samples: u64) {
        self.first_sample = self.first_sample.saturating_add(run_samples);
        self.chunk = self.run_end();
        self.entry += 1;
    }

    /// One past the last 0-based chunk of the current entry's run.
    fn run_end(&self) -> u64 {
        let next = self
            .entries
            .get(self.entry + 1)
            .map_or(self.chunk_count, |n| u64::from(n.first_chunk - 1));
        next.min(self.chunk_count).max(self.chunk)
    }
}

impl Iterator for Chunks<'_> {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        loop {
            let e = *self.entries.get(self.entry)?;
            if self.chunk < self.run_end() {
                let c = Chunk {
                    index: self.chunk,
                    entry: self.entry,
                    first_sample: self.first_sample,
                    samples: e.samples_per_chunk,
                    sample_description_index: e.sample_description_index,
                };
                self.chunk += 1;
                self.first_sample += u64::from(e.samples_per_chunk);
                return Some(c);
            }
            self.entry += 1;
        }
    }
}

/// Number of samples that `entries` place in `chunk_count` chunks.
#[cfg(test)]
pub fn samples_covered(entries: &[Entry], chunk_count: u64) -> u64 {
    Chunks::at(entries, chunk_count, u64::MAX).first_sample
}

/// A track's `stsc` with where each entry's run starts, so a walk begins at
/// any sample after a binary search: stepping from the first entry cost a
/// segment of a 2-hour film thousands of entries (a crafted file, millions).
#[derive(Clone, Debug, Default)]
pub struct Table {
    entries: Vec<Entry>,
    /// Per entry: its run's first chunk (0-based) and first sample.
    starts: Vec<(u64, u64)>,
    chunk_count: u64,
    samples: u64,
}

impl Table {
    pub fn new(entries: Vec<Entry>, chunk_count: u64) -> Table {
        let mut starts = Vec::with_capacity(entries.len());
        // The walk of `Chunks::seek` through every entry, recording each
        // entry's start as it passes.
        let mut w = Chunks {
            entries: &entries,
            chunk_count,
            entry: 0,
            chunk: 0,
            first_sample: 0,
        };
        while let Some(e) = entries.get(w.entry) {
            starts.push((w.chunk, w.first_sample));
            let spc = u64::from(e.samples_per_chunk);
            w.skip_run((w.run_end() - w.chunk).saturating_mul(spc));
        }
        let samples = w.first_sample;
        Table {
            entries,
            starts,
            chunk_count,
            samples,
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Number of samples the entries place in the track's chunks.
    pub fn samples_covered(&self) -> u64 {
        self.samples
    }

    /// The walk from the chunk holding `sample`.
    pub fn chunks_at(&self, sample: u64) -> Chunks<'_> {
        let e = self
            .starts
            .partition_point(|s| s.1 <= sample)
            .saturating_sub(1);
        let (chunk, first_sample) = self.starts.get(e).copied().unwrap_or_default();
        Chunks {
            entries: &self.entries,
            chunk_count: self.chunk_count,
            entry: e,
            chunk,
            first_sample,
        }
        .seek(sample)
    }

    /// Plans the `stsc` of samples `[a, b)`, `a < b`; `None` when no chunk
    /// holds them.
    pub fn crop(&self, a: u64, b: u64) -> Option<Crop> {
        let first = self.chunks_at(a).next()?;
        let last = self.chunks_at(b.checked_sub(1)?).next()?;
        crop(&self.entries, self.chunk_count, first, last, a, b)
    }

    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * 12 + self.starts.capacity() * 16
    }
}

/// The `stsc` of samples `[a, b)`: a first entry for the output's first
/// chunk (cut at `a`), the source entries in between, and one for the last
/// chunk (cut at `b`) unless it repeats the one before.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Crop {
    /// Source chunk of the first sample: output chunk i is source chunk c0 + i.
    pub c0: u64,
    /// Output chunks.
    pub chunks: u64,
    /// Samples before `a` in chunk c0.
    pub skipped: u64,
    head: Entry,
    /// Source entries copied, renumbered.
    mid: std::ops::Range<usize>,
    tail: Option<Entry>,
}

impl Crop {
    pub fn entries(&self) -> u64 {
        1 + self.mid.len() as u64 + u64::from(self.tail.is_some())
    }

    /// Entry `i`.
    pub fn entry(&self, entries: &[Entry], i: u64) -> Entry {
        let mid = self.mid.len() as u64;
        if i == 0 {
            return self.head;
        }
        if i <= mid {
            let e = entries
                .get(self.mid.start + (i - 1) as usize)
                .copied()
                .unwrap_or(self.head);
            // Renumber: a source run starting at chunk fc starts at
            // output chunk fc - c0 (1-based), never before chunk 2.
            let fc = (u64::from(e.first_chunk) - 1).max(self.c0 + 1) - self.c0 + 1;
            return Entry {
                first_chunk: fc as u32,
                ..e
            };
        }
        self.tail.unwrap_or(self.head)
    }

    pub fn fill(&self, entries: &[Entry], from: u64, out: &mut [u8]) {
        super::fill_entries(from, out, 12, |i, b| {
            let e = self.entry(entries, i);
            b[..4].copy_from_slice(&e.first_chunk.to_be_bytes());
            b[4..8].copy_from_slice(&e.samples_per_chunk.to_be_bytes());
            b[8..].copy_from_slice(&e.sample_description_index.to_be_bytes());
        });
    }

    pub fn write_head(&self, out: &mut Vec<u8>) {
        let n = self.entries();
        put_u32(out, u32::try_from(16 + 12 * n).unwrap_or(u32::MAX));
        out.extend_from_slice(b"stsc");
        put_full(out, 0, 0);
        put_u32(out, n as u32);
    }
}

/// The `stsc` of samples `[a, b)` whose first and last samples are in
/// chunks `first` and `last`.
fn crop(
    entries: &[Entry],
    chunk_count: u64,
    first: Chunk,
    last: Chunk,
    a: u64,
    b: u64,
) -> Option<Crop> {
    let same = |x: &Entry, spc: u32, sdi: u32| {
        x.samples_per_chunk == spc && x.sample_description_index == sdi
    };
    let end_first = first.first_sample + u64::from(first.samples);
    // At most a chunk's samples, a u32.
    let k0 = (end_first.min(b) - a) as u32;
    let head = Entry {
        first_chunk: 1,
        samples_per_chunk: k0,
        sample_description_index: first.sample_description_index,
    };
    let mut crop = Crop {
        c0: first.index,
        chunks: last.index - first.index + 1,
        skipped: a - first.first_sample,
        head,
        mid: 0..0,
        tail: None,
    };
    if last.index == first.index {
        return Some(crop);
    }
    // Source entries with chunks strictly between the first and the last.
    let covers_next = |e: usize| {
        let end = entries
            .get(e + 1)
            .map_or(chunk_count, |n| u64::from(n.first_chunk) - 1);
        end > first.index + 1
    };
    let m0 = if covers_next(first.entry) {
        first.entry
    } else {
        first.entry + 1
    };
    let starts_before_last = |e: &Entry| u64::from(e.first_chunk) - 1 < last.index;
    let m1 = if entries.get(last.entry).is_some_and(starts_before_last) {
        last.entry + 1
    } else {
        last.entry
    };
    let mut mid = if last.index > first.index + 1 {
        m0..m1.max(m0)
    } else {
        0..0
    };
    if mid
        .clone()
        .next()
        .and_then(|e| entries.get(e))
        .is_some_and(|e| same(e, k0, head.sample_description_index))
        && entries
            .get(mid.start)
            .is_some_and(|e| u64::from(e.first_chunk) - 1 <= first.index + 1)
    {
        // The first chunk's run continues unchanged: one entry covers both.
        mid.start += 1;
    }
    let k1 = (b - last.first_sample) as u32;
    let before = mid
        .clone()
        .last()
        .and_then(|e| entries.get(e))
        .copied()
        .unwrap_or(head);
    if !same(&before, k1, last.sample_description_index) {
        crop.tail = Some(Entry {
            first_chunk: (last.index - first.index + 1) as u32,
            samples_per_chunk: k1,
            sample_description_index: last.sample_description_index,
        });
    }
    crop.mid = mid;
    Some(crop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(first_chunk: u32, spc: u32) -> Entry {
        Entry {
            first_chunk,
            samples_per_chunk: spc,
            sample_description_index: 1,
        }
    }

    #[test]
    fn walks_from_any_sample() {
        // Chunks 0-1 hold 3 samples, chunk 2 holds 1, chunks 3.. hold 2.
        let t = [e(1, 3), e(3, 1), e(4, 2)];
        assert_eq!(samples_covered(&t, 5), 3 + 3 + 1 + 2 + 2);
        let c: Vec<_> = Chunks::at(&t, 5, 4)
            .map(|c| (c.index, c.first_sample))
            .collect();
        assert_eq!(c, vec![(1, 3), (2, 6), (3, 7), (4, 9)]);
        assert_eq!(Chunks::at(&t, 5, 6).next().unwrap().index, 2);
        assert_eq!(Chunks::at(&t, 5, 11).next(), None);
    }

    #[test]
    fn rejects_unordered_chunks() {
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 2];
        for v in [1u32, 1, 1, 1, 1, 1] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        assert!(read(&body).is_err());
    }

    #[test]
    fn zero_samples_per_chunk_is_refused_and_cannot_loop() {
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 1];
        for v in [1u32, 0, 1] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        assert!(read(&body).is_err());
        let t = [e(1, 0)];
        assert_eq!(samples_covered(&t, 1_000_000), 0);
        assert_eq!(Chunks::at(&t, 1_000_000, 5).next(), None);
        assert_eq!(Chunks::at(&t, 1000, 0).count(), 0);
    }

    /// The samples per output chunk a crop describes.
    fn expand(entries: &[Entry], c: &Crop) -> Vec<u32> {
        let n = c.entries();
        let es: Vec<Entry> = (0..n).map(|i| c.entry(entries, i)).collect();
        assert_eq!(es[0].first_chunk, 1);
        assert!(es.windows(2).all(|w| w[0].first_chunk < w[1].first_chunk));
        (1..=c.chunks)
            .map(|k| {
                es.iter()
                    .rev()
                    .find(|e| u64::from(e.first_chunk) <= k)
                    .unwrap()
                    .samples_per_chunk
            })
            .collect()
    }

    #[test]
    fn crop_matches_a_walk_for_every_window() {
        // Chunks 0-1 hold 3 samples, chunk 2 holds 1, chunks 3-5 hold 2.
        let t = [e(1, 3), e(3, 1), e(4, 2)];
        let total = samples_covered(&t, 6);
        let table = Table::new(t.to_vec(), 6);
        for a in 0..total {
            for b in a + 1..=total {
                let c = table.crop(a, b).unwrap();
                let want: Vec<u32> = Chunks::at(&t, 6, a)
                    .take_while(|c| c.first_sample < b)
                    .map(|c| {
                        let s0 = c.first_sample.max(a);
                        let s1 = (c.first_sample + u64::from(c.samples)).min(b);
                        (s1 - s0) as u32
                    })
                    .collect();
                assert_eq!(expand(&t, &c), want, "[{a}, {b})");
                assert_eq!(c.chunks as usize, want.len());
            }
        }
        // An unchanged run is one entry.
        let c = table.crop(7, 13).unwrap();
        assert_eq!(c.entries(), 1);
    }

    #[test]
    fn a_table_walks_from_any_sample_as_the_first_entry_does() {
        // Empty runs (first_chunk past the chunks, equal first chunks
        // clamped), runs of one chunk, and a long last run.
        let tables: [(&[Entry], u64); 5] = [
            (&[e(1, 3), e(3, 1), e(4, 2)], 6),
            (&[e(1, 2), e(2, 5), e(3, 1), e(9, 4)], 5),
            (&[e(1, 1)], 1),
            (&[e(1, 7), e(2, 7), e(3, 2)], 4),
            (&[e(1, 2), e(4, 3), e(5, 1)], 3),
        ];
        for (t, chunks) in tables {
            let table = Table::new(t.to_vec(), chunks);
            let total = samples_covered(t, chunks);
            assert_eq!(table.samples_covered(), total);
            for s in 0..total + 3 {
                let want: Vec<Chunk> = Chunks::at(t, chunks, s).collect();
                let got: Vec<Chunk> = table.chunks_at(s).collect();
                assert_eq!(got, want, "{t:?} from sample {s}");
            }
        }
    }

    #[test]
    fn a_table_agrees_with_the_walk_on_random_tables() {
        // xorshift: the same tables on every run.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..500 {
            let entries = 1 + next(8) as usize;
            let mut t = Vec::new();
            let mut first = 1;
            for _ in 0..entries {
                t.push(e(first, 1 + next(4) as u32));
                first += 1 + next(3) as u32;
            }
            // Sometimes fewer chunks than the entries name, sometimes more.
            let chunks = next(u64::from(first) + 3);
            let table = Table::new(t.clone(), chunks);
            let total = samples_covered(&t, chunks);
            assert_eq!(table.samples_covered(), total, "{t:?} in {chunks} chunks");
            for s in 0..total + 2 {
                let want: Vec<Chunk> = Chunks::at(&t, chunks, s).collect();
                let got: Vec<Chunk> = table.chunks_at(s).collect();
                assert_eq!(got, want, "{t:?} in {chunks} chunks, from sample {s}");
            }
        }
    }
}
