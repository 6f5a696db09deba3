//! Embeds the Python library directory as an rpath, so the binary finds
//! `libpythonX.Y.so` where it was built against (a pyenv or custom prefix)
//! without LD_LIBRARY_PATH.

fn main() {
    let config = pyo3_build_config::get();
    if let Some(dir) = config.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
