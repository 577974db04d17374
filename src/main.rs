//! The `gatelog` binary: command-line arguments, logging set-up and signal
//! handling around `gatelog::run`. Exit codes: 0 drained cleanly, 1 invalid
//! configuration, 2 could not start (socket or thread), 3 `Grace` expired
//! with records still in flight.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;

use clap::Parser as _;
use gatelog::config::classic;
use gatelog::engine::{self, plan, Event, Outcome};

#[global_allocator]
static ALLOC: gatelog::Allocator = gatelog::Allocator;

/// mimalloc's arena eager commit made 8 MiB resident before the first
/// datagram; committing on demand keeps an idle gatelog at ~2 MiB of anon
/// memory. This must run before mimalloc creates its first arena, so it is
/// an early constructor (priority 101 runs before the default ones).
#[used]
#[link_section = ".init_array.00101"]
static ARENA_COMMIT_ON_DEMAND: extern "C" fn() = {
    extern "C" fn set() {
        // SAFETY: sets a mimalloc option before any thread exists; 4 is
        // mi_option_arena_eager_commit, which libmimalloc-sys does not name.
        unsafe { libmimalloc_sys::mi_option_set(4, 0) };
    }
    set
};

/// The config `gatelog` runs when given no `-c`.
const EMBEDDED_DEFAULT: &str = include_str!("../examples/default.conf");

#[derive(clap::Parser, Debug)]
#[command(name = "gatelog", version, about = "nginx syslog datagrams to dated files; reads Fluent Bit configs")]
struct Args {
    /// Fluent Bit classic config to run (default: the embedded nginx → dated files pipeline).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Extra parsers file (may repeat).
    #[arg(short = 'R', long = "parser")]
    parsers: Vec<PathBuf>,
    /// Load and check everything, print every problem with file:line, and exit.
    #[arg(short = 'D', long = "dry-run")]
    dry_run: bool,
    /// Log level: error, warn, info, debug, trace (overrides Log_Level).
    #[arg(long = "log-level")]
    log_level: Option<String>,
    /// Socket of the embedded default config.
    #[arg(long, env = "GATELOG_SOCKET")]
    socket: Option<PathBuf>,
    /// Output directory of the embedded default config.
    #[arg(long, env = "GATELOG_LOGS")]
    logs: Option<PathBuf>,
}

fn main() -> ExitCode {
    // Past a file-size limit (RLIMIT_FSIZE) write() must fail with EFBIG and
    // be counted like a full disk, not kill the process with SIGXFSZ.
    // SAFETY: setting a signal to SIG_IGN before any thread starts.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let args = Args::parse();
    if args.config.is_none() {
        // The embedded default reads these two through ${VAR:-default}.
        if let Some(sock) = &args.socket {
            std::env::set_var("GATELOG_SOCKET", sock);
        }
        if let Some(logs) = &args.logs {
            std::env::set_var("GATELOG_LOGS", logs);
        }
    }
    let source = Source { config: args.config.clone(), parsers: args.parsers.clone() };
    let loaded = match source.load() {
        Ok(l) => l,
        Err(errors) => return config_failed(&errors.to_string()),
    };
    let level = args.log_level.clone().unwrap_or_else(|| log_level_of(&loaded.doc));
    let log_file = log_file_of(&loaded.doc);
    if let Err(e) = init_logging(&level, log_file.as_deref()) {
        eprintln!("gatelog: cannot open Log_File: {e}");
        return ExitCode::from(2);
    }
    let plan = match plan::build(&loaded) {
        Ok(p) => p,
        Err(errors) => return config_failed(&errors.to_string()),
    };
    if args.dry_run {
        for w in &plan.warnings {
            eprintln!("warning: {w}");
        }
        eprintln!("configuration test is successful");
        return ExitCode::SUCCESS;
    }
    let (tx, rx) = mpsc::channel();
    if let Err(e) = forward_signals(tx) {
        eprintln!("gatelog: cannot install signal handlers: {e}");
        return ExitCode::from(2);
    }
    let reload: engine::Reloader = Box::new(move || plan::build(&source.load()?));
    match engine::run(plan, rx, Some(reload)) {
        Ok(Outcome::Drained) => ExitCode::SUCCESS,
        Ok(Outcome::GraceExpired) => ExitCode::from(3),
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("gatelog: {e}");
            ExitCode::from(2)
        }
    }
}

/// Where the configuration comes from, kept to read it again on a hot reload.
struct Source {
    config: Option<PathBuf>,
    parsers: Vec<PathBuf>,
}

impl Source {
    fn load(&self) -> Result<classic::Loaded, gatelog::config::ConfigErrors> {
        let doc = match &self.config {
            Some(path) => classic::read_file(path),
            None => {
                let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                classic::read_str(EMBEDDED_DEFAULT, Path::new("<embedded default>"), &cwd)
            }
        };
        doc.and_then(|d| classic::load(d, &self.parsers))
    }
}

fn config_failed(errors: &str) -> ExitCode {
    eprintln!("{errors}");
    eprintln!("configuration test failed");
    ExitCode::from(1)
}

fn log_level_of(doc: &gatelog::config::Document) -> String {
    doc.sections_named("SERVICE")
        .filter_map(|s| s.value("log_level"))
        .last()
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|| "info".into())
}

fn log_file_of(doc: &gatelog::config::Document) -> Option<PathBuf> {
    doc.sections_named("SERVICE").filter_map(|s| s.value("log_file")).last().map(PathBuf::from)
}

fn init_logging(level: &str, file: Option<&Path>) -> std::io::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("gatelog={level},{level}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match file {
        Some(path) => {
            let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            builder.with_ansi(false).with_writer(std::sync::Mutex::new(f)).init();
        }
        // No colour codes unless a person is watching: `kubectl logs` and
        // log files show them as garbage.
        None => {
            builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).with_writer(std::io::stderr).init()
        }
    }
    Ok(())
}

/// SIGTERM/SIGINT/SIGQUIT → Stop; SIGHUP/SIGUSR1 → Reopen.
fn forward_signals(tx: mpsc::Sender<Event>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1])?;
    std::thread::Builder::new().name("gatelog-signals".into()).spawn(move || {
        for sig in signals.forever() {
            let ev = if sig == SIGHUP || sig == SIGUSR1 { Event::Reopen } else { Event::Stop };
            if tx.send(ev).is_err() {
                break;
            }
        }
    })?;
    Ok(())
}
