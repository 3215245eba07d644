//! `dmarc serve`: a dashboard over the report store.
//!
//! Server-rendered HTML (no script, no build step; charts are SVG drawn here), a JSON API
//! under `/api/` that answers with the same serialised types as the command line's
//! `--json`, and a CSV export of every table (`?format=csv&table=ID`, the link beside each
//! table). Filters live in the URL: `domain`, `since` and `until` (`YYYY-MM-DD`, UTC,
//! `until` inclusive, as `dmarc summary` reads them) and `reporter`.
//!
//! Listening on a loopback address needs nothing more; on any other address (`0.0.0.0`
//! included) the server refuses to start unless a password hash or a token is configured,
//! and then every client must authenticate, loopback ones too (see [`auth`]). Report
//! contents come from strangers: every string reaches the page through maud, which escapes
//! it, and the `Content-Security-Policy` allows no script at all.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod alerts;
pub mod auth;
mod pages;
pub mod table;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use dmarc_owner::rollout::RolloutReport;
use dmarc_owner::sources::SourcesReport;
use dmarc_store::{Store, StoreError, Summary, SummaryQuery};
use serde::Deserialize;

pub use auth::{Credentials, hash_password};

/// The address `dmarc serve` listens on by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Why the server cannot start or a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// The configuration file is wrong.
    #[error("configuration {path}: {detail}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A non-loopback address without authentication.
    #[error(
        "refusing to listen on {0} without authentication: it is not a loopback address, so \
         every client must log in; set password_hash (from `dmarc serve --hash-password`) or \
         token in the [serve] section of --config, or listen on 127.0.0.1"
    )]
    Unauthenticated(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("cannot open the report store")]
    Store(#[from] StoreError),
    /// Serving failed.
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// The `[serve]` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// The address to listen on (default [`DEFAULT_LISTEN`]).
    pub listen: Option<SocketAddr>,
    /// The report store (as `--db`).
    pub db: Option<String>,
    /// An Argon2 PHC string of the password (`dmarc serve --hash-password`).
    pub password_hash: Option<String>,
    /// A token for scripts (`Authorization: Bearer`) and the login form; at least 16
    /// characters.
    pub token: Option<String>,
    /// A file holding the token (its first line).
    pub token_file: Option<String>,
    /// How long a login lasts, in hours (default 12).
    pub session_hours: Option<u64>,
}

/// The configuration file: `[serve]`, and the sections of other commands (not read here).
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    serve: FileSettings,
    #[serde(flatten)]
    _other: toml::Table,
}

impl FileSettings {
    /// Reads the `[serve]` section of `path` (other sections are left to their commands).
    pub fn load(path: &Path) -> Result<FileSettings, WebError> {
        let err = |detail: String| WebError::Config {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let c: ConfigFile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        Ok(c.serve)
    }

    /// The credentials it names (reading `token_file`).
    pub fn credentials(&self, config: &Path) -> Result<Credentials, WebError> {
        let err = |detail: String| WebError::Config {
            path: config.display().to_string(),
            detail,
        };
        let token = match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => return Err(err("give token or token_file, not both".into())),
            (Some(t), None) => Some(t.clone()),
            (None, Some(f)) => {
                let text = std::fs::read_to_string(f).map_err(|e| err(format!("{f}: {e}")))?;
                Some(text.lines().next().unwrap_or("").trim().to_string())
            }
            (None, None) => None,
        };
        let c = Credentials {
            password_hash: self.password_hash.clone(),
            token,
            session_lifetime: Duration::from_secs(self.session_hours.unwrap_or(12) * 3600),
        };
        c.validate().map_err(err)?;
        Ok(c)
    }
}

/// What the server runs with.
#[derive(Debug)]
pub struct Settings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The store location (as [`Store::open`] reads it).
    pub db: String,
    /// Who may look; nothing configured means open (loopback only).
    pub credentials: Credentials,
    /// The alert rules, evaluated every `interval_minutes`.
    pub alerts: Option<alerts::Alerts>,
}

impl Settings {
    /// Refuses a non-loopback address without credentials.
    pub fn check(&self) -> Result<(), WebError> {
        if !self.listen.ip().is_loopback() && !self.credentials.configured() {
            return Err(WebError::Unauthenticated(self.listen));
        }
        Ok(())
    }
}

/// How long the named sources and rollout advice of a domain are kept while the reports
/// do not change (they ask DNS, whose answers change too).
const ADVICE_TTL: Duration = Duration::from_secs(3600);
/// How long the DNS questions behind them may take.
const DNS_BUDGET: Duration = Duration::from_secs(60);
/// How long after a request came in a page may wait for advice being computed before
/// showing itself without it (and a link to load it again): the advice of a big store
/// takes seconds (reverse DNS of every source), a page must not. The advice is started
/// before the page's own queries and worked out meanwhile.
pub(crate) const ADVICE_WAIT: Duration = Duration::from_millis(50);
/// The most summaries and advice kept (each for one filter).
const MAX_KEPT: usize = 64;

type AdviceKey = (String, Option<i64>, Option<i64>);
/// A value with the store's change marker it was computed at.
type Kept<T> = (Vec<i64>, Arc<T>);
pub(crate) type Advice = Arc<Result<(SourcesReport, RolloutReport), String>>;

/// Advice computed once, by a background task, for every request that wants it.
#[derive(Debug)]
struct AdviceSlot {
    made: Instant,
    marker: Vec<i64>,
    /// `None` until the background task has worked it out.
    ready: tokio::sync::watch::Receiver<Option<Advice>>,
}

/// Advice being worked out (or already known), to wait for with [`wait_advice`].
pub(crate) type PendingAdvice = tokio::sync::watch::Receiver<Option<Advice>>;

/// Waits for `pending` until `deadline` (`None`: until it is worked out). `None` when the
/// deadline passed first.
pub(crate) async fn wait_advice(
    mut pending: PendingAdvice,
    deadline: Option<tokio::time::Instant>,
) -> Option<Advice> {
    let ready = pending.wait_for(Option::is_some);
    let got = match deadline {
        Some(d) => tokio::time::timeout_at(d, ready).await.ok()?,
        None => ready.await,
    };
    Some(match got {
        Ok(a) => a.clone()?,
        // The task ended without an answer (it panicked).
        Err(_) => Arc::new(Err("the advice could not be worked out".to_string())),
    })
}

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    db: String,
    idle: Mutex<Vec<Store>>,
    credentials: Credentials,
    sessions: auth::Sessions,
    lookup: Arc<dmarc_dns::AnyLookup>,
    /// Summaries by query, with the store's change marker they were computed at.
    summaries: Mutex<HashMap<String, Kept<Summary>>>,
    /// Held while a summary is worked out.
    computing: tokio::sync::Mutex<()>,
    advice: Mutex<HashMap<AdviceKey, AdviceSlot>>,
}

/// An error answered to a request: a status and a sentence.
#[derive(Debug)]
pub(crate) struct HttpError {
    status: StatusCode,
    message: String,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, what)
    }

    pub(crate) fn bad_request(what: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, what)
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> HttpError {
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the report store: {e}"),
        )
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = maud::html! {
            (maud::DOCTYPE)
            html lang="en" { head { meta charset="utf-8"; title { "dmarc: error" }
                link rel="stylesheet" href="/style.css"; }
                body { main { h1 { "Error " (self.status.as_u16()) } p.error { (self.message) }
                    p { a href="/" { "All domains" } } } } }
        };
        (self.status, body).into_response()
    }
}

impl AppState {
    /// Runs `f` on a store connection, off the async threads (the store's calls block).
    pub(crate) async fn with_store<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, HttpError> {
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let taken = state.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut store = match taken {
                Some(s) => s,
                None => Store::open(&state.db)?,
            };
            let out = f(&mut store);
            // A connection whose query failed may be broken (PostgreSQL): not kept.
            if out.is_ok() {
                state
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(store);
            }
            out
        })
        .await
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(HttpError::from)
    }

    /// The store's summary for `q`, computed again only when a report was stored since
    /// the last time (reverse-DNS names are refreshed from the cache every time).
    pub(crate) async fn summary(
        self: &Arc<Self>,
        q: SummaryQuery,
    ) -> Result<Arc<Summary>, HttpError> {
        if let Some(kept) = self.kept_summary(&q, false).await? {
            return Ok(kept);
        }
        // One summary is worked out at a time: a second request for the same one waits
        // and finds it kept.
        let _one = self.computing.lock().await;
        self.kept_summary(&q, true)
            .await?
            .ok_or_else(|| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "no summary"))
    }

    /// The kept summary for `q` if the store has not changed since, else (with `compute`)
    /// a new one, kept.
    async fn kept_summary(
        self: &Arc<Self>,
        q: &SummaryQuery,
        compute: bool,
    ) -> Result<Option<Arc<Summary>>, HttpError> {
        let key = format!("{q:?}");
        let state = Arc::clone(self);
        let q = q.clone();
        self.with_store(move |s| {
            let marker = s.change_marker()?;
            let kept = state
                .summaries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .filter(|(m, _)| *m == marker)
                .map(|(_, x)| Arc::clone(x));
            if let Some(kept) = kept {
                let mut fresh = (*kept).clone();
                s.fill_rdns(&mut fresh)?;
                return Ok(Some(Arc::new(fresh)));
            }
            if !compute {
                return Ok(None);
            }
            let summary = Arc::new(s.summary(&q)?);
            let mut map = state.summaries.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= MAX_KEPT {
                map.clear();
            }
            map.insert(key, (marker, Arc::clone(&summary)));
            Ok(Some(summary))
        })
        .await
    }

    /// The named sources and rollout advice of `domain` in the window, worked out by a
    /// background task (they read every row of the domain and ask DNS) started here unless
    /// one is kept or under way, and kept until a report is stored or [`ADVICE_TTL`]
    /// passes. Only that task computes: a page that stops waiting leaves it running, and
    /// no second one starts (or repeats its store reads) meanwhile.
    pub(crate) async fn advice(
        self: &Arc<Self>,
        domain: &dmarc_proto::dmarc::DomainName,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<PendingAdvice, HttpError> {
        let key = (domain.to_string(), since, until);
        let marker = self.with_store(|s| s.change_marker()).await?;
        let mut map = self.advice.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = map
            .get(&key)
            .filter(|a| a.marker == marker && a.made.elapsed() < ADVICE_TTL)
            .map(|a| a.ready.clone());
        if let Some(ready) = fresh {
            return Ok(ready);
        }
        if map.len() >= MAX_KEPT {
            map.retain(|_, a| a.ready.borrow().is_some());
            map.retain(|_, a| a.made.elapsed() < ADVICE_TTL);
        }
        let (tx, ready) = tokio::sync::watch::channel(None);
        map.insert(
            key,
            AdviceSlot {
                made: Instant::now(),
                marker,
                ready: ready.clone(),
            },
        );
        let (state, d) = (Arc::clone(self), domain.clone());
        tokio::spawn(async move {
            let advice = Arc::new(state.compute_advice(&d, since, until).await);
            tx.send_replace(Some(advice));
        });
        Ok(ready)
    }

    async fn compute_advice(
        self: &Arc<Self>,
        domain: &dmarc_proto::dmarc::DomainName,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<(SourcesReport, RolloutReport), String> {
        let q = dmarc_store::sources::SourceQuery {
            domain: domain.to_string(),
            since,
            until,
        };
        let d = domain.clone();
        let gathered = self
            .with_store(move |s| {
                dmarc_owner::sources::gather(s, &d, &q).map_err(|e| match e {
                    dmarc_owner::sources::SourcesError::Store(e) => e,
                })
            })
            .await
            .map_err(|e| e.message)?;
        let resolved = tokio::time::timeout(
            DNS_BUDGET,
            dmarc_owner::sources::resolve(self.lookup.as_ref(), &gathered),
        )
        .await
        .map_err(|_| format!("DNS did not answer within {}s", DNS_BUDGET.as_secs()))?;
        let report = self
            .with_store(move |s| {
                dmarc_owner::sources::classify(s, gathered, resolved).map_err(|e| match e {
                    dmarc_owner::sources::SourcesError::Store(e) => e,
                })
            })
            .await
            .map_err(|e| e.message)?;
        let rollout = tokio::time::timeout(
            DNS_BUDGET,
            dmarc_owner::rollout::rollout(self.lookup.as_ref(), domain, &report),
        )
        .await
        .map_err(|_| format!("DNS did not answer within {}s", DNS_BUDGET.as_secs()))?;
        Ok((report, rollout))
    }
}

/// The filters of every page and API call, from the URL query.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Params {
    pub domain: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub reporter: Option<String>,
    pub format: Option<String>,
    pub table: Option<String>,
    pub by: Option<String>,
    pub top: Option<usize>,
    pub offset: Option<usize>,
}

/// [`Params`] read: dates as Unix times (`until` exclusive, the day after the one given).
#[derive(Debug, Clone, Default)]
pub(crate) struct Window {
    pub domain: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub reporter: Option<String>,
}

impl Params {
    fn opt(v: &Option<String>) -> Option<String> {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    pub(crate) fn window(&self) -> Result<Window, HttpError> {
        let date = |name: &str, v: &Option<String>| -> Result<Option<i64>, HttpError> {
            Params::opt(v)
                .map(|s| {
                    dmarc_store::time::parse_date(&s)
                        .map_err(|e| HttpError::bad_request(format!("{name}: {e}")))
                })
                .transpose()
        };
        let since = date("since", &self.since)?;
        let until = date("until", &self.until)?;
        if let (Some(s), Some(u)) = (since, until)
            && u < s
        {
            return Err(HttpError::bad_request("until is before since"));
        }
        Ok(Window {
            domain: Params::opt(&self.domain),
            since,
            until: until.map(|u| u + 86_400),
            reporter: Params::opt(&self.reporter),
        })
    }

    /// The query string that keeps the filters (for links), `?...` or `""`.
    pub(crate) fn keep(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("domain", &self.domain),
            ("since", &self.since),
            ("until", &self.until),
            ("reporter", &self.reporter),
        ] {
            if let Some(v) = Params::opt(v) {
                parts.push(format!("{k}={}", pages::url_encode(&v)));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

impl Window {
    pub(crate) fn list(&self) -> dmarc_store::browse::ListQuery {
        dmarc_store::browse::ListQuery {
            domain: self.domain.clone(),
            reporter: self.reporter.clone(),
            since: self.since,
            until: self.until,
            offset: 0,
            limit: 0,
        }
    }
}

/// Every response: no caching, no framing, no script, no referrer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in set {
        h.insert(name, HeaderValue::from_static(value));
    }
    res
}

/// Lets a request through when no credentials are configured, or it has a live session
/// or the bearer token; otherwise the login page (pages) or 401 (API, CSV).
async fn require_login(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !state.credentials.configured() {
        // Open only to this machine: a page elsewhere that points its own name at
        // 127.0.0.1 (DNS rebinding) must not read the dashboard through the browser.
        if !loopback_host(req.headers()) {
            return (
                StatusCode::FORBIDDEN,
                "without authentication the dashboard answers only to a loopback Host \
                 (127.0.0.1, [::1], localhost); configure password_hash or token to use a name\n",
            )
                .into_response();
        }
        return next.run(req).await;
    }
    if path == "/login" || path == "/style.css" {
        return next.run(req).await;
    }
    let headers = req.headers();
    let session_ok = auth::cookie(headers, auth::SESSION_COOKIE)
        .is_some_and(|id| state.sessions.csrf_of(id).is_some());
    if session_ok || state.credentials.bearer_ok(headers) {
        return next.run(req).await;
    }
    let wants_page = !path.starts_with("/api/")
        && req.uri().query().is_none_or(|q| !q.contains("format=csv"))
        && req.method() == axum::http::Method::GET;
    if wants_page {
        Redirect::to("/login").into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "authentication required: log in at /login or send Authorization: Bearer TOKEN\n",
        )
            .into_response()
    }
}

/// Evaluates the alert rules every `interval_minutes`, the first time at once. The DNS rule
/// asks the server's resolver (`--dns-zone`, `--nameserver` or the system's).
async fn alert_loop(state: Arc<AppState>, alerts: alerts::Alerts) {
    let every = Duration::from_secs(alerts.config.interval_minutes * 60);
    let alerts = Arc::new(alerts);
    loop {
        let now = dmarc_store::time::now();
        let a = Arc::clone(&alerts);
        let targets = state
            .with_store(move |s| {
                a.dns_targets(s, now)
                    .map_err(|e| StoreError::Data(e.to_string()))
            })
            .await;
        let r = match targets {
            Ok(targets) => {
                let dns = alerts::dns::observe(state.lookup.as_ref(), &targets).await;
                let a = Arc::clone(&alerts);
                state
                    .with_store(move |s| {
                        alerts::check(&a, s, now, false, dns)
                            .map_err(|e| StoreError::Data(e.to_string()))
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        match r {
            Ok(r) => {
                for d in &r.deliveries {
                    eprintln!("dmarc serve: alert {d}");
                }
            }
            Err(e) => eprintln!("dmarc serve: alert check failed: {}", e.message),
        }
        tokio::time::sleep(every).await;
    }
}

/// True when the request's `Host` is a loopback address or `localhost` (any port).
fn loopback_host(headers: &axum::http::HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The application's routes over `state`.
fn router(state: Arc<AppState>) -> Router {
    pages::routes()
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            require_login,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Listens and serves until `shutdown` completes. Prints the address it listens on
/// (`listening on http://ADDR/`) to standard error once bound, so that a caller asking for
/// port 0 learns the port.
pub async fn serve(
    settings: Settings,
    lookup: dmarc_dns::AnyLookup,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    settings.check()?;
    let db = settings.db.clone();
    // Opened once here: a wrong location fails at start, and the schema is brought up to
    // date before the first request.
    let first = tokio::task::spawn_blocking(move || Store::open(&db))
        .await
        .map_err(|e| WebError::Serve(std::io::Error::other(e)))??;
    let state = Arc::new(AppState {
        db: settings.db,
        idle: Mutex::new(vec![first]),
        credentials: settings.credentials,
        sessions: auth::Sessions::default(),
        lookup: Arc::new(lookup),
        summaries: Mutex::new(HashMap::new()),
        computing: tokio::sync::Mutex::new(()),
        advice: Mutex::new(HashMap::new()),
    });
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| WebError::Bind {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(WebError::Serve)?;
    eprintln!("dmarc serve: listening on http://{addr}/");
    if let Some(a) = settings.alerts.filter(|a| a.config.interval_minutes > 0) {
        tokio::spawn(alert_loop(Arc::clone(&state), a));
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(WebError::Serve)
}
