//! The built-in HTTP server (`[SERVICE] HTTP_Server On`): Fluent Bit's
//! monitoring endpoints, answered from the live counters in [`Telemetry`].
//!
//! | path | answer |
//! | --- | --- |
//! | `/` | build info JSON (liveness probe) |
//! | `/api/v1/uptime` | uptime JSON |
//! | `/api/v1/metrics` | counters JSON |
//! | `/api/v1/metrics/prometheus` | Prometheus text (readiness probe) |
//! | `/api/v1/health` | `ok`/`error` (only with `Health_Check On`) |
//!
//! The server runs on its own thread with a single-threaded tokio runtime
//! (hyper, HTTP/1.1). It is bound by [`start`] before the inputs, so a
//! probe answers while gatelog starts, and stopped by [`HttpServer::stop`]
//! only after the pipeline drained, so probes and scrapes keep answering
//! (and counting) during shutdown. Every endpoint answers 200 from the
//! first moment: the counters are read live, there is no snapshot to wait
//! for (Fluent Bit answers 404 on both metrics endpoints until its first
//! 1-second snapshot, which fails readiness probes right after start,
//! fluent-bit#1884). `gatelog_phase` tells starting, running and draining
//! apart.
//!
//! Routing is by exact path and unknown paths get 404. Fluent Bit 1.8
//! routed by unanchored regex with `/` last, so it answered any path with
//! 200 and the build info; current Fluent Bit answers 404 as we do.

mod health;
mod json;
mod prometheus;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::oneshot;

use crate::engine::service::Service;
use crate::ratelimit::RateLimiter;
use crate::stats::Telemetry;
use crate::warn_limited;
use health::{HealthCheck, Sums};

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// A client that sends no complete request head within this is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The running server; stopping (or dropping) it closes the listener and
/// every open connection.
pub struct HttpServer {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Stop serving (after the pipeline drained).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the handlers read.
struct State {
    telemetry: Arc<Telemetry>,
    health: Option<HealthCheck>,
    /// Uptime is measured on the monotonic clock from here.
    started: Instant,
}

impl State {
    fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Bind `HTTP_Listen:HTTP_Port` and start serving the endpoints for
/// `telemetry`. Binding happens here, so an address in use is an error of
/// the caller's, not a log line from a thread.
pub fn start(service: &Service, telemetry: Arc<Telemetry>) -> std::io::Result<HttpServer> {
    let listener = std::net::TcpListener::bind((service.http_listen.as_str(), service.http_port))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
    let since_start = telemetry.started.elapsed().unwrap_or_default();
    let state = Arc::new(State {
        health: service.health_check.then(|| HealthCheck::new(service)),
        started: Instant::now().checked_sub(since_start).unwrap_or_else(Instant::now),
        telemetry,
    });
    let (tx, rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("gatelog-http".into())
        .spawn(move || runtime.block_on(serve(listener, state, rx)))?;
    tracing::info!(%addr, health_check = service.health_check, "HTTP server listening");
    Ok(HttpServer { shutdown: Some(tx), thread: Some(thread) })
}

/// Accept connections until `stop` fires (or its sender is dropped).
async fn serve(listener: std::net::TcpListener, state: Arc<State>, mut stop: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "HTTP server cannot use its socket; endpoints are not served");
            return;
        }
    };
    if state.health.is_some() {
        tokio::spawn(snapshots(state.clone()));
    }
    let accept_errors = RateLimiter::default();
    loop {
        let next = std::future::poll_fn(|cx| {
            if Pin::new(&mut stop).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            listener.poll_accept(cx).map(Some)
        })
        .await;
        match next {
            None => break,
            Some(Ok((stream, _))) => {
                tokio::spawn(connection(stream, state.clone()));
            }
            Some(Err(e)) => {
                // EMFILE and friends: back off instead of spinning.
                warn_limited!(accept_errors, error = %e, "HTTP server cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Returning drops the runtime's remaining tasks: open connections close.
}

async fn connection(stream: tokio::net::TcpStream, state: Arc<State>) {
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let reply = respond(req.method(), req.uri().path(), &state);
        async move { Ok::<_, Infallible>(reply) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

/// The health check's once-a-second snapshot (the first one at start).
async fn snapshots(state: Arc<State>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(h) = &state.health {
            h.record(Sums::of(&state.telemetry));
        }
    }
}

/// The answer to one request; pure apart from reading the counters.
fn respond(method: &Method, path: &str, state: &State) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "method not allowed\n".into());
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let t = &state.telemetry;
    match path {
        "/" => reply(StatusCode::OK, JSON, json::build_info()),
        "/api/v1/uptime" => reply(StatusCode::OK, JSON, json::uptime(state.uptime())),
        "/api/v1/metrics" => reply(StatusCode::OK, JSON, json::metrics(t)),
        "/api/v1/metrics/prometheus" => {
            reply(StatusCode::OK, prometheus::CONTENT_TYPE, prometheus::render(t, state.uptime()))
        }
        "/api/v1/health" if state.health.is_some() => {
            let healthy = state.health.as_ref().is_some_and(|h| h.healthy(Sums::of(t)));
            if healthy {
                reply(StatusCode::OK, TEXT, "ok\n".into())
            } else {
                reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "error\n".into())
            }
        }
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::{FilterCounters, InputCounters, Named, OutputCounters, Phase};
    use http_body_util::BodyExt;
    use std::io::{Read, Write};

    /// One syslog input, a parser and a rewrite_tag filter, one file output.
    pub(crate) fn telemetry() -> Telemetry {
        fn named<C: Default>(name: &str, plugin: &'static str) -> Named<C> {
            Named { name: name.into(), plugin, counters: Arc::default() }
        }
        Telemetry::new(
            vec![named::<InputCounters>("syslog.0", "syslog")],
            vec![
                named::<FilterCounters>("parser.0", "parser"),
                named::<FilterCounters>("rewrite_tag.1", "rewrite_tag"),
            ],
            vec![named::<OutputCounters>("file.0", "file")],
            Arc::default(),
            Arc::default(),
            1000,
        )
    }

    fn state(health: bool) -> State {
        let svc = Service::from_text("[SERVICE]\n    HC_Errors_Count 1\n    HC_Period 5\n");
        State {
            telemetry: Arc::new(telemetry()),
            health: health.then(|| HealthCheck::new(&svc)),
            started: Instant::now(),
        }
    }

    fn get(state: &State, path: &str) -> (u16, String, String) {
        let r = respond(&Method::GET, path, state);
        let ct = r.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        let status = r.status().as_u16();
        let body = body_text(r.into_body());
        (status, ct, body)
    }

    fn body_text(b: Full<Bytes>) -> String {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let bytes = rt.block_on(b.collect()).unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn exact_paths_with_content_types_and_404_for_the_rest() {
        let s = state(false);
        let (st, ct, body) = get(&s, "/");
        assert_eq!((st, ct.as_str()), (200, JSON));
        assert!(body.starts_with("{\"fluent-bit\":"), "{body}");
        assert_eq!(get(&s, "/api/v1/uptime").0, 200);
        assert_eq!(get(&s, "/api/v1/metrics").1, JSON);
        let (st, ct, _) = get(&s, "/api/v1/metrics/prometheus");
        assert_eq!((st, ct.as_str()), (200, "text/plain; version=0.0.4"));
        // Fluent Bit 1.8 answered these with 200 and the build info.
        for p in ["/nope", "/api/v1/metricsx", "/api/v1/health", "/api/v1/metrics/"] {
            assert_eq!(get(&s, p).0, 404, "{p}");
        }
        let r = respond(&Method::POST, "/", &s);
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn probes_answer_in_every_phase() {
        let s = state(false);
        for phase in [Phase::Starting, Phase::Running, Phase::Draining] {
            s.telemetry.set_phase(phase);
            assert_eq!(get(&s, "/").0, 200);
            let (st, _, body) = get(&s, "/api/v1/metrics/prometheus");
            assert_eq!(st, 200);
            assert!(body.contains(&format!("\ngatelog_phase {}\n", phase as u8)), "{body}");
        }
    }

    #[test]
    fn health_fails_after_more_output_errors_than_allowed() {
        let s = state(true);
        s.health.as_ref().unwrap().record(Sums::default());
        assert_eq!(get(&s, "/api/v1/health"), (200, TEXT.into(), "ok\n".into()));
        s.telemetry.outputs[0].counters.errors.add(2);
        assert_eq!(get(&s, "/api/v1/health"), (500, TEXT.into(), "error\n".into()));
    }

    #[test]
    fn served_over_tcp_and_stopped() {
        let mut svc = Service::from_text("[SERVICE]\n    HTTP_Server On\n    HTTP_Listen 127.0.0.1\n    HTTP_Port 0\n");
        // A free port: bound and released.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        svc.http_port = probe.local_addr().unwrap().port();
        drop(probe);
        let server = start(&svc, Arc::new(telemetry())).unwrap();
        let mut c = std::net::TcpStream::connect(("127.0.0.1", svc.http_port)).unwrap();
        c.write_all(b"GET /api/v1/uptime HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("content-type: application/json\r\n"), "{answer}");
        assert!(answer.ends_with("second\"}"), "{answer}");
        server.stop();
        assert!(std::net::TcpStream::connect(("127.0.0.1", svc.http_port)).is_err());
    }
}
