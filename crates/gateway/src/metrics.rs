//! The web API's metrics: HTTP requests by route, method and status, web and CometD sessions;
//! and `GET /metrics`, which answers with the whole server's scrape (the assembly supplies it:
//! the gateway knows only its own part).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// Produces the text of a scrape (Prometheus text format).
pub type Scrape = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

/// The media type of [`Scrape`]'s text: Prometheus's text format 0.0.4 (see [`classic`]).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text (what prometheus-client encodes) as Prometheus's classic text format,
/// which every scraper and `promtool check metrics` read: a counter family takes the name of
/// its samples (`x_total`), and the `# UNIT` and `# EOF` lines go.
pub fn classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + counters.len() * 16);
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find(|p| line.starts_with(p));
        if let Some(prefix) = meta {
            let rest = &line[prefix.len()..];
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if counters.contains(name) {
                out.push_str(prefix);
                out.push_str(name);
                out.push_str("_total ");
                out.push_str(tail);
                out.push('\n');
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// An HTTP request's route (the pattern, not the path: ids do not make new series), method
/// and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct HttpLabels {
    pub(crate) route: String,
    pub(crate) method: String,
    pub(crate) status: u16,
}

/// The running gateway's session counts: (web sessions, CometD sessions).
type Counts = Box<dyn Fn() -> Option<(usize, usize)> + Send + Sync>;

/// The web API's metrics, registered by the assembly into the server's registry.
#[derive(Default)]
pub struct WebMetrics {
    pub(crate) http_requests: Family<HttpLabels, Counter>,
    web_sessions: Gauge,
    cometd_sessions: Gauge,
    counts: Mutex<Option<Counts>>,
    scrape: Mutex<Option<Scrape>>,
    console_scrape: Mutex<Option<Scrape>>,
}

impl std::fmt::Debug for WebMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebMetrics").finish_non_exhaustive()
    }
}

impl WebMetrics {
    /// Adds the web API's metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            self.http_requests.clone(),
        );
        registry.register(
            "web_sessions",
            "Signed-in web sessions",
            self.web_sessions.clone(),
        );
        registry.register(
            "cometd_sessions",
            "CometD sessions (long-polling and WebSocket)",
            self.cometd_sessions.clone(),
        );
    }

    /// Serves `GET /metrics` on the web API's listener with `scrape`.
    pub fn serve_scrape(&self, scrape: Scrape) {
        *lock(&self.scrape) = Some(scrape);
    }

    /// Gives the console's server page `scrape`, wherever `/metrics` is served.
    pub fn console_reads(&self, scrape: Scrape) {
        *lock(&self.console_scrape) = Some(scrape);
    }

    /// The scrape the console's server page reads.
    pub(crate) fn console_scrape(&self) -> Option<Scrape> {
        lock(&self.console_scrape).clone()
    }

    /// Sets the session gauges from the running gateway (call before encoding a scrape).
    pub fn refresh(&self) {
        if let Some((web, cometd)) = lock(&self.counts).as_ref().and_then(|c| c()) {
            self.web_sessions
                .set(i64::try_from(web).unwrap_or(i64::MAX));
            self.cometd_sessions
                .set(i64::try_from(cometd).unwrap_or(i64::MAX));
        }
    }

    /// Where [`WebMetrics::refresh`] reads the session counts (the running gateway).
    pub(crate) fn attach(&self, counts: Counts) {
        *lock(&self.counts) = Some(counts);
    }

    /// The scrape `GET /metrics` answers with, if metrics are served on this listener.
    pub(crate) fn scrape(&self) -> Option<Scrape> {
        lock(&self.scrape).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
