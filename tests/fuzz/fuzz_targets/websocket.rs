#![no_main]
//! Fuzz target `websocket`: the property lives in
//! tests/hostile/fuzz_websocket.rs, shared with the corpus replay that plain
//! `cargo test` runs.

#[path = "../../hostile/fuzz_websocket.rs"]
mod fuzz_websocket;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_websocket::websocket(data));
