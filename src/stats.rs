//! Counters for every record that enters, leaves or is lost, per plugin
//! instance. Plain relaxed atomics: the data path bumps them without locks and
//! the HTTP endpoints and the shutdown summary read them.
//!
//! Invariant the tests check: for an input, `received = written + dropped`
//! summed over reasons once the pipeline has drained.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why an input lost a message before it became a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputDrop {
    /// The hand-off to the pipeline was over its memory budget.
    BufferFull,
    /// No parser matched the message (Fluent Bit drops these too).
    ParseFailure,
    /// Larger than the receive buffer; the kernel truncated it.
    Oversize,
    /// Empty datagram or line.
    Empty,
}

/// Counters of one input instance (`syslog.0`).
#[derive(Debug, Default)]
pub struct InputCounters {
    /// Messages taken from the socket (before any drop).
    pub received: Counter,
    /// Bytes taken from the socket.
    pub bytes: Counter,
    /// Records handed to the filters (Fluent Bit's `records`).
    pub records: Counter,
    pub dropped_buffer_full: Counter,
    pub dropped_parse_failure: Counter,
    pub dropped_oversize: Counter,
    pub dropped_empty: Counter,
    /// Kernel-side drops reported by the socket (UDP `SO_RXQ_OVFL`).
    pub kernel_drops: Counter,
    /// Times the receiver paused because the hand-off was full (`Buffer_Full wait`).
    pub buffer_full_waits: Counter,
}

impl InputCounters {
    pub fn dropped(&self, why: InputDrop, n: u64) {
        match why {
            InputDrop::BufferFull => self.dropped_buffer_full.add(n),
            InputDrop::ParseFailure => self.dropped_parse_failure.add(n),
            InputDrop::Oversize => self.dropped_oversize.add(n),
            InputDrop::Empty => self.dropped_empty.add(n),
        }
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped_buffer_full.get()
            + self.dropped_parse_failure.get()
            + self.dropped_oversize.get()
            + self.dropped_empty.get()
    }
}

/// Counters of one filter instance (`lua.1`).
#[derive(Debug, Default)]
pub struct FilterCounters {
    /// Records the filter removed on purpose (grep, Lua `-1`).
    pub drop_records: Counter,
    /// Records the filter added (Lua split, rewrite_tag copies).
    pub add_records: Counter,
    /// rewrite_tag: records re-emitted under a new tag.
    pub emit_records: Counter,
    /// Errors that let the record pass unchanged (Lua error in protected mode).
    pub errors: Counter,
    /// `parser` filter: values no parser matched (the record passes unchanged).
    pub parse_failures: Counter,
}

/// Counters of one output instance (`file.0`).
#[derive(Debug, Default)]
pub struct OutputCounters {
    /// Records written (Fluent Bit's `proc_records`).
    pub proc_records: Counter,
    pub proc_bytes: Counter,
    /// Failed operations (open or write errors).
    pub errors: Counter,
    /// Records lost to those errors.
    pub dropped_records: Counter,
    /// Records whose path was refused and went to the fallback or were dropped.
    pub path_refused: Counter,
    pub retries: Counter,
    pub retries_failed: Counter,
    pub retried_records: Counter,
    /// Files currently open in the output's cache.
    pub open_files: Gauge,
}

/// Counters of the pipeline as a whole.
#[derive(Debug, Default)]
pub struct PipelineCounters {
    /// Records no output's Match selected (lost unless an output matches).
    pub unrouted: Counter,
    /// Records dropped because rewrite_tag kept re-tagging them.
    pub rewrite_loops: Counter,
}

/// A value that goes up and down (files open, bytes in flight).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One plugin instance's counters under its metrics name (`syslog.0`).
#[derive(Debug)]
pub struct Named<C> {
    pub name: String,
    /// Plugin name (`syslog`, `lua`, `file`).
    pub plugin: &'static str,
    pub counters: std::sync::Arc<C>,
}

/// Where the process is in its life, for probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Running = 1,
    Draining = 2,
}

/// Everything the HTTP endpoints and the shutdown summary read; built once
/// by the engine when the plan starts.
#[derive(Debug)]
pub struct Telemetry {
    pub started: std::time::SystemTime,
    pub inputs: Vec<Named<InputCounters>>,
    pub filters: Vec<Named<FilterCounters>>,
    pub outputs: Vec<Named<OutputCounters>>,
    pub pipeline: std::sync::Arc<PipelineCounters>,
    /// Bytes of received messages waiting for the pipeline, and the budget.
    pub buffer_bytes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub buffer_limit: usize,
    phase: std::sync::atomic::AtomicU8,
}

impl Telemetry {
    pub fn new(
        inputs: Vec<Named<InputCounters>>,
        filters: Vec<Named<FilterCounters>>,
        outputs: Vec<Named<OutputCounters>>,
        pipeline: std::sync::Arc<PipelineCounters>,
        buffer_bytes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        buffer_limit: usize,
    ) -> Self {
        Telemetry {
            started: std::time::SystemTime::now(),
            inputs,
            filters,
            outputs,
            pipeline,
            buffer_bytes,
            buffer_limit,
            phase: std::sync::atomic::AtomicU8::new(Phase::Starting as u8),
        }
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Starting,
            1 => Phase::Running,
            _ => Phase::Draining,
        }
    }

    pub fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }
}
