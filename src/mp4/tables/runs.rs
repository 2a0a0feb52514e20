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

    /// The runs covering samples `[a, b)`.
    pub fn crop(&self, a: u64, b: u64) -> Vec<Run> {
        let mut out = Vec::new();
        let mut first = 0u64;
        for run in &self.runs {
            let last = first + u64::from(run.count);
            let lo = first.max(a);
            let hi = last.min(b);
            if lo < hi {
                // hi - lo <= run.count, a u32.
                out.push(Run {
                    count: (hi - lo) as u32,
                    value: run.value,
                });
            }
            if last >= b {
                break;
            }
            first = last;
        }
        out
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
        self.rewind();
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

/// Writes an `stts` or `ctts` box for `runs`.
pub fn write(out: &mut Vec<u8>, fourcc: &FourCC, version: u8, runs: &[Run]) {
    let size = 16 + 8 * runs.len();
    put_u32(out, size as u32);
    out.extend_from_slice(fourcc);
    put_full(out, version, 0);
    put_u32(out, runs.len() as u32);
    for r in runs {
        put_u32(out, r.count);
        put_u32(out, r.value);
    }
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

    /// Writes the `sbgp` for samples `[a, b)`.
    pub fn write_crop(&self, out: &mut Vec<u8>, a: u64, b: u64) {
        let runs = self.runs.crop(a, b);
        let at = crate::mp4::boxes::begin_box(out, b"sbgp");
        put_full(out, self.version, self.flags);
        out.extend_from_slice(&self.grouping_type);
        if let Some(p) = self.grouping_type_parameter {
            put_u32(out, p);
        }
        put_u32(out, runs.len() as u32);
        for r in runs {
            put_u32(out, r.count);
            put_u32(out, r.value);
        }
        crate::mp4::boxes::end_box(out, at);
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

    #[test]
    fn crop_splits_runs() {
        let t = runs(&[(3, 10), (2, 20), (4, 30)]);
        assert_eq!(t.crop(2, 7), runs(&[(1, 10), (2, 20), (2, 30)]).runs);
        assert_eq!(t.crop(0, 9), t.runs);
        assert_eq!(t.crop(4, 4), vec![]);
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
