//! `wsgi.errors`: a text stream whose writes go to corral's error log. One
//! instance per interpreter, shared by every request (it has no state).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString};

/// The `wsgi.errors` object.
#[pyclass(module = "corral", name = "ErrorStream", frozen)]
pub struct ErrorStream;

static SHARED: PyOnceLock<Py<ErrorStream>> = PyOnceLock::new();

impl ErrorStream {
    pub(crate) fn shared(py: Python<'_>) -> PyResult<Bound<'_, ErrorStream>> {
        let s = SHARED.get_or_try_init(py, || Py::new(py, ErrorStream))?;
        Ok(s.bind(py).clone())
    }
}

fn emit(data: &[u8]) {
    #[cfg(not(test))]
    crate::logging::write_error_stream(data);
    #[cfg(test)]
    test_capture::push(data);
}

#[pymethods]
impl ErrorStream {
    /// PEP 3333 says str; bytes are accepted too since some apps pass them.
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        if let Ok(s) = data.cast::<PyString>() {
            let s = s.to_cow()?;
            emit(s.as_bytes());
            Ok(s.chars().count())
        } else if let Ok(b) = data.cast::<PyBytes>() {
            emit(b.as_bytes());
            Ok(b.as_bytes().len())
        } else {
            Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "write() argument must be str, not {}",
                data.get_type().name()?
            )))
        }
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(&line?)?;
        }
        Ok(())
    }

    /// Writes are handed to the logger immediately; nothing to flush.
    fn flush(&self) {}

    fn writable(&self) -> bool {
        true
    }
}

/// In unit tests the log sink belongs to another module; capture per thread
/// instead so tests can check what the app wrote.
#[cfg(test)]
pub(crate) mod test_capture {
    use std::cell::RefCell;

    thread_local! {
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn push(data: &[u8]) {
        BUF.with(|b| b.borrow_mut().extend_from_slice(data));
    }

    pub(crate) fn take() -> Vec<u8> {
        BUF.with(|b| std::mem::take(&mut *b.borrow_mut()))
    }
}
