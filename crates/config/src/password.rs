//! Agents' passwords: argon2 PHC strings, the form of an agent's `password_hash`.

use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Hashes `password` with argon2id and a random salt, as a PHC string for an agent's
/// `password_hash` (what `ixn hash-password` prints).
pub fn hash(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(HashError::Randomness)?;
    let salt = SaltString::encode_b64(&salt).map_err(HashError::Argon2)?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(HashError::Argon2)
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The system gave no randomness for the salt.
    #[error("no randomness for the salt: {0}")]
    Randomness(getrandom::Error),
    /// argon2 refused (a password over its length limit).
    #[error("argon2: {0}")]
    Argon2(password_hash::Error),
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash). Slow on
/// purpose (argon2): call it off the async threads.
pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// [`verify`] with caller-owned working memory (grown to the hash's memory cost and
/// reused), so that repeated checks do not allocate 19 MiB each.
pub fn verify_with(password: &str, hash: &str, blocks: &mut Vec<argon2::Block>) -> bool {
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
    password_hash::Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("s3cret", &h));
        assert!(!verify("S3cret", &h));
        assert!(!verify("s3cret", "not a hash"));
        let mut blocks = Vec::new();
        assert!(verify_with("s3cret", &h, &mut blocks));
        assert!(!verify_with("s3cre", &h, &mut blocks));
        assert!(verify_with("s3cret", &h, &mut blocks), "memory reused");
        assert!(!verify_with(
            "s3cret",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$x",
            &mut blocks
        ));
    }
}
