//! Receiving a request body in full before the request reaches Python, so a
//! slow uploader never holds a Python thread. Bodies up to [`SPILL_AT`] stay
//! in memory; larger ones go to an unlinked temporary file, so a 1 GiB upload
//! costs disk, not RAM. An asgi worker's app awaits its body instead, so
//! there the body is only decoded ([`BodyDecoder`]) and streamed to it.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use crate::http::{ChunkedDecoder, HttpError};
use crate::wsgi::Body;

/// Bodies larger than this are written to a temporary file.
pub const SPILL_AT: usize = 1 << 20;

enum Framing {
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// An in-progress request body.
pub struct BodyReader {
    framing: Framing,
    mem: Vec<u8>,
    /// What `mem` will hold, reserved when the first byte comes rather
    /// than with the head: a body waiting its turn costs no memory.
    expect: usize,
    file: Option<File>,
    len: u64,
    scratch: Vec<u8>,
}

impl BodyReader {
    pub fn length(n: u64) -> Self {
        Self::new(Framing::Length(n), n.min(SPILL_AT as u64) as usize)
    }

    pub fn chunked() -> Self {
        Self::new(Framing::Chunked(ChunkedDecoder::new()), 0)
    }

    fn new(framing: Framing, expect: usize) -> Self {
        Self {
            framing,
            mem: Vec::new(),
            expect,
            file: None,
            len: 0,
            scratch: Vec::new(),
        }
    }

    /// Consume body bytes from `input`; returns bytes used and whether the
    /// body is complete.
    pub fn feed(&mut self, input: &[u8], tmp_dir: &Path) -> Result<(usize, bool), FeedError> {
        match &mut self.framing {
            Framing::Length(remaining) => {
                let n = (*remaining).min(input.len() as u64) as usize;
                *remaining -= n as u64;
                let done = *remaining == 0;
                self.store(&input[..n], tmp_dir)?;
                Ok((n, done))
            }
            Framing::Chunked(dec) => {
                let mut out = std::mem::take(&mut self.scratch);
                out.clear();
                let (used, done) = dec.feed(input, &mut out).map_err(FeedError::Http)?;
                let r = self.store(&out, tmp_dir);
                self.scratch = out;
                r?;
                Ok((used, done))
            }
        }
    }

    fn store(&mut self, data: &[u8], tmp_dir: &Path) -> Result<(), FeedError> {
        if data.is_empty() {
            return Ok(());
        }
        self.len += data.len() as u64;
        if self.file.is_none() && self.mem.len() + data.len() > SPILL_AT {
            let mut f = temp_file(tmp_dir).map_err(FeedError::Io)?;
            f.write_all(&self.mem).map_err(FeedError::Io)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write_all(data).map_err(FeedError::Io),
            None => {
                self.reserve();
                self.mem.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// For a body of known length that stays in memory: its buffer and how
    /// many bytes are still to come, so the connection can read them into
    /// it directly. Report what was read with [`Self::took`].
    pub fn direct(&mut self) -> Option<(&mut Vec<u8>, usize)> {
        match self.framing {
            Framing::Length(remaining)
                if self.file.is_none()
                    && (self.mem.len() as u64).saturating_add(remaining) <= SPILL_AT as u64 =>
            {
                self.reserve();
                Some((&mut self.mem, remaining as usize))
            }
            _ => None,
        }
    }

    /// The whole body's room at once, so it is never copied to grow.
    fn reserve(&mut self) {
        if self.mem.capacity() == 0 && self.expect > 0 {
            self.mem.reserve_exact(self.expect);
        }
    }

    /// `n` bytes were appended to the buffer [`Self::direct`] gave.
    pub fn took(&mut self, n: usize) {
        if let Framing::Length(remaining) = &mut self.framing {
            *remaining -= n as u64;
            self.len += n as u64;
        }
    }

    /// The finished body, rewound for reading.
    pub fn finish(self) -> std::io::Result<Body> {
        match self.file {
            Some(mut f) => {
                f.seek(SeekFrom::Start(0))?;
                Ok(Body::File {
                    file: f,
                    len: self.len,
                })
            }
            None => Ok(Body::Memory(self.mem)),
        }
    }
}

/// Decodes a body (by its length, or chunked) into bytes for an app that
/// takes it as it arrives (asgi workers), with nothing stored here.
pub struct BodyDecoder(Framing);

impl BodyDecoder {
    /// For a head's body; `None` when it has none.
    pub fn new(kind: crate::http::BodyKind) -> Option<BodyDecoder> {
        use crate::http::BodyKind;
        match kind {
            BodyKind::None | BodyKind::Length(0) => None,
            BodyKind::Length(n) => Some(BodyDecoder(Framing::Length(n))),
            BodyKind::Chunked => Some(BodyDecoder(Framing::Chunked(ChunkedDecoder::new()))),
        }
    }

    /// Appends the body bytes in `input` to `out`; returns bytes used and
    /// whether the body is complete (what follows is the next request).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), HttpError> {
        match &mut self.0 {
            Framing::Length(remaining) => {
                let n = (*remaining).min(input.len() as u64) as usize;
                *remaining -= n as u64;
                out.extend_from_slice(&input[..n]);
                Ok((n, *remaining == 0))
            }
            Framing::Chunked(dec) => dec.feed(input, out),
        }
    }
}

#[derive(Debug)]
pub enum FeedError {
    Http(HttpError),
    Io(std::io::Error),
}

/// An anonymous file in `dir` (O_TMPFILE: it never has a name, so nothing
/// is left behind if the worker dies); falls back to create-and-unlink on
/// filesystems without O_TMPFILE.
pub fn temp_file(dir: &Path) -> std::io::Result<File> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    match open(
        dir,
        OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    ) {
        Ok(fd) => Ok(File::from(fd)),
        Err(_) => unlinked_file(dir),
    }
}

/// A file created in `dir` and unlinked at once. Its name is unique within
/// the process by a counter (a clock can give two bodies that start
/// together the same name, and the second would fail).
fn unlinked_file(dir: &Path) -> std::io::Result<File> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".corral-body-{}-{n}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom, Write};

    /// The fallback for filesystems without O_TMPFILE: many bodies started
    /// at once each get a file of their own, and none is left behind.
    #[test]
    fn unlinked_files_started_together_are_distinct_and_leave_nothing() {
        let dir = std::env::temp_dir().join(format!("corral-body-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut files: Vec<_> = (0..200)
            .map(|_| super::unlinked_file(&dir).expect("a file"))
            .collect();
        for (i, f) in files.iter_mut().enumerate() {
            write!(f, "{i}").unwrap();
        }
        for (i, f) in files.iter_mut().enumerate() {
            let mut s = String::new();
            f.seek(SeekFrom::Start(0)).unwrap();
            f.read_to_string(&mut s).unwrap();
            assert_eq!(s, i.to_string());
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
    }
}
