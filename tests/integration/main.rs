//! Integration tests: the real `corral` binary, real sockets, real Python.
//! Run them through `tests/run`, which prepares the test virtualenv.

mod client;
mod harness;
#[path = "../support/installed.rs"]
mod installed;

// Filled by the HTTP parser work; until then some items go unused.
#[allow(dead_code)]
#[path = "../vectors/http.rs"]
mod vectors;

mod apps;
mod cli;
mod conformance;
mod fairness;
mod install;
mod lifecycle;
mod serving;
mod signals;
