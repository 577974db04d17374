//! `[SERVICE]` settings: flush interval, shutdown grace, logging, the memory
//! budget for records in flight, and the zone for zone-less times.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::schema::{check_keys, SERVICE};
use crate::config::units::{prop_bool, prop_seconds, prop_size, prop_u64};
use crate::config::{ConfigError, Document};
use crate::zone::Zone;

#[derive(Debug, Clone)]
pub struct Service {
    pub flush: Duration,
    pub grace: Duration,
    pub log_level: String,
    pub log_file: Option<PathBuf>,
    /// Bytes of received messages allowed in flight between receivers and
    /// the pipeline; beyond it datagrams are dropped and counted.
    pub buffer_limit: usize,
    pub zone: Zone,
    pub http_server: bool,
    pub http_listen: String,
    pub http_port: u16,
    /// SIGHUP reloads the configuration (filters, outputs, parsers) in place.
    pub hot_reload: bool,
    /// `Health_Check`: serve `/api/v1/health`, failing when more than
    /// `HC_Errors_Count` output errors or `HC_Retry_Failure_Count` retry
    /// failures happened within the last `HC_Period` seconds.
    pub health_check: bool,
    pub hc_errors_count: u64,
    pub hc_retry_failure_count: u64,
    pub hc_period: u64,
}

pub const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

impl Service {
    /// The `[SERVICE]` of a config text (tests).
    #[cfg(test)]
    pub(crate) fn from_text(text: &str) -> Service {
        let doc = crate::config::classic::read_str(text, std::path::Path::new("t.conf"), std::path::Path::new("."));
        Service::from_doc(&doc.expect("config text reads")).expect("valid [SERVICE]")
    }

    pub fn from_doc(doc: &Document) -> Result<Service, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut svc = Service {
            flush: Duration::from_secs(5),
            grace: Duration::from_secs(5),
            log_level: "info".into(),
            log_file: None,
            buffer_limit: 4_000_000,
            zone: Zone::from_env(),
            http_server: false,
            http_listen: "0.0.0.0".into(),
            http_port: 2020,
            hot_reload: false,
            health_check: false,
            hc_errors_count: 5,
            hc_retry_failure_count: 5,
            hc_period: 60,
        };
        for s in doc.sections_named("SERVICE") {
            errors.extend(check_keys(s, "service", &[SERVICE]));
            for p in &s.props {
                let r: Result<(), ConfigError> =
                    match p.key.to_ascii_lowercase().as_str() {
                        "flush" => prop_seconds(p).map(|v| svc.flush = Duration::from_secs_f64(v.max(0.01))),
                        "grace" => prop_seconds(p).map(|v| svc.grace = Duration::from_secs_f64(v)),
                        "log_level" => {
                            let v = p.value.to_ascii_lowercase();
                            if LOG_LEVELS.contains(&v.as_str()) {
                                svc.log_level = v;
                                Ok(())
                            } else {
                                Err(ConfigError::at(&p.loc, format!("unknown Log_Level '{}'", p.value))
                                    .with_hint(format!("use one of {}", LOG_LEVELS.join(", "))))
                            }
                        }
                        "log_file" => {
                            svc.log_file = Some(PathBuf::from(&p.value));
                            Ok(())
                        }
                        "buffer_limit" => prop_size(p).map(|v| svc.buffer_limit = v as usize),
                        "time_zone" => match Zone::parse(&p.value) {
                            Some(z) => {
                                svc.zone = z;
                                Ok(())
                            }
                            None => Err(ConfigError::at(&p.loc, format!("unknown time zone '{}'", p.value))
                                .with_hint("use an IANA name such as Asia/Tokyo, UTC, or an offset such as +09:00")),
                        },
                        "http_server" => prop_bool(p).map(|v| svc.http_server = v),
                        "hot_reload" => prop_bool(p).map(|v| svc.hot_reload = v),
                        "http_listen" => {
                            svc.http_listen = p.value.clone();
                            Ok(())
                        }
                        "http_port" => p.value.trim().parse().map(|v| svc.http_port = v).map_err(|_| {
                            ConfigError::at(&p.loc, format!("HTTP_Port '{}' is not a port number", p.value))
                        }),
                        "health_check" => prop_bool(p).map(|v| svc.health_check = v),
                        "hc_errors_count" => prop_u64(p).map(|v| svc.hc_errors_count = v),
                        "hc_retry_failure_count" => prop_u64(p).map(|v| svc.hc_retry_failure_count = v),
                        "hc_period" => prop_u64(p).map(|v| svc.hc_period = v.max(1)),
                        _ => Ok(()),
                    };
                if let Err(e) = r {
                    errors.push(e);
                }
            }
        }
        if errors.is_empty() {
            Ok(svc)
        } else {
            Err(errors)
        }
    }
}
