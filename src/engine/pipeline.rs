//! The pipeline thread's work on a group of batches: parse each message with
//! its input's parser, run the filter chain stage by stage over the group,
//! route each record to the outputs whose Match selects its tag, and format
//! it into that output's buffers. Nothing here touches a socket.

use std::sync::Arc;

use super::plan::{FilterInstance, InputPlan, OutputInstance};
use crate::input::handoff::Batch;
use crate::parser::ParseContext;
use crate::ratelimit::RateLimiter;
use crate::record::{lossy_text, Map, RecentTags, Record, Text, Value};
use crate::stats::{InputDrop, PipelineCounters};
use crate::warn_limited;
use crate::zone::Zone;

/// How many times a record may be re-tagged and sent back through the chain
/// before it is treated as a rewrite loop (a rule re-matching its own output).
const MAX_GENERATIONS: usize = 8;

/// Distinct tags whose routes are remembered (tags built from record data,
/// such as dated paths, change daily; the cache is cleared when full).
const ROUTE_CACHE: usize = 4096;

pub struct Pipeline {
    pub inputs: Vec<InputPlan>,
    pub filters: Vec<FilterInstance>,
    pub outputs: Vec<OutputInstance>,
    pub counters: Arc<PipelineCounters>,
    zone: Zone,
    /// foldhash: seeded (tags may come from record data) and cheap.
    routes: foldhash::HashMap<Arc<str>, Arc<[usize]>>,
    /// The routes of the last two tags, found without hashing.
    recent_routes: RecentTags<Arc<[usize]>>,
    cur: Vec<Record>,
    next: Vec<Record>,
    emitted: Vec<Record>,
    parse_failures: RateLimiter,
    unrouted: RateLimiter,
    loops: RateLimiter,
}

/// The outputs whose Match selects `tag` (cached by tag).
fn routes_of(
    cache: &mut foldhash::HashMap<Arc<str>, Arc<[usize]>>,
    outputs: &[OutputInstance],
    tag: &Arc<str>,
) -> Arc<[usize]> {
    if cache.len() >= ROUTE_CACHE && !cache.contains_key(tag) {
        cache.clear();
    }
    cache
        .entry(tag.clone())
        .or_insert_with(|| {
            outputs
                .iter()
                .enumerate()
                .filter(|(_, o)| o.matcher.as_ref().is_some_and(|m| m.matches(tag)))
                .map(|(i, _)| i)
                .collect()
        })
        .clone()
}

impl Pipeline {
    pub fn new(
        inputs: Vec<InputPlan>,
        filters: Vec<FilterInstance>,
        outputs: Vec<OutputInstance>,
        zone: Zone,
        counters: Arc<PipelineCounters>,
    ) -> Self {
        Pipeline {
            inputs,
            filters,
            outputs,
            counters,
            zone,
            routes: foldhash::HashMap::default(),
            recent_routes: RecentTags::default(),
            cur: Vec::new(),
            next: Vec::new(),
            emitted: Vec::new(),
            parse_failures: RateLimiter::default(),
            unrouted: RateLimiter::default(),
            loops: RateLimiter::default(),
        }
    }

    /// One batch: see [`Pipeline::process_all`].
    pub fn process(&mut self, batch: &Batch) {
        self.process_all(std::slice::from_ref(batch));
    }

    /// Batches taken from the hand-off together: each message is parsed
    /// with its own batch's receive time, then the filter chain, routing
    /// and formatting run once over all their records (filters reading
    /// the clock see the newest batch's). Over unix_udp a batch is what one
    /// `recvmmsg` returned, one or two datagrams, and a pass of the chain
    /// per batch cost ~180 instructions (c-raw, batches of 1 against 32).
    pub fn process_all(&mut self, batches: &[Batch]) {
        let Some(newest) = batches.last() else {
            return;
        };
        for batch in batches {
            self.parse(batch, &ParseContext { now: batch.received_at, zone: self.zone });
        }
        let ctx = ParseContext { now: newest.received_at, zone: self.zone };
        // Re-tagged records run the chain again from the first filter, as
        // Fluent Bit's emitter re-ingests them, but in place: generation by
        // generation within this group, with no queue to overflow.
        let mut generation = 0;
        while !self.cur.is_empty() {
            if generation == MAX_GENERATIONS {
                let n = self.cur.len() as u64;
                self.counters.rewrite_loops.add(n);
                warn_limited!(
                    self.loops,
                    dropped = n,
                    tag = %self.cur[0].tag,
                    "records re-tagged {MAX_GENERATIONS} times: a rewrite_tag rule matches its own output; dropped (counted as rewrite_loop)"
                );
                self.cur.clear();
                break;
            }
            self.run_chain(&ctx);
            let mut records = std::mem::take(&mut self.cur);
            for rec in records.drain(..) {
                self.route(&rec);
            }
            self.cur = std::mem::replace(&mut self.emitted, records);
            generation += 1;
        }
    }

    fn run_chain(&mut self, ctx: &ParseContext) {
        for f in &mut self.filters {
            if self.cur.is_empty() {
                break;
            }
            for rec in self.cur.drain(..) {
                if *f.recent.get_or(&rec.tag, || f.matcher.matches(&rec.tag)) {
                    f.filter.apply(rec, &mut self.next, &mut self.emitted, &f.counters, ctx);
                } else {
                    self.next.push(rec);
                }
            }
            std::mem::swap(&mut self.cur, &mut self.next);
        }
    }

    fn parse(&mut self, batch: &Batch, ctx: &ParseContext) {
        let Some(input) = self.inputs.get_mut(batch.input) else {
            return;
        };
        let s = &input.settings;
        for m in &batch.msgs {
            let bytes = batch.message(m);
            let mut rec = match input.parser.parse_keeping(bytes, ctx, input.keep.as_ref(), Some(&mut input.order)) {
                Ok(p) => Record::new(s.tag.clone(), p.time.unwrap_or(batch.received_at), p.fields),
                Err(why) => {
                    warn_limited!(
                        self.parse_failures,
                        input = %s.name,
                        parser = input.parser.name(),
                        reason = why.reason(),
                        line = %String::from_utf8_lossy(&bytes[..bytes.len().min(200)]),
                        "message did not parse"
                    );
                    if !s.keep_unparsed {
                        input.counters.dropped(InputDrop::ParseFailure, 1);
                        continue;
                    }
                    let mut fields = Map::with_capacity(1);
                    fields.push("message", Value::Str(lossy_text(bytes)));
                    Record::new(s.tag.clone(), batch.received_at, fields)
                }
            };
            if let (Some(key), Some(peer)) = (&s.source_address_key, &m.peer) {
                rec.fields.push(key.as_str(), Value::Str(Text::from(&**peer)));
            }
            if let Some(key) = &s.raw_message_key {
                rec.fields.push(key.as_str(), Value::Str(lossy_text(bytes)));
            }
            input.counters.records.inc();
            self.cur.push(rec);
        }
    }

    fn route(&mut self, rec: &Record) {
        let (cache, outputs) = (&mut self.routes, &self.outputs);
        let routes = self.recent_routes.get_or(&rec.tag, || routes_of(cache, outputs, &rec.tag));
        if routes.is_empty() {
            self.counters.unrouted.inc();
            warn_limited!(self.unrouted, tag = %rec.tag, "no output matches this tag; record discarded (counted as unrouted)");
            return;
        }
        for &i in routes.iter() {
            if let Some(o) = self.outputs.get_mut(i) {
                o.output.write(rec, &o.counters);
            }
        }
    }

    /// Drop cached routes (the outputs changed).
    pub fn forget_routes(&mut self) {
        self.routes.clear();
        self.recent_routes.clear();
    }

    pub fn flush(&mut self) {
        for o in &mut self.outputs {
            o.output.flush(&o.counters);
        }
    }

    pub fn reopen(&mut self) {
        for o in &mut self.outputs {
            o.output.reopen(&o.counters);
        }
    }

    pub fn close(&mut self) {
        for o in &mut self.outputs {
            o.output.close(&o.counters);
        }
    }
}
