//! A run's figures: a table for people, one JSON object per run with `--json`.

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;

/// Runs whose figures show a failure (exit status 3 at the end).
pub(crate) static PROBLEMS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Records a failure shown in the figures (ixn-load exits with status 3 at the end).
pub(crate) fn problem(p: String) {
    PROBLEMS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(p);
}

/// One run: what was asked and what was measured.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// `rr`, `fanout`, `content`, `churn`, `echo`.
    pub(crate) workload: String,
    /// One line describing the run, for the table's heading.
    pub(crate) title: String,
    pub(crate) params: Map<String, Value>,
    /// (JSON key, table label, value, unit for the table).
    figures: Vec<(String, String, Value, String)>,
}

impl Report {
    pub(crate) fn new(workload: &str, title: String) -> Self {
        Self {
            workload: workload.to_owned(),
            title,
            ..Self::default()
        }
    }

    pub(crate) fn param(&mut self, key: &str, value: impl Into<Value>) {
        self.params.insert(key.to_owned(), value.into());
    }

    pub(crate) fn figure(&mut self, key: &str, label: &str, value: impl Into<Value>, unit: &str) {
        self.figures.push((
            key.to_owned(),
            label.to_owned(),
            value.into(),
            unit.to_owned(),
        ));
    }

    /// A figure's value as a number, by its JSON key.
    pub(crate) fn value(&self, key: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.0 == key)
            .and_then(|f| f.2.as_f64())
    }

    /// p50, p90, p99, p99.9 and max of `h` (nanoseconds), as `{prefix}_p50_us` and so on.
    pub(crate) fn latency(&mut self, prefix: &str, label: &str, h: &Histogram<u64>) {
        if h.is_empty() {
            self.figure(
                &format!("{prefix}_samples"),
                &format!("{label} samples"),
                0,
                "",
            );
            return;
        }
        for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)] {
            let us = h.value_at_quantile(q) as f64 / 1000.0;
            let key = format!("{prefix}_{}_us", name.replace('.', "_"));
            self.figure(&key, &format!("{label} {name}"), round3(us), "µs");
        }
        self.figure(
            &format!("{prefix}_max_us"),
            &format!("{label} max"),
            round3(h.max() as f64 / 1000.0),
            "µs",
        );
        self.figure(
            &format!("{prefix}_samples"),
            &format!("{label} samples"),
            h.len(),
            "",
        );
    }

    /// What went wrong in the run (unexpected replies, lost subscribers), if anything: the
    /// figures are printed, and ixn-load then exits with an error.
    pub(crate) fn problem(&self) -> Option<String> {
        let count = |key: &str| {
            self.figures
                .iter()
                .find(|f| f.0 == key)
                .and_then(|f| f.2.as_u64())
                .unwrap_or(0)
        };
        let errors = count("errors");
        let lost = count("subscribers_lost");
        match (errors, lost) {
            (0, 0) => None,
            (e, 0) => Some(format!("{} run: {e} unexpected replies", self.workload)),
            (_, l) => Some(format!("{} run: {l} subscribers lost", self.workload)),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut figures = Map::new();
        for (key, _, value, _) in &self.figures {
            figures.insert(key.clone(), value.clone());
        }
        json!({ "workload": self.workload, "params": self.params, "figures": figures })
    }

    pub(crate) fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title);
        let width = self
            .figures
            .iter()
            .map(|f| f.1.chars().count())
            .max()
            .unwrap_or(0);
        for (_, label, value, unit) in &self.figures {
            let shown = match value {
                Value::Number(n) if n.is_f64() => {
                    let x = n.as_f64().unwrap_or(0.0);
                    if x >= 1000.0 {
                        crate::run::thousands(x)
                    } else {
                        format!("{x:.3}")
                    }
                }
                Value::Number(n) => crate::run::thousands(n.as_f64().unwrap_or(0.0)),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(out, "  {label:<width$}  {shown:>14} {unit}");
        }
        out
    }
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_with_unexpected_replies_is_a_problem() {
        let mut r = Report::new("rr", "t".into());
        r.figure("errors", "unexpected replies", 0, "");
        assert_eq!(r.problem(), None);
        let mut r = Report::new("rr", "t".into());
        r.figure("errors", "unexpected replies", 2, "");
        assert_eq!(r.problem().as_deref(), Some("rr run: 2 unexpected replies"));
        let mut r = Report::new("fanout", "t".into());
        r.figure("subscribers_lost", "subscribers lost", 1, "");
        assert!(r.problem().is_some());
    }

    #[test]
    fn latency_figures_are_in_microseconds_and_json_has_params() {
        let mut h = crate::run::histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        let mut r = Report::new("rr", "t".into());
        r.param("connections", 5);
        r.latency("latency", "latency", &h);
        let j = r.to_json();
        assert_eq!(j["params"]["connections"], 5);
        let p50 = j["figures"]["latency_p50_us"].as_f64().unwrap();
        assert!((499.0..=501.0).contains(&p50), "{p50}");
        assert_eq!(j["figures"]["latency_samples"], 1000);
        assert!(r.to_table().contains("latency p99.9"));
    }
}
