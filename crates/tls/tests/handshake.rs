//! Handshakes over an in-memory pipe: server identity, client certificates and their names,
//! reload, and the errors a person sees for wrong files.

// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ixn_tls::test_pki::Authority;
use ixn_tls::{Acceptor, ClientFiles, ServerFiles, connector, peer_names, server_name};
use std::path::Path;

struct Pki {
    dir: std::path::PathBuf,
    ca: Authority,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pki(tag: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("ixn-tls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ca = Authority::new("ixn test CA").unwrap();
    ca.write(&dir.join("ca.crt")).unwrap();
    ca.server(&["localhost"])
        .unwrap()
        .write(&dir, "server")
        .unwrap();
    Pki { dir, ca }
}

fn server_files(dir: &Path, client_ca: bool) -> ServerFiles {
    ServerFiles {
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
        client_ca: client_ca.then(|| dir.join("ca.crt")),
    }
}

/// Runs one handshake; returns the names the server saw, or the client's error.
async fn handshake(acceptor: &Acceptor, client: ClientFiles) -> Result<Vec<String>, String> {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = acceptor.current();
    let server = tokio::spawn(async move {
        server
            .accept(a)
            .await
            .map(|s| peer_names(s.get_ref().1))
            .map_err(|e| e.to_string())
    });
    let connector = connector(&client).map_err(|e| e.to_string())?;
    let client = connector
        .connect(server_name("localhost").unwrap(), b)
        .await
        .map_err(|e| e.to_string());
    let seen = server.await.unwrap();
    client?;
    seen
}

#[tokio::test]
async fn a_client_certificate_proves_its_names_and_no_certificate_proves_none() {
    let p = pki("names");
    let acceptor = Acceptor::load(server_files(&p.dir, true)).unwrap();
    let ca = Some(p.dir.join("ca.crt"));
    let anonymous = handshake(
        &acceptor,
        ClientFiles {
            ca: ca.clone(),
            identity: None,
        },
    )
    .await
    .unwrap();
    assert!(anonymous.is_empty());

    let files =
        p.ca.client("desk", &["media"])
            .unwrap()
            .write(&p.dir, "desk")
            .unwrap();
    let names = handshake(
        &acceptor,
        ClientFiles {
            ca: ca.clone(),
            identity: Some(files),
        },
    )
    .await
    .unwrap();
    assert_eq!(names, ["desk", "media"]);

    // A certificate from another authority is refused by the handshake itself.
    let other = Authority::new("someone else").unwrap();
    let files = other
        .client("desk", &[])
        .unwrap()
        .write(&p.dir, "stranger")
        .unwrap();
    assert!(
        handshake(
            &acceptor,
            ClientFiles {
                ca,
                identity: Some(files)
            }
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn the_client_checks_the_server_against_its_ca() {
    let p = pki("verify");
    let acceptor = Acceptor::load(server_files(&p.dir, false)).unwrap();
    let other = Authority::new("not the server's").unwrap();
    other.write(&p.dir.join("other.crt")).unwrap();
    let err = handshake(
        &acceptor,
        ClientFiles {
            ca: Some(p.dir.join("other.crt")),
            identity: None,
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn reload_takes_new_files_and_keeps_the_old_ones_when_the_new_are_wrong() {
    let p = pki("reload");
    let acceptor = Acceptor::load(server_files(&p.dir, false)).unwrap();
    let ca = ClientFiles {
        ca: Some(p.dir.join("ca.crt")),
        identity: None,
    };
    handshake(&acceptor, ca.clone()).await.unwrap();

    // A new authority and server certificate: clients trusting the old CA are now refused.
    let next = Authority::new("next CA").unwrap();
    next.server(&["localhost"])
        .unwrap()
        .write(&p.dir, "server")
        .unwrap();
    next.write(&p.dir.join("next.crt")).unwrap();
    acceptor.reload().unwrap();
    assert!(handshake(&acceptor, ca).await.is_err());
    let trusting_next = ClientFiles {
        ca: Some(p.dir.join("next.crt")),
        identity: None,
    };
    handshake(&acceptor, trusting_next.clone()).await.unwrap();

    // A broken key: the reload fails, naming the file, and the server keeps its identity.
    std::fs::write(p.dir.join("server.key"), "not a key").unwrap();
    let err = acceptor.reload().unwrap_err().to_string();
    assert!(
        err.contains("server.key") && err.contains("no private key"),
        "{err}"
    );
    handshake(&acceptor, trusting_next).await.unwrap();
}

#[test]
fn wrong_files_are_named_in_the_error() {
    let p = pki("errors");
    let mut files = server_files(&p.dir, false);
    files.cert = p.dir.join("missing.crt");
    let err = Acceptor::load(files).unwrap_err().to_string();
    assert!(
        err.contains("missing.crt") && err.contains("cannot read"),
        "{err}"
    );

    std::fs::write(p.dir.join("empty.crt"), "").unwrap();
    let mut files = server_files(&p.dir, false);
    files.cert = p.dir.join("empty.crt");
    let err = Acceptor::load(files).unwrap_err().to_string();
    assert!(
        err.contains("empty.crt") && err.contains("no certificate"),
        "{err}"
    );

    // A key that does not belong to the certificate.
    p.ca.server(&["localhost"])
        .unwrap()
        .write(&p.dir, "other")
        .unwrap();
    let mut files = server_files(&p.dir, false);
    files.key = p.dir.join("other.key");
    let err = Acceptor::load(files).unwrap_err().to_string();
    assert!(err.contains("cannot be used"), "{err}");
}
