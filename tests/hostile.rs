//! corral under hostile clients, faults and privilege drop.
//!
//! * `fuzz_replay`: the fuzz targets' properties over the committed corpus,
//!   the conformance and smuggling vectors, and a short seeded mutation run.
//! * `differential`: message boundaries, corral's parser against Python's h11.
//! * `slow`: slowloris, header and body timeouts, queue shedding.
//! * `memory`: header floods and a long chunked upload against RSS.
//! * `chaos`: a bounded soak with SIGKILLed workers, HUP, TTIN/TTOU, 500s,
//!   memory recycling and 504s.
//! * `privdrop`: --user/--group/--umask as root.
//!
//! Heavy tests serialise on `common::heavy()`. Longer runs: see
//! docs/security.md (`CORRAL_LONG=1`, `tests/fuzz/run-long`).

#[path = "support/client.rs"]
mod client;
#[path = "hostile/common.rs"]
mod common;
#[path = "hostile/fuzz_logic.rs"]
mod fuzz_logic;
#[path = "hostile/fuzz_websocket.rs"]
mod fuzz_websocket;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/installed.rs"]
mod installed;
#[path = "support/notify.rs"]
mod notify;
#[path = "hostile/smuggling.rs"]
mod smuggling;
#[path = "vectors/http.rs"]
#[allow(dead_code)]
mod vectors;

#[path = "hostile/chaos.rs"]
mod chaos;
#[path = "hostile/differential.rs"]
mod differential;
#[path = "hostile/fuzz_replay.rs"]
mod fuzz_replay;
#[path = "hostile/memory.rs"]
mod memory;
#[path = "hostile/privdrop.rs"]
mod privdrop;
#[path = "hostile/slow.rs"]
mod slow;
