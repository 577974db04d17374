//! Lines rendered again for the re-tagged copy of a record.
//!
//! `rewrite_tag` with `KEEP true` emits a copy of each record under its
//! new tag, sharing the original's fields ([`crate::record::Map::share`]),
//! and a `Match *` output writes both: the sidecar pipeline renders every
//! line twice, to its dated file and to the side file of the original tag.
//! The formats other than `out_file` print no tag, so both lines are the
//! same bytes when the fields and the time are. An output remembers the
//! lines it rendered for records whose fields another record still holds,
//! and gives the copy its twin's bytes instead of rendering them again.
//!
//! The original is routed first: re-tagged records run the chain again
//! after their generation is routed (see `engine/pipeline.rs`; a generation
//! is a group of batches), and the
//! original is gone by the time its copy is written, so the copy is the
//! last holder of the fields. Lines wait oldest first, and the copies come
//! in the same order, so the one looked for is nearly always the oldest
//! left. A line whose fields no record holds any more (the copy was
//! dropped, or went to another output) is forgotten when met. At most
//! [`MAX_LINES`] lines and [`MAX_BYTES`] bytes wait; past that the oldest
//! go, and a copy without a remembered twin is rendered as usual.

use std::collections::VecDeque;

use crate::record::{Record, SharedPairs, Timestamp};

/// Lines remembered at most: a group's originals (up to
/// [`crate::engine::GROUP_MESSAGES`] and one more batch of at most 32
/// datagrams, two lines each in the sidecar) are routed before its copies.
pub(crate) const MAX_LINES: usize = 2 * (crate::engine::GROUP_MESSAGES + 32);
/// Bytes remembered at most (a line longer than this is not remembered).
pub(crate) const MAX_BYTES: usize = 256 * 1024;

struct Line {
    pairs: SharedPairs,
    time: Timestamp,
    bytes: Vec<u8>,
}

#[derive(Default)]
pub(crate) struct Repeats {
    lines: VecDeque<Line>,
    /// Sum of the remembered lines' lengths.
    bytes: usize,
    /// Emptied line buffers, for the next lines.
    spare: Vec<Vec<u8>>,
}

impl Repeats {
    /// Append `rec`'s line to `out`: its twin's, or rendered by `render`
    /// (and remembered if a twin is to come). Out of line: only records
    /// with shared fields come here.
    #[inline(never)]
    pub(crate) fn write(&mut self, rec: &Record, out: &mut Vec<u8>, render: impl FnOnce(&mut Vec<u8>)) {
        if !self.replay(rec, out) {
            let start = out.len();
            render(out);
            self.remember(rec, out.get(start..).unwrap_or_default());
        }
    }

    /// Append to `out` the line remembered for `rec`'s twin, if there is
    /// one; `false` when `rec` must be rendered.
    pub(crate) fn replay(&mut self, rec: &Record, out: &mut Vec<u8>) -> bool {
        if self.lines.is_empty() || rec.fields.holders() != 1 {
            return false;
        }
        let mut i = 0;
        while let Some(line) = self.lines.get(i) {
            if line.pairs.held_by(&rec.fields) {
                let hit = line.time == rec.time;
                if let Some(line) = self.lines.remove(i) {
                    if hit {
                        out.extend_from_slice(&line.bytes);
                    }
                    self.recycle(line);
                }
                return hit;
            }
            if line.pairs.alive() {
                i += 1;
            } else if let Some(line) = self.lines.remove(i) {
                self.recycle(line);
            }
        }
        false
    }

    /// Remember `line`, just rendered for `rec`, if another record holds
    /// `rec`'s fields (its re-tagged copy, still to come).
    pub(crate) fn remember(&mut self, rec: &Record, line: &[u8]) {
        if rec.fields.holders() < 2 || line.len() > MAX_BYTES {
            return;
        }
        let Some(pairs) = rec.fields.weak() else {
            return;
        };
        while self.lines.len() >= MAX_LINES || self.bytes + line.len() > MAX_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.recycle(old),
                None => break,
            }
        }
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.extend_from_slice(line);
        self.bytes += bytes.len();
        self.lines.push_back(Line { pairs, time: rec.time, bytes });
    }

    fn recycle(&mut self, line: Line) {
        self.bytes -= line.bytes.len();
        let mut bytes = line.bytes;
        bytes.clear();
        if self.spare.len() < MAX_LINES && bytes.capacity() <= 4096 {
            self.spare.push(bytes);
        }
    }

    /// Lines waiting (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Map, Value};

    fn original(seq: i64) -> Record {
        let fields = Map::from_pairs(vec![("seq".into(), Value::Int(seq))]);
        Record::new("kube.x".into(), Timestamp::new(100 + seq, 0), fields)
    }

    /// The original and its KEEP copy, as `rewrite_tag` makes them.
    fn twins(seq: i64) -> (Record, Record) {
        let mut a = original(seq);
        let b = Record::new("/out/x".into(), a.time, a.fields.share());
        (a, b)
    }

    fn line(r: &Record) -> Vec<u8> {
        format!("{}|{:?}\n", r.time.secs, r.fields.get_first("seq")).into_bytes()
    }

    /// Write `rec` as an output would; whether it was replayed.
    fn write(rp: &mut Repeats, rec: &Record, out: &mut Vec<u8>) -> bool {
        let mut rendered = false;
        rp.write(rec, out, |out| {
            rendered = true;
            out.extend_from_slice(&line(rec));
        });
        !rendered
    }

    #[test]
    fn copies_get_their_twins_lines_in_generation_order() {
        let mut rp = Repeats::default();
        let (mut out, mut want) = (Vec::new(), Vec::new());
        // A batch of 5: the originals are routed (and dropped), then the copies.
        let pairs: Vec<_> = (0..5).map(twins).collect();
        let mut copies = Vec::new();
        for (a, b) in pairs {
            assert!(!write(&mut rp, &a, &mut out));
            want.extend(line(&a));
            copies.push(b);
        }
        for b in &copies {
            assert!(write(&mut rp, b, &mut out));
            want.extend(line(b));
        }
        assert_eq!(out, want);
        assert_eq!(rp.len(), 0);
    }

    #[test]
    fn a_changed_copy_is_rendered_and_a_dropped_one_forgotten() {
        let mut rp = Repeats::default();
        let mut out = Vec::new();
        let (a0, b0) = twins(0);
        let (a1, mut b1) = twins(1);
        let (a2, mut b2) = twins(2);
        for a in [&a0, &a1, &a2] {
            write(&mut rp, a, &mut out);
        }
        drop((a0, a1, a2));
        // b0 dropped by a filter; b1 changed (its pairs move); b2 re-timed.
        drop(b0);
        b1.fields.set("seq", Value::Int(42));
        b2.time = Timestamp::new(7, 0);
        out.clear();
        assert!(!write(&mut rp, &b1, &mut out));
        assert_eq!(out, line(&b1));
        out.clear();
        assert!(!write(&mut rp, &b2, &mut out));
        assert_eq!(out, line(&b2));
        assert_eq!(rp.len(), 0, "b0's line forgotten, b2's taken out");
    }

    #[test]
    fn owned_records_and_lone_originals_are_not_remembered() {
        let mut rp = Repeats::default();
        let mut out = Vec::new();
        write(&mut rp, &original(1), &mut out);
        let (a, b) = twins(2);
        drop(b);
        write(&mut rp, &a, &mut out);
        assert_eq!(rp.len(), 0);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut rp = Repeats::default();
        let mut out = Vec::new();
        let mut held = Vec::new();
        for seq in 0..(3 * MAX_LINES as i64) {
            let (a, b) = twins(seq);
            write(&mut rp, &a, &mut out);
            held.push(b);
        }
        assert_eq!(rp.len(), MAX_LINES);
        // The oldest went: their copies are rendered, the rest replayed.
        let replayed = held.iter().filter(|b| rp.replay(b, &mut Vec::new())).count();
        assert_eq!(replayed, MAX_LINES);
        let (a, _b) = twins(0);
        rp.remember(&a, &vec![b'x'; MAX_BYTES + 1]);
        assert_eq!(rp.len(), 0);
        for _ in 0..8 {
            rp.remember(&a, &vec![b'x'; MAX_BYTES / 4]);
        }
        assert!(rp.bytes <= MAX_BYTES && rp.len() == 4, "{} {}", rp.bytes, rp.len());
    }
}
