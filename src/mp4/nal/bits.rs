//! An RBSP bit reader over a whole NAL unit (H.264 7.3.1, H.265 7.3.1.1):
//! each emulation prevention byte (the `03` of `00 00 03`) is skipped as it
//! is met, and the reader counts the bytes of the NAL unit as stored, so a
//! header's length comes out in the bytes a subsample map counts.

/// The NAL unit ended early, or a value broke its syntax's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Invalid;

pub(crate) type Result<T> = std::result::Result<T, Invalid>;

pub(crate) struct Bits<'a> {
    nal: &'a [u8],
    /// The next byte of `nal` to load.
    next: usize,
    /// The byte being read, and how many of its bits are still unread.
    byte: u8,
    left: u32,
}

/// `nal[i]` is an emulation prevention byte: a `03` after two zero bytes.
/// The zeros before it are data (a `03` is never one), so two bytes of
/// context decide it.
fn is_emulation_prevention(nal: &[u8], i: usize) -> bool {
    i >= 2 && nal.get(i - 2..=i) == Some(&[0, 0, 3][..])
}

impl<'a> Bits<'a> {
    pub(crate) fn new(nal: &'a [u8]) -> Self {
        Bits {
            nal,
            next: 0,
            byte: 0,
            left: 0,
        }
    }

    pub(crate) fn flag(&mut self) -> Result<bool> {
        if self.left == 0 {
            if is_emulation_prevention(self.nal, self.next) {
                self.next += 1;
            }
            self.byte = *self.nal.get(self.next).ok_or(Invalid)?;
            self.next += 1;
            self.left = 8;
        }
        self.left -= 1;
        Ok(self.byte >> self.left & 1 == 1)
    }

    /// `u(n)`, `n` at most 32.
    pub(crate) fn u(&mut self, n: u32) -> Result<u32> {
        debug_assert!(n <= 32);
        let mut v = 0u64;
        for _ in 0..n {
            v = v << 1 | u64::from(self.flag()?);
        }
        u32::try_from(v).map_err(|_| Invalid)
    }

    /// Skips `n` bits; each is read, so a long skip ends with the input.
    pub(crate) fn skip(&mut self, n: u32) -> Result<()> {
        for _ in 0..n {
            self.flag()?;
        }
        Ok(())
    }

    /// `ue(v)` (9.1): more than 31 leading zeros would not fit 32 bits.
    pub(crate) fn ue(&mut self) -> Result<u32> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros > 31 {
                return Err(Invalid);
            }
        }
        let rest = u64::from(self.u(zeros)?);
        u32::try_from((1u64 << zeros) - 1 + rest).map_err(|_| Invalid)
    }

    /// `ue(v)` whose range the syntax bounds by `max`.
    pub(crate) fn ue_max(&mut self, max: u32) -> Result<u32> {
        let v = self.ue()?;
        if v > max {
            return Err(Invalid);
        }
        Ok(v)
    }

    /// `se(v)` (9.1.1): code k is (-1)^(k+1) Ceil(k / 2).
    pub(crate) fn se(&mut self) -> Result<i32> {
        let k = i64::from(self.ue()?);
        let magnitude = (k + 1) / 2;
        i32::try_from(if k % 2 == 1 { magnitude } else { -magnitude }).map_err(|_| Invalid)
    }

    /// The reader stands on a byte boundary of the RBSP.
    pub(crate) fn aligned(&self) -> bool {
        self.left == 0
    }

    /// Bytes of the NAL unit read so far, as stored: up to and including
    /// the byte that holds the last bit read, with the emulation prevention
    /// bytes before it. One right after it is left to what follows.
    pub(crate) fn bytes_read(&self) -> usize {
        self.next
    }

    /// `more_rbsp_data()` (7.2): whether a bit is left before the RBSP's
    /// stop bit, the last one bit of the NAL unit (trailing zero bytes, and
    /// `cabac_zero_word`s with their emulation prevention bytes, aside).
    #[cfg(test)]
    pub(crate) fn more_rbsp_data(&self) -> bool {
        let last = (0..self.nal.len())
            .rev()
            .find(|&i| self.nal[i] != 0 && !is_emulation_prevention(self.nal, i));
        let Some(last) = last else {
            return false;
        };
        let stop = last * 8 + 7 - self.nal[last].trailing_zeros() as usize;
        self.next * 8 - (self.left as usize) < stop
    }
}
