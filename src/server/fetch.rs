//! A remote body's bytes: read from the origin in `--origin-chunk` ranges,
//! one chunk ahead of the socket and never more than two held or asked for,
//! so a slow client paces the reads and a stream's memory stays bounded.
//! A stream that ends (its connection closed) aborts the reads it asked.

use super::remote::{Fetched, Link};
use crate::origin::{Fault, Object};
use bytes::Bytes;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use tokio::task::AbortHandle;

/// Chunks held or in flight per stream.
const AHEAD: usize = 2;

/// What [`Fetcher::take`] found.
pub enum Take {
    /// Bytes at the offset asked for: as many as were asked, or to the end
    /// of the chunk that holds them.
    Ready(Bytes),
    /// Asked of the origin; the stream goes on when the chunk arrives.
    Pending,
}

pub struct Fetcher {
    link: Arc<Link>,
    object: Arc<Object>,
    slot: usize,
    stream: u64,
    /// Chunks arrived, in file order.
    held: VecDeque<(u64, Bytes)>,
    /// Ranges asked for and not arrived.
    asked: Vec<Range<u64>>,
    /// What aborts each read asked, in the order of `asked`.
    reads: Vec<Option<AbortHandle>>,
    /// Where the body reads up to (the end of its last file byte).
    limit: u64,
    failed: Option<Fault>,
}

impl Fetcher {
    pub fn new(link: Arc<Link>, object: Arc<Object>, slot: usize, limit: u64) -> Fetcher {
        let stream = link.new_stream();
        let limit = limit.min(object.size);
        Fetcher {
            link,
            object,
            slot,
            stream,
            held: VecDeque::new(),
            asked: Vec::new(),
            reads: Vec::new(),
            limit,
            failed: None,
        }
    }

    /// Bytes held or asked for.
    pub fn chunks(&self) -> usize {
        self.held.len() + self.asked.len()
    }

    /// A read finished: kept if it is this stream's and still wanted.
    pub fn arrived(&mut self, c: Fetched) -> bool {
        if c.slot != self.slot || c.stream != self.stream {
            return false;
        }
        let Some(i) = self.asked.iter().position(|r| *r == c.range) else {
            return false;
        };
        self.asked.swap_remove(i);
        self.reads.swap_remove(i);
        match c.result {
            Ok(b) => {
                let at = self.held.partition_point(|(o, _)| *o < c.range.start);
                self.held.insert(at, (c.range.start, b));
            }
            Err(f) => self.failed = Some(f),
        }
        true
    }

    /// Up to `len` bytes of the object at `offset`.
    pub fn take(&mut self, offset: u64, len: u64) -> Result<Take, Fault> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        // What lies before the offset was sent: a body reads forward.
        while let Some((at, b)) = self.held.front()
            && at + b.len() as u64 <= offset
        {
            self.held.pop_front();
        }
        let hit = self.held.front().and_then(|(at, b)| {
            (*at <= offset).then(|| {
                // Within the chunk, so the difference fits its length.
                let from = (offset - at) as usize;
                let n = b
                    .len()
                    .min(from.saturating_add(usize::try_from(len).unwrap_or(usize::MAX)));
                b.slice(from..n)
            })
        });
        if let Some(b) = hit {
            self.ahead();
            return Ok(Take::Ready(b));
        }
        if !self.asked.iter().any(|r| r.contains(&offset)) {
            // A jump (the next range of a multipart body): start over there.
            self.held.clear();
            if self.chunks() < AHEAD {
                self.ask(offset);
            }
        }
        Ok(Take::Pending)
    }

    /// `len` bytes at `offset` in one piece (a patched run may straddle two
    /// chunks), or `Pending`.
    pub fn take_exact(&mut self, offset: u64, len: usize) -> Result<Option<Bytes>, Fault> {
        let Take::Ready(first) = self.take(offset, len as u64)? else {
            return Ok(None);
        };
        if first.len() == len {
            return Ok(Some(first));
        }
        let next = offset + first.len() as u64;
        match self.held.get(1) {
            Some((at, b)) if *at == next && first.len() + b.len() >= len => {
                let mut v = Vec::with_capacity(len);
                v.extend_from_slice(&first);
                v.extend_from_slice(&b[..len - first.len()]);
                Ok(Some(Bytes::from(v)))
            }
            _ => {
                self.ahead();
                Ok(None)
            }
        }
    }

    /// Asks for the chunk after the last one held or asked, if there is room.
    fn ahead(&mut self) {
        if self.chunks() >= AHEAD {
            return;
        }
        let end = self
            .held
            .iter()
            .map(|(at, b)| at + b.len() as u64)
            .chain(self.asked.iter().map(|r| r.end))
            .max();
        if let Some(end) = end
            && end < self.limit
        {
            self.ask(end);
        }
    }

    fn ask(&mut self, offset: u64) {
        let end = offset
            .saturating_add(self.link.origin.chunk)
            .min(self.limit.max(offset.saturating_add(1)))
            .min(self.object.size);
        if end <= offset {
            return;
        }
        self.asked.push(offset..end);
        let read = (self.link).fetch(self.slot, self.stream, self.object.clone(), offset..end);
        self.reads.push(read);
    }
}

impl Drop for Fetcher {
    /// Nobody reads what is on its way: the origin stops sending it, and
    /// reads not started never start.
    fn drop(&mut self) {
        for read in self.reads.drain(..).flatten() {
            read.abort();
        }
    }
}
