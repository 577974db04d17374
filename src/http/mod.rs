//! The built-in HTTP server (`[SERVICE] HTTP_Server On`): health and metrics
//! endpoints compatible with Fluent Bit's. Not served yet: `start` reports
//! that and returns a handle that does nothing.

use std::sync::Arc;

use crate::engine::service::Service;
use crate::stats::Telemetry;

pub struct HttpServer {}

impl HttpServer {
    /// Stop serving (after the pipeline drained).
    pub fn stop(self) {}
}

/// Start serving the endpoints for `telemetry` on `HTTP_Listen:HTTP_Port`.
pub fn start(service: &Service, telemetry: Arc<Telemetry>) -> std::io::Result<HttpServer> {
    let _ = telemetry;
    tracing::warn!(
        listen = %service.http_listen,
        port = service.http_port,
        "HTTP_Server is not served by this build yet; metrics are in the shutdown summary"
    );
    Ok(HttpServer {})
}
