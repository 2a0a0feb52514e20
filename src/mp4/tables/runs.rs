//! Run-length tables: `stts` (durations), `ctts` (composition offsets) and
//! `sbgp` (sample groups) all map runs of samples to one value.

use super::{put_full, put_u32};
use crate::mp4::Error;
use crate::mp4::boxes::{FourCC, Reader};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub count: u32,
    /// The value as stored; `ctts` v1 offsets are signed and read with `as i32`.
    pub value: u32,
}

/// The runs of a table that cover a range of samples: `n` runs from run
/// `first`, the first and last cut to the range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Crop {
    pub first: usize,
    pub n: usize,
    pub first_count: u32,
    pub last_count: u32,
}

impl Crop {
    /// Bytes of its entries.
    pub fn len(&self) -> u64 {
        8 * self.n as u64
    }
}

/// A run-length table with its sample total.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Runs {
    pub runs: Vec<Run>,
    pub samples: u64,
}

impl Runs {
    /// Reads `entry_count` pairs of (count, value), as in `stts` and `ctts`.
    pub fn read(r: &mut Reader<'_>) -> Result<Runs, Error> {
        let n = r.count(8)?;
        let mut runs = Vec::with_capacity(n);
        let mut samples = 0u64;
        for _ in 0..n {
            let count = r.u32()?;
            let value = r.u32()?;
            if count == 0 {
                continue;
            }
            samples += u64::from(count);
            runs.push(Run { count, value });
        }
        Ok(Runs { runs, samples })
    }

    /// Which runs cover samples `[a, b)`, for producing them on demand.
    pub fn crop(&self, a: u64, b: u64) -> Crop {
        let mut first = 0u64;
        let mut crop = Crop::default();
        for (i, run) in self.runs.iter().enumerate() {
            let last = first + u64::from(run.count);
            let lo = first.max(a);
            let hi = last.min(b);
            if lo < hi {
                if crop.n == 0 {
                    crop.first = i;
                    // hi - lo <= run.count, a u32.
                    crop.first_count = (hi - lo) as u32;
                }
                crop.n += 1;
                crop.last_count = (hi - lo) as u32;
            }
            if last >= b {
                break;
            }
            first = last;
        }
        crop
    }

    /// Entry `i` of a crop, as (count, value).
    pub fn entry(&self, c: &Crop, i: u64) -> (u32, u32) {
        let run = usize::try_from(i)
            .ok()
            .and_then(|i| self.runs.get(c.first + i))
            .copied()
            .unwrap_or(Run { count: 0, value: 0 });
        let count = if i + 1 == c.n as u64 {
            c.last_count
        } else if i == 0 {
            c.first_count
        } else {
            run.count
        };
        (count, run.value)
    }

    /// Fills bytes `[from, ..)` of a crop's entries.
    pub fn fill(&self, c: &Crop, from: u64, out: &mut [u8]) {
        super::fill_entries(from, out, 8, |i, b| {
            let (count, value) = self.entry(c, i);
            b[..4].copy_from_slice(&count.to_be_bytes());
            b[4..].copy_from_slice(&value.to_be_bytes());
        });
    }

    /// A cursor where [`Cursor::mark`] left one: a later walk from there
    /// skips the runs before it. A mark from another table is clamped.
    pub fn cursor_at(&self, mark: Mark) -> Cursor<'_> {
        match self.runs.get(mark.idx) {
            Some(_) => Cursor {
                runs: &self.runs,
                idx: mark.idx,
                first: mark.first,
                sum: mark.sum,
            },
            None => self.cursor(),
        }
    }

    /// A forward cursor for per-sample look-ups.
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor {
            runs: &self.runs,
            idx: 0,
            first: 0,
            sum: 0,
        }
    }

    /// Sum of `value × count` over all runs (total duration for `stts`).
    /// Saturates: a hostile table cannot overflow it.
    pub fn total(&self) -> u64 {
        self.runs.iter().fold(0u64, |acc, r| {
            acc.saturating_add(u64::from(r.count) * u64::from(r.value))
        })
    }
}

/// Where a cursor stood, to start another there ([`Runs::cursor_at`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    idx: usize,
    first: u64,
    sum: u64,
}

/// Walks a run table by sample number; cheap when moving forward.
#[derive(Clone)]
pub struct Cursor<'a> {
    runs: &'a [Run],
    idx: usize,
    /// First sample of run `idx`.
    first: u64,
    /// Sum of values of all samples before `first`.
    sum: u64,
}

impl Cursor<'_> {
    pub fn mark(&self) -> Mark {
        Mark {
            idx: self.idx,
            first: self.first,
            sum: self.sum,
        }
    }

    fn rewind(&mut self) {
        self.idx = 0;
        self.first = 0;
        self.sum = 0;
    }

    fn advance_to(&mut self, sample: u64) -> Option<&Run> {
        // Step back run by run: planners look a few samples behind.
        while sample < self.first && self.idx > 0 {
            self.idx -= 1;
            let run = self.runs[self.idx];
            self.first -= u64::from(run.count);
            self.sum = self
                .sum
                .saturating_sub(u64::from(run.count) * u64::from(run.value));
        }
        loop {
            let run = self.runs.get(self.idx)?;
            let next = self.first + u64::from(run.count);
            if sample < next {
                return self.runs.get(self.idx);
            }
            self.sum = self
                .sum
                .saturating_add(u64::from(run.count) * u64::from(run.value));
            self.first = next;
            self.idx += 1;
        }
    }

    /// The value of `sample` (0 past the end of the table).
    pub fn value(&mut self, sample: u64) -> u32 {
        self.advance_to(sample).map_or(0, |r| r.value)
    }

    /// Sum of the values of all samples before `sample` (its decode time, for `stts`).
    pub fn sum_before(&mut self, sample: u64) -> u64 {
        match self.advance_to(sample).copied() {
            Some(run) => self
                .sum
                .saturating_add((sample - self.first) * u64::from(run.value)),
            None => self.sum,
        }
    }

    /// The first sample whose sum-before is ≥ `t`, i.e. the first sample
    /// starting at or after time `t` (for `stts`). Returns the sample count
    /// when every sample starts before `t`.
    pub fn first_at_or_after(&mut self, t: u64) -> u64 {
        // Every sample before the cursor's run starts before `t` unless `t`
        // lies behind it: a walk by rising times never starts over.
        if t < self.sum {
            self.rewind();
        }
        while let Some(run) = self.runs.get(self.idx) {
            let span = u64::from(run.count) * u64::from(run.value);
            if self.sum.saturating_add(span) >= t {
                if run.value == 0 {
                    return self.first;
                }
                let k = (t - self.sum).div_ceil(u64::from(run.value));
                return self.first + k.min(u64::from(run.count));
            }
            self.sum = self.sum.saturating_add(span);
            self.first += u64::from(run.count);
            self.idx += 1;
        }
        self.first
    }
}

/// Writes the head of an `stts`/`ctts` box whose entries (`crop`) follow.
pub fn write_head(out: &mut Vec<u8>, fourcc: &FourCC, version: u8, crop: &Crop) {
    put_u32(out, u32::try_from(16 + crop.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(fourcc);
    put_full(out, version, 0);
    put_u32(out, crop.n as u32);
}

/// A sample-to-group box (`sbgp`): its fixed fields and runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Sbgp {
    pub version: u8,
    pub flags: u32,
    pub grouping_type: FourCC,
    pub grouping_type_parameter: Option<u32>,
    pub runs: Runs,
}

impl Sbgp {
    pub fn read(body: &[u8]) -> Result<Sbgp, Error> {
        let mut r = Reader::new(body, *b"sbgp");
        let (version, flags) = r.full_box()?;
        let mut grouping_type = [0u8; 4];
        grouping_type.copy_from_slice(r.bytes(4)?);
        let grouping_type_parameter = if version == 1 { Some(r.u32()?) } else { None };
        let runs = Runs::read(&mut r)?;
        Ok(Sbgp {
            version,
            flags,
            grouping_type,
            grouping_type_parameter,
            runs,
        })
    }

    /// Writes the head of the `sbgp` whose entries (`crop`) follow.
    pub fn write_head(&self, out: &mut Vec<u8>, crop: &Crop) {
        let param = if self.grouping_type_parameter.is_some() {
            4
        } else {
            0
        };
        put_u32(
            out,
            u32::try_from(20 + param + crop.len()).unwrap_or(u32::MAX),
        );
        out.extend_from_slice(b"sbgp");
        put_full(out, self.version, self.flags);
        out.extend_from_slice(&self.grouping_type);
        if let Some(p) = self.grouping_type_parameter {
            put_u32(out, p);
        }
        put_u32(out, crop.n as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(v: &[(u32, u32)]) -> Runs {
        Runs {
            runs: v
                .iter()
                .map(|&(count, value)| Run { count, value })
                .collect(),
            samples: v.iter().map(|r| u64::from(r.0)).sum(),
        }
    }

    fn entries(t: &Runs, a: u64, b: u64) -> Vec<(u32, u32)> {
        let c = t.crop(a, b);
        let mut bytes = vec![0u8; c.len() as usize];
        t.fill(&c, 0, &mut bytes);
        bytes
            .chunks(8)
            .map(|e| {
                (
                    u32::from_be_bytes(e[..4].try_into().unwrap()),
                    u32::from_be_bytes(e[4..].try_into().unwrap()),
                )
            })
            .collect()
    }

    #[test]
    fn crop_splits_runs() {
        let t = runs(&[(3, 10), (2, 20), (4, 30)]);
        assert_eq!(entries(&t, 2, 7), [(1, 10), (2, 20), (2, 30)]);
        assert_eq!(entries(&t, 0, 9), [(3, 10), (2, 20), (4, 30)]);
        assert_eq!(entries(&t, 4, 4), []);
        assert_eq!(entries(&t, 5, 6), [(1, 30)]);
        assert_eq!(entries(&t, 1, 2), [(1, 10)]);
        // Past the end of the table: only what it covers.
        assert_eq!(entries(&t, 8, 20), [(1, 30)]);
    }

    #[test]
    fn cursor_sums_and_searches() {
        let t = runs(&[(3, 10), (2, 20)]);
        let mut c = t.cursor();
        assert_eq!(c.sum_before(0), 0);
        assert_eq!(c.sum_before(3), 30);
        assert_eq!(c.sum_before(4), 50);
        assert_eq!(c.sum_before(1), 10);
        assert_eq!(c.sum_before(5), 70);
        assert_eq!(c.value(4), 20);
        assert_eq!(c.first_at_or_after(0), 0);
        assert_eq!(c.first_at_or_after(25), 3);
        assert_eq!(c.first_at_or_after(30), 3);
        assert_eq!(c.first_at_or_after(31), 4);
        assert_eq!(c.first_at_or_after(1000), 5);
    }

    #[test]
    fn read_rejects_overlong_counts() {
        let body = [0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1];
        assert!(Runs::read(&mut Reader::new(&body, *b"stts")).is_err());
    }
}
