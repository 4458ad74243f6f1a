//! The Workspace API's access tokens: random, bounded in number, good for
//! `[http] access_token_secs` (given by `/auth/v3/oauth/token`, read by every v3 route that
//! takes a Bearer token).

use crate::bayeux::lock;
use ixn_config::AgentIdx;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an expired token is remembered, so that using it says "expired" rather than
/// "unknown" (expired ones make room at once when the table is full).
const EXPIRED_KEPT: Duration = Duration::from_secs(600);

/// The access tokens given out: token to agent and expiry.
pub(crate) struct Tokens {
    map: Mutex<HashMap<String, (AgentIdx, Instant)>>,
    max: usize,
    lifetime: Duration,
}

/// Why a token does not name an agent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BadToken {
    Unknown,
    Expired,
}

impl Tokens {
    pub(crate) fn new(max: usize, lifetime: Duration) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            max,
            lifetime,
        }
    }

    /// A new token for `agent`, or `None` when `max` live tokens exist already.
    pub(crate) fn issue(&self, agent: AgentIdx, now: Instant) -> Option<String> {
        let token = crate::auth::random_token(32)?;
        let mut map = lock(&self.map);
        if map.len() >= self.max {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.max {
                return None;
            }
        }
        map.insert(token.clone(), (agent, now + self.lifetime));
        Some(token)
    }

    /// The agent `token` was given for, while it is good. An expired token is told apart
    /// from an unknown one for [`EXPIRED_KEPT`] after it expired.
    pub(crate) fn agent(&self, token: &str, now: Instant) -> Result<AgentIdx, BadToken> {
        match lock(&self.map).get(token) {
            None => Err(BadToken::Unknown),
            Some((_, until)) if *until <= now => Err(BadToken::Expired),
            Some((agent, _)) => Ok(*agent),
        }
    }

    /// Forgets the tokens expired for longer than [`EXPIRED_KEPT`] (the sweeper, every second).
    pub(crate) fn sweep(&self, now: Instant) {
        lock(&self.map)
            .retain(|_, (_, until)| now.saturating_duration_since(*until) < EXPIRED_KEPT);
    }

    /// Live tokens (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.map).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_are_bounded() {
        let config = ixn_config::Config::from_toml_str(ixn_config::DEMO_TOML, "demo.toml").unwrap();
        let (a1, a2) = (config.agent("a1").unwrap(), config.agent("a2").unwrap());
        let t = Tokens::new(2, Duration::from_secs(10));
        let now = Instant::now();
        let a = t.issue(a1, now).unwrap();
        let _b = t.issue(a2, now).unwrap();
        assert!(t.issue(a2, now).is_none(), "the bound holds");
        assert_eq!(t.agent(&a, now), Ok(a1));
        assert_eq!(t.agent("nope", now), Err(BadToken::Unknown));
        let later = now + Duration::from_secs(11);
        assert_eq!(t.agent(&a, later), Err(BadToken::Expired));
        // The sweeper keeps an expired token for a while, so that it still says "expired".
        t.sweep(later);
        assert_eq!(t.agent(&a, later), Err(BadToken::Expired));
        // Expired ones make room when the table is full.
        assert!(t.issue(a1, later).is_some());
        assert_eq!(t.len(), 1);
        let much_later = later + EXPIRED_KEPT + Duration::from_secs(11);
        t.sweep(much_later);
        assert_eq!(t.len(), 0);
    }
}
