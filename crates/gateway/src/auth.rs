//! Password checks off the async threads, HTTP Basic credentials and random tokens.

use base64::Engine as _;

/// What sign-ins with credentials are checked with: the password checker, the rate limit per
/// client address, and a decoy hash.
pub(crate) struct Credentials {
    /// Password checks, on their own threads.
    pub(crate) passwords: Checker,
    /// Sign-ins checked per client address (`[http] sign_ins_per_second`).
    pub(crate) sign_ins: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    /// A hash checked when the agent is unknown or has none, so that a refusal costs the same
    /// whether the agent exists or not (no user enumeration by timing).
    pub(crate) decoy_hash: String,
}

impl Credentials {
    pub(crate) fn new(config: &ixn_config::Config) -> Result<Self, crate::Error> {
        let threads = std::thread::available_parallelism()
            .map_or(2, std::num::NonZeroUsize::get)
            .min(2);
        let passwords = Checker::start(threads).map_err(|e| {
            crate::Error::Config(format!("cannot start a password-check thread: {e}"))
        })?;
        let rate = std::num::NonZeroU32::new(config.http.sign_ins_per_second)
            .unwrap_or(std::num::NonZeroU32::MIN);
        let sign_ins = governor::RateLimiter::keyed(governor::Quota::per_second(rate));
        // A configured hash has the cost of the real ones; without any, one of the defaults.
        let decoy_hash =
            match config.agents().find_map(|(_, a)| a.password_hash.clone()) {
                Some(h) => h,
                None => ixn_config::password::hash(&random_token(16).unwrap_or_default()).map_err(
                    |e| crate::Error::Config(format!("cannot make the decoy password hash: {e}")),
                )?,
            };
        Ok(Self {
            passwords,
            sign_ins,
            decoy_hash,
        })
    }
}

/// Checks passwords on a few dedicated threads. argon2 takes about 19 MiB and tens of
/// milliseconds per check: a fixed set of threads bounds both the memory kept by the allocator
/// (one arena per thread) and the cores a burst of sign-ins (or of guesses) can take, and a
/// bounded queue turns a flood into quick refusals.
#[derive(Debug)]
pub(crate) struct Checker {
    jobs: tokio::sync::mpsc::Sender<Job>,
}

type Job = (String, String, tokio::sync::oneshot::Sender<bool>);

/// Checks waiting for a thread before sign-ins are refused.
const CHECK_QUEUE: usize = 256;

impl Checker {
    pub(crate) fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs, rx) = tokio::sync::mpsc::channel::<Job>(CHECK_QUEUE);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = std::sync::Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("ixn-passwords-{i}"))
                .spawn(move || {
                    // argon2's working memory, kept and reused by this thread.
                    let mut blocks: Vec<argon2::Block> = Vec::new();
                    loop {
                        // One thread waits on the queue at a time; the others wait for the lock.
                        let job = rx
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .blocking_recv();
                        let Some((password, hash, done)) = job else {
                            return;
                        };
                        let _ = done.send(ixn_config::password::verify_with(
                            &password,
                            &hash,
                            &mut blocks,
                        ));
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Whether `password` matches `hash`; `None` when too many checks are already waiting.
    pub(crate) async fn check(&self, password: String, hash: String) -> Option<bool> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs.try_send((password, hash, done)).ok()?;
        Some(result.await.unwrap_or(false))
    }
}

/// The user and password of an `Authorization: Basic ...` header value.
pub(crate) fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// A random token of `bytes` bytes, hex-encoded.
pub(crate) fn random_token(bytes: usize) -> Option<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).ok()?;
    Some(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header() {
        // "a1:demo-a1"
        assert_eq!(
            parse_basic("Basic YTE6ZGVtby1hMQ=="),
            Some(("a1".into(), "demo-a1".into()))
        );
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic("Basic YTE="), None); // no colon
        assert_eq!(random_token(16).unwrap().len(), 32);
    }
}
