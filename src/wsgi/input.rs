//! `wsgi.input`: a read-only binary stream over the fully received request
//! body, whether it sits in memory or was spilled to a temporary file.
//! Reading a file body goes through a buffer; it is never loaded whole.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read, Seek, SeekFrom, Take};

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::Body;

enum Source {
    Memory(Cursor<Vec<u8>>),
    File(BufReader<Take<File>>),
}

impl Source {
    fn reader(&mut self) -> &mut dyn BufRead {
        match self {
            Source::Memory(c) => c,
            Source::File(f) => f,
        }
    }
}

/// The `wsgi.input` object.
#[pyclass(module = "corral", name = "Input")]
pub struct Input {
    src: Source,
}

impl Input {
    /// The spilled body starts at offset 0 of its file, wherever the
    /// writer left the file position.
    pub(crate) fn new(body: Body) -> std::io::Result<Self> {
        let src = match body {
            Body::Memory(v) => Source::Memory(Cursor::new(v)),
            Body::File { mut file, len } => {
                file.seek(SeekFrom::Start(0))?;
                Source::File(BufReader::with_capacity(64 * 1024, file.take(len)))
            }
        };
        Ok(Input { src })
    }

    /// Up to and including the next `\n`, at most `limit` bytes.
    fn line(&mut self, limit: Option<usize>) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let r = self.src.reader();
        loop {
            let room = limit.map_or(usize::MAX, |l| l - out.len());
            if room == 0 {
                break;
            }
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let window = &buf[..buf.len().min(room)];
            match window.iter().position(|&c| c == b'\n') {
                Some(i) => {
                    out.extend_from_slice(&window[..=i]);
                    r.consume(i + 1);
                    break;
                }
                None => {
                    let n = window.len();
                    out.extend_from_slice(window);
                    r.consume(n);
                }
            }
        }
        Ok(out)
    }
}

fn io_err(e: std::io::Error) -> PyErr {
    PyOSError::new_err(format!("error reading request body: {e}"))
}

fn limit(size: Option<isize>) -> Option<usize> {
    size.filter(|&n| n >= 0).map(|n| n as usize)
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size=-1))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        // Straight into the bytes object, sized once: no intermediate Vec
        // growing by doubling, no second copy.
        match &mut self.src {
            Source::Memory(c) => {
                let len = c.get_ref().len();
                let pos = (c.position() as usize).min(len);
                let end = limit(size).map_or(len, |n| pos.saturating_add(n).min(len));
                let b = PyBytes::new(py, &c.get_ref()[pos..end]);
                c.set_position(end as u64);
                if end == len && len > 0 {
                    // All of it is Python's now: free the copy here rather
                    // than when the request ends.
                    *c = Cursor::new(Vec::new());
                }
                Ok(b)
            }
            Source::File(r) => {
                let left = r.get_ref().limit() as usize + r.buffer().len();
                let n = limit(size).map_or(left, |n| n.min(left));
                PyBytes::new_with(py, n, |buf| r.read_exact(buf).map_err(io_err))
            }
        }
    }

    #[pyo3(signature = (size=-1))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.line(limit(size)).map_err(io_err)?;
        Ok(PyBytes::new(py, &data))
    }

    /// Lines until at least `hint` bytes were read (all lines if `hint <= 0`).
    #[pyo3(signature = (hint=-1))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let hint = limit(hint).filter(|&h| h > 0);
        let lines = PyList::empty(py);
        let mut total = 0;
        loop {
            let line = self.line(None).map_err(io_err)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.append(PyBytes::new(py, &line))?;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.line(None).map_err(io_err)?;
        Ok(if line.is_empty() {
            None
        } else {
            Some(PyBytes::new(py, &line))
        })
    }

    fn readable(&self) -> bool {
        true
    }
}
