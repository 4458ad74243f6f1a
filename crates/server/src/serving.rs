//! One serving of the server, whatever its store: the engine task (with its store thread, or
//! the leadership loop over a shared store), the metrics, the web API on an in-process link,
//! and the native listener; then, when `shutdown` completes or a part ends unexpectedly, the
//! stop in order (the web API, its link, the connections, the engine task, the store).

use crate::warn_exposure;
use crate::{Error, Options, SharedStore, Store, connection_caps, reload_on_sighup, shared};
use ixn_config::Config;
use ixn_core::Engine;
use ixn_tcp::{Durability, EngineHandle, EngineTask, Inputs, Listener};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

/// One server alone (its own store, or none), or one of several on a shared store.
#[allow(clippy::large_enum_variant)] // made once per start and moved into the engine task
pub(crate) enum Mode {
    Single {
        engine: Engine,
        store: Option<Box<dyn Store>>,
    },
    Shared {
        config: Arc<Config>,
        shared: SharedStore,
        lead: ixn_pgstore::Leadership,
    },
}

/// The threads beside the engine task: the store's, or the leadership loop's (with what stops
/// it).
#[derive(Default)]
struct Threads {
    store: Option<std::thread::JoinHandle<()>>,
    leadership: Option<(shared::StopOnDrop, std::thread::JoinHandle<()>)>,
}

/// The tasks that must not end before shutdown.
struct Tasks {
    engine: Option<JoinHandle<()>>,
    web: Option<JoinHandle<Result<(), ixn_gateway::Error>>>,
    link: Option<JoinHandle<Result<(), ixn_tcp::LinkEnded>>>,
}

pub(crate) async fn serve_mode(
    listener: TcpListener,
    mode: Mode,
    mut options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let config = match &mode {
        Mode::Single { engine, .. } => Arc::clone(engine.config()),
        Mode::Shared { config, .. } => Arc::clone(config),
    };
    let limits = config.limits;
    if let Ok(addr) = listener.local_addr() {
        warn_exposure(addr, &config, options.tls.is_some());
    }
    let hangup_stop = tokio_util::sync::CancellationToken::new();
    let _hangups = reload_on_sighup(options.tls.clone(), hangup_stop.clone())?;
    let _hangup_guard = hangup_stop.drop_guard();
    let (native_cap, http_cap) = connection_caps(
        limits.max_connections,
        options.http.as_ref().map(|_| config.http.max_connections),
    );
    if native_cap < limits.max_connections {
        warn!(
            max_connections = limits.max_connections,
            allowed = native_cap,
            "the open file limit allows fewer connections than max_connections; raise the hard limit (ulimit -Hn, LimitNOFILE=) to serve more"
        );
    }
    // Metrics: the TCP side's and the web API's, in one registry.
    let tcp_metrics = Arc::new(ixn_tcp::Metrics::default());
    let web_metrics = Arc::new(ixn_gateway::WebMetrics::default());
    let (handle, inputs) = EngineHandle::channel();
    let (task, mut threads) = engine_task(mode, &handle, inputs, &options, &tcp_metrics)?;
    let _metrics_guard = start_metrics(&mut options, &handle, &tcp_metrics, &web_metrics);
    let store_failed = task.failed();
    let mut tasks = Tasks {
        engine: Some(tokio::spawn(task.run())),
        web: None,
        link: None,
    };
    // The web API on an in-process link: if it or its link ends before shutdown, the server
    // stops.
    let web_stop = tokio_util::sync::CancellationToken::new();
    if let Some(http) = options.http.take() {
        let (link, local) = handle.open_local(
            http.local_addr()?,
            limits.outbound_queue_messages,
            limits.outbound_queue_bytes,
        );
        tasks.link = Some(tokio::spawn(local));
        let stopping = web_stop.clone();
        tasks.web = Some(tokio::spawn(ixn_gateway::serve(
            http,
            Arc::clone(&config),
            link,
            http_cap,
            options.tls.clone(),
            Arc::clone(&web_metrics),
            async move { stopping.cancelled().await },
        )));
    }
    // Native connections.
    let security = ixn_tcp::Security::new(options.tls.clone(), &config);
    let mut tcp = Listener::new(listener, handle, &limits, native_cap, options.drain_timeout)
        .with_security(security)
        .with_metrics(tcp_metrics);
    let failure = tokio::select! {
        () = tcp.run(shutdown) => None,
        () = store_failed.cancelled() => None,
        why = tasks.first_to_end() => Some(why),
    };
    if let Some(why) = &failure {
        error!("{why}; stopping the server");
    }
    // Stop in order: the web API (its sessions unregister), its link, the connections; then the
    // engine task ends with its last handle and input, then the store thread.
    web_stop.cancel();
    let mut web_error = None;
    if let Some(web) = tasks.web.take()
        && let Ok(Err(e)) = web.await
    {
        web_error = Some(e);
    }
    if let Some(link) = tasks.link.take() {
        let _ = link.await;
    }
    tcp.shutdown().await;
    if let Some(engine) = tasks.engine.take() {
        let _ = engine.await;
    }
    threads.join().await;
    if store_failed.is_cancelled() {
        error!("stopped after a store failure");
        return Err(Error::StoreFailed);
    }
    if let Some(why) = failure {
        return Err(Error::Failed(why));
    }
    if let Some(e) = web_error {
        return Err(Error::Gateway(e));
    }
    info!("stopped");
    Ok(())
}

/// The engine task for `mode`: durable through a store thread, or a standby that a leadership
/// loop (on its own thread) switches between roles.
fn engine_task(
    mode: Mode,
    handle: &EngineHandle,
    inputs: Inputs,
    options: &Options,
    metrics: &Arc<ixn_tcp::Metrics>,
) -> Result<(EngineTask, Threads), Error> {
    let mut threads = Threads::default();
    let task = match mode {
        Mode::Single { engine, store } => {
            let codec = ixn_tcp::codec(&engine.config().limits);
            let durability = match store {
                Some(store) => {
                    let (d, thread) = Durability::start_with_metrics(store, Arc::clone(metrics))?;
                    threads.store = Some(thread);
                    let d = d.polling(options.sync_poll);
                    let poll = d.polling_window();
                    if poll.is_zero() {
                        info!("group commit: the engine sleeps until each sync ends");
                    } else {
                        info!(
                            window_us = poll.as_micros(),
                            "group commit: the engine polls for each sync's end before it sleeps"
                        );
                    }
                    Some(d)
                }
                None => None,
            };
            EngineTask::new(engine, codec, inputs, durability, options.fault)
        }
        Mode::Shared {
            config,
            shared,
            lead,
        } => {
            let codec = ixn_tcp::codec(&config.limits);
            let task = EngineTask::standby(Arc::clone(&config), codec, inputs, options.fault);
            let roles = handle.roles();
            let metrics = Arc::clone(metrics);
            let (stop, stopped) = std::sync::mpsc::channel::<shared::Wake>();
            let wake = stop.clone();
            let thread = std::thread::Builder::new()
                .name("ixn-leadership".into())
                .spawn(move || {
                    shared::leadership_loop(
                        &shared,
                        lead,
                        &config,
                        &roles,
                        &metrics,
                        (wake, &stopped),
                    );
                })?;
            threads.leadership = Some((shared::StopOnDrop(stop), thread));
            task
        }
    };
    Ok((task.with_metrics(Arc::clone(metrics)), threads))
}

/// Serves the metrics: on their own listener, or through the web API. Dropping the guard stops
/// their own listener.
fn start_metrics(
    options: &mut Options,
    handle: &EngineHandle,
    tcp_metrics: &ixn_tcp::Metrics,
    web_metrics: &Arc<ixn_gateway::WebMetrics>,
) -> tokio_util::sync::DropGuard {
    let registry = {
        let mut registry = prometheus_client::registry::Registry::with_prefix("ixn");
        tcp_metrics.register(&mut registry);
        web_metrics.register(&mut registry);
        Arc::new(registry)
    };
    let scrape = scrape(registry, handle.flusher(), Arc::clone(web_metrics));
    web_metrics.console_reads(Arc::clone(&scrape));
    let metrics_stop = tokio_util::sync::CancellationToken::new();
    match options.metrics.take() {
        Some(listener) => {
            info!(addr = ?listener.local_addr().ok(), "metrics at /metrics");
            tokio::spawn(serve_metrics(listener, scrape, metrics_stop.clone()));
        }
        None => web_metrics.serve_scrape(scrape),
    }
    metrics_stop.drop_guard()
}

impl Threads {
    /// Gives a shared store up (a standby takes over at once), and releases the store (and its
    /// lock on the data directory) so that the directory can be opened again at once.
    async fn join(&mut self) {
        if let Some((stop, thread)) = self.leadership.take() {
            drop(stop);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        if let Some(t) = self.store.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Tasks {
    /// Completes when one of the tasks ends (none should before shutdown), saying how.
    async fn first_to_end(&mut self) -> String {
        tokio::select! {
            ended = until_done(&mut self.engine) => {
                format!("the engine task ended unexpectedly: {}", ended_why(ended))
            }
            ended = until_done(&mut self.web) => match ended {
                Ok(Ok(())) => "the web API stopped unexpectedly".to_owned(),
                Ok(Err(e)) => format!("the web API failed: {e}"),
                Err(e) => format!("the web API ended unexpectedly: {}", ended_why(Err::<(), _>(e))),
            },
            ended = until_done(&mut self.link) => match ended {
                Ok(Ok(())) => "the web API's link to the engine closed".to_owned(),
                Ok(Err(why)) => format!("the web API's link to the engine failed: {why}"),
                Err(e) => format!(
                    "the web API's link to the engine ended unexpectedly: {}",
                    ended_why(Err::<(), _>(e))
                ),
            },
        }
    }
}

/// A scrape: the engine task's counts brought up to date, the web API's gauges set, the
/// registry encoded.
fn scrape(
    registry: Arc<prometheus_client::registry::Registry>,
    flusher: ixn_tcp::Flusher,
    web: Arc<ixn_gateway::WebMetrics>,
) -> ixn_gateway::Scrape {
    Arc::new(move || {
        let (registry, flusher, web) = (Arc::clone(&registry), flusher.clone(), Arc::clone(&web));
        Box::pin(async move {
            flusher.flush().await;
            web.refresh();
            let mut text = String::new();
            if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
                error!(error = %e, "cannot encode the metrics");
            }
            ixn_gateway::metrics_classic(&text)
        })
    })
}

/// Serves `GET /metrics` alone on `listener` until `stop`.
async fn serve_metrics(
    listener: TcpListener,
    scrape: ixn_gateway::Scrape,
    stop: tokio_util::sync::CancellationToken,
) {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let scrape = Arc::clone(&scrape);
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        ixn_gateway::METRICS_CONTENT_TYPE,
                    )],
                    scrape().await,
                )
            }
        }),
    );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = served {
        error!(error = %e, "the metrics listener failed");
    }
}

/// Completes when the task completes (never without one), and forgets it.
async fn until_done<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match task {
        Some(t) => {
            let ended = t.await;
            *task = None;
            ended
        }
        None => std::future::pending().await,
    }
}

/// Why a task ended: its panic message, or that it returned.
fn ended_why<T>(ended: Result<T, tokio::task::JoinError>) -> String {
    match ended {
        Ok(_) => "it returned".to_owned(),
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            format!("panicked: {text}")
        }
        Err(e) => e.to_string(),
    }
}
