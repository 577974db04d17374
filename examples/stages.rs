//! CPU cost of the pipeline stages in-process, without sockets: the same
//! nginx-shaped messages fed as batches straight into the pipeline thread's
//! work (parse → filters → route → format → write), for each job's config.
//!
//!     cargo run --release --example stages -- [N] [job,...]
//!
//! Prints CPU microseconds per record (getrusage, user+sys) per job.
//! `STAGES_BATCH` sets the datagrams a batch (32), `STAGES_GROUP` the
//! messages taken through the stages at once (0: a batch at a time).

#[path = "bench/load.rs"]
#[allow(dead_code)]
mod load;

use std::path::Path;
use std::sync::Arc;

use gatelog::config::classic;
use gatelog::engine::pipeline::Pipeline;
use gatelog::engine::plan;
use gatelog::input::handoff::Batch;
use gatelog::record::Timestamp;
use gatelog::zone::Zone;

#[global_allocator]
static ALLOC: gatelog::Allocator = gatelog::Allocator;

const TEMPLATE: &str = "time:{time}\tmethod:{method}\turi:{uri}\tstatus:{status}\tvhost:{vhost}\tremote_addr:{remote_addr}\trequest_time:{request_time}\tuser_agent:{user_agent}";

fn cpu() -> f64 {
    // SAFETY: zeroed rusage filled by getrusage.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// The benchmark's nginx-shaped datagram.
fn message(seq: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    load::message(seq, &mut buf);
    buf
}

fn job(name: &str, dir: &Path) -> String {
    let out = dir.join("out");
    let sidecar = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fluent-bit-sidecar");
    let input = |parser: &str, tag: &str| {
        format!("[INPUT]\n    Name syslog\n    Tag {tag}\n    Path {}/s.sock\n    Parser {parser}\n", dir.display())
    };
    match name {
        "a-sidecar" => {
            for f in ["parsers.conf", "create-log-file-path.lua"] {
                std::fs::copy(sidecar.join(f), dir.join(f)).unwrap();
            }
            std::fs::read_to_string(sidecar.join("fluent-bit.conf"))
                .unwrap()
                .replace("/tmp/sidecar-nginx/sys-log.sock", &format!("{}/s.sock", dir.display()))
                .replace("/log/output/path/", &format!("{}/", out.display()))
                .replace("HTTP_Server         On", "HTTP_Server         Off")
        }
        "a-no-lua" => {
            std::fs::copy(sidecar.join("parsers.conf"), dir.join("parsers.conf")).unwrap();
            format!("[SERVICE]\n    Parsers_File parsers.conf\n{}[FILTER]\n    Name parser\n    Match kube.*\n    Key_Name message\n    Preserve_Key true\n    Reserve_Data true\n    Parser json\n[OUTPUT]\n    Name file\n    Match *\n    Path {}/%Y-%m%d\n    File x.log\n    Format template\n    Template {TEMPLATE}\n", input("syslog-rfc3164-local", "kube.*"), out.display())
        }
        "b-native" => format!("{}[FILTER]\n    Name parser\n    Match kube.*\n    Key_Name message\n    Preserve_Key true\n    Reserve_Data true\n    Parser json\n[OUTPUT]\n    Name file\n    Match *\n    Path {}/%Y-%m%d\n    File x.log\n    Format template\n    Template {TEMPLATE}\n", input("rfc3164", "kube.*"), out.display()),
        "b-no-filter" => format!("{}[OUTPUT]\n    Name file\n    Match *\n    Path {}/%Y-%m%d\n    File x.log\n    Format template\n    Template {TEMPLATE}\n", input("rfc3164", "kube.*"), out.display()),
        "default" => std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/default.conf"))
            .unwrap()
            .replace("${GATELOG_SOCKET:-./gatelog.sock}", &format!("{}/s.sock", dir.display()))
            .replace("${GATELOG_LOGS:-./logs}", &out.display().to_string()),
        "c-raw" => format!("{}[OUTPUT]\n    Name file\n    Match *\n    Path {}\n    File raw.log\n    Format template\n    Template {{message}}\n", input("raw", "raw"), out.display()),
        "c-null" => format!("{}[OUTPUT]\n    Name null\n    Match *\n", input("raw", "raw")),
        other => panic!("unknown job {other}"),
    }
}

/// Consecutive batches grouped as the pipeline thread takes them: until a
/// group holds `messages` (each batch alone when 0).
fn groups(batches: &[Batch], messages: usize) -> Vec<std::ops::Range<usize>> {
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    let mut held = 0;
    for (i, b) in batches.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if held < messages.max(1) => g.end = i + 1,
            _ => {
                groups.push(i..i + 1);
                held = 0;
            }
        }
        held += b.msgs.len();
    }
    groups
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let only = std::env::args().nth(2);
    let msgs: Vec<Vec<u8>> = (0..1000).map(message).collect();
    // Datagrams a batch (what one `recvmmsg` returned), and the messages
    // the pipeline takes through its stages at once (0: a batch at a
    // time). Over unix_udp gatelog sees batches of ~2 in groups of 64.
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (batch, group) = (env("STAGES_BATCH", 32).max(1), env("STAGES_GROUP", 0));
    for name in ["c-null", "c-raw", "b-no-filter", "b-native", "default", "a-no-lua", "a-sidecar"] {
        if only.as_deref().is_some_and(|o| !o.split(',').any(|x| x == name)) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        // The sidecar job also writes Fluent Bit's `kube.*` side file into the working directory.
        std::env::set_current_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join("g.conf"), job(name, dir.path())).unwrap();
        let doc = classic::read_file(&dir.path().join("g.conf")).unwrap();
        let loaded = classic::load(doc, &[]).unwrap();
        let p = match plan::build(&loaded) {
            Ok(p) => p,
            Err(e) => {
                println!("{name:<12} skipped: {e}");
                continue;
            }
        };
        let mut pipe =
            Pipeline::new(p.inputs, p.filters, p.outputs, Zone::parse("Asia/Tokyo").unwrap(), Arc::default());
        let now = Timestamp::now();
        let batches: Vec<Batch> = msgs
            .chunks(batch)
            .map(|c| {
                let mut b = Batch::new(0);
                b.received_at = now;
                for m in c {
                    b.push(m, None);
                }
                b
            })
            .collect();
        let start = cpu();
        let mut done = 0u64;
        let groups = groups(&batches, group);
        while done < n {
            for g in &groups {
                let g = &batches[g.clone()];
                pipe.process_all(g);
                done += g.iter().map(|b| b.msgs.len() as u64).sum::<u64>();
            }
        }
        pipe.close();
        let spent = cpu() - start;
        println!("{name:<12} {:>7.2} µs/record  ({done} records)", spent * 1e6 / done as f64);
    }
}
