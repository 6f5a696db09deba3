//! Integration tests: the real `corral` binary, real sockets, real Python.
//! Run them through `tests/run`, which prepares the test virtualenv.

#[path = "../support/client.rs"]
mod client;
#[path = "../support/harness.rs"]
mod harness;
#[path = "../support/installed.rs"]
mod installed;
#[path = "../support/load.rs"]
mod load;
#[path = "../support/notify.rs"]
mod notify;

// Filled by the HTTP parser work; until then some items go unused.
#[allow(dead_code)]
#[path = "../vectors/http.rs"]
mod vectors;

mod apps;
mod asgi;
mod cli;
mod conformance;
mod control;
mod fairness;
mod install;
mod lifecycle;
mod losses;
mod metrics;
mod proxy;
mod reload;
mod serving;
mod signals;
mod statsd;
mod uploads;
