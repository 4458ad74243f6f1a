//! Substitution of bound values and the partial matching of expectations.

use crate::error::Mismatch;
use ixn_codec::ErrorCode;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Replaces `${name}` with bound values, in strings and keys: a string that is exactly
/// `${name}` becomes the value (keeping its type); inside a longer string the value is
/// spliced in as text.
pub fn substitute(v: &Value, binds: &HashMap<String, Value>) -> Result<Value, Mismatch> {
    Ok(match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
                && !name.contains("${")
            {
                binds
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("${{{name}}} is not bound"))?
            } else {
                Value::String(splice(s, binds)?)
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| substitute(i, binds))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(splice(k, binds)?, substitute(v, binds)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn splice(s: &str, binds: &HashMap<String, Value>) -> Result<String, Mismatch> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + len];
        let value = binds
            .get(name)
            .ok_or_else(|| format!("${{{name}}} is not bound"))?;
        out.push_str(&rest[..start]);
        match value {
            Value::String(text) => out.push_str(text),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks `actual` against the expectation `want` (partial: extra keys in `actual` are
/// allowed). Special values: `"$any"`, `"$absent"`, `"$bind:name"` (binds the value),
/// `{"$len": N}` (exact entry count, alongside other keys), `{"$error": "Name"}` (the
/// ErrorCode of that name). `Err` says which path did not match and why.
pub fn matches(
    want: &Value,
    actual: &Value,
    binds: &mut HashMap<String, Value>,
) -> Result<(), Mismatch> {
    check(want, Some(actual), binds, "")
}

fn check(
    want: &Value,
    actual: Option<&Value>,
    binds: &mut HashMap<String, Value>,
    path: &str,
) -> Result<(), Mismatch> {
    let at = if path.is_empty() {
        "the message".to_owned()
    } else {
        path.to_owned()
    };
    if let Value::String(s) = want {
        if s == "$absent" {
            return match actual {
                None => Ok(()),
                Some(v) => Err(format!("{at} must be absent, found {v}").into()),
            };
        }
        let Some(actual) = actual else {
            return Err(format!("{at} is missing").into());
        };
        if s == "$any" {
            return Ok(());
        }
        if let Some(name) = s.strip_prefix("$bind:") {
            binds.insert(name.to_owned(), actual.clone());
            return Ok(());
        }
    }
    let Some(actual) = actual else {
        return Err(format!("{at} is missing").into());
    };
    match want {
        Value::Object(w) if w.len() == 1 && w.contains_key("$error") => {
            let name = w.get("$error").and_then(Value::as_str).unwrap_or_default();
            let code = ErrorCode::from_name(name)
                .ok_or_else(|| format!("{at}: unknown error name {name:?}"))?;
            if actual.as_i64() == Some(i64::from(code.to_int())) {
                Ok(())
            } else {
                Err(format!("{at} should be {name} ({}), found {actual}", code.to_int()).into())
            }
        }
        Value::Object(w) => {
            if let Some(n) = w.get("$len") {
                let len = match actual {
                    Value::Object(m) => m.len(),
                    Value::Array(a) => a.len(),
                    _ => return Err(format!("{at} should have entries, found {actual}").into()),
                };
                if n.as_u64() != Some(len as u64) {
                    return Err(format!("{at} should have {n} entries, found {len}").into());
                }
            }
            let Value::Object(a) = actual else {
                return Err(format!("{at} should be an object, found {actual}").into());
            };
            for (k, v) in w {
                if k == "$len" {
                    continue;
                }
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                check(v, a.get(k), binds, &sub)?;
            }
            Ok(())
        }
        _ if want == actual => Ok(()),
        _ => Err(format!("{at} should be {want}, found {actual}").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn special_values() {
        let mut b = HashMap::new();
        let got = json!({"message": "EventAck", "ReferenceId": 1, "ProxyClientId": 7, "L": {"a": 1, "b": {"c": 2}}});
        matches(
            &json!({"ProxyClientId": "$bind:pc", "L": {"$len": 2, "b": {"c": 2}}, "X": "$absent"}),
            &got,
            &mut b,
        )
        .unwrap();
        assert_eq!(b["pc"], json!(7));
        assert!(matches(&json!({"ReferenceId": "$absent"}), &got, &mut b).is_err());
        assert!(matches(&json!({"L": {"$len": 3}}), &got, &mut b).is_err());
        assert!(matches(&json!({"Missing": "$any"}), &got, &mut b).is_err());
        let err = json!({"ErrorCode": 13});
        matches(&json!({"ErrorCode": {"$error": "Forbidden"}}), &err, &mut b).unwrap();
        assert!(
            matches(
                &json!({"ErrorCode": {"$error": "NotSubscribed"}}),
                &err,
                &mut b
            )
            .is_err()
        );
    }

    #[test]
    fn substitution_keeps_types_and_splices() {
        let b = HashMap::from([("pc".to_owned(), json!(7)), ("id".to_owned(), json!("X1"))]);
        let v = substitute(&json!({"P": "${pc}", "S": "n-${pc}-${id}", "${id}": 1}), &b).unwrap();
        assert_eq!(v, json!({"P": 7, "S": "n-7-X1", "X1": 1}));
        assert!(substitute(&json!("${nope}"), &b).is_err());
    }
}
