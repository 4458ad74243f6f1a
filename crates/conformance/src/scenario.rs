//! Scenario files: reading and checking their shape.

use crate::error::Error;
use ixn_config::Config;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// One scenario file.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// File name (for reports).
    pub file: String,
    /// The one-line description.
    pub name: String,
    /// The rules it pins down (`R7`...).
    pub rules: Vec<String>,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The configuration as written (for transports that start a server from a file).
    pub config_json: Value,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step: a client and what it does or expects.
#[derive(Clone, Debug)]
pub struct Step {
    /// The scenario-local client name.
    pub client: String,
    /// For proxy connections: the proxy client whose connection carries this step.
    pub via: Option<String>,
    /// What happens.
    pub action: Action,
}

/// What a step does.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send a message (JSON form, before substitution).
    Send(Value),
    /// The next message must match (partial match, special values).
    Expect(Value),
    /// Nothing more has arrived.
    ExpectSilence,
    /// The client closes its connection.
    Disconnect,
    /// The server has closed the connection.
    ExpectClosed,
}

/// Reads every `*.json` file of `dir` that has `steps` (a shared `config.json` is skipped), in
/// file-name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, Error> {
    let io = |e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let value = read_json(&f)?;
        if value.get("steps").is_some() {
            out.push(parse(&f, value)?);
        }
    }
    if out.is_empty() {
        return Err(Error::Scenario {
            file: dir.display().to_string(),
            problem: "no scenario files (*.json with \"steps\") in this folder".into(),
        });
    }
    Ok(out)
}

/// Reads one scenario file.
pub fn load_file(path: &Path) -> Result<Scenario, Error> {
    let value = read_json(path)?;
    parse(path, value)
}

fn read_json(path: &Path) -> Result<Value, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Scenario {
        file: path.display().to_string(),
        problem: format!("not JSON: {e}"),
    })
}

fn parse(path: &Path, value: Value) -> Result<Scenario, Error> {
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let bad = |problem: String| Error::Scenario {
        file: path.display().to_string(),
        problem,
    };
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_owned();
    let rules = value
        .get("rules")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let config_json = match value.get("config") {
        Some(Value::String(name)) => {
            let p = path.parent().unwrap_or(Path::new(".")).join(name);
            read_json(&p)?
        }
        Some(obj @ Value::Object(_)) => obj.clone(),
        _ => return Err(bad("\"config\" must be a file name or an object".into())),
    };
    let config = Arc::new(Config::from_json_value(
        config_json.clone(),
        &format!("{file} config"),
    )?);
    let steps = value
        .get("steps")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("\"steps\" must be an array".into()))?
        .iter()
        .enumerate()
        .map(|(i, s)| step(s).map_err(|p| bad(format!("step {}: {p}", i + 1))))
        .collect::<Result<_, _>>()?;
    Ok(Scenario {
        file,
        name,
        rules,
        config,
        config_json,
        steps,
    })
}

/// One step of a scenario file; `Err` says what the step lacks.
fn step(s: &Value) -> Result<Step, &'static str> {
    let client = s
        .get("client")
        .and_then(Value::as_str)
        .ok_or("missing \"client\"")?
        .to_owned();
    let via = s.get("via").and_then(Value::as_str).map(str::to_owned);
    let action = if let Some(m) = s.get("send") {
        Action::Send(m.clone())
    } else if let Some(m) = s.get("expect") {
        Action::Expect(m.clone())
    } else if s.get("expect_silence") == Some(&Value::Bool(true)) {
        Action::ExpectSilence
    } else if s.get("disconnect") == Some(&Value::Bool(true)) {
        Action::Disconnect
    } else if s.get("expect_closed") == Some(&Value::Bool(true)) {
        Action::ExpectClosed
    } else {
        return Err("no send, expect, expect_silence, disconnect or expect_closed");
    };
    Ok(Step {
        client,
        via,
        action,
    })
}
