//! The open-file cache of the `file` output: one buffered destination per
//! path, at most `Max_Open_Files` of them, least recently used evicted. The
//! last two destinations are found by comparing their paths, the others
//! through a hash map.
//!
//! Each destination owns a byte buffer that is written to its file with one
//! `write_all` when it reaches `Buffer_Size`, on every flush tick, on
//! eviction, reopen and close. Files are opened lazily at that moment
//! (append mode, created `0666 & ~umask`) and kept open between flushes.
//! Before every write the path is `stat`ed and compared with the open file:
//! if it was renamed or deleted (logrotate, an operator), the file is
//! reopened, so like Fluent Bit (which reopens on every flush) external
//! rotation is picked up by the next flush without a signal.
//!
//! Counting rule (the invariant `given = proc_records + dropped_records`):
//! a record handed to [`FileCache::append`] is *pending* in its buffer (a
//! csv/ltsv record without fields is pending with zero bytes). When the
//! buffer's `write_all` succeeds, every pending record counts in
//! `proc_records` and the bytes in `proc_bytes`; when the open or the write
//! fails, `errors` goes up by one and every pending record counts in
//! `dropped_records` (a partial write also drops the whole buffer: the
//! bytes that did land are not counted), the buffer is discarded and the
//! file closed so the next write-out reopens it. After `close` nothing is
//! pending.

use super::path::open_append;
use crate::ratelimit::RateLimiter;
use crate::stats::OutputCounters;
use crate::warn_limited;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;

/// Bytes a destination buffers before writing (`Buffer_Size`).
pub(crate) const DEFAULT_BUFFER: usize = 64 * 1024;
/// Default `Max_Open_Files`.
pub(crate) const DEFAULT_MAX_OPEN: usize = 64;

struct OpenFile {
    file: File,
    dev: u64,
    ino: u64,
}

struct Dest {
    /// Directory the path must stay under (`Path`), if any.
    root: Option<Box<str>>,
    file: Option<OpenFile>,
    buf: Vec<u8>,
    /// Records in `buf`.
    pending: u64,
    /// csv header for the first record of `buf`, written if the file is empty.
    header: Option<Vec<u8>>,
    last_used: u64,
    /// Flushes in a row with nothing to write.
    idle_flushes: u32,
}

/// A file that received nothing for this many flushes in a row is closed
/// (yesterday's dated file, a vhost gone quiet): with `Flush 1`, five seconds.
const IDLE_FLUSHES: u32 = 5;

/// Everything a write-out needs besides the destination itself.
struct Io {
    instance: String,
    mkdir: bool,
    buffer_size: usize,
    warn: RateLimiter,
}

pub(crate) struct FileCache {
    /// The destinations, each under its path.
    dests: Vec<(String, Dest)>,
    /// Path → position in `dests`. foldhash: seeded (paths come from
    /// record data) and cheap on long keys.
    index: foldhash::HashMap<String, usize>,
    /// Positions of the two destinations appended to last, most recent
    /// first (`usize::MAX`: none), tried before `index`: records mostly go
    /// where the one before went (or, with `rewrite_tag` KEEP copies, to
    /// one of two files), and comparing a path costs less than hashing it.
    /// A hit is checked against the path, so a position a removal left
    /// stale only misses.
    recent: [usize; 2],
    max_open: usize,
    tick: u64,
    io: Io,
}

const NONE: [usize; 2] = [usize::MAX; 2];

impl FileCache {
    pub(crate) fn new(instance: &str, max_open: usize, buffer_size: usize, mkdir: bool) -> Self {
        FileCache {
            dests: Vec::new(),
            index: foldhash::HashMap::default(),
            recent: NONE,
            max_open: max_open.max(1),
            tick: 0,
            io: Io {
                instance: instance.to_owned(),
                mkdir,
                buffer_size: buffer_size.max(1),
                warn: RateLimiter::default(),
            },
        }
    }

    /// Add one record to the buffer of `path`: `render` appends its bytes
    /// (and may set the csv header when the buffer starts). Writes the
    /// buffer out when it reaches the buffer size.
    pub(crate) fn append(
        &mut self,
        path: &str,
        root: Option<&str>,
        counters: &OutputCounters,
        render: impl FnOnce(&mut Vec<u8>, &mut Option<Vec<u8>>),
    ) {
        self.tick += 1;
        let i = match self.recent.into_iter().find(|&i| self.dests.get(i).is_some_and(|(p, _)| p == path)) {
            Some(i) => i,
            None => match self.index.get(path) {
                Some(&i) => i,
                None => self.insert(path, root, counters),
            },
        };
        if self.recent[0] != i {
            self.recent = [i, self.recent[0]];
        }
        let Some((path, dest)) = self.dests.get_mut(i) else {
            return;
        };
        if self.io.fill(path, dest, self.tick, counters, render) {
            self.publish_open(counters);
        }
    }

    /// A new destination for `path` (evicting the least recently used one
    /// if the cache is full); its position.
    fn insert(&mut self, path: &str, root: Option<&str>, counters: &OutputCounters) -> usize {
        if self.dests.len() >= self.max_open {
            self.evict_lru(counters);
            self.publish_open(counters);
        }
        let dest = Dest {
            root: root.map(Into::into),
            file: None,
            buf: Vec::new(),
            pending: 0,
            header: None,
            last_used: 0,
            idle_flushes: 0,
        };
        self.dests.push((path.to_owned(), dest));
        self.index.insert(path.to_owned(), self.dests.len() - 1);
        self.dests.len() - 1
    }

    /// Take the destination at `i` out (the last one moves into its place).
    fn remove(&mut self, i: usize) -> (String, Dest) {
        let (path, dest) = self.dests.swap_remove(i);
        self.index.remove(&path);
        if let Some((moved, _)) = self.dests.get(i) {
            self.index.insert(moved.clone(), i);
        }
        (path, dest)
    }

    /// Write every buffer to its file, and close the files that have been
    /// idle for [`IDLE_FLUSHES`] flushes.
    pub(crate) fn flush(&mut self, counters: &OutputCounters) {
        let mut idle = Vec::new();
        for (i, (path, dest)) in self.dests.iter_mut().enumerate() {
            if dest.pending == 0 && dest.buf.is_empty() {
                dest.idle_flushes += 1;
                if dest.idle_flushes >= IDLE_FLUSHES {
                    idle.push(i);
                }
            } else {
                dest.idle_flushes = 0;
                self.io.write_out(path, dest, counters);
            }
        }
        // Highest first: a removal moves only the last entry, never one
        // still to be removed.
        for i in idle.into_iter().rev() {
            self.remove(i);
        }
        self.publish_open(counters);
    }

    /// Flush, then close every file; the next write-out reopens by path.
    pub(crate) fn reopen(&mut self, counters: &OutputCounters) {
        self.flush(counters);
        for (_, dest) in self.dests.iter_mut() {
            dest.file = None;
        }
        counters.open_files.set(0);
    }

    /// Flush and forget every destination.
    pub(crate) fn close(&mut self, counters: &OutputCounters) {
        self.flush(counters);
        self.dests.clear();
        self.index.clear();
        self.recent = NONE;
        counters.open_files.set(0);
    }

    /// Set the `open_files` gauge; called after the operations that open
    /// or close files (write-outs and evictions), not per record.
    fn publish_open(&self, counters: &OutputCounters) {
        let open = self.dests.iter().filter(|(_, d)| d.file.is_some()).count();
        counters.open_files.set(open as u64);
    }

    /// Destinations currently cached (open or not).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.dests.len()
    }

    fn evict_lru(&mut self, counters: &OutputCounters) {
        let Some(i) = (0..self.dests.len()).min_by_key(|&i| self.dests[i].1.last_used) else {
            return;
        };
        let (path, mut dest) = self.remove(i);
        self.io.write_out(&path, &mut dest, counters);
    }
}

impl Io {
    /// Render one record into `dest`'s buffer; write the buffer out once it
    /// reaches the buffer size (then true: the open files may have changed).
    fn fill(
        &self,
        path: &str,
        dest: &mut Dest,
        tick: u64,
        counters: &OutputCounters,
        render: impl FnOnce(&mut Vec<u8>, &mut Option<Vec<u8>>),
    ) -> bool {
        dest.last_used = tick;
        render(&mut dest.buf, &mut dest.header);
        dest.pending += 1;
        if dest.buf.len() < self.buffer_size {
            return false;
        }
        self.write_out(path, dest, counters);
        true
    }

    fn write_out(&self, path: &str, dest: &mut Dest, counters: &OutputCounters) {
        if dest.pending == 0 && dest.buf.is_empty() {
            return;
        }
        if let Err(e) = self.ensure_open(path, dest) {
            self.fail(path, dest, "open", &e, counters);
            return;
        }
        let Some(of) = dest.file.as_mut() else {
            return;
        };
        if let Some(header) = dest.header.take() {
            if of.file.metadata().map(|m| m.len() == 0).unwrap_or(false) {
                dest.buf.splice(0..0, header);
            }
        }
        let (written, result) = write_counted(&mut of.file, &dest.buf);
        match result {
            Ok(()) => {
                counters.proc_records.add(dest.pending);
                counters.proc_bytes.add(dest.buf.len() as u64);
                self.reset(dest);
            }
            Err(e) => {
                // A write that fails half way (disk full) is cut back to
                // where it started, so no partial line is left for the next
                // record to be glued onto. (Asked of the file only then: a
                // `stat` before every write cost ~1% of job (c)'s CPU.)
                if written > 0 {
                    if let Ok(md) = of.file.metadata() {
                        let _ = of.file.set_len(md.len().saturating_sub(written as u64));
                    }
                }
                dest.file = None;
                self.fail(path, dest, "write", &e, counters);
            }
        }
    }

    /// Make sure `dest.file` is open and still the file `path` names.
    fn ensure_open(&self, path: &str, dest: &mut Dest) -> io::Result<()> {
        if let Some(of) = &dest.file {
            let same = fs::metadata(path).map(|m| m.dev() == of.dev && m.ino() == of.ino).unwrap_or(false);
            if same {
                return Ok(());
            }
            dest.file = None;
        }
        let file = open_append(path, dest.root.as_deref(), self.mkdir)?;
        let md = file.metadata()?;
        dest.file = Some(OpenFile { dev: md.dev(), ino: md.ino(), file });
        Ok(())
    }

    fn fail(&self, path: &str, dest: &mut Dest, op: &str, e: &io::Error, counters: &OutputCounters) {
        counters.errors.inc();
        counters.dropped_records.add(dest.pending);
        warn_limited!(
            self.warn,
            output = %self.instance,
            path,
            error = %e,
            records = dest.pending,
            "could not {op} output file; its buffered records were dropped"
        );
        self.reset(dest);
    }

    fn reset(&self, dest: &mut Dest) {
        dest.pending = 0;
        dest.header = None;
        dest.buf.clear();
        // One oversized record must not pin its memory for ever.
        if dest.buf.capacity() > 2 * self.buffer_size {
            dest.buf.shrink_to(self.buffer_size);
        }
    }
}

/// `write_all`, also telling how many bytes landed before an error.
fn write_counted(file: &mut File, buf: &[u8]) -> (usize, io::Result<()>) {
    let mut written = 0;
    while written < buf.len() {
        match file.write(&buf[written..]) {
            Ok(0) => return (written, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Err(e)),
        }
    }
    (written, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &'static str) -> impl FnOnce(&mut Vec<u8>, &mut Option<Vec<u8>>) {
        move |buf, _| buf.extend_from_slice(s.as_bytes())
    }

    #[test]
    fn eviction_with_two_slots_over_five_files_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = OutputCounters::default();
        let mut cache = FileCache::new("file.0", 2, DEFAULT_BUFFER, true);
        let paths: Vec<String> = (0..5).map(|i| format!("{}/f{i}.log", dir.path().display())).collect();
        for round in 0..3 {
            for p in &paths {
                cache.append(p, None, &c, line(if round == 2 { "c\n" } else { "ab\n" }));
                assert!(cache.len() <= 2);
            }
        }
        cache.flush(&c);
        assert_eq!(c.open_files.get(), 2);
        cache.close(&c);
        assert_eq!(c.open_files.get(), 0);
        for p in &paths {
            assert_eq!(fs::read_to_string(p).unwrap(), "ab\nab\nc\n");
        }
        assert_eq!(c.proc_records.get(), 15);
        assert_eq!(c.proc_bytes.get(), 5 * 8);
        assert_eq!(c.dropped_records.get(), 0);
    }

    #[test]
    fn every_line_reaches_its_own_file_through_evictions_idle_closes_and_recent_hits() {
        // Removals move the last destination into the freed place: the
        // path index must follow, or lines would land in another file.
        let dir = tempfile::tempdir().unwrap();
        let c = OutputCounters::default();
        let mut cache = FileCache::new("file.0", 3, 64, true);
        let paths: Vec<String> = (0..7).map(|i| format!("{}/f{i}.log", dir.path().display())).collect();
        let mut want = vec![String::new(); paths.len()];
        let mut next = crate::testing::xorshift(0x00CA_C4E5_1AB5);
        let mut lines = 0u64;
        for n in 0..5_000 {
            // Runs on one path, pairs alternating, jumps, and quiet spells
            // in which flushes close idle files.
            let i = match next() % 10 {
                0..=5 => (n / 7) % 3,
                6 | 7 => 3 + n % 2,
                _ => (next() % 7) as usize,
            };
            let line: &'static str = Box::leak(format!("{n} {i}\n").into_boxed_str());
            cache.append(&paths[i], None, &c, move |buf, _| buf.extend_from_slice(line.as_bytes()));
            want[i].push_str(line);
            lines += 1;
            assert!(cache.len() <= 3);
            if next() % 50 == 0 {
                for _ in 0..(next() % 7) {
                    cache.flush(&c);
                }
            }
        }
        cache.close(&c);
        for (p, w) in paths.iter().zip(&want) {
            assert_eq!(fs::read_to_string(p).unwrap_or_default(), *w, "{p}");
        }
        assert_eq!(c.proc_records.get(), lines);
        assert_eq!(c.dropped_records.get(), 0);
    }

    #[test]
    fn idle_files_are_closed_after_a_few_quiet_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let counters = OutputCounters::default();
        let mut cache = FileCache::new("t", 8, 1 << 16, true);
        let yesterday = dir.path().join("2026-1123.log").display().to_string();
        let today = dir.path().join("2026-1124.log").display().to_string();
        cache.append(&yesterday, None, &counters, line("a\n"));
        cache.flush(&counters);
        for _ in 0..IDLE_FLUSHES {
            cache.append(&today, None, &counters, line("b\n"));
            cache.flush(&counters);
        }
        assert_eq!(cache.len(), 1, "yesterday's file is closed, today's stays open");
        assert_eq!(counters.open_files.get(), 1);
        assert_eq!(counters.proc_records.get(), 1 + IDLE_FLUSHES as u64);
    }

    #[test]
    fn full_buffer_is_written_before_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let p = format!("{}/a.log", dir.path().display());
        let c = OutputCounters::default();
        let mut cache = FileCache::new("file.0", 4, 8, true);
        cache.append(&p, None, &c, line("1234\n"));
        assert!(!std::path::Path::new(&p).exists());
        cache.append(&p, None, &c, line("5678\n"));
        assert_eq!(fs::read_to_string(&p).unwrap(), "1234\n5678\n");
        assert_eq!(c.proc_records.get(), 2);
    }

    #[test]
    fn rename_is_noticed_at_the_next_flush_and_reopen_follows_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = format!("{}/a.log", dir.path().display());
        let rotated = dir.path().join("a.log.1");
        let c = OutputCounters::default();
        let mut cache = FileCache::new("file.0", 4, DEFAULT_BUFFER, true);
        cache.append(&p, None, &c, line("one\n"));
        cache.flush(&c);
        fs::rename(&p, &rotated).unwrap();
        cache.append(&p, None, &c, line("two\n"));
        cache.flush(&c);
        fs::rename(&p, dir.path().join("a.log.2")).unwrap();
        cache.reopen(&c);
        cache.append(&p, None, &c, line("three\n"));
        cache.close(&c);
        assert_eq!(fs::read_to_string(&rotated).unwrap(), "one\n");
        assert_eq!(fs::read_to_string(dir.path().join("a.log.2")).unwrap(), "two\n");
        assert_eq!(fs::read_to_string(&p).unwrap(), "three\n");
        assert_eq!(c.proc_records.get(), 3);
    }

    #[test]
    fn write_error_counts_and_drops_without_panicking() {
        // /dev/full fails every write with ENOSPC, even for root.
        if !std::path::Path::new("/dev/full").exists() {
            return;
        }
        let c = OutputCounters::default();
        let mut cache = FileCache::new("file.0", 4, DEFAULT_BUFFER, false);
        cache.append("/dev/full", None, &c, line("x\n"));
        cache.append("/dev/full", None, &c, line("y\n"));
        cache.flush(&c);
        cache.append("/dev/full", None, &c, line("z\n"));
        cache.close(&c);
        assert_eq!(c.errors.get(), 2);
        assert_eq!(c.dropped_records.get(), 3);
        assert_eq!(c.proc_records.get(), 0);
    }

    #[test]
    fn csv_header_only_for_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = format!("{}/a.csv", dir.path().display());
        let c = OutputCounters::default();
        let mut cache = FileCache::new("file.0", 4, DEFAULT_BUFFER, true);
        let with_header = |row: &'static str| {
            move |buf: &mut Vec<u8>, header: &mut Option<Vec<u8>>| {
                if buf.is_empty() {
                    *header = Some(b"h\n".to_vec());
                }
                buf.extend_from_slice(row.as_bytes());
            }
        };
        cache.append(&p, None, &c, with_header("1\n"));
        cache.append(&p, None, &c, with_header("2\n"));
        cache.flush(&c);
        cache.append(&p, None, &c, with_header("3\n"));
        cache.close(&c);
        assert_eq!(fs::read_to_string(&p).unwrap(), "h\n1\n2\n3\n");
        assert_eq!(c.proc_bytes.get(), 8);
    }
}
