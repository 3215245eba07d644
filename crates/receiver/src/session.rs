//! The staged receiver session: [`Receiver`] -> [`Connection`] -> [`Transaction`] ->
//! [`Body`] -> [`Verdicts`].
//!
//! Each state is consumed by the step that leaves it, and each step starts the DNS work
//! its inputs allow: SPF at MAIL FROM, the DMARC record and the DKIM keys at the end of
//! the header. The work is held as futures inside the state; they progress whenever the
//! state is polled ([`Transaction::poll_work`], [`Body::poll_work`], or their `drive`
//! methods), so a driver that waits for the next piece of the message (a milter between
//! frames) lets the answers come in meanwhile, and [`Body::finish`] waits for what is
//! still missing. No thread is started, nothing blocks.
//!
//! The resources a session uses (DNS, clock, randomness, configuration) are an [`Env`]:
//! [`Receiver`] holds them, borrowed (`Receiver<&L, &C, &R, &ReceiverConfig>`, what
//! [`verify_message`] uses) or shared (`Arc`s, for a session that outlives a stack frame).

use std::borrow::{Borrow, Cow};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use dmarc_proto::Clock;
use dmarc_proto::arc::forwarder::trusted_forwarder_override;
use dmarc_proto::arc::{ArcOutput, ArcVerification, ArcVerifier, ChainStatus, FieldKind};
use dmarc_proto::auth_results;
use dmarc_proto::dkim::{KeyAnswers, SignatureResult, StreamingVerifier, Verifier, fetch_keys};
use dmarc_proto::dmarc::{
    AuthorDomains, DkimIdentity, DmarcResult, FromFault, evaluate_authors, read_authors,
};
use dmarc_proto::dns::Lookup;
use dmarc_proto::dns::memo::{Memo, MemoLookup, QType};
use dmarc_proto::message::{HeaderField, Message, OwnedHeader};
use dmarc_proto::spf::{self, SpfOutput, SpfRequest};
use smallvec::SmallVec;

use crate::{Action, Randomness, ReceiverConfig, SmtpFacts, UpstreamResults, Verdicts};

/// RCPT TO addresses kept per message; more are counted
/// ([`Verdicts::recipients_not_kept`]).
pub const MAX_RECIPIENTS: usize = 100;

/// Author Domains whose DMARC record is asked for ahead of the evaluation (a From field
/// with more mailboxes is evaluated all the same; the rest are asked by the evaluation).
const MAX_PREFETCH: usize = 8;

/// The name of a DMARC record's question, kept inline: `_dmarc.<domain>` fits for nearly
/// every domain.
type NameBuf = SmallVec<[u8; 64]>;

/// What a session uses: DNS, a clock, randomness (for the RFC 7489 `pct` draw) and the
/// configuration. Cloned into each piece of DNS work, so cloning must be cheap: references
/// or `Arc`s. [`Receiver`] is the implementation.
pub trait Env: Clone + Send + Sync {
    /// The DNS.
    type Lookup: Lookup;
    /// The clock.
    type Clock: Clock;
    /// The random source.
    type Rng: Randomness + ?Sized;
    /// The DNS.
    fn lookup(&self) -> &Self::Lookup;
    /// The clock.
    fn clock(&self) -> &Self::Clock;
    /// The random source.
    fn rng(&self) -> &Self::Rng;
    /// The configuration.
    fn config(&self) -> &ReceiverConfig;
}

/// The receiver's resources: DNS (`L`), a clock (`C`), randomness (`R`) and the
/// configuration (`K`, a `&ReceiverConfig` or an `Arc<ReceiverConfig>`). Each is borrowed
/// or shared, so that a [`Receiver`] is cheap to clone. Start a session with
/// [`Receiver::connect`].
#[derive(Debug, Clone)]
pub struct Receiver<L, C, R, K> {
    /// The DNS.
    pub lookup: L,
    /// The clock.
    pub clock: C,
    /// The random source.
    pub rng: R,
    /// The configuration.
    pub config: K,
}

impl<L, C, R, K> Env for Receiver<L, C, R, K>
where
    L: Lookup + Clone,
    C: Clock + Clone,
    R: Randomness + Clone,
    K: Borrow<ReceiverConfig> + Clone + Send + Sync,
{
    type Lookup = L;
    type Clock = C;
    type Rng = R;
    fn lookup(&self) -> &L {
        &self.lookup
    }
    fn clock(&self) -> &C {
        &self.clock
    }
    fn rng(&self) -> &R {
        &self.rng
    }
    fn config(&self) -> &ReceiverConfig {
        self.config.borrow()
    }
}

impl<L, C, R, K> Receiver<L, C, R, K>
where
    Self: Env,
{
    /// A client connected from `ip` and said HELO/EHLO `helo`.
    pub fn connect(&self, ip: IpAddr, helo: impl Into<String>) -> Connection<Self> {
        Connection {
            env: self.clone(),
            ip,
            helo: helo.into(),
        }
    }
}

/// DNS work in progress, boxed: its type is an `async` block's.
type Work<'x, T> = Pin<Box<dyn Future<Output = T> + Send + 'x>>;

/// A piece of work, running or done.
enum Pending<'x, T> {
    Running(Work<'x, T>),
    Done(T),
}

impl<'x, T> Pending<'x, T> {
    fn start(work: impl Future<Output = T> + Send + 'x) -> Self {
        Pending::Running(Box::pin(work))
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Pending::Running(work) = self {
            match work.as_mut().poll(cx) {
                Poll::Ready(v) => *self = Pending::Done(v),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }

    async fn result(self) -> T {
        match self {
            Pending::Running(work) => work.await,
            Pending::Done(v) => v,
        }
    }
}

impl<T> std::fmt::Debug for Pending<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pending::Running(_) => "running",
            Pending::Done(_) => "done",
        })
    }
}

/// Polls every piece: ready when all are.
fn poll_all(pieces: &mut [&mut dyn PollPiece], cx: &mut Context<'_>) -> Poll<()> {
    let mut ready = true;
    for p in pieces {
        ready &= p.poll_piece(cx).is_ready();
    }
    if ready {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

trait PollPiece {
    fn poll_piece(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

impl<T> PollPiece for Pending<'_, T> {
    fn poll_piece(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll(cx)
    }
}

impl<T> PollPiece for Option<Pending<'_, T>> {
    fn poll_piece(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.as_mut().map_or(Poll::Ready(()), |p| p.poll(cx))
    }
}

/// An SMTP connection: client IP and HELO known. Clone it for each message of the
/// connection; a new HELO/EHLO is a new [`Receiver::connect`].
#[derive(Debug, Clone)]
pub struct Connection<E> {
    env: E,
    ip: IpAddr,
    helo: String,
}

impl<E: Env> Connection<E> {
    /// MAIL FROM: `mail_from` is the reverse-path (angle brackets optional; `""` or `<>`
    /// is the null reverse-path). Starts SPF for the MAIL FROM identity
    /// (`postmaster@<helo>` for the null reverse-path, RFC 7208 §2.4) and, when
    /// [`ReceiverConfig::check_helo`] is set and the reverse-path is not null, for the
    /// HELO identity: HELO waits for MAIL FROM because for a null reverse-path the MAIL
    /// FROM check is the HELO check.
    pub fn mail_from<'x>(self, mail_from: &str) -> Transaction<'x, E>
    where
        E: 'x,
    {
        let facts = SmtpFacts::new(self.ip, self.helo).with_mail_from(mail_from);
        Transaction::new(self.env, facts)
    }
}

/// A message transaction after MAIL FROM: SPF is running; recipients and header fields
/// arrive. The header block is kept (DKIM needs it); bound its size before feeding it
/// (the milter bounds the whole message).
#[derive(Debug)]
pub struct Transaction<'x, E> {
    env: E,
    facts: SmtpFacts,
    recipients: Vec<String>,
    recipients_not_kept: usize,
    spf: Pending<'x, SpfOutput>,
    helo_spf: Option<Pending<'x, SpfOutput>>,
    headers: Cow<'x, [u8]>,
}

impl<'x, E: Env + 'x> Transaction<'x, E> {
    /// A new transaction from MAIL FROM, without a connection step: `facts` says it all.
    /// Starts SPF as [`Connection::mail_from`] does.
    pub fn new(env: E, facts: SmtpFacts) -> Self {
        let request = SpfRequest::with_identities(
            facts.ip,
            &facts.helo,
            facts.mail_from.as_deref().filter(|m| !m.is_empty()),
        );
        let check_helo = env.config().check_helo && !facts.is_null_reverse_path();
        let helo_spf = check_helo.then(|| {
            let (env, request) = (env.clone(), request.clone());
            Pending::start(async move {
                spf::verify_helo(env.lookup(), env.clock(), &env.config().spf, &request).await
            })
        });
        let spf = {
            let env = env.clone();
            Pending::start(async move {
                spf::verify_mail_from(env.lookup(), env.clock(), &env.config().spf, &request).await
            })
        };
        Transaction {
            env,
            facts,
            recipients: Vec::new(),
            recipients_not_kept: 0,
            spf,
            helo_spf,
            headers: Cow::Owned(Vec::new()),
        }
    }

    /// RCPT TO (angle brackets optional). The first [`MAX_RECIPIENTS`] are kept.
    pub fn rcpt_to(&mut self, to: &str) {
        let to = to.trim();
        let to = to
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(to);
        if self.recipients.len() < MAX_RECIPIENTS {
            self.recipients.push(to.to_owned());
        } else {
            self.recipients_not_kept += 1;
        }
    }

    /// One header field, as it stands in the message: `name`, then `value` after the
    /// colon (with its leading space, folds as CRLF, no final line end).
    pub fn header(&mut self, name: &[u8], value: &[u8]) {
        let h = self.headers.to_mut();
        h.reserve(name.len() + value.len() + 3);
        h.extend_from_slice(name);
        h.push(b':');
        h.extend_from_slice(value);
        h.extend_from_slice(b"\r\n");
    }

    /// Header fields as raw bytes (whole fields with their line ends), appended.
    pub fn header_bytes(&mut self, fields: &[u8]) {
        self.headers.to_mut().extend_from_slice(fields);
    }

    /// Lets the running DNS work progress; ready when all of it is done.
    pub fn poll_work(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        poll_all(&mut [&mut self.spf, &mut self.helo_spf], cx)
    }

    /// Waits until the running DNS work is done (cancel-safe: what is done stays done).
    pub async fn drive(&mut self) {
        std::future::poll_fn(|cx| self.poll_work(cx)).await;
    }

    /// The end of the header: reads the From field(s) and the Authentication-Results
    /// fields, parses the DKIM signatures, and starts the DMARC record and key lookups.
    pub fn end_of_headers(mut self) -> Body<'x, E> {
        let headers = std::mem::take(&mut self.headers);
        match headers {
            Cow::Borrowed(block) => {
                let msg = Message::parse(block);
                let dkim = self.verifier().start_message(&msg);
                self.start_body(&msg, dkim)
            }
            Cow::Owned(block) => {
                // The block is split once, for what is read here and for the verifiers.
                let header = OwnedHeader::parse(block);
                let parsed = {
                    let fields: SmallVec<[HeaderField<'_>; 32]> = header.fields().collect();
                    HeaderFacts::read(&fields, self.env.config())
                };
                // The DKIM verifier takes the block; a chain to verify gets its own copy
                // (only messages that carry ARC fields pay for it).
                let arc = parsed
                    .has_arc
                    .then(|| self.arc_verifier().start_owned(header.clone()));
                let dkim = self.verifier().start_owned(header);
                self.start_body_with(parsed, dkim, arc)
            }
        }
    }

    /// A whole message held in memory, already parsed: its header fields end the header
    /// stage at once (no copy of the header block). Give the body with
    /// [`Body::whole_body`].
    pub fn message(self, msg: &Message<'x>) -> Body<'x, E> {
        let dkim = self.verifier().start_message(msg);
        self.start_body(msg, dkim)
    }

    fn verifier(&self) -> Verifier {
        let config = self.env.config();
        let verifier = Verifier::new(config.dkim.clone());
        match &config.key_cache {
            Some(cache) => verifier.with_key_cache(cache.clone()),
            None => verifier,
        }
    }

    fn arc_verifier(&self) -> ArcVerifier {
        let config = self.env.config();
        let verifier = ArcVerifier::new(config.arc.verifier.clone());
        match &config.key_cache {
            Some(cache) => verifier.with_key_cache(cache.clone()),
            None => verifier,
        }
    }

    fn start_body(self, msg: &Message<'x>, dkim: StreamingVerifier<'x>) -> Body<'x, E> {
        let parsed = HeaderFacts::read(msg.headers(), self.env.config());
        let arc = parsed.has_arc.then(|| self.arc_verifier().start(msg));
        self.start_body_with(parsed, dkim, arc)
    }

    fn start_body_with(
        self,
        facts: HeaderFacts,
        mut dkim: StreamingVerifier<'x>,
        mut arc: Option<ArcVerification<'x>>,
    ) -> Body<'x, E> {
        // One body hash for a DKIM signature and an AMS that hash the body alike.
        if let Some(arc) = &mut arc {
            arc.share_body_hashes(&mut dkim);
        }
        let HeaderFacts {
            authors,
            upstream,
            forged_fields,
            has_arc: _,
        } = facts;
        // The DMARC record at each Author Domain: the first question of policy discovery
        // (RFC 9989 §4.10); a tree walk's further steps are asked by the evaluation.
        let names: SmallVec<[NameBuf; 1]> = authors
            .as_ref()
            .map(|a| {
                a.domains
                    .iter()
                    .take(MAX_PREFETCH)
                    .map(|d| {
                        let mut n = NameBuf::new();
                        n.extend_from_slice(b"_dmarc.");
                        n.extend_from_slice(d.as_str().as_bytes());
                        n
                    })
                    .collect()
            })
            .unwrap_or_default();
        let env = self.env.clone();
        let policy = Pending::start(async move {
            // Every name is UTF-8: two `str`s joined.
            let names: SmallVec<[&str; 1]> = names
                .iter()
                .filter_map(|n| std::str::from_utf8(n).ok())
                .collect();
            let mut memo = Memo::new();
            memo.ask_all(env.lookup(), QType::Txt, &names).await;
            memo
        });
        // The DKIM keys and the ARC keys (seals and message signatures) in one round, each
        // name asked once.
        let mut key_names = dkim.key_names();
        if let Some(arc) = &arc {
            for n in arc.key_names() {
                if !key_names.iter().any(|k| k.eq_ignore_ascii_case(&n)) {
                    key_names.push(n);
                }
            }
        }
        let env = self.env.clone();
        let keys = Pending::start(async move { fetch_keys(env.lookup(), &key_names).await });
        Body {
            env: self.env,
            facts: self.facts,
            recipients: self.recipients,
            recipients_not_kept: self.recipients_not_kept,
            spf: self.spf,
            helo_spf: self.helo_spf,
            policy,
            keys,
            dkim,
            arc,
            authors,
            upstream,
            forged_fields,
        }
    }
}

/// What the header block says besides the DKIM signatures.
struct HeaderFacts {
    authors: Result<AuthorDomains, FromFault>,
    upstream: Vec<UpstreamResults>,
    forged_fields: Vec<usize>,
    /// ARC is on and the header has an ARC field: there is a chain to verify.
    has_arc: bool,
}

impl HeaderFacts {
    fn read(fields: &[HeaderField<'_>], config: &ReceiverConfig) -> Self {
        let from_fields: SmallVec<[&[u8]; 2]> = fields
            .iter()
            .filter(|f| f.is("From"))
            .map(HeaderField::value)
            .collect();
        let authors = read_authors(&from_fields, &config.dmarc.author);
        // Incoming Authentication-Results: ours are forged, trusted ones are reported.
        let mut upstream = Vec::new();
        let mut forged_fields = Vec::new();
        for field in fields.iter().filter(|f| f.is("Authentication-Results")) {
            let value = String::from_utf8_lossy(field.value());
            let Some(id) = auth_results::authserv_id(&value) else {
                continue;
            };
            if id.eq_ignore_ascii_case(&config.authserv_id) {
                forged_fields.push(field.index());
            } else if config
                .trusted_authserv_ids
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&id))
            {
                upstream.push(UpstreamResults {
                    field_index: field.index(),
                    parsed: auth_results::parse(&value),
                });
            }
        }
        let has_arc = config.arc.enabled
            && fields.iter().any(|f| {
                let n = f.trimmed_name();
                // Every ARC field name starts with "ARC-" and is at least 8 bytes long.
                n.len() >= 8
                    && n.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"ARC-"))
                    && [
                        FieldKind::Seal,
                        FieldKind::MessageSignature,
                        FieldKind::AuthenticationResults,
                    ]
                    .iter()
                    .any(|k| f.is(k.name()))
            });
        HeaderFacts {
            authors,
            upstream,
            forged_fields,
            has_arc,
        }
    }
}

/// The body stage: SPF, the DMARC record and the DKIM keys are being asked for; body
/// chunks are hashed as they come and not kept.
pub struct Body<'x, E> {
    env: E,
    facts: SmtpFacts,
    recipients: Vec<String>,
    recipients_not_kept: usize,
    spf: Pending<'x, SpfOutput>,
    helo_spf: Option<Pending<'x, SpfOutput>>,
    policy: Pending<'x, Memo>,
    keys: Pending<'x, KeyAnswers>,
    dkim: StreamingVerifier<'x>,
    /// The ARC chain being verified: `None` when ARC is off or the message has no ARC
    /// field.
    arc: Option<ArcVerification<'x>>,
    authors: Result<AuthorDomains, FromFault>,
    upstream: Vec<UpstreamResults>,
    forged_fields: Vec<usize>,
}

impl<E> std::fmt::Debug for Body<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("facts", &self.facts)
            .field("spf", &self.spf)
            .field("helo_spf", &self.helo_spf)
            .field("policy", &self.policy)
            .field("keys", &self.keys)
            .field("signatures", &self.dkim.signature_count())
            .field(
                "arc_sets",
                &self.arc.as_ref().map(ArcVerification::instances),
            )
            .finish_non_exhaustive()
    }
}

impl<'x, E: Env + 'x> Body<'x, E> {
    /// The next chunk of the body (cut anywhere). (The ARC chain's body hashes are the
    /// DKIM verification's: see [`ArcVerification::share_body_hashes`].)
    pub fn body(&mut self, chunk: &[u8]) {
        self.dkim.body(chunk);
    }

    /// The whole body at once (faster than chunks: see
    /// [`StreamingVerifier::whole_body`]). Give it once, instead of [`Body::body`].
    pub fn whole_body(&mut self, body: &[u8]) {
        self.dkim.whole_body(body);
    }

    /// The number of `DKIM-Signature` fields.
    pub fn signature_count(&self) -> usize {
        self.dkim.signature_count()
    }

    /// Lets the running DNS work progress; ready when all of it is done.
    pub fn poll_work(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        poll_all(
            &mut [
                &mut self.spf,
                &mut self.helo_spf,
                &mut self.policy,
                &mut self.keys,
            ],
            cx,
        )
    }

    /// Waits until the running DNS work is done (cancel-safe: what is done stays done).
    pub async fn drive(&mut self) {
        std::future::poll_fn(|cx| self.poll_work(cx)).await;
    }

    /// The end of the message: waits for the DNS work, verifies the signatures and
    /// evaluates DMARC on the results, with the SPF identity being the MAIL FROM domain,
    /// or the HELO name for a null reverse-path (RFC 9989 §4.4.2, RFC 7208 §2.4).
    pub async fn finish(mut self) -> Verdicts {
        self.drive().await;
        let env = self.env;
        let config = env.config();
        let spf_out = self.spf.result().await;
        let helo_out = match self.helo_spf {
            Some(p) => Some(p.result().await),
            None => None,
        };
        let keys = self.keys.result().await;
        let answers = self.policy.result().await;
        let arc = match self.arc {
            Some(chain) => Some(chain.finish_with_dkim(&keys, env.clock(), &mut self.dkim)),
            None => config.arc.enabled.then(ArcOutput::none),
        };
        let dkim: Vec<SignatureResult> = self.dkim.finish_with_keys(&keys, env.clock());

        let spf_ids = [spf_out.dmarc_identity()];
        let dkim_ids: Vec<DkimIdentity> = dkim
            .iter()
            .filter_map(SignatureResult::dmarc_identity)
            .collect();
        let pct_draw =
            (config.dmarc.spec == dmarc_proto::dmarc::Spec::Rfc7489).then(|| env.rng().percent());
        let one_author = self.authors.as_ref().is_ok_and(|a| a.domains.len() <= 1);
        // The trusted-forwarder decision may evaluate the Author Domain again: then the
        // memo keeps its answers.
        let may_override = arc.as_ref().is_some_and(|a| a.status == ChainStatus::Pass)
            && !config.arc.trusted_sealers.is_empty();
        let memo = MemoLookup::new(env.lookup(), answers, one_author && !may_override);
        // The evaluations' futures are large (several KiB): boxed, so that the session's
        // own future, which callers move (a batch moves each message's into a task), stays
        // small.
        let dmarc = Box::pin(evaluate_authors(
            &memo,
            self.authors,
            &spf_ids,
            &dkim_ids,
            pct_draw,
            &config.dmarc,
        ))
        .await;
        let mut action = Action::for_dmarc(&dmarc);
        // Local policy (RFC 8617 §7.2.1): a DMARC failure with a policy to enforce is
        // accepted when a trusted sealer vouches for an aligned pass. Never a pass or a
        // temperror.
        let trusted_forwarder = match &arc {
            Some(chain)
                if dmarc.result == DmarcResult::Fail
                    && matches!(action, Action::Reject | Action::Quarantine)
                    && !config.arc.trusted_sealers.is_empty() =>
            {
                let decision = Box::pin(trusted_forwarder_override(
                    &memo,
                    &dmarc,
                    chain,
                    &config.arc.trusted_sealers,
                    &config.dmarc,
                ))
                .await;
                if decision.is_ok() {
                    action = Action::Accept;
                }
                Some(decision)
            }
            _ => None,
        };

        Verdicts {
            action,
            spf: spf_out,
            helo_spf: helo_out,
            dkim,
            dmarc,
            arc,
            trusted_forwarder,
            authserv_id: config.authserv_id.clone(),
            upstream: self.upstream,
            forged_fields: self.forged_fields,
            facts: self.facts,
            recipients: self.recipients,
            recipients_not_kept: self.recipients_not_kept,
        }
    }
}

/// Verifies one message held in memory: the whole session (connect, MAIL FROM, the
/// header, the body, finish) in one call. SPF (MAIL FROM and HELO), every DKIM signature
/// and DMARC, and the Authentication-Results field. Never fails: every problem is a
/// verdict with a reason.
///
/// `rng` is asked for the RFC 7489 `pct` draw (only in RFC 7489 mode).
pub async fn verify_message<L, C, R>(
    lookup: &L,
    clock: &C,
    rng: &R,
    config: &ReceiverConfig,
    facts: &SmtpFacts,
    message: &[u8],
) -> Verdicts
where
    L: Lookup,
    C: Clock,
    R: Randomness + ?Sized,
{
    let env = Receiver {
        lookup,
        clock,
        rng,
        config,
    };
    let msg = Message::parse(message);
    let mut body = Transaction::new(env, facts.clone()).message(&msg);
    // Send the questions before hashing the body, so that the answers travel meanwhile.
    std::future::poll_fn(|cx| {
        let _ = body.poll_work(cx);
        Poll::Ready(())
    })
    .await;
    body.whole_body(msg.body());
    body.finish().await
}
