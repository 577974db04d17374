//! gatelog: a drop-in replacement for the Fluent Bit sidecar that takes
//! nginx's syslog datagrams off a unix socket and appends them to dated files.
//!
//! The map (data flows top to bottom):
//!
//! - [`config`]: the Fluent Bit classic format, read with `file:line` on every
//!   property; option tables that refuse typos.
//! - [`input`]: the `syslog` input. A dedicated receiver thread per datagram
//!   socket drains the kernel queue with `recvmmsg` into batches and hands
//!   them over a byte-bounded queue; when the budget is full it drops and
//!   counts, it never waits. Stream modes frame lines (newline or octet
//!   counting) on their own threads.
//! - [`parser`]: rfc3164 (native, nom), regex (Onigmo syntax translated),
//!   json, ltsv, logfmt; time parsing with zones and year inference.
//! - [`filter`]: `parser`, `lua`, `rewrite_tag`, applied in config order to
//!   the records whose tag they match.
//! - [`output`]: `file` (formats, open-file cache), `stdout`, `null`.
//! - [`http`]: health and metrics endpoints (`HTTP_Server On`).
//! - [`engine`]: the pipeline thread (parse → filters → route → outputs),
//!   flush ticks, and shutdown that follows the data.
//! - [`sched`]: the receivers get the CPU before the pipeline thread.
//! - [`record`], [`stats`], [`ratelimit`], [`zone`]: the shared vocabulary;
//!   `swar`: byte searches a word at a time (JSON in and out).

mod alloc;
pub mod config;
pub mod engine;
pub mod filter;
pub mod http;
pub mod input;
pub mod output;
pub mod parser;
pub mod ratelimit;
pub mod record;
pub mod sched;
mod simd;
pub mod stats;
mod swar;
pub mod zone;

#[cfg(test)]
mod testing;

pub use alloc::Allocator;
