//! The `syslog` input: settings read from an `[INPUT]` section, and the
//! receiver threads that take messages off the socket (`receiver` for
//! datagram modes, `stream` for connection modes) and hand them to the
//! pipeline through `handoff`.

pub mod framing;
pub mod handoff;
pub mod pause;
pub mod receiver;
pub mod socket;
pub mod stream;
pub mod watchdog;

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::schema::{check_keys, OptionSpec, COMMON_INPUT};
use crate::config::units::{prop_bool, prop_size};
use crate::config::{ConfigError, Location, Section};
use crate::stats::InputCounters;
use framing::Framing;
use handoff::Handoff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    UnixUdp,
    Udp,
    UnixTcp,
    Tcp,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::UnixUdp => "unix_udp",
            Mode::Udp => "udp",
            Mode::UnixTcp => "unix_tcp",
            Mode::Tcp => "tcp",
        }
    }

    fn is_unix(self) -> bool {
        matches!(self, Mode::UnixUdp | Mode::UnixTcp)
    }
}

const SYSLOG_OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "Mode",
        default: Some("unix_udp"),
        desc: "unix_udp, udp, unix_tcp or tcp",
    },
    OptionSpec {
        name: "Path",
        default: None,
        desc: "unix socket path (unix modes)",
    },
    OptionSpec {
        name: "Unix_Perm",
        default: Some("0644"),
        desc: "octal permissions of the socket file",
    },
    OptionSpec {
        name: "Listen",
        default: Some("0.0.0.0"),
        desc: "address to listen on (udp, tcp)",
    },
    OptionSpec {
        name: "Port",
        default: Some("5140"),
        desc: "port to listen on (udp, tcp)",
    },
    OptionSpec {
        name: "Parser",
        default: None,
        desc: "parser for each message (default: native rfc3164)",
    },
    OptionSpec {
        name: "Buffer_Chunk_Size",
        default: Some("32768"),
        desc: "read size for streams",
    },
    OptionSpec {
        name: "Buffer_Max_Size",
        default: Some("262144"),
        desc: "largest message taken whole",
    },
    OptionSpec {
        name: "Receive_Buffer_Size",
        default: None,
        desc: "SO_RCVBUF for udp (forced with CAP_NET_ADMIN)",
    },
    OptionSpec {
        name: "Source_Address_Key",
        default: None,
        desc: "add the sender address under this key",
    },
    OptionSpec {
        name: "Raw_Message_Key",
        default: None,
        desc: "add the whole message under this key",
    },
    OptionSpec {
        name: "Format",
        default: None,
        desc: "stream framing: newline or octet_counting (default: both, detected)",
    },
    OptionSpec {
        name: "Keep_Unparsed",
        default: Some("off"),
        desc: "gatelog: keep lines no parser matches as {message}",
    },
    OptionSpec {
        name: "Buffer_Full",
        default: Some("drop"),
        desc: "gatelog, datagram modes: drop (count, keep draining the socket) or wait (pause receiving until the pipeline has room)",
    },
];

/// A resolved `[INPUT] Name syslog` section.
#[derive(Debug, Clone)]
pub struct SyslogSettings {
    /// Instance name in metrics and logs (`syslog.0` or the Alias).
    pub name: String,
    pub tag: Arc<str>,
    pub mode: Mode,
    pub path: Option<PathBuf>,
    pub unix_perm: u32,
    pub listen: String,
    pub port: u16,
    pub parser: Option<(String, Location)>,
    pub max_message: usize,
    pub receive_buffer: Option<usize>,
    pub source_address_key: Option<String>,
    pub raw_message_key: Option<String>,
    pub framing: Framing,
    pub keep_unparsed: bool,
    /// Datagram modes: wait for room instead of dropping when the hand-off is full.
    pub wait_when_full: bool,
    pub loc: Location,
}

impl SyslogSettings {
    pub fn from_section(s: &Section, index: usize) -> Result<Self, Vec<ConfigError>> {
        let mut errors = check_keys(s, "syslog", &[COMMON_INPUT, SYSLOG_OPTIONS]);
        let name = s.value("alias").map(str::to_owned).unwrap_or_else(|| format!("syslog.{index}"));
        let mode = match s.get("mode") {
            None => Mode::UnixUdp,
            Some(p) => match p.value.to_ascii_lowercase().as_str() {
                "unix_udp" => Mode::UnixUdp,
                "udp" => Mode::Udp,
                "unix_tcp" => Mode::UnixTcp,
                "tcp" => Mode::Tcp,
                other => {
                    errors.push(
                        ConfigError::at(&p.loc, format!("unknown syslog mode '{other}'"))
                            .with_hint("use unix_udp (what nginx speaks), udp, unix_tcp or tcp"),
                    );
                    Mode::UnixUdp
                }
            },
        };
        // A relative socket path is relative to the working directory, as in Fluent Bit.
        let path = s.get("path").map(|p| PathBuf::from(&p.value));
        if mode.is_unix() && path.is_none() {
            errors.push(
                ConfigError::at(&s.loc, format!("syslog mode {} needs a Path", mode.name()))
                    .with_hint("add 'Path /tmp/sidecar-nginx/sys-log.sock' (the socket nginx logs to)"),
            );
        }
        let unix_perm = match s.get("unix_perm") {
            None => 0o644,
            Some(p) => match u32::from_str_radix(p.value.trim_start_matches("0o"), 8) {
                Ok(v) if v <= 0o7777 => v,
                _ => {
                    errors.push(
                        ConfigError::at(&p.loc, format!("Unix_Perm '{}' is not an octal mode", p.value))
                            .with_hint("e.g. 0666"),
                    );
                    0o644
                }
            },
        };
        let port = match s.get("port") {
            None => 5140,
            Some(p) => p.value.trim().parse().unwrap_or_else(|_| {
                errors.push(ConfigError::at(&p.loc, format!("Port '{}' is not a port number", p.value)));
                5140
            }),
        };
        let mut size = |key: &str, default: usize| match s.get(key) {
            None => Some(default),
            Some(p) => match prop_size(p) {
                Ok(v) => Some(v as usize),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
        };
        let max_message = size("buffer_max_size", receiver::SLOT).unwrap_or(receiver::SLOT);
        let receive_buffer = match s.get("receive_buffer_size") {
            None => None,
            Some(_) => size("receive_buffer_size", 0),
        };
        let framing = match s.get("format") {
            None => Framing::Auto,
            Some(p) => match p.value.to_ascii_lowercase().as_str() {
                "newline" => Framing::Newline,
                "octet_counting" => Framing::OctetCounting,
                other => {
                    errors.push(
                        ConfigError::at(&p.loc, format!("unknown stream format '{other}'"))
                            .with_hint("use newline or octet_counting"),
                    );
                    Framing::Auto
                }
            },
        };
        let keep_unparsed = match s.get("keep_unparsed") {
            None => false,
            Some(p) => prop_bool(p).unwrap_or_else(|e| {
                errors.push(e);
                false
            }),
        };
        let wait_when_full = match s.get("buffer_full") {
            None => false,
            Some(p) => match p.value.to_ascii_lowercase().as_str() {
                "drop" => false,
                "wait" => true,
                other => {
                    errors.push(
                        ConfigError::at(&p.loc, format!("Buffer_Full must be drop or wait, got '{other}'"))
                            .with_hint("drop: count and keep draining the socket (nginx never sees a full queue); wait: pause receiving (blocking senders lose nothing)"),
                    );
                    false
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(SyslogSettings {
            tag: Arc::from(s.value("tag").unwrap_or(&name)),
            name,
            mode,
            path,
            unix_perm,
            listen: s.value("listen").unwrap_or("0.0.0.0").to_owned(),
            port,
            parser: s.get("parser").map(|p| (p.value.clone(), p.loc.clone())),
            max_message,
            receive_buffer,
            source_address_key: s.value("source_address_key").map(str::to_owned),
            raw_message_key: s.value("raw_message_key").map(str::to_owned),
            framing,
            keep_unparsed,
            wait_when_full,
            loc: s.loc.clone(),
        })
    }

    /// Where it listens, for the start-up log.
    pub fn endpoint(&self) -> String {
        match &self.path {
            Some(p) if self.mode.is_unix() => format!("{} {}", self.mode.name(), p.display()),
            _ => format!("{} {}:{}", self.mode.name(), self.listen, self.port),
        }
    }

    /// Bind the socket and start the receiver thread(s).
    pub fn start(
        &self,
        index: usize,
        handoff: Handoff,
        counters: Arc<InputCounters>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>> {
        let addr = format!("{}:{}", self.listen, self.port);
        let want_peer = self.source_address_key.is_some();
        let thread = std::thread::Builder::new().name(format!("gatelog-{}", self.name));
        match self.mode {
            Mode::UnixUdp | Mode::Udp => {
                let (fd, keep, pause): (i32, Box<dyn Send>, Duration) = if self.mode == Mode::UnixUdp {
                    let path = self.path.clone().unwrap_or_default();
                    let sock = socket::bind_unix_dgram(&path, self.unix_perm)?;
                    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
                    socket::unix_queue_report(&path);
                    (sock.as_raw_fd(), Box::new(sock), Duration::ZERO)
                } else {
                    let sock = socket::bind_udp(&addr, self.receive_buffer)?;
                    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
                    let pause = socket::udp_queue_report(&sock, self.receive_buffer);
                    (sock.as_raw_fd(), Box::new(sock), pause)
                };
                let rx = receiver::DgramReceiver {
                    fd,
                    input: index,
                    handoff,
                    counters,
                    stop,
                    want_peer,
                    wait_when_full: self.wait_when_full,
                    unlink: self.mode.is_unix().then(|| self.path.clone()).flatten(),
                    pause,
                };
                let span = tracing::info_span!("input", name = %self.name);
                thread.spawn(move || {
                    let _span = span.entered();
                    rx.run();
                    drop(keep); // the socket closes only after the final drain
                })
            }
            Mode::UnixTcp | Mode::Tcp => {
                let listener = if self.mode == Mode::UnixTcp {
                    stream::Listener::Unix(socket::bind_unix_stream(
                        &self.path.clone().unwrap_or_default(),
                        self.unix_perm,
                    )?)
                } else {
                    stream::Listener::Tcp(socket::bind_tcp(&addr)?)
                };
                let server = stream::StreamServer {
                    listener,
                    input: index,
                    handoff,
                    counters,
                    stop,
                    framing: self.framing,
                    max_frame: self.max_message,
                    want_peer,
                    unlink: self.mode.is_unix().then(|| self.path.clone()).flatten(),
                };
                let span = tracing::info_span!("input", name = %self.name);
                thread.spawn(move || span.in_scope(|| server.run()))
            }
        }
    }
}
