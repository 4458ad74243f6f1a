//! What a listener's connections must prove (R15): TLS, with a verified client certificate as
//! a proof, and passwords checked off the async threads (a few at once) before the
//! registration they came with reaches the engine. Failed handshakes are logged at a bounded
//! rate.

use crate::input::Input;
use ixn_codec::{Message, MessageId, attr};
use ixn_core::ConnId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// TLS and client authentication for a listener's connections (R15).
#[derive(Debug, Default)]
pub struct Security {
    /// TLS: every connection starts with a handshake (bounded by the registration timeout); a
    /// verified client certificate's names are given to the engine as a proof.
    pub tls: Option<ixn_tls::Acceptor>,
    /// The configuration passwords are checked against; `None` when no application has one
    /// (a `Password` attribute is then only removed).
    pub passwords: Option<Arc<ixn_config::Config>>,
    /// Password checks at once (argon2 takes tens of milliseconds and ~19 MiB each).
    checks: Option<Arc<Semaphore>>,
    /// Password checks per client address and second (`[http] sign_ins_per_second`, as the
    /// web API's sign-ins): a guesser gets `LimitExceeded` and a close, without a check.
    per_address: Option<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// The rate `per_address` allows (for the refusal's text).
    per_second: u32,
    /// Failed handshakes are logged at most once a second (a scanner or a misconfigured client
    /// must not fill the log); the count of those left out rides on the next line.
    pub(crate) handshake_logs: EverySecond,
}

/// Lets one event through per second, counting the ones it holds back.
#[derive(Debug, Default)]
pub(crate) struct EverySecond {
    next: std::sync::Mutex<Option<std::time::Instant>>,
    skipped: std::sync::atomic::AtomicU64,
}

impl EverySecond {
    /// `Some(how many were held back since the last one let through)` when the event at `now`
    /// may be logged, `None` when it is held back.
    pub(crate) fn allow(&self, now: std::time::Instant) -> Option<u64> {
        use std::sync::atomic::Ordering;
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if next.is_some_and(|n| now < n) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *next = Some(now + Duration::from_secs(1));
        Some(self.skipped.swap(0, Ordering::Relaxed))
    }
}

/// Password checks (argon2) run at once across a listener's connections; a connection waiting
/// for one is not read meanwhile.
const CONCURRENT_PASSWORD_CHECKS: usize = 2;

impl Security {
    /// TLS from `tls`, passwords checked against `config` when some application has one.
    pub fn new(tls: Option<ixn_tls::Acceptor>, config: &Arc<ixn_config::Config>) -> Self {
        let passwords = config
            .applications
            .values()
            .any(|a| a.password_hash.is_some())
            .then(|| Arc::clone(config));
        let per_second = config.http.sign_ins_per_second;
        let rate = std::num::NonZeroU32::new(per_second).unwrap_or(std::num::NonZeroU32::MIN);
        Self {
            tls,
            checks: passwords
                .is_some()
                .then(|| Arc::new(Semaphore::new(CONCURRENT_PASSWORD_CHECKS))),
            per_address: passwords
                .is_some()
                .then(|| governor::RateLimiter::keyed(governor::Quota::per_second(rate))),
            per_second,
            passwords,
            handshake_logs: EverySecond::default(),
        }
    }
}

/// True for a RequestRegisterClient with a `Password` attribute.
pub(crate) fn carries_password(m: &Message) -> bool {
    m.id == MessageId::REQUEST_REGISTER_CLIENT && m.attrs.get(attr::PASSWORD).is_some()
}

/// Checks the password of the connection's first registration that carries one (off the async
/// threads, a few at once), tells the engine task what it proves, and removes the attribute
/// from every registration: a password never reaches the engine, its logs or its journal.
pub(crate) async fn check_passwords(
    batch: &mut [Message],
    security: &Security,
    (conn, peer): (ConnId, std::net::IpAddr),
    inputs: &mpsc::Sender<Input>,
    checked_once: &mut bool,
) -> Result<(), TooManyChecks> {
    for msg in batch.iter_mut().filter(|m| carries_password(m)) {
        let first = !std::mem::replace(checked_once, true);
        let checked = match (&security.passwords, &security.checks) {
            (Some(cfg), Some(checks)) if first => {
                if let Some(limit) = &security.per_address
                    && limit.check_key(&peer).is_err()
                {
                    return Err(TooManyChecks {
                        peer,
                        per_second: security.per_second,
                        reference: msg.reference_id(),
                    });
                }
                let Ok(_permit) = Arc::clone(checks).acquire_owned().await else {
                    continue;
                };
                let (cfg, copy) = (Arc::clone(cfg), msg.clone());
                tokio::task::spawn_blocking(move || ixn_core::verify_password(&cfg, &copy))
                    .await
                    .ok()
                    .flatten()
            }
            _ => None,
        };
        msg.attrs.remove(attr::PASSWORD);
        if let Some(proof) = checked {
            let _ = inputs.send(Input::Prove { conn, proof }).await;
        }
    }
    Ok(())
}

/// A registration's password not checked: its address has had its checks this second.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error(
    "too many password checks from {peer} (at most {per_second} a second, [http] sign_ins_per_second); try again in a moment; closing the connection"
)]
pub(crate) struct TooManyChecks {
    peer: std::net::IpAddr,
    per_second: u32,
    /// The refused registration's ReferenceId, for the reply.
    pub(crate) reference: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One failed handshake a second is logged; the ones held back are counted on the next.
    #[test]
    fn handshake_logs_are_bounded_to_one_a_second() {
        let limit = EverySecond::default();
        let t0 = std::time::Instant::now();
        assert_eq!(limit.allow(t0), Some(0));
        for ms in [1, 200, 999] {
            assert_eq!(limit.allow(t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(limit.allow(t0 + Duration::from_millis(1000)), Some(3));
        assert_eq!(limit.allow(t0 + Duration::from_millis(1500)), None);
        assert_eq!(limit.allow(t0 + Duration::from_millis(2500)), Some(1));
    }
}
