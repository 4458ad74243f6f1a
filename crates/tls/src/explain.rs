//! A failed TLS handshake in words: whose certificate was judged, what is wrong with it, and
//! what to do. rustls names the fault (`UnknownIssuer`, `NotValidForName`...); a person needs
//! the sentence.

/// Whose certificate a handshake judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peer {
    /// This side is the client: the server's certificate was judged.
    Server,
    /// This side is the server: a client's certificate was judged.
    Client,
}

/// The fault of a failed handshake as a sentence, `error` being what the TLS library said.
pub fn explain(error: &str, whose: Peer) -> String {
    let (cert, fix_ca) = match whose {
        Peer::Server => (
            "the server's certificate",
            "give `--ca FILE` with the certificate of the authority that signed it",
        ),
        Peer::Client => (
            "the client's certificate",
            "sign it with the authority of `[tls] client_ca` (or `--tls-client-ca`), or point that setting at its authority",
        ),
    };
    let why = if error.contains("InvalidContentType") {
        return match whose {
            Peer::Server => "the server does not speak TLS on this port (it answered in plain frames): drop `--tls`, or give the server a certificate (`--tls-cert` and `--tls-key`)".to_owned(),
            Peer::Client => "the client does not speak TLS (it sent plain frames): connect with TLS (`--tls`, `--ca FILE`)".to_owned(),
        };
    } else if error.contains("UnsupportedCertVersion") {
        format!(
            "{cert} is an X.509 version 1 certificate (what `openssl req -x509` or `openssl x509 -req` make without extensions), which is refused: make it again as version 3 with a subjectAltName (docs/operations.md has a recipe)"
        )
    } else if error.contains("UnknownIssuer") {
        format!("{cert} is not signed by an authority this side trusts: {fix_ca}")
    } else if error.contains("NotValidForName") {
        format!(
            "{cert} does not name the host that was dialled in its subjectAltName: connect by a name it lists (or give `--server-name`), or make it again with that name"
        )
    } else if error.contains("Expired") {
        format!("{cert} has expired: renew it (the server reads new files on SIGHUP)")
    } else if error.contains("NotValidYet") {
        format!("{cert} is not valid yet: check the clocks, or its start date")
    } else if error.contains("BadEncoding") || error.contains("BadDer") {
        format!("{cert} cannot be read (not DER-encoded X.509): make it again")
    } else if error.contains("CertificateRequired") || error.contains("NoCertificatesPresented") {
        "the server requires a client certificate: give `--cert FILE --key FILE`".to_owned()
    } else {
        return error.to_owned();
    };
    format!("{why} ({error})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_usual_fault_gets_its_sentence() {
        let s = explain("invalid peer certificate: UnknownIssuer", Peer::Server);
        assert!(
            s.starts_with("the server's certificate is not signed") && s.contains("--ca FILE"),
            "{s}"
        );
        let s = explain("invalid peer certificate: UnknownIssuer", Peer::Client);
        assert!(
            s.starts_with("the client's certificate") && s.contains("client_ca"),
            "{s}"
        );
        let s = explain(
            "invalid peer certificate: Other(OtherError(UnsupportedCertVersion))",
            Peer::Server,
        );
        assert!(s.contains("X.509 version 1"), "{s}");
        let s = explain("invalid peer certificate: NotValidForName", Peer::Server);
        assert!(s.contains("subjectAltName"), "{s}");
        let s = explain("invalid peer certificate: Expired", Peer::Server);
        assert!(s.contains("has expired"), "{s}");
        let s = explain(
            "received corrupt message of type InvalidContentType",
            Peer::Server,
        );
        assert!(s.contains("does not speak TLS"), "{s}");
        assert_eq!(explain("something new", Peer::Server), "something new");
    }
}
