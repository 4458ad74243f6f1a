//! Passwords (argon2 PHC strings) and HTTP Basic credentials.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;

/// Hashes `password` with argon2id and a random salt, as a PHC string for an agent's
/// `password_hash` (what `ixn hash-password` prints).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for the salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash). Slow on
/// purpose (argon2): call it off the async threads.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
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
    pub(crate) fn start(threads: usize) -> Result<Self, String> {
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
                        let _ = done.send(verify_with(&password, &hash, &mut blocks));
                    }
                })
                .map_err(|e| format!("cannot start a password-check thread: {e}"))?;
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

/// [`verify_password`] with caller-owned working memory (grown to the hash's memory cost and
/// reused), so that repeated checks do not allocate 19 MiB each.
fn verify_with(password: &str, hash: &str, blocks: &mut Vec<argon2::Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        argon2::Params::try_from(&parsed),
        argon2::Algorithm::try_from(parsed.algorithm),
    ) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(argon2::Version::V0x13), argon2::Version::try_from);
    let (Ok(version), Some(expected), Some(salt)) = (version, parsed.hash, parsed.salt) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, argon2::Block::default());
    }
    let Some(memory) = blocks.get_mut(..needed) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = argon2::Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    argon2::password_hash::Output::new(&out).is_ok_and(|o| o == expected)
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
    fn hash_then_verify() {
        let hash = hash_password("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &hash));
        assert!(!verify_password("S3cret", &hash));
        assert!(!verify_password("s3cret", "not a hash"));
        let mut blocks = Vec::new();
        assert!(verify_with("s3cret", &hash, &mut blocks));
        assert!(!verify_with("s3cre", &hash, &mut blocks));
        assert!(verify_with("s3cret", &hash, &mut blocks), "memory reused");
        assert!(!verify_with(
            "s3cret",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$x",
            &mut blocks
        ));
    }

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
