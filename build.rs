//! For `cargo test` only: the test binaries link libpython (the extension
//! module that pip installs does not — the interpreter loading it provides
//! the symbols), so record the library directory as an rpath and they find
//! `libpythonX.Y.so` of a pyenv or custom prefix without LD_LIBRARY_PATH.

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-env-changed=PYO3_BUILD_EXTENSION_MODULE");
    if std::env::var_os("PYO3_BUILD_EXTENSION_MODULE").is_some() {
        return;
    }
    let config = pyo3_build_config::get();
    if let Some(dir) = config.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
