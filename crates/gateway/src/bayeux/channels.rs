//! Bayeux channel names and subscription patterns.

/// Whether subscription `pattern` (a channel, `/a/*` or `/a/**`) covers `channel`.
pub(crate) fn matches(pattern: &str, channel: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix("/**") {
        channel
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
    } else if let Some(prefix) = pattern.strip_suffix("/*") {
        channel
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    } else {
        pattern == channel
    }
}

/// A syntactically valid channel name or pattern.
pub(crate) fn valid(c: &str) -> bool {
    let Some(rest) = c.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len().saturating_sub(1);
    segments.iter().enumerate().all(|(i, s)| {
        !s.is_empty() && (!s.contains('*') || (i == last && (*s == "*" || *s == "**")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_patterns() {
        assert!(matches("/v2/me/workbins", "/v2/me/workbins"));
        assert!(matches("/v2/me/*", "/v2/me/workbins"));
        assert!(!matches("/v2/me/*", "/v2/me/workbins/x"));
        assert!(matches("/v2/me/**", "/v2/me/workbins/x"));
        assert!(!matches("/v2/me/**", "/v2/mex/workbins"));
        assert!(!matches("/v2/me/work", "/v2/me/workbins"));
        assert!(valid("/v2/me/*"));
        assert!(valid("/v2/me/**"));
        assert!(!valid("/v2/*/x"));
        assert!(!valid("v2/me"));
        assert!(!valid("/v2//me"));
    }
}
