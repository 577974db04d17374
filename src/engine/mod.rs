//! Running a plan: bind the inputs, start the pipeline thread, then wait for
//! lifecycle events. Shutdown follows the data: receivers stop taking new
//! messages and drain what the kernel already accepted, the pipeline
//! processes everything handed to it, outputs flush and close, and only then
//! does `run` return — or when `Grace` runs out, saying what was pending.
//!
//! Hot reload (`Hot_Reload On`, SIGHUP): the new configuration is built in
//! full first; if anything is wrong it is refused and the running one goes
//! on. Otherwise the sockets and receivers stay as they are and only the
//! pipeline is swapped between two batches: the old outputs are flushed and
//! closed, and the batches waiting in the hand-off go through the new
//! filters and outputs, so no record is lost. Changes to a socket (path,
//! mode, address, permissions) need a restart and are refused as such.

mod linger;
pub mod pipeline;
pub mod plan;
pub mod router;
pub mod service;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::input::handoff::{self, Batch, Intake};
use crate::stats::{Named, Phase, Telemetry};
use pipeline::Pipeline;
use plan::Plan;

/// What the process is asked to do (from signals, or from a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGTERM / SIGINT: drain and exit.
    Stop,
    /// SIGHUP / SIGUSR1: reopen output files (logrotate).
    Reopen,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything accepted was written or counted.
    Drained,
    /// `Grace` ran out before the pipeline drained.
    GraceExpired,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start input {input} on {endpoint}: {source}")]
    Bind { input: String, endpoint: String, source: std::io::Error },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// Re-reads and builds the configuration for a hot reload.
pub type Reloader = Box<dyn Fn() -> Result<Plan, crate::config::ConfigErrors> + Send>;

/// A new pipeline for the running receivers.
struct Swap {
    inputs: Vec<plan::InputPlan>,
    filters: Vec<plan::FilterInstance>,
    outputs: Vec<plan::OutputInstance>,
}

/// What identifies an input's socket: what a reload cannot change in place.
fn socket_identity(s: &crate::input::SyslogSettings) -> String {
    format!("{} perm={:o} wait={} rcvbuf={:?}", s.endpoint(), s.unix_perm, s.wait_when_full, s.receive_buffer)
}

/// Say which parsers build only some fields, and which (`record::reads`).
fn log_narrowed(narrowed: &[String]) {
    for n in narrowed {
        tracing::info!("no filter or output reads the whole record, so this parser builds only the fields read (and checks the rest): {n}");
    }
}

/// Check a reloaded plan against the running receivers and carry the
/// metrics counters over by instance name.
fn prepare_swap(new: Plan, sockets: &[String], t: &Telemetry) -> Result<Swap, String> {
    let Plan { inputs, mut filters, mut outputs, warnings, narrowed, .. } = new;
    let new_sockets: Vec<String> = inputs.iter().map(|i| socket_identity(&i.settings)).collect();
    if new_sockets != sockets {
        return Err(format!(
            "inputs changed their sockets ({} → {}): that needs a restart",
            sockets.join("; "),
            new_sockets.join("; ")
        ));
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    log_narrowed(&narrowed);
    let inputs = inputs
        .into_iter()
        .zip(&t.inputs)
        .map(|(mut i, old)| {
            i.counters = old.counters.clone();
            i
        })
        .collect();
    for f in &mut filters {
        if let Some(old) = t.filters.iter().find(|o| o.name == f.name) {
            f.counters = old.counters.clone();
        }
    }
    for o in &mut outputs {
        if let Some(old) = t.outputs.iter().find(|x| x.name == o.name) {
            o.counters = old.counters.clone();
        }
    }
    Ok(Swap { inputs, filters, outputs })
}

/// Batches processed back to back before the pipeline looks at the clock.
const DRAIN_BATCHES: usize = 64;

/// Messages the pipeline takes through its stages together (see
/// [`Pipeline::process_all`]). Instructions a record, `examples/stages`
/// with batches of 2 datagrams taken one at a time, then in groups of 32,
/// 64, 128 and 256 messages: c-raw 1,475, 1,367, 1,363, 1,401, 1,432;
/// b-native 8,656, 8,467, 8,456, 8,508, 8,587 (more records alive at once
/// cost the allocator more). Outputs remember a group's lines for the
/// re-tagged copies (`output/repeat.rs`).
pub(crate) const GROUP_MESSAGES: usize = 64;

/// Batches the hand-off may hold regardless of their size.
const MAX_BATCHES: usize = 4096;

pub fn run(plan: Plan, events: mpsc::Receiver<Event>, reload: Option<Reloader>) -> Result<Outcome, RunError> {
    let Plan { service, inputs, filters, outputs, warnings, narrowed, .. } = plan;
    let sockets: Vec<String> = inputs.iter().map(|i| socket_identity(&i.settings)).collect();
    for w in &warnings {
        tracing::warn!("{w}");
    }
    log_narrowed(&narrowed);
    let (tx, intake) = handoff::channel(MAX_BATCHES, service.buffer_limit);
    let telemetry = Arc::new(Telemetry::new(
        inputs
            .iter()
            .map(|i| Named { name: i.settings.name.clone(), plugin: "syslog", counters: i.counters.clone() })
            .collect(),
        filters
            .iter()
            .map(|f| Named { name: f.name.clone(), plugin: f.filter.plugin(), counters: f.counters.clone() })
            .collect(),
        outputs
            .iter()
            .map(|o| Named { name: o.name.clone(), plugin: o.output.plugin(), counters: o.counters.clone() })
            .collect(),
        Arc::default(),
        intake.in_flight_handle(),
        service.buffer_limit,
    ));
    let http = if service.http_server {
        Some(crate::http::start(&service, telemetry.clone()).map_err(|source| RunError::Bind {
            input: "http_server".into(),
            endpoint: format!("{}:{}", service.http_listen, service.http_port),
            source,
        })?)
    } else {
        None
    };
    let stop = Arc::new(AtomicBool::new(false));
    let reopen = Arc::new(AtomicBool::new(false));

    tracing::info!(zone = %service.zone.name(), "zone-less times are read in this zone");
    let mut receivers = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let s = &input.settings;
        match s.start(i, tx.clone(), input.counters.clone(), stop.clone()) {
            Ok(h) => {
                tracing::info!(input = %s.name, tag = %s.tag, parser = input.parser.name(), "listening on {}", s.endpoint());
                receivers.push(h);
            }
            Err(source) => {
                stop.store(true, Ordering::Relaxed);
                for h in receivers {
                    let _ = h.join();
                }
                return Err(RunError::Bind { input: s.name.clone(), endpoint: s.endpoint(), source });
            }
        }
    }
    drop(tx);
    for o in &outputs {
        let matches = o.matcher.as_ref().map(|m| m.describe()).unwrap_or_else(|| "(nothing)".into());
        tracing::info!(output = %o.name, r#match = %matches, "writing to {}", o.output.describe());
    }
    for f in &filters {
        tracing::info!(filter = %f.name, r#match = %f.matcher.describe(), "filter");
    }
    let mut pipeline = Pipeline::new(inputs, filters, outputs, service.zone, telemetry.pipeline.clone());
    let summary_of = telemetry.clone();
    let flush_every = service.flush;
    let (done_tx, done_rx) = mpsc::channel();
    let pipe_reopen = reopen.clone();
    let (swap_tx, swap_rx) = mpsc::channel::<Swap>();
    let worker = std::thread::Builder::new()
        .name("gatelog-pipeline".into())
        .spawn(move || {
            drive(&mut pipeline, &intake, flush_every, &pipe_reopen, &swap_rx);
            pipeline.close();
            summary(&summary_of);
            let _ = done_tx.send(());
        })
        .map_err(RunError::Thread)?;
    telemetry.set_phase(Phase::Running);

    // Until Stop (or every sender of events is gone).
    while let Ok(Event::Reopen) = events.recv() {
        match (&reload, service.hot_reload) {
            (Some(reload), true) => {
                tracing::info!("SIGHUP: reloading the configuration");
                match reload().map_err(|e| e.to_string()).and_then(|p| prepare_swap(p, &sockets, &telemetry)) {
                    Ok(swap) => {
                        let _ = swap_tx.send(swap);
                    }
                    Err(e) => tracing::error!("new configuration refused; the running one goes on:\n{e}"),
                }
            }
            _ => reopen.store(true, Ordering::Relaxed),
        }
    }
    tracing::info!(grace_secs = service.grace.as_secs_f64(), "stopping: draining what was accepted");
    telemetry.set_phase(Phase::Draining);
    stop.store(true, Ordering::Relaxed);
    // The pipeline finishes only after every receiver has drained and hung
    // up, so waiting for it covers the whole chain.
    let outcome = match done_rx.recv_timeout(service.grace) {
        Ok(()) => {
            for h in receivers {
                let _ = h.join();
            }
            let _ = worker.join();
            Outcome::Drained
        }
        Err(_) => {
            tracing::error!(
                pending_bytes = telemetry.buffer_bytes.load(Ordering::Relaxed),
                "Grace expired before the pipeline drained; exiting with records still in flight"
            );
            Outcome::GraceExpired
        }
    };
    if let Some(h) = http {
        h.stop();
    }
    Ok(outcome)
}

/// The pipeline thread: process batches as they come, flush every
/// `flush_every`, reopen files when asked; return once every receiver has
/// hung up and the hand-off is empty.
fn drive(p: &mut Pipeline, intake: &Intake, flush_every: Duration, reopen: &AtomicBool, swaps: &mpsc::Receiver<Swap>) {
    let mut now = Instant::now();
    let mut next_flush = now + flush_every;
    let mut group = Vec::with_capacity(DRAIN_BATCHES + 1);
    let mut linger = linger::Linger::new(linger::longest_for(intake.limit()));
    // Messages taken since the pipeline last slept: what the linger gathered.
    let mut gathered = 0;
    crate::sched::pipeline_yields();
    loop {
        if let Ok(swap) = swaps.try_recv() {
            p.close();
            p.inputs = swap.inputs;
            p.filters = swap.filters;
            p.outputs = swap.outputs;
            p.forget_routes();
            tracing::info!("configuration reloaded: new filters and outputs in place, sockets kept");
        }
        let wait = next_flush.saturating_duration_since(now).min(Duration::from_millis(200));
        match intake.recv_timeout(wait) {
            Ok(first) => {
                let (taken, caught_up) = take_waiting(p, intake, first, &mut group);
                gathered += taken;
                if caught_up {
                    // Let the next batches gather (`linger.rs`).
                    std::thread::sleep(linger.after(gathered));
                    gathered = 0;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if reopen.swap(false, Ordering::Relaxed) {
            p.flush();
            p.reopen();
            tracing::info!("output files reopened");
        }
        now = Instant::now();
        if now >= next_flush {
            p.flush();
            now = Instant::now();
            next_flush = now + flush_every;
        }
    }
    p.flush();
}

/// Process `first` and what else is waiting, before the clock is read again
/// (at most [`DRAIN_BATCHES`] more, so flushes and reopens stay on time), in
/// groups of about [`GROUP_MESSAGES`]; how many messages were taken, and
/// whether the hand-off ran empty.
fn take_waiting(p: &mut Pipeline, intake: &Intake, first: Batch, group: &mut Vec<Batch>) -> (usize, bool) {
    let mut messages = first.msgs.len();
    let mut taken = messages;
    group.push(first);
    let mut caught_up = false;
    for _ in 0..DRAIN_BATCHES {
        if messages >= GROUP_MESSAGES {
            process_group(p, intake, group);
            messages = 0;
        }
        match intake.try_recv() {
            Some(batch) => {
                messages += batch.msgs.len();
                taken += batch.msgs.len();
                group.push(batch);
            }
            None => {
                caught_up = true;
                break;
            }
        }
    }
    process_group(p, intake, group);
    (taken, caught_up)
}

/// Run a group through the pipeline, then hand its budget back.
fn process_group(p: &mut Pipeline, intake: &Intake, group: &mut Vec<Batch>) {
    p.process_all(group);
    for batch in group.drain(..) {
        intake.done(&batch);
    }
}

/// The account at shutdown: for each input, received = records + dropped
/// by reason; for each output, written and lost.
fn summary(t: &Telemetry) {
    for i in &t.inputs {
        let c = &i.counters;
        tracing::info!(
            input = %i.name,
            received = c.received.get(),
            records = c.records.get(),
            dropped_buffer_full = c.dropped_buffer_full.get(),
            dropped_parse_failure = c.dropped_parse_failure.get(),
            dropped_oversize = c.dropped_oversize.get(),
            dropped_empty = c.dropped_empty.get(),
            kernel_drops = c.kernel_drops.get(),
            buffer_full_waits = c.buffer_full_waits.get(),
            "input summary"
        );
    }
    for f in &t.filters {
        let c = &f.counters;
        tracing::info!(
            filter = %f.name,
            drop_records = c.drop_records.get(),
            add_records = c.add_records.get(),
            emit_records = c.emit_records.get(),
            errors = c.errors.get(),
            parse_failures = c.parse_failures.get(),
            "filter summary"
        );
    }
    for o in &t.outputs {
        let c = &o.counters;
        tracing::info!(
            output = %o.name,
            written = c.proc_records.get(),
            bytes = c.proc_bytes.get(),
            errors = c.errors.get(),
            dropped = c.dropped_records.get(),
            path_refused = c.path_refused.get(),
            "output summary"
        );
    }
    tracing::info!(unrouted = t.pipeline.unrouted.get(), rewrite_loops = t.pipeline.rewrite_loops.get(), "stopped");
}
