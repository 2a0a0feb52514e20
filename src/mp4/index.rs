use super::{Error, Layout, Limits, ReadAt, Window};

/// Everything the engine knows about one source file, built once and cached.
#[derive(Debug)]
pub struct Index {
    _private: (),
}

/// A summary of an [`Index`] for people (`mp4-fcgi info`).
#[derive(Clone, Debug)]
pub struct Info {
    pub file_size: u64,
    pub moov_offset: u64,
    pub moov_size: u64,
    pub fragmented: bool,
    pub fragments: usize,
    pub duration: f64,
    pub tracks: Vec<TrackInfo>,
}

#[derive(Clone, Debug)]
pub struct TrackInfo {
    pub id: u32,
    pub handler: String,
    pub codec: String,
    pub timescale: u32,
    pub duration: f64,
    pub samples: u64,
    pub sync_samples: u64,
}

impl Index {
    /// Scans the top-level boxes and indexes every track of the `moov`.
    pub fn build(_src: &dyn ReadAt, _limits: &Limits) -> Result<Index, Error> {
        Err(Error::Unsupported("engine under construction".into()))
    }

    /// Film duration in seconds.
    pub fn duration(&self) -> f64 {
        0.0
    }

    /// Approximate heap bytes held, for cache accounting.
    pub fn heap_bytes(&self) -> usize {
        0
    }

    pub fn info(&self) -> Info {
        unimplemented!()
    }

    /// Plans the output for `window`.
    pub fn plan(&self, _window: &Window) -> Result<Layout, Error> {
        Err(Error::Unsupported("engine under construction".into()))
    }
}

impl std::fmt::Display for Info {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "file size:  {} bytes", self.file_size)?;
        writeln!(f, "moov:       {} bytes at offset {}", self.moov_size, self.moov_offset)?;
        writeln!(f, "duration:   {:.3} s", self.duration)?;
        if self.fragmented {
            writeln!(f, "fragmented: yes ({} fragments)", self.fragments)?;
        } else {
            writeln!(f, "fragmented: no")?;
        }
        for t in &self.tracks {
            writeln!(
                f,
                "track {}: {} {} timescale {} duration {:.3} s, {} samples, {} sync",
                t.id, t.handler, t.codec, t.timescale, t.duration, t.samples, t.sync_samples
            )?;
        }
        Ok(())
    }
}
