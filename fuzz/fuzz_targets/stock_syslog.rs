//! Fuzz target `stock_syslog`: the properties are in tests/replay/props.rs
//! (`check_stock_syslog`), shared with the corpus replay in `cargo test`.
#![no_main]

#[path = "../../tests/replay/props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check_stock_syslog(data));
