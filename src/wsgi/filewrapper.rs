//! `wsgi.file_wrapper`: wraps a file-like object so the response driver can
//! hand a real file to sendfile, and iterates it in blocks otherwise.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The `wsgi.file_wrapper` type; the environ holds the class itself.
#[pyclass(module = "corral", name = "FileWrapper")]
pub struct FileWrapper {
    pub(crate) filelike: Py<PyAny>,
    blksize: isize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=8192))]
    fn new(filelike: Py<PyAny>, blksize: isize) -> PyResult<Self> {
        if blksize <= 0 {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "blksize must be positive",
            ));
        }
        Ok(FileWrapper { filelike, blksize })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let data = self
            .filelike
            .bind(py)
            .call_method1(intern!(py, "read"), (self.blksize,))?;
        let empty = match data.cast::<PyBytes>() {
            Ok(b) => b.as_bytes().is_empty(),
            Err(_) => data.len()? == 0,
        };
        Ok(if empty { None } else { Some(data) })
    }

    /// Closes the wrapped object, as PEP 3333 asks.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let f = self.filelike.bind(py);
        if f.hasattr(intern!(py, "close"))? {
            f.call_method0(intern!(py, "close"))?;
        }
        Ok(())
    }
}
