//! What every workload shares: the measuring window (warm-up, then `--duration` or
//! `--requests`), the operation counter the progress line reads, and latency histograms.

use hdrhistogram::Histogram;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Latencies are recorded in nanoseconds, from 100 ns to 60 s, 3 significant digits.
#[allow(clippy::expect_used)] // constant bounds that hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig <= 5)
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(100, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// The shared state of one run.
#[derive(Debug)]
pub(crate) struct Window {
    recording: AtomicBool,
    stopped: AtomicBool,
    stop: Notify,
    /// Operations completed while recording (workloads add in batches).
    pub(crate) ops: AtomicU64,
}

impl Window {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            recording: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            stop: Notify::new(),
            ops: AtomicU64::new(0),
        })
    }

    /// True between the end of the warm-up and the end of the run.
    pub(crate) fn recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Completes when the run is over.
    pub(crate) async fn wait_stop(&self) {
        let notified = self.stop.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.stopped() {
            return;
        }
        notified.await;
    }

    pub(crate) fn add(&self, n: u64) {
        if n > 0 && self.recording() {
            self.ops.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn finish(&self) {
        self.recording.store(false, Ordering::Relaxed);
        self.stopped.store(true, Ordering::Relaxed);
        self.stop.notify_waiters();
    }
}

/// How long a run lasts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub(crate) warmup: Duration,
    pub(crate) duration: Option<Duration>,
    pub(crate) requests: Option<u64>,
    pub(crate) progress: bool,
}

/// Runs the measuring window: waits out the warm-up, records until the duration passes or
/// `requests` operations are done (printing a progress line each second on long runs), then
/// stops. Returns the recorded time.
pub(crate) async fn measure(window: &Window, bounds: Bounds, label: &str, unit: &str) -> Duration {
    measure_with(window, &[], bounds, label, unit).await
}

/// Like [`measure`], with `others` (load beside the measured one) recording over the same
/// window; the bounds count `window`'s operations only.
pub(crate) async fn measure_with(
    window: &Window,
    others: &[&Window],
    bounds: Bounds,
    label: &str,
    unit: &str,
) -> Duration {
    tokio::time::sleep(bounds.warmup).await;
    for w in others.iter().copied().chain([window]) {
        w.ops.store(0, Ordering::Relaxed);
        w.recording.store(true, Ordering::Relaxed);
    }
    let started = Instant::now();
    let duration = match (bounds.duration, bounds.requests) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(5)),
    };
    let show = bounds.progress && duration.is_none_or(|d| d >= Duration::from_secs(3));
    let tick = Duration::from_millis(if show { 1000 } else { 20 });
    let mut last = (started, 0u64);
    let mut printed = false;
    loop {
        let now = Instant::now();
        let elapsed = now - started;
        let ops = window.ops.load(Ordering::Relaxed);
        let done_by_time = duration.is_some_and(|d| elapsed >= d);
        let done_by_count = bounds.requests.is_some_and(|r| ops >= r);
        if done_by_time || done_by_count {
            break;
        }
        if show && now - last.0 >= Duration::from_millis(900) {
            let rate = (ops - last.1) as f64 / (now - last.0).as_secs_f64();
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r{label}: {:>5.1} s, {} {unit} so far, {}/s now   ",
                elapsed.as_secs_f64(),
                thousands(ops as f64),
                thousands(rate)
            );
            let _ = err.flush();
            printed = true;
            last = (now, ops);
        }
        let left = duration.map_or(tick, |d| d.saturating_sub(elapsed));
        tokio::time::sleep(left.min(tick)).await;
    }
    let elapsed = started.elapsed();
    window.finish();
    for w in others {
        w.finish();
    }
    if printed {
        let _ = writeln!(std::io::stderr());
    }
    elapsed
}

/// 1234567.8 -> "1,234,568".
pub(crate) fn thousands(x: f64) -> String {
    let n = x.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0.0), "0");
        assert_eq!(super::thousands(999.4), "999");
        assert_eq!(super::thousands(1_234_567.8), "1,234,568");
    }
}
