//! The ingestion loop: select, search, fetch, hand over, move or flag; IDLE; reconnect.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::{Flag, UnsolicitedResponse};
use futures_util::StreamExt as _;
use rustls::ClientConfig;
use tokio_util::sync::CancellationToken;

use super::connect::{self, ImapSession, command_error, within};
use super::wire::{encode_mailbox, uid_set};
use super::{Action, Disposition, ImapConfig, ImapError, ImapSummary, MessageRef, percent_encode};

/// See [`super::run_imap`].
pub(crate) async fn run<F, E>(
    config: &ImapConfig,
    shutdown: CancellationToken,
    mut handler: F,
) -> Result<ImapSummary, ImapError>
where
    F: FnMut(&[u8], &MessageRef) -> Result<Disposition, E>,
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    config.validate()?;
    let tls = connect::tls_config(&config.trust)?;
    if config.server.security == super::Security::Plaintext && !is_loopback(&config.server.host) {
        tracing::warn!(
            host = %config.server.host,
            "IMAP without TLS to a non-loopback host: the password crosses the network in clear"
        );
    }
    let mut summary = ImapSummary::default();
    let mut backoff = config.reconnect_min;
    loop {
        if shutdown.is_cancelled() {
            return Ok(summary);
        }
        let mut worker = Worker {
            config,
            shutdown: &shutdown,
            summary: &mut summary,
            backoff: &mut backoff,
            server: server_prefix(config),
        };
        match worker.connection(&tls, &mut handler).await {
            Ok(()) => return Ok(summary),
            Err(e) if config.watch && e.is_transient() => {
                tracing::warn!(
                    error = %error_chain(&e),
                    retry_in_secs = backoff.as_secs_f32(),
                    "IMAP connection failed; reconnecting"
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return Ok(summary),
                }
                backoff = (backoff * 2).min(config.reconnect_max);
            }
            Err(e) => return Err(e),
        }
    }
}

struct Worker<'a> {
    config: &'a ImapConfig,
    shutdown: &'a CancellationToken,
    summary: &'a mut ImapSummary,
    backoff: &'a mut Duration,
    /// `imaps://user@host:port`, for [`MessageRef::source`].
    server: String,
}

/// What the mailbox looks like once selected.
struct Selected {
    uid_validity: u32,
    has_move: bool,
    has_uidplus: bool,
    has_idle: bool,
    /// Lowest UID not yet looked at on this connection.
    next_uid: u32,
}

/// The handler's rulings on one batch, applied together.
#[derive(Default)]
struct Rulings {
    processed: Vec<u32>,
    rejected: Vec<u32>,
}

enum Wake {
    /// Something changed (or may have): search again.
    Check,
    /// Shutdown was requested.
    Shutdown,
}

impl Worker<'_> {
    /// One connection: log in, drain the mailbox, and with `watch` wait for more. Returns
    /// `Ok` when done (one pass) or shut down.
    async fn connection<F, E>(
        &mut self,
        tls: &Arc<ClientConfig>,
        handler: &mut F,
    ) -> Result<(), ImapError>
    where
        F: FnMut(&[u8], &MessageRef) -> Result<Disposition, E>,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        // Connecting may take until the connect timeout; do not make a shutdown wait for it.
        let opened = tokio::select! {
            r = connect::open(self.config, tls) => r,
            () = self.shutdown.cancelled() => return Ok(()),
        };
        let mut session = opened?;
        let mut selected = self.select(&mut session).await?;
        self.summary.connections += 1;
        tracing::info!(
            server = %self.server,
            mailbox = %self.config.server.mailbox,
            "IMAP mailbox selected"
        );
        loop {
            let outcome = self.drain(&mut session, &mut selected, handler).await;
            if let Err(e) = outcome {
                if !e.is_transient() {
                    self.logout(&mut session).await;
                }
                return Err(e);
            }
            // A connection that got this far was a success: the next failure starts the
            // backoff afresh.
            *self.backoff = self.config.reconnect_min;
            if !self.config.watch || self.shutdown.is_cancelled() {
                self.logout(&mut session).await;
                return Ok(());
            }
            let (back, wake) = self.wait(session, &selected).await?;
            session = back;
            if let Wake::Shutdown = wake {
                self.logout(&mut session).await;
                return Ok(());
            }
        }
    }

    async fn select(&self, session: &mut ImapSession) -> Result<Selected, ImapError> {
        let config = self.config;
        let caps = within(config.command_timeout, "CAPABILITY", session.capabilities())
            .await?
            .map_err(|e| command_error("CAPABILITY", e))?;
        let has_move = caps.has_str("MOVE");
        let has_uidplus = caps.has_str("UIDPLUS");
        let has_idle = caps.has_str("IDLE");

        for action in [&config.on_processed, &config.on_rejected] {
            if let Action::MoveTo(folder) = action {
                self.ensure_folder(session, folder).await?;
            }
        }

        let name = encoded(&config.server.mailbox)?;
        let mailbox = within(config.command_timeout, "SELECT", session.select(&name))
            .await?
            .map_err(|e| command_error(&format!("SELECT {:?}", config.server.mailbox), e))?;

        let needs_keywords = [&config.on_processed, &config.on_rejected]
            .iter()
            .any(|a| matches!(a, Action::Flag));
        if needs_keywords && !mailbox.permanent_flags.is_empty() {
            let can_store = |keyword: &str| {
                mailbox.permanent_flags.iter().any(|f| match f {
                    Flag::MayCreate => true,
                    Flag::Custom(k) => k.eq_ignore_ascii_case(keyword),
                    _ => false,
                })
            };
            for (keyword, action) in [
                (&config.processed_keyword, &config.on_processed),
                (&config.rejected_keyword, &config.on_rejected),
            ] {
                if matches!(action, Action::Flag) && !can_store(keyword) {
                    return Err(ImapError::Protocol(format!(
                        "mailbox {:?} does not accept the keyword {keyword} (PERMANENTFLAGS \
                         has neither it nor \\*); use --imap-move-to and --imap-error-folder",
                        config.server.mailbox
                    )));
                }
            }
        }
        Ok(Selected {
            uid_validity: mailbox.uid_validity.unwrap_or(0),
            has_move,
            has_uidplus,
            has_idle,
            next_uid: 1,
        })
    }

    /// Creates `folder` unless LIST shows it exists (RFC 3501 §6.3.3, §6.3.8), and
    /// subscribes to it so that mail clients show it.
    async fn ensure_folder(
        &self,
        session: &mut ImapSession,
        folder: &str,
    ) -> Result<(), ImapError> {
        let name = encoded(folder)?;
        if self.exists(session, &name).await? {
            return Ok(());
        }
        let created = within(self.config.command_timeout, "CREATE", session.create(&name)).await?;
        match created {
            Ok(()) => {
                tracing::info!(folder, "created IMAP folder");
                if let Ok(Err(e)) = within(
                    self.config.command_timeout,
                    "SUBSCRIBE",
                    session.subscribe(&name),
                )
                .await
                {
                    tracing::debug!(folder, "SUBSCRIBE failed: {e}");
                }
                Ok(())
            }
            // Someone else may have created it meanwhile ([ALREADYEXISTS], RFC 5530).
            Err(e) if self.exists(session, &name).await? => {
                tracing::debug!(folder, "CREATE failed but the folder exists: {e}");
                Ok(())
            }
            Err(e) => Err(command_error(&format!("CREATE {folder:?}"), e)),
        }
    }

    async fn exists(
        &self,
        session: &mut ImapSession,
        encoded_name: &str,
    ) -> Result<bool, ImapError> {
        let timeout = self.config.command_timeout;
        let mut found = false;
        let mut names = within(timeout, "LIST", session.list(Some(""), Some(encoded_name)))
            .await?
            .map_err(|e| command_error("LIST", e))?;
        while let Some(name) = within(timeout, "LIST", names.next()).await? {
            let name = name.map_err(|e| command_error("LIST", e))?;
            found |= name.name() == encoded_name;
        }
        Ok(found)
    }

    /// Offers every not-yet-handled message to the handler, batch by batch, until a search
    /// finds nothing new.
    async fn drain<F, E>(
        &mut self,
        session: &mut ImapSession,
        selected: &mut Selected,
        handler: &mut F,
    ) -> Result<(), ImapError>
    where
        F: FnMut(&[u8], &MessageRef) -> Result<Disposition, E>,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        let config = self.config;
        let query = format!(
            "UNDELETED UNKEYWORD {} UNKEYWORD {}",
            config.processed_keyword, config.rejected_keyword
        );
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            // Notifications so far are answered by this search.
            while session.unsolicited_responses.try_recv().is_ok() {}
            let command = format!("UID {}:* {query}", selected.next_uid);
            let found = within(
                config.command_timeout,
                "UID SEARCH",
                session.uid_search(&command),
            )
            .await?
            .map_err(|e| command_error("UID SEARCH", e))?;
            // "n:*" also matches the highest UID when it is below n (RFC 3501 §6.4.8).
            let mut uids: Vec<u32> = found
                .into_iter()
                .filter(|&u| u >= selected.next_uid)
                .collect();
            if uids.is_empty() {
                return Ok(());
            }
            uids.sort_unstable();
            tracing::debug!(count = uids.len(), "IMAP messages to handle");
            for batch in uids.chunks(config.batch_size) {
                if self.shutdown.is_cancelled() {
                    return Ok(());
                }
                let mut rulings = Rulings::default();
                let handled = self
                    .batch(session, selected, batch, handler, &mut rulings)
                    .await;
                // Record what was decided even when the handler failed on a later message.
                let applied = self.apply(session, selected, rulings).await;
                handled?;
                applied?;
                if let Some(&last) = batch.last() {
                    selected.next_uid = last.saturating_add(1);
                }
            }
        }
    }

    /// Fetches one batch and runs the handler on each message.
    async fn batch<F, E>(
        &mut self,
        session: &mut ImapSession,
        selected: &Selected,
        batch: &[u32],
        handler: &mut F,
        rulings: &mut Rulings,
    ) -> Result<(), ImapError>
    where
        F: FnMut(&[u8], &MessageRef) -> Result<Disposition, E>,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        let config = self.config;
        let timeout = config.command_timeout;
        let set = uid_set(batch);

        // Sizes first, so that oversized messages are never downloaded.
        let mut sizes: Vec<(u32, u64)> = Vec::with_capacity(batch.len());
        {
            let mut fetches = within(
                timeout,
                "UID FETCH",
                session.uid_fetch(&set, "(UID RFC822.SIZE)"),
            )
            .await?
            .map_err(|e| command_error("UID FETCH", e))?;
            while let Some(fetch) = within(timeout, "UID FETCH", fetches.next()).await? {
                let fetch = fetch.map_err(|e| command_error("UID FETCH", e))?;
                if let (Some(uid), Some(size)) = (fetch.uid, fetch.size) {
                    sizes.push((uid, u64::from(size)));
                }
            }
        }
        let mut wanted = Vec::with_capacity(sizes.len());
        for &(uid, size) in &sizes {
            if size > config.max_message_size {
                self.oversized(rulings, selected, uid, size);
            } else {
                wanted.push(uid);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        wanted.sort_unstable();

        // A partial fetch bounds what an honest server sends even if RFC822.SIZE was wrong.
        let query = format!(
            "(UID BODY.PEEK[]<0.{}>)",
            config.max_message_size.saturating_add(1)
        );
        let mut fetches = within(
            timeout,
            "UID FETCH",
            session.uid_fetch(uid_set(&wanted), &query),
        )
        .await?
        .map_err(|e| command_error("UID FETCH", e))?;
        let mut failure = None;
        while let Some(fetch) = within(timeout, "UID FETCH", fetches.next()).await? {
            let fetch = fetch.map_err(|e| command_error("UID FETCH", e))?;
            // Unsolicited FETCH responses (flag changes by others) carry no UID or no body.
            let (Some(uid), Some(body)) = (fetch.uid, fetch.body()) else {
                continue;
            };
            if failure.is_some() || wanted.binary_search(&uid).is_err() {
                // After a handler error the rest of the response is read but not handled.
                continue;
            }
            let size = sizes.iter().find(|(u, _)| *u == uid).map_or(0, |&(_, s)| s);
            if body.len() as u64 > config.max_message_size {
                self.oversized(rulings, selected, uid, body.len() as u64);
                continue;
            }
            let message = MessageRef {
                mailbox: config.server.mailbox.clone(),
                uid_validity: selected.uid_validity,
                uid,
                size,
                server: self.server.clone(),
            };
            match handler(body, &message) {
                Ok(Disposition::Processed) => {
                    self.summary.processed += 1;
                    rulings.processed.push(uid);
                }
                Ok(Disposition::Rejected) => {
                    self.summary.rejected += 1;
                    rulings.rejected.push(uid);
                }
                Ok(Disposition::Leave) => self.summary.left += 1,
                Err(e) => {
                    failure = Some(ImapError::Handler {
                        message: message.source(),
                        source: e.into(),
                    });
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn oversized(&mut self, rulings: &mut Rulings, selected: &Selected, uid: u32, size: u64) {
        tracing::warn!(
            message = %format!(
                "{}/{};UIDVALIDITY={}/;UID={uid}",
                self.server,
                percent_encode(&self.config.server.mailbox),
                selected.uid_validity
            ),
            size,
            limit = self.config.max_message_size,
            "IMAP message too big; treated as rejected"
        );
        self.summary.oversized += 1;
        rulings.rejected.push(uid);
    }

    /// Moves or flags the messages of one batch.
    async fn apply(
        &self,
        session: &mut ImapSession,
        selected: &Selected,
        mut rulings: Rulings,
    ) -> Result<(), ImapError> {
        let config = self.config;
        rulings.processed.sort_unstable();
        rulings.rejected.sort_unstable();
        if !rulings.processed.is_empty() {
            let set = uid_set(&rulings.processed);
            match &config.on_processed {
                Action::MoveTo(folder) => {
                    self.store(session, &set, "\\Seen").await?;
                    self.move_to(session, selected, &set, folder).await?;
                }
                Action::Flag => {
                    self.store(
                        session,
                        &set,
                        &format!("\\Seen {}", config.processed_keyword),
                    )
                    .await?;
                }
            }
        }
        if !rulings.rejected.is_empty() {
            let set = uid_set(&rulings.rejected);
            match &config.on_rejected {
                Action::MoveTo(folder) => self.move_to(session, selected, &set, folder).await?,
                Action::Flag => {
                    self.store(
                        session,
                        &set,
                        &format!("\\Flagged {}", config.rejected_keyword),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// `UID STORE set +FLAGS.SILENT (flags)`.
    async fn store(
        &self,
        session: &mut ImapSession,
        set: &str,
        flags: &str,
    ) -> Result<(), ImapError> {
        let timeout = self.config.command_timeout;
        let mut responses = within(
            timeout,
            "UID STORE",
            session.uid_store(set, format!("+FLAGS.SILENT ({flags})")),
        )
        .await?
        .map_err(|e| command_error("UID STORE", e))?;
        while let Some(r) = within(timeout, "UID STORE", responses.next()).await? {
            r.map_err(|e| command_error("UID STORE", e))?;
        }
        Ok(())
    }

    /// `UID MOVE` (RFC 6851), or `UID COPY` + `\Deleted` + `UID EXPUNGE` (RFC 4315) /
    /// `EXPUNGE`.
    async fn move_to(
        &self,
        session: &mut ImapSession,
        selected: &Selected,
        set: &str,
        folder: &str,
    ) -> Result<(), ImapError> {
        let timeout = self.config.command_timeout;
        let name = encoded(folder)?;
        if selected.has_move {
            return within(timeout, "UID MOVE", session.uid_mv(set, &name))
                .await?
                .map_err(|e| command_error(&format!("UID MOVE to {folder:?}"), e));
        }
        within(timeout, "UID COPY", session.uid_copy(set, &name))
            .await?
            .map_err(|e| command_error(&format!("UID COPY to {folder:?}"), e))?;
        self.store(session, set, "\\Deleted").await?;
        if selected.has_uidplus {
            let expunged = within(timeout, "UID EXPUNGE", session.uid_expunge(set))
                .await?
                .map_err(|e| command_error("UID EXPUNGE", e))?;
            let mut expunged = std::pin::pin!(expunged);
            while let Some(r) = within(timeout, "UID EXPUNGE", expunged.next()).await? {
                r.map_err(|e| command_error("UID EXPUNGE", e))?;
            }
        } else {
            let expunged = within(timeout, "EXPUNGE", session.expunge())
                .await?
                .map_err(|e| command_error("EXPUNGE", e))?;
            let mut expunged = std::pin::pin!(expunged);
            while let Some(r) = within(timeout, "EXPUNGE", expunged.next()).await? {
                r.map_err(|e| command_error("EXPUNGE", e))?;
            }
        }
        Ok(())
    }

    /// Waits for new mail: IDLE (RFC 2177) re-issued every `idle_refresh`, or NOOP polling.
    async fn wait(
        &self,
        mut session: ImapSession,
        selected: &Selected,
    ) -> Result<(ImapSession, Wake), ImapError> {
        let config = self.config;
        if !selected.has_idle {
            let wake = tokio::select! {
                () = tokio::time::sleep(config.poll_interval) => Wake::Check,
                () = self.shutdown.cancelled() => Wake::Shutdown,
            };
            if let Wake::Check = wake {
                within(config.command_timeout, "NOOP", session.noop())
                    .await?
                    .map_err(|e| command_error("NOOP", e))?;
            }
            return Ok((session, wake));
        }

        let notifications = session.unsolicited_responses.clone();
        let mut idle = session.idle();
        within(config.command_timeout, "IDLE", idle.init())
            .await?
            .map_err(|e| command_error("IDLE", e))?;
        // Mail that arrived between the last search and IDLE is announced before the
        // continuation, which `init` files away as unsolicited.
        let mut arrived = false;
        while let Ok(n) = notifications.try_recv() {
            arrived |= matches!(
                n,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            );
        }
        let wake = if arrived {
            Wake::Check
        } else {
            let (wait, _interrupt) = idle.wait_with_timeout(config.idle_refresh);
            // The library restarts its timeout on every "* OK still here"; bound the whole wait.
            tokio::select! {
                r = tokio::time::timeout(config.idle_refresh, wait) => match r {
                    Err(_) | Ok(Ok(IdleResponse::Timeout)) => Wake::Check,
                    Ok(Ok(IdleResponse::NewData(_))) => Wake::Check,
                    // The response stream ended: the server closed the connection.
                    Ok(Ok(IdleResponse::ManualInterrupt)) => {
                        return Err(ImapError::Closed("IDLE".to_owned()));
                    }
                    Ok(Err(e)) => return Err(command_error("IDLE", e)),
                },
                () = self.shutdown.cancelled() => Wake::Shutdown,
            }
        };
        let session = within(config.command_timeout, "DONE", idle.done())
            .await?
            .map_err(|e| command_error("IDLE DONE", e))?;
        Ok((session, wake))
    }

    async fn logout(&self, session: &mut ImapSession) {
        let limit = self.config.command_timeout.min(Duration::from_secs(10));
        if let Ok(Err(e)) = within(limit, "LOGOUT", session.logout()).await {
            tracing::debug!("IMAP LOGOUT failed: {e}");
        }
    }
}

fn encoded(name: &str) -> Result<String, ImapError> {
    encode_mailbox(name).map_err(ImapError::Config)
}

fn server_prefix(config: &ImapConfig) -> String {
    let s = &config.server;
    let scheme = match s.security {
        super::Security::ImplicitTls => "imaps",
        super::Security::StartTls | super::Security::Plaintext => "imap",
    };
    let host = if s.host.contains(':') {
        format!("[{}]", s.host)
    } else {
        s.host.clone()
    };
    format!("{scheme}://{}@{host}:{}", percent_encode(&s.user), s.port)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn error_chain(e: &dyn StdError) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
