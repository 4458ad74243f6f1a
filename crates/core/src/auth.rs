//! Client authentication (R15): what a connection has proven, and the password check a driver
//! makes before it hands a RequestRegisterClient to the engine.
//!
//! The engine decides (on the first registration of a connection) whether what the connection
//! proved is enough for the application; it never runs argon2 itself, since that takes tens
//! of milliseconds and the engine serves every connection. The driver runs
//! [`verify_password`] on a thread of its own, strips the `Password` attribute, and reports
//! the result with [`crate::Engine::prove`].

use ixn_codec::{ClientType, Message, MessageId, attr, typed};
use ixn_config::{AppType, Config};

/// Something a connection has proven about the application it speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proof {
    /// A TLS client certificate, verified against `[tls] client_ca`, with these names (its
    /// subject common name and DNS subject-alternative names).
    Certificate(Vec<String>),
    /// The `Password` of a RequestRegisterClient matched this application's `password_hash`.
    Password {
        /// ClientName.
        name: String,
        /// ClientType.
        kind: AppType,
    },
    /// An in-process connection (the web gateway's link): it may register any configured
    /// application without more proof.
    InProcess,
}

/// What a connection has proven so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct Proofs {
    certificate: Vec<String>,
    password: Option<(String, AppType)>,
    in_process: bool,
}

impl Proofs {
    pub(crate) fn add(&mut self, proof: Proof) {
        match proof {
            Proof::Certificate(names) => self.certificate = names,
            Proof::Password { name, kind } => self.password = Some((name, kind)),
            Proof::InProcess => self.in_process = true,
        }
    }

    /// Why `(name, kind)` with these requirements may not register, if it may not.
    pub(crate) fn refusal(
        proofs: Option<&Self>,
        name: &str,
        kind: AppType,
        auth: &ixn_config::AppAuth,
    ) -> Option<&'static str> {
        if proofs.is_some_and(|p| p.in_process) {
            return None;
        }
        if auth.client_certificate
            && !proofs.is_some_and(|p| p.certificate.iter().any(|n| n == name))
        {
            return Some(if proofs.is_some_and(|p| !p.certificate.is_empty()) {
                "the client certificate does not name it"
            } else {
                "it must present a TLS client certificate naming it"
            });
        }
        if auth.password_hash.is_some()
            && !proofs
                .and_then(|p| p.password.as_ref())
                .is_some_and(|(n, k)| n == name && *k == kind)
        {
            return Some("the Password attribute is missing or wrong");
        }
        None
    }
}

/// The application type a ClientType names, if any.
pub(crate) fn app_type(t: ClientType) -> Option<AppType> {
    match t {
        ClientType::AgentApplication => Some(AppType::AgentApplication),
        ClientType::MediaServer => Some(AppType::MediaServer),
        ClientType::RoutingEngine => Some(AppType::RoutingEngine),
        ClientType::Proxy => Some(AppType::Proxy),
        ClientType::Unknown(_) => None,
    }
}

/// Checks the `Password` of a RequestRegisterClient against the application's
/// `password_hash`: the proof to give [`crate::Engine::prove`] when it matches, `None`
/// otherwise (not a registration, no password, no such application or no hash). Slow on
/// purpose (argon2): call it off the engine's thread.
pub fn verify_password(cfg: &Config, msg: &Message) -> Option<Proof> {
    if msg.id != MessageId::REQUEST_REGISTER_CLIENT {
        return None;
    }
    let password = msg.attrs.get_str(attr::PASSWORD)?;
    let r = typed::RequestRegisterClient::try_from(msg).ok()?;
    let kind = app_type(r.client_type)?;
    let hash = cfg
        .application(&r.client_name, kind)?
        .password_hash
        .as_ref()?;
    ixn_config::password::verify(password, hash).then(|| Proof::Password {
        name: r.client_name.to_string(),
        kind,
    })
}
