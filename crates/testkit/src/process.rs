//! Server processes in tests: a child killed and reaped when dropped, and the banner
//! `ixn-server` prints on stdout (its first line is for programs).

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::Child;

/// The start of `ixn-server`'s first stdout line, followed by its native address.
pub const LISTENING: &str = "ixn-server listening on ";

/// The start of the web API's banner line, followed by its address (then a space).
pub const WEB_LISTENING: &str = "web API listening on ";

/// A child process killed (and reaped) when dropped, so that a failing check does not leave it
/// running; it derefs to the [`Child`].
#[derive(Debug)]
pub struct Reaped(pub Child);

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The native address in a banner line (`ixn-server listening on ADDR`).
pub fn native_addr(line: &str) -> Option<SocketAddr> {
    line.trim().strip_prefix(LISTENING)?.parse().ok()
}

/// The web API's address in a banner line (`web API listening on http://ADDR (CometD ...)`).
pub fn web_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix(WEB_LISTENING)?;
    let rest = rest
        .strip_prefix("http://")
        .or_else(|| rest.strip_prefix("https://"))?;
    rest.split(' ').next()?.parse().ok()
}

/// What a started server's banner says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Banner {
    /// The native protocol's address.
    pub native: SocketAddr,
    /// The web API's address, when it listens.
    pub web: Option<SocketAddr>,
}

impl Banner {
    /// Reads the banner from a server's stdout: the first line (the native address), and the
    /// second when `web` (the web API's). `Err` quotes what was read instead.
    pub fn read(out: &mut impl BufRead, web: bool) -> Result<Self, String> {
        let mut first = String::new();
        out.read_line(&mut first)
            .map_err(|e| format!("cannot read the server's stdout: {e}"))?;
        let native = native_addr(&first).ok_or_else(|| {
            format!(
                "the server did not report its address (first stdout line: {:?})",
                first.trim()
            )
        })?;
        if !web {
            return Ok(Self { native, web: None });
        }
        let mut second = String::new();
        out.read_line(&mut second)
            .map_err(|e| format!("cannot read the server's stdout: {e}"))?;
        let web = web_addr(&second).ok_or_else(|| {
            format!(
                "the server did not report its web API (second stdout line: {:?})",
                second.trim()
            )
        })?;
        Ok(Self {
            native,
            web: Some(web),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_lines_are_read() {
        let text = "ixn-server listening on 127.0.0.1:7001\nweb API listening on http://127.0.0.1:8081 (CometD at http://127.0.0.1:8081/api/v2/notifications)\n";
        let b = Banner::read(&mut text.as_bytes(), true).unwrap();
        assert_eq!(b.native, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(b.web, Some("127.0.0.1:8081".parse().unwrap()));
        assert!(Banner::read(&mut "error: no config\n".as_bytes(), false).is_err());
        assert_eq!(
            web_addr("web API listening on https://[::1]:443 (CometD ...)"),
            Some("[::1]:443".parse().unwrap())
        );
    }
}
