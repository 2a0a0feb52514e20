//! What the bounded-work tests share (tests/bounded_*.rs): crafted films,
//! process figures (CPU, RSS), and a FastCGI connection with deadlines.
#![allow(dead_code)]

use super::common::boxes::{be32, be64, bx, co64, ftyp, full, mvhd, stco, stsd, trak};
use super::common::{Client, Pool};
use super::synth;
use mp4_fcgi::fcgi;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Samples of the small film: 100 of 100 bytes, 10 per chunk, 10 s at 1000 Hz.
pub const SMALL_SAMPLES: u32 = 100;
pub const SMALL_PER_CHUNK: u32 = 10;
pub const SMALL_SIZE: u32 = 100;

/// The sample tables of the small film (chunk offsets as given).
pub fn small_tables(offsets: &[u64]) -> Vec<u8> {
    [
        stsd(),
        full(b"stts", 0, &be32(&[1, SMALL_SAMPLES, 100])),
        full(b"stsc", 0, &be32(&[1, 1, SMALL_PER_CHUNK, 1])),
        full(b"stsz", 0, &be32(&[SMALL_SIZE, SMALL_SAMPLES])),
        stco(offsets),
    ]
    .concat()
}

/// A one-track 10 s film whose `stbl` holds what `stbl(chunk offsets)`
/// returns; the `moov` before or after the `mdat`.
pub fn small_film(moov_first: bool, stbl: impl Fn(&[u64]) -> Vec<u8>) -> Vec<u8> {
    let chunks = SMALL_SAMPLES / SMALL_PER_CHUNK;
    let chunk_len = u64::from(SMALL_PER_CHUNK * SMALL_SIZE);
    let payload = vec![0u8; (SMALL_SAMPLES * SMALL_SIZE) as usize];
    let moov = |data_start: u64| {
        let offsets: Vec<u64> = (0..u64::from(chunks))
            .map(|c| data_start + c * chunk_len)
            .collect();
        bx(
            b"moov",
            &[mvhd(1000, 10_000), trak(1, 1000, 10_000, &stbl(&offsets))].concat(),
        )
    };
    let ftyp = ftyp();
    let mdat = bx(b"mdat", &payload);
    if moov_first {
        let len = moov(0).len() as u64;
        let moov = moov(ftyp.len() as u64 + len + 8);
        [ftyp, moov, mdat].concat()
    } else {
        let moov = moov(ftyp.len() as u64 + 8);
        [ftyp, mdat, moov].concat()
    }
}

/// ~8.5 KB: ftyp, mdat, then a moov whose one video track has an empty
/// `stco` followed by a 1000-entry `co64` with offsets near 2^64.
pub fn crafted_co64_file() -> Vec<u8> {
    let offsets: Vec<u64> = (0..1000u64).map(|i| u64::MAX - 4095 + i).collect();
    let stbl = [
        stsd(),
        full(b"stts", 0, &be32(&[1, 1000, 512])),
        full(b"stsc", 0, &be32(&[1, 1, 1, 1])),
        full(b"stsz", 0, &be32(&[100, 1000])),
        stco(&[]),
        co64(&offsets),
    ]
    .concat();
    let moov = bx(
        b"moov",
        &[mvhd(1000, 40_000), trak(1, 12800, 512_000, &stbl)].concat(),
    );
    [ftyp(), bx(b"mdat", &[0; 100]), moov].concat()
}

/// Fragmented, ~3.3 MB: 1000 one-second fragments, each a `moof` of 100
/// `traf`s whose `tfhd` carries an absolute base_data_offset (100 000 in all).
pub fn tfhd_storm() -> Vec<u8> {
    let stbl = [
        stsd(),
        full(b"stts", 0, &be32(&[0])),
        full(b"stsc", 0, &be32(&[0])),
        full(b"stsz", 0, &be32(&[0, 0])),
        stco(&[]),
    ]
    .concat();
    let mvex = bx(b"mvex", &full(b"trex", 0, &be32(&[1, 1, 1000, 0, 0])));
    let moov = bx(
        b"moov",
        &[mvhd(1000, 0), trak(1, 1000, 0, &stbl), mvex].concat(),
    );
    let mut out = [ftyp(), moov].concat();
    for i in 0..1000u32 {
        let at = out.len() as u64;
        let tfhd = full(b"tfhd", 0x01, &[be32(&[1]), be64(&[at])].concat());
        let mut trafs = bx(
            b"traf",
            &[
                tfhd.clone(),
                full(b"tfdt", 1 << 24, &be64(&[u64::from(i) * 1000])),
                full(b"trun", 0, &be32(&[1])),
            ]
            .concat(),
        );
        for _ in 1..100 {
            trafs.extend(bx(b"traf", &tfhd));
        }
        let mfhd = full(b"mfhd", 0, &be32(&[i + 1]));
        out.extend(bx(b"moof", &[mfhd, trafs].concat()));
        out.extend(bx(b"mdat", &[0; 16]));
    }
    out
}

/// ~31 MB: 100 000 minimal one-sample video tracks, the moov after the mdat.
pub fn hundred_thousand_tracks() -> Vec<u8> {
    let ftyp = ftyp();
    let data = ftyp.len() as u64 + 8;
    // A sample entry with only its reserved bytes and data_reference_index.
    let entry = bx(b"avc1", &[0, 0, 0, 0, 0, 0, 0, 1]);
    let template = trak(
        1,
        1000,
        1000,
        &[
            full(b"stsd", 0, &[be32(&[1]), entry].concat()),
            full(b"stts", 0, &be32(&[1, 1, 1000])),
            full(b"stsc", 0, &be32(&[1, 1, 1, 1])),
            full(b"stsz", 0, &be32(&[16, 1])),
            stco(&[data]),
        ]
        .concat(),
    );
    // tkhd's track_ID: trak header, tkhd header, version/flags, two times.
    let id_at = 8 + 8 + 4 + 8;
    assert_eq!(&template[12..16], b"tkhd");
    let mut traks = Vec::with_capacity(template.len() * 100_000);
    for id in 1..=100_000u32 {
        let at = traks.len();
        traks.extend_from_slice(&template);
        traks[at + id_at..at + id_at + 4].copy_from_slice(&id.to_be_bytes());
    }
    let moov = bx(b"moov", &[mvhd(1000, 1000), traks].concat());
    [ftyp, bx(b"mdat", &[0; 16]), moov].concat()
}

/// A film with a moov of ~62 MB: one video track of 5 million samples with
/// per-sample sizes (period 7) and composition offsets (period 4), a key
/// frame every 50 samples; moov first, sparse media.
pub fn huge_moov_film() -> (Vec<u8>, u64) {
    // Tables repeat every 28 samples: built once, then copied.
    let blocks: u32 = 178_572;
    let n = 28 * blocks;
    let per_chunk: u32 = 10;
    let size = |i: u32| 100 + i % 7;
    let stsz_block = be32(&(0..28).map(size).collect::<Vec<_>>());
    let ctts_block = be32(
        &(0..28u32)
            .flat_map(|i| [1, [2, 5, 0, 1][(i % 4) as usize] * 512])
            .collect::<Vec<_>>(),
    );
    let stsz = [be32(&[0, n]), stsz_block.repeat(blocks as usize)].concat();
    let ctts = [be32(&[n]), ctts_block.repeat(blocks as usize)].concat();
    let sync: Vec<u32> = (0..n).step_by(50).map(|s| s + 1).collect();
    let stss = [be32(&[sync.len() as u32]), be32(&sync)].concat();
    let chunks = n.div_ceil(per_chunk);
    // Chunk c holds samples 10c..10c+9: its length repeats every 7 chunks.
    let chunk_len: Vec<u64> = (0..7u32)
        .map(|c| {
            (c * per_chunk..(c + 1) * per_chunk)
                .map(|i| u64::from(size(i)))
                .sum()
        })
        .collect();
    let mut rel = Vec::with_capacity(chunks as usize);
    let mut pos = 0u64;
    for c in 0..chunks {
        rel.push(pos);
        pos += chunk_len[(c % 7) as usize];
    }
    let last = n - (chunks - 1) * per_chunk;
    let stsc = if last == per_chunk {
        be32(&[1, 1, per_chunk, 1])
    } else {
        be32(&[2, 1, per_chunk, 1, chunks, last, 1])
    };
    // stco closes the stbl, which closes every box up to the moov: its
    // entries are the moov's last bytes, patched once the moov's size is known.
    let moov = {
        let stbl = [
            stsd(),
            full(b"stts", 0, &be32(&[1, n, 512])),
            full(b"ctts", 0, &ctts),
            full(b"stss", 0, &stss),
            full(b"stsc", 0, &stsc),
            full(b"stsz", 0, &stsz),
            stco(&rel),
        ]
        .concat();
        let dur = n / 25 * 1000;
        bx(
            b"moov",
            &[mvhd(1000, dur), trak(1, 12800, n * 512, &stbl)].concat(),
        )
    };
    let ftyp = ftyp();
    let data = ftyp.len() as u64 + moov.len() as u64 + 8;
    let mut head = [ftyp, moov].concat();
    let table = head.len() - rel.len() * 4;
    for (entry, o) in head[table..].chunks_exact_mut(4).zip(&rel) {
        entry.copy_from_slice(&u32::try_from(o + data).unwrap().to_be_bytes());
    }
    head.extend_from_slice(&u32::try_from(pos + 8).unwrap().to_be_bytes());
    head.extend_from_slice(b"mdat");
    (head, data + pos)
}

/// Writes `head` and extends the file to `size` with a hole.
pub fn write_sparse(path: &Path, head: &[u8], size: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(head).unwrap();
    f.set_len(size).unwrap();
}

pub fn write_synth(path: &Path, film: &synth::Sparse) {
    write_sparse(path, &film.head, film.size);
}

/// Top-level boxes of a file (fourcc, count).
pub fn count_top(path: &Path, fourcc: &[u8; 4]) -> usize {
    let d = std::fs::read(path).unwrap();
    let (mut pos, mut n) = (0usize, 0);
    while pos + 8 <= d.len() {
        let size = u32::from_be_bytes(d[pos..pos + 4].try_into().unwrap()) as usize;
        n += usize::from(&d[pos + 4..pos + 8] == fourcc);
        if size < 8 {
            break;
        }
        pos += size;
    }
    n
}

// --- processes --------------------------------------------------------------

/// User + system CPU time of a process, all its threads, in milliseconds.
pub fn cpu_ms(pid: i32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("worker {pid} is gone: {e}"));
    let f: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split_whitespace().collect();
    // After the command name: field 3 (state) is f[0]; utime, stime are 14, 15.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 * 1000.0 / hz
}

/// SIGQUIT to the master when dropped: it SIGKILLs its workers at once, so a
/// worker stuck in a loop or a blocking open does not outlive the test.
pub struct QuitOnDrop(pub i32);

impl Drop for QuitOnDrop {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0, libc::SIGQUIT) };
    }
}

/// Whether the binary knows `--max-inflight` (the bounded-work rework adds it).
pub fn max_inflight_args(size: &str) -> Vec<String> {
    let help = std::process::Command::new(super::common::BIN)
        .arg("--help")
        .output()
        .unwrap();
    if String::from_utf8_lossy(&help.stdout).contains("--max-inflight") {
        vec!["--max-inflight".into(), size.into()]
    } else {
        Vec::new()
    }
}

/// `mp4-fcgi cut`: exit code (None: killed by a signal) and stderr.
pub fn cut_status(input: &Path, output: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(super::common::BIN)
        .arg("cut")
        .arg(input)
        .arg(output)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// --- a FastCGI connection with deadlines -------------------------------------

/// What reading a response gave.
#[derive(Debug, Default)]
pub struct Resp {
    /// 0 when no response head arrived.
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Kept only when asked for.
    pub body: Vec<u8>,
    pub body_len: u64,
    /// END_REQUEST arrived.
    pub complete: bool,
    /// Why reading stopped before END_REQUEST (deadline, a budget, EOF).
    pub cut: Option<String>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// A complete refusal: 4xx and a one-line reason.
    pub fn assert_refused_with_reason(&self, what: &str) {
        let shown = if self.status >= 400 {
            self.text()
        } else {
            format!("{} body bytes", self.body_len)
        };
        assert!(
            self.complete && (400..500).contains(&self.status),
            "{what}: expected a 4xx refusal, got {} (complete {}, {:?}) {shown}",
            self.status,
            self.complete,
            self.cut,
        );
        let t = self.text();
        assert!(
            !t.trim().is_empty() && t.trim_end().lines().count() == 1,
            "{what}: the refusal gives a one-line reason: {t:?}"
        );
    }
}

pub struct Conn {
    pub client: Client<UnixStream>,
    pub rx: UnixStream,
    pub buf: Vec<u8>,
}

pub enum Next {
    Record(u8, u16, Vec<u8>),
    Eof,
    Idle,
}

impl Conn {
    pub fn open(pool: &Pool) -> Conn {
        let client = pool.client();
        let rx = client.stream.try_clone().unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        Conn {
            client,
            rx,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, file: &Path, query: &str, extra: &[(&str, &str)]) -> u16 {
        self.client.send_get(file, query, extra)
    }

    pub fn next(&mut self) -> Next {
        loop {
            if let fcgi::Status::Complete(h) = fcgi::parse_header(&self.buf)
                && self.buf.len() >= h.record_len()
            {
                let content = self.buf[8..8 + usize::from(h.content_length)].to_vec();
                self.buf.drain(..h.record_len());
                return Next::Record(h.rtype, h.request_id, content);
            }
            let mut chunk = [0u8; 65536];
            match self.rx.read(&mut chunk) {
                Ok(0) => return Next::Eof,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Next::Idle;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Eof,
            }
        }
    }

    /// Reads the response to `id`: until END_REQUEST (or only its head when
    /// `head_only`), EOF, `deadline`, or `stop` (asked every ~20 ms) names a
    /// reason to give up.
    pub fn read(
        &mut self,
        id: u16,
        deadline: Instant,
        head_only: bool,
        keep_body: bool,
        stop: &mut dyn FnMut() -> Option<String>,
    ) -> Resp {
        let started = Instant::now();
        let mut r = Resp::default();
        let mut head = Vec::new();
        let mut last_check = Instant::now();
        loop {
            if last_check.elapsed() >= Duration::from_millis(20) {
                last_check = Instant::now();
                if let Some(why) = stop() {
                    r.cut = Some(why);
                    return r;
                }
            }
            if Instant::now() > deadline {
                r.cut = Some(format!(
                    "not done after {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
                return r;
            }
            match self.next() {
                Next::Idle => {}
                Next::Eof => {
                    r.cut = Some("the connection closed".into());
                    return r;
                }
                Next::Record(t, rid, content) if rid == id => match t {
                    fcgi::FCGI_STDOUT if r.status == 0 => {
                        head.extend_from_slice(&content);
                        if head.windows(4).any(|w| w == b"\r\n\r\n") {
                            let (status, headers, body) = super::common::parse_cgi(&head);
                            r.status = status;
                            r.headers = headers;
                            r.body_len = body.len() as u64;
                            if keep_body {
                                r.body = body;
                            }
                            if head_only {
                                return r;
                            }
                        }
                    }
                    fcgi::FCGI_STDOUT => {
                        r.body_len += content.len() as u64;
                        if keep_body {
                            r.body.extend_from_slice(&content);
                        }
                    }
                    fcgi::FCGI_END_REQUEST => {
                        r.complete = true;
                        return r;
                    }
                    _ => {}
                },
                Next::Record(..) => {}
            }
        }
    }

    pub fn reply(&mut self, id: u16, within: Duration) -> Resp {
        self.read(id, Instant::now() + within, false, true, &mut || None)
    }

    pub fn get(&mut self, file: &Path, query: &str, extra: &[(&str, &str)]) -> Resp {
        let id = self.send(file, query, extra);
        self.reply(id, Duration::from_secs(15))
    }
}

/// Downloads a response fully (body discarded) while watching the worker's
/// CPU: gives up once it used more than `budget_ms` since `cpu_before`.
pub fn download_within_cpu(
    conn: &mut Conn,
    id: u16,
    worker: i32,
    cpu_before: f64,
    budget_ms: f64,
    within: Duration,
) -> (Resp, f64) {
    let r = conn.read(id, Instant::now() + within, false, false, &mut || {
        let used = cpu_ms(worker) - cpu_before;
        (used > budget_ms).then(|| format!("{used:.0} ms of worker CPU and not done"))
    });
    (r, cpu_ms(worker) - cpu_before)
}
