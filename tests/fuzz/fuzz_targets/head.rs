#![no_main]
//! Fuzz target `head`: the property lives in tests/hostile/fuzz_logic.rs,
//! shared with the corpus replay that plain `cargo test` runs.

#[path = "../../hostile/fuzz_logic.rs"]
mod fuzz_logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_logic::head(data));
