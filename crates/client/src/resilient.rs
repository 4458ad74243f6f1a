//! Surviving failovers and restarts: [`Resilient`] finds the active server of a list, and
//! after a broken connection connects again and repeats the requests that set its session up.

use crate::client::{Client, Error, Registration, Tls};
use ixn_codec::{ClientType, Codec, Message, attr};

/// What [`Resilient::next_event`] brings.
#[derive(Debug)]
pub enum Event {
    /// A notification (EventWorkbinContentChanged and the like).
    Notification(Message),
    /// The connection broke and the client is connected again, to the active server, with its
    /// registration and every [`Resilient::setup`] request done again. Notifications between
    /// the two connections were not delivered: read the content you show again.
    Reconnected {
        /// Why the connection broke.
        why: String,
    },
}

/// A client that survives failovers and restarts: it connects to the active server of a list
/// ([`Client::connect_active`]), remembers the requests that set its session up (an agent's
/// login, workbin subscriptions: [`Resilient::setup`]), and when the connection breaks it
/// finds the active server again, registers, sends them again, and tells the application with
/// [`Event::Reconnected`].
///
/// Requests sent with [`Resilient::client`] are not repeated: one in flight when the
/// connection broke may or may not have been applied (read the interaction to know).
#[derive(Debug)]
pub struct Resilient {
    addrs: Vec<String>,
    codec: Codec,
    tls: Option<Tls>,
    name: String,
    kind: ClientType,
    password: Option<String>,
    patience: std::time::Duration,
    setup: Vec<Message>,
    client: Client,
}

impl Resilient {
    /// Connects to the active server of `addrs` and registers as `who` (waiting up to
    /// `patience` for a takeover in progress, here and at each reconnect attempt).
    pub async fn connect(
        addrs: &[String],
        codec: Codec,
        tls: Option<Tls>,
        who: Registration<'_>,
        patience: std::time::Duration,
    ) -> Result<Self, Error> {
        let client = Client::connect_active(addrs, codec, tls.as_ref(), who, patience).await?;
        Ok(Self {
            addrs: addrs.to_vec(),
            codec,
            tls,
            name: who.name.to_owned(),
            kind: who.kind,
            password: who.password.map(str::to_owned),
            patience,
            setup: Vec::new(),
            client,
        })
    }

    /// Sends a request that sets the session up (RequestAgentLogin, RequestWorkbinNotifications)
    /// and, when it succeeds, remembers it to send again after a reconnect.
    pub async fn setup(&mut self, msg: impl Into<Message>) -> Result<Message, Error> {
        let mut msg = msg.into();
        msg.attrs.remove(attr::REFERENCE_ID);
        let reply = self.client.request_ok(msg.clone()).await?;
        self.setup.push(msg);
        Ok(reply)
    }

    /// The connection as it is now (for requests that are not repeated).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The next notification of the current connection; `None` once it broke (then
    /// [`Resilient::broken_why`] says why, and [`Resilient::reconnect`] connects again).
    pub async fn next_notification(&mut self) -> Option<Message> {
        self.client.next_notification().await
    }

    /// Why the current connection ended, in words.
    pub fn broken_why(&self) -> String {
        self.client.failure().map_or_else(
            || "the server closed the connection".to_owned(),
            |e| format!("the connection broke: {e}"),
        )
    }

    /// The next notification; after a broken connection, reconnects first (trying again, up
    /// to 2 s apart, until it works) and says so with [`Event::Reconnected`].
    pub async fn next_event(&mut self) -> Event {
        if let Some(m) = self.client.next_notification().await {
            return Event::Notification(m);
        }
        let why = self.broken_why();
        let mut wait = std::time::Duration::from_millis(100);
        loop {
            match self.reconnect().await {
                Ok(()) => return Event::Reconnected { why },
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(2));
                }
            }
        }
    }

    /// Connects again to the active server and sends the setup requests again.
    pub async fn reconnect(&mut self) -> Result<(), Error> {
        let who = Registration {
            name: &self.name,
            kind: self.kind,
            password: self.password.as_deref(),
        };
        let client = Client::connect_active(
            &self.addrs,
            self.codec,
            self.tls.as_ref(),
            who,
            self.patience,
        )
        .await?;
        for msg in &self.setup {
            client.request_ok(msg.clone()).await?;
        }
        self.client = client;
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(self) -> Result<(), Error> {
        self.client.close().await
    }
}

/// Splits `a,b,c` (an address list as given on a command line) into addresses.
pub fn address_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}
