//! Log destinations. Every line goes out in ONE `write(2)` (a retry only for
//! the remainder of a short write), never through a userspace buffer, so
//! lines written at the same moment by the master, its workers and their
//! threads never interleave: files are opened with `O_APPEND`, which makes
//! each write land whole at the end, and stdout/stderr are written to the
//! raw descriptor rather than through std's line-buffered handles.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::RwLock;

/// Where a sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Stdout,
    Stderr,
    File(PathBuf),
}

/// A destination plus, for files, the open handle that `reopen` swaps.
#[derive(Debug)]
pub struct Sink {
    dest: Dest,
    file: RwLock<Option<File>>,
}

fn open_append(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Sink {
    /// `-` means `standard` (stdout or stderr); anything else is a path.
    pub fn open(spec: &str, standard: Dest) -> io::Result<Sink> {
        let dest = if spec == "-" {
            standard
        } else {
            Dest::File(PathBuf::from(spec))
        };
        let file = match &dest {
            Dest::File(path) => Some(open_append(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open log file {}: {e}", path.display()),
                )
            })?),
            _ => None,
        };
        Ok(Sink {
            dest,
            file: RwLock::new(file),
        })
    }

    /// Open the path again (after logrotate moved the old file away). On
    /// failure the old handle stays in use, so logging never stops.
    pub fn reopen(&self) -> io::Result<()> {
        if let Dest::File(path) = &self.dest {
            let fresh = open_append(path)?;
            *self.file.write().unwrap_or_else(|e| e.into_inner()) = Some(fresh);
        }
        Ok(())
    }

    /// Whether this is stdout or stderr (not a file).
    pub fn is_std(&self) -> bool {
        !matches!(self.dest, Dest::File(_))
    }

    /// Write one complete line (or block of text). Errors are dropped: there
    /// is nowhere left to report a failing log.
    pub fn write_line(&self, bytes: &[u8]) {
        let _ = match &self.dest {
            Dest::Stdout => write_fully(|b| Ok(nix::unistd::write(io::stdout(), b)?), bytes),
            Dest::Stderr => write_fully(|b| Ok(nix::unistd::write(io::stderr(), b)?), bytes),
            Dest::File(_) => {
                let guard = self.file.read().unwrap_or_else(|e| e.into_inner());
                match guard.as_ref() {
                    Some(mut f) => write_fully(|b| f.write(b), bytes),
                    None => Ok(()),
                }
            }
        };
    }
}

/// One write for the whole buffer; loop only on a short write or EINTR.
fn write_fully(
    mut write: impl FnMut(&[u8]) -> io::Result<usize>,
    mut bytes: &[u8],
) -> io::Result<()> {
    while !bytes.is_empty() {
        match write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh path in the system temp dir, unique per test and process.
    pub fn temp_path(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        std::env::temp_dir().join(format!("corral-{tag}-{}-{nanos}.log", std::process::id()))
    }

    #[test]
    fn lines_from_many_threads_stay_whole() {
        let path = temp_path("threads");
        let sink = std::sync::Arc::new(Sink::open(path.to_str().unwrap(), Dest::Stderr).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    // Long lines make a torn write likely if it could happen.
                    let body = format!("{t}").repeat(3000);
                    for i in 0..200 {
                        sink.write_line(format!("start {t} {i} {body} end\n").as_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8 * 200);
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 5, "torn line");
            assert_eq!(parts[0], "start");
            assert_eq!(parts[4], "end");
            assert_eq!(parts[3], parts[1].repeat(3000), "mixed line");
        }
    }

    #[test]
    fn reopen_follows_a_rotated_file() {
        let path = temp_path("rotate");
        let rotated = path.with_extension("1");
        let sink = Sink::open(path.to_str().unwrap(), Dest::Stderr).unwrap();
        sink.write_line(b"before\n");
        std::fs::rename(&path, &rotated).unwrap();
        sink.write_line(b"still old\n");
        sink.reopen().unwrap();
        sink.write_line(b"after\n");
        let old = std::fs::read_to_string(&rotated).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&rotated);
        assert_eq!(old, "before\nstill old\n");
        assert_eq!(new, "after\n");
    }

    #[test]
    fn unopenable_file_is_an_error_naming_it() {
        let e = Sink::open("/nonexistent-dir/x.log", Dest::Stderr).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-dir/x.log"), "{e}");
    }
}
