//! Fuzz target `rfc3164`: the properties are in tests/replay/props.rs
//! (`check_rfc3164`), shared with the corpus replay in `cargo test`.
#![no_main]

#[path = "../../tests/replay/props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check_rfc3164(data));
