//! Sample-to-chunk box (`stsc`): runs of chunks with equal sample counts.

use super::{put_full, put_u32};
use crate::mp4::Error;
use crate::mp4::boxes::{Reader, begin_box, end_box};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// Positions the walk at the chunk holding `sample`.
    pub fn at(entries: &'a [Entry], chunk_count: u64, sample: u64) -> Chunks<'a> {
        let mut w = Chunks {
            entries,
            chunk_count,
            entry: 0,
            chunk: 0,
            first_sample: 0,
        };
        while let Some(e) = entries.get(w.entry) {
            let end_chunk = w.run_end();
            let spc = u64::from(e.samples_per_chunk);
            let run_samples = (end_chunk - w.chunk).saturating_mul(spc);
            if sample < w.first_sample.saturating_add(run_samples) {
                // spc > 0 here, since run_samples > 0.
                let k = (sample - w.first_sample) / spc;
                w.chunk += k;
                w.first_sample += k * spc;
                return w;
            }
            w.first_sample = w.first_sample.saturating_add(run_samples);
            w.chunk = end_chunk;
            w.entry += 1;
        }
        w
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
pub fn samples_covered(entries: &[Entry], chunk_count: u64) -> u64 {
    Chunks::at(entries, chunk_count, u64::MAX).first_sample
}

/// Writes an `stsc` for output chunks given as (samples, description index).
pub fn write(out: &mut Vec<u8>, chunks: impl Iterator<Item = (u32, u32)>) {
    let at = begin_box(out, b"stsc");
    put_full(out, 0, 0);
    let count_at = out.len();
    put_u32(out, 0);
    let mut n = 0u32;
    let mut last = None;
    for (i, (spc, sdi)) in chunks.enumerate() {
        if last != Some((spc, sdi)) {
            put_u32(out, i as u32 + 1);
            put_u32(out, spc);
            put_u32(out, sdi);
            n += 1;
            last = Some((spc, sdi));
        }
    }
    out[count_at..count_at + 4].copy_from_slice(&n.to_be_bytes());
    end_box(out, at);
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
    fn zero_samples_per_chunk_cannot_loop() {
        let t = [e(1, 0)];
        assert_eq!(samples_covered(&t, 1_000_000), 0);
        assert_eq!(Chunks::at(&t, 1_000_000, 5).next(), None);
        // No chunk holds sample 0 either: the walk is empty, not endless.
        assert_eq!(Chunks::at(&t, 1000, 0).count(), 0);
    }
}
