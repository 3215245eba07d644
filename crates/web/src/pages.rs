//! The routes: pages, their CSV exports, the JSON API, login and logout.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use dmarc_store::browse::{ListQuery, SourceDetail};
use dmarc_store::{Granularity, Summary, SummaryQuery};
use maud::{DOCTYPE, Markup, html};
use serde::{Deserialize, Serialize};

use crate::auth;
use crate::table::{Cell, Series, Table, line_chart, pct_number, sparkline};
use crate::{AppState, HttpError, Params, Window};

type St = State<Arc<AppState>>;
type Res = Result<Response, HttpError>;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(domains))
        .route("/domain/{domain}", get(domain))
        .route("/source/{ip}", get(source))
        .route("/reports", get(reports))
        .route("/reports/{id}", get(report))
        .route("/failures", get(failures))
        .route("/tls", get(tls))
        .route("/rejected", get(rejected))
        .route("/rejected/{id}/content", get(rejected_content))
        .route("/alerts", get(alerts))
        .route("/api/alerts", get(api_alerts))
        .route("/api/summary", get(api_summary))
        .route("/api/sources", get(api_sources))
        .route("/api/rollout", get(api_rollout))
        .route("/api/reports", get(api_reports))
        .route("/api/reports/{id}", get(api_report))
        .route("/api/source/{ip}", get(api_source))
        .route("/api/failures", get(api_failures))
        .route("/api/tls", get(api_tls))
        .route("/api/rejected", get(api_rejected))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/style.css", get(style))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn domain_href(d: &str, p: &Params) -> String {
    format!("/domain/{}{}", url_encode(d), p.keep())
}

fn source_href(ip: &str, p: &Params) -> String {
    format!("/source/{}{}", url_encode(ip), p.keep())
}

/// What a page shows, in order.
enum Block {
    Table(Table),
    Html(Markup),
}

/// A page: its HTML, or with `?format=csv` one of its tables (`table=ID`, the first when
/// not given).
struct Page {
    title: String,
    blocks: Vec<Block>,
}

impl Page {
    fn new(title: impl Into<String>) -> Page {
        Page {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    fn table(&mut self, t: Table) {
        self.blocks.push(Block::Table(t));
    }

    fn html(&mut self, m: Markup) {
        self.blocks.push(Block::Html(m));
    }

    fn respond(self, p: &Params, path: &str, headers: &HeaderMap, state: &AppState) -> Res {
        if p.format.as_deref() == Some("csv") {
            let mut tables = self.blocks.into_iter().filter_map(|b| match b {
                Block::Table(t) => Some(t),
                Block::Html(_) => None,
            });
            let t = match p.table.as_deref() {
                Some(id) => tables.find(|t| t.id == id),
                None => tables.next(),
            }
            .ok_or_else(|| HttpError::not_found("no such table on this page"))?;
            let body = t.csv().map_err(|e| {
                HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("CSV: {e}"))
            })?;
            return Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}.csv\"", t.id),
                    ),
                ],
                body,
            )
                .into_response());
        }
        let keep = p.keep();
        let csv_href = |id: &str| {
            let sep = if keep.is_empty() { "?" } else { "&" };
            format!("{path}{keep}{sep}format=csv&table={id}")
        };
        let body = html! {
            @for b in &self.blocks {
                @match b {
                    Block::Table(t) => (t.html(&csv_href(t.id))),
                    Block::Html(m) => (m),
                }
            }
        };
        Ok(layout(&self.title, p, path, headers, state, body).into_response())
    }
}

fn layout(
    title: &str,
    p: &Params,
    path: &str,
    headers: &HeaderMap,
    state: &AppState,
    body: Markup,
) -> Markup {
    let keep = p.keep();
    let csrf =
        auth::cookie(headers, auth::SESSION_COOKIE).and_then(|id| state.sessions.csrf_of(id));
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "dmarc: " (title) }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    nav {
                        a href={ "/" (keep) } { "All domains" }
                        a href={ "/reports" (keep) } { "Reports received" }
                        a href={ "/failures" (keep) } { "Failure reports" }
                        a href={ "/tls" (keep) } { "SMTP TLS" }
                        a href="/rejected" { "Rejected inputs" }
                        a href="/alerts" { "Alerts" }
                        @if let Some(csrf) = csrf {
                            form.logout method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                    form.filters method="get" action=(path) {
                        label { "Domain " input type="text" name="domain"
                            value=(p.domain.as_deref().unwrap_or("")); }
                        label { "Since " input type="date" name="since"
                            value=(p.since.as_deref().unwrap_or("")); }
                        label { "Until " input type="date" name="until"
                            value=(p.until.as_deref().unwrap_or("")); }
                        @if let Some(r) = &p.reporter {
                            input type="hidden" name="reporter" value=(r);
                        }
                        button type="submit" { "Filter" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn summary_query(p: &Params, w: &Window, g: Granularity) -> SummaryQuery {
    SummaryQuery {
        domain: w.domain.clone(),
        since: w.since,
        until: w.until,
        granularity: g,
        top: p.top.unwrap_or(10).max(1),
    }
}

fn granularity(p: &Params) -> Result<Granularity, HttpError> {
    match p.by.as_deref() {
        None | Some("") | Some("month") => Ok(Granularity::Month),
        Some("day") => Ok(Granularity::Day),
        Some("total") => Ok(Granularity::Total),
        Some(other) => Err(HttpError::bad_request(format!(
            "by={other:?}: day, month or total"
        ))),
    }
}

/// Per-domain sums of a day-by-day summary, with each day's pass rate.
struct DomainTotals {
    reports: i64,
    messages: i64,
    pass: i64,
    spf: i64,
    dkim: i64,
    days: Vec<(String, Option<f64>)>,
}

fn by_domain(periods: &[dmarc_store::DomainPeriod]) -> BTreeMap<String, DomainTotals> {
    let mut out: BTreeMap<String, DomainTotals> = BTreeMap::new();
    for d in periods {
        let t = out.entry(d.domain.clone()).or_insert(DomainTotals {
            reports: 0,
            messages: 0,
            pass: 0,
            spf: 0,
            dkim: 0,
            days: Vec::new(),
        });
        t.reports += d.reports;
        t.messages += d.messages;
        t.pass += d.dmarc_pass;
        t.spf += d.spf_aligned_pass;
        t.dkim += d.dkim_aligned_pass;
        let rate = (d.messages > 0).then(|| d.pass_rate() * 100.0);
        t.days.push((d.period.clone(), rate));
    }
    out
}

async fn domains(State(state): St, Query(p): Query<Params>, headers: HeaderMap) -> Res {
    let w = p.window()?;
    let q = summary_query(&p, &w, Granularity::Day);
    let list = w.list();
    // From the per-report sums, not the rows: fast on any store.
    let (periods, totals, policies) = state
        .with_store(move |s| {
            Ok((
                s.domain_periods(&q)?,
                s.quick_totals()?,
                s.published_policies(&list)?,
            ))
        })
        .await?;
    let stage: BTreeMap<&str, String> = policies
        .iter()
        .map(|x| (x.domain.as_str(), x.stage()))
        .collect();
    let mut page = Page::new("All domains");
    let t = &totals;
    page.html(html! {
        p.totals {
            "The store holds " (t.aggregate_reports) " aggregate reports (" (t.aggregate_records)
            " rows), " (t.failure_reports) " failure reports, " (t.tls_reports)
            " SMTP TLS reports and " (t.rejected) " rejected inputs."
        }
    });
    let mut table = Table::new(
        "domains",
        "Domains",
        &[
            "domain",
            "reports",
            "messages",
            "dmarc_pass",
            "pass_rate",
            "spf_aligned",
            "dkim_aligned",
            "policy",
            "trend",
        ],
    );
    table.empty = "No aggregate reports in this selection.";
    let per = by_domain(&periods);
    for (d, x) in &per {
        let spark: Vec<Option<f64>> = x.days.iter().map(|d| d.1).collect();
        table.row(vec![
            Cell::Link(d.clone(), domain_href(d, &p)),
            Cell::Num(x.reports),
            Cell::Num(x.messages),
            Cell::Num(x.pass),
            Cell::Pct(x.pass, x.messages),
            Cell::Pct(x.spf, x.messages),
            Cell::Pct(x.dkim, x.messages),
            Cell::Opt(stage.get(d.as_str()).cloned()),
            Cell::Svg(sparkline(&spark)),
        ]);
    }
    page.table(table);
    if per.len() > 1 {
        let series: Vec<Series> = per
            .iter()
            .take(5)
            .map(|(d, x)| Series {
                name: d.clone(),
                points: x.days.clone(),
            })
            .collect();
        page.html(line_chart(
            "DMARC pass rate per day (%)",
            &series,
            0.0,
            100.0,
            "%",
        ));
    }
    page.respond(&p, "/", &headers, &state)
}

async fn domain(
    State(state): St,
    Path(name): Path<String>,
    Query(mut p): Query<Params>,
    headers: HeaderMap,
) -> Res {
    let parsed = dmarc_proto::dmarc::DomainName::new(name.trim().trim_end_matches('.'))
        .map_err(|_| HttpError::bad_request(format!("{name:?} is not a domain name")))?;
    p.domain = Some(parsed.to_string());
    let w = p.window()?;
    let q = summary_query(&p, &w, Granularity::Day);
    let list = w.list();
    // The advice is started first, so that it is worked out while the page reads its own
    // figures, and shown if it is ready `ADVICE_WAIT` after the request came in: the page
    // does not wait for it after its own work (on a big store it takes seconds).
    let deadline = tokio::time::Instant::now() + crate::ADVICE_WAIT;
    let advice = state.advice(&parsed, w.since, w.until).await?;
    let summary = state.summary(q).await?;
    let policies = state
        .with_store(move |s| s.published_policies(&list))
        .await?;
    let advice = crate::wait_advice(advice, Some(deadline)).await;
    let path = format!("/domain/{}", url_encode(parsed.as_ref()));
    let self_link = format!("{path}{}#advice", p.keep());
    let mut page = Page::new(parsed.to_string());
    let per = by_domain(&summary.domains);
    let x = per.values().next();
    let policy = policies.first();
    page.html(html! {
        p.totals {
            @if let Some(x) = x {
                (x.messages) " messages in " (x.reports) " reports; DMARC pass "
                (pct_number(x.pass, x.messages)) "% (aligned SPF " (pct_number(x.spf, x.messages))
                "%, aligned DKIM " (pct_number(x.dkim, x.messages)) "%)."
            } @else {
                "No aggregate reports for this domain in this selection."
            }
            @if let Some(pol) = policy {
                " Policy seen by the latest report: " strong { (pol.stage()) } "."
            }
        }
    });
    if x.is_some() {
        let rate = |f: &dyn Fn(&dmarc_store::DomainPeriod) -> i64| -> Vec<(String, Option<f64>)> {
            summary
                .domains
                .iter()
                .map(|d| {
                    (
                        d.period.clone(),
                        (d.messages > 0).then(|| f(d) as f64 * 100.0 / d.messages as f64),
                    )
                })
                .collect()
        };
        page.html(line_chart(
            "Pass rate per day (%)",
            &[
                Series {
                    name: "DMARC".into(),
                    points: rate(&|d| d.dmarc_pass),
                },
                Series {
                    name: "aligned SPF".into(),
                    points: rate(&|d| d.spf_aligned_pass),
                },
                Series {
                    name: "aligned DKIM".into(),
                    points: rate(&|d| d.dkim_aligned_pass),
                },
            ],
            0.0,
            100.0,
            "%",
        ));
    }
    let mut days = Table::new(
        "days",
        "Per day: results and dispositions",
        &[
            "day",
            "reports",
            "messages",
            "dmarc_pass",
            "pass_rate",
            "none",
            "quarantine",
            "reject",
            "pass",
            "other",
        ],
    );
    for d in &summary.domains {
        days.row(vec![
            Cell::Text(d.period.clone()),
            Cell::Num(d.reports),
            Cell::Num(d.messages),
            Cell::Num(d.dmarc_pass),
            Cell::Pct(d.dmarc_pass, d.messages),
            Cell::Num(d.disposition_none),
            Cell::Num(d.disposition_quarantine),
            Cell::Num(d.disposition_reject),
            Cell::Num(d.disposition_pass),
            Cell::Num(d.disposition_other),
        ]);
    }
    page.table(days);
    let names: BTreeMap<String, (String, &'static str)> = match advice.as_deref() {
        Some(Ok((sources, _))) => sources
            .sources
            .iter()
            .flat_map(|s| {
                s.ips
                    .iter()
                    .map(|ip| (ip.clone(), (s.name.clone(), s.kind.as_str())))
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    let name_of = |ip: &str| names.get(ip).map(|n| format!("{} [{}]", n.0, n.1));
    page.table(top_sources(&summary, &p, &name_of));
    page.table(failing_sources(&summary, &p, &name_of));
    match advice.as_deref() {
        Some(Ok((sources, rollout))) => {
            let mut t = Table::new(
                "sources",
                "Who sends as this domain",
                &[
                    "name",
                    "kind",
                    "addresses",
                    "messages",
                    "dmarc_pass",
                    "pass_rate",
                    "fix",
                ],
            );
            for s in &sources.sources {
                t.row(vec![
                    Cell::Text(s.name.clone()),
                    Cell::Text(s.kind.as_str().into()),
                    Cell::Num(s.ips.len() as i64),
                    Cell::Num(s.messages),
                    Cell::Num(s.dmarc_pass),
                    Cell::Pct(s.dmarc_pass, s.messages),
                    Cell::Opt(s.fix.clone()),
                ]);
            }
            page.table(t);
            page.html(rollout_html(rollout));
            let mut sim = Table::new(
                "rollout",
                "What the next stages would have done",
                &[
                    "stage",
                    "messages",
                    "legitimate",
                    "unknown",
                    "failing",
                    "sources",
                ],
            );
            for s in &rollout.simulation {
                let label = s.label();
                sim.row(vec![
                    Cell::Text(label),
                    Cell::Num(s.messages),
                    Cell::Num(s.legitimate),
                    Cell::Num(s.unknown),
                    Cell::Num(s.failing),
                    Cell::Num(s.sources as i64),
                ]);
            }
            page.table(sim);
        }
        Some(Err(e)) => page.html(html! {
            section { h2 { "Sources and rollout advice" }
                p.error { "Not available: " (e) } }
        }),
        None => page.html(html! {
            section id="advice" { h2 { "Sources and rollout advice" }
                p { "Being worked out (the sources' reverse DNS and the domain's records are asked): "
                    a href=(self_link) { "load the page again" } " in a few seconds." } }
        }),
    }
    // The domain is in the path; the filter form keeps it too.
    page.respond(&p, &path, &headers, &state)
}

fn rollout_html(r: &dmarc_owner::rollout::RolloutReport) -> Markup {
    let c = &r.current;
    html! {
        section id="advice" {
            h2 { "Rollout advice" }
            p {
                @match (&c.location, &c.record) {
                    (Some(l), Some(rec)) => { "Published now (" (l) "): " code { (rec) } " — stage " strong { (c.stage) } "." }
                    _ => { "No DMARC record applies (DNS)." }
                }
            }
            p {
                "Legitimate mail aligned: " (r.legitimate_aligned) " of " (r.legitimate_messages)
                " (" (format!("{:.1}", r.aligned_share * 100.0)) "%); unknown sources: "
                (r.unknown_messages) " messages. Window: " (r.window.days) " day(s) from the main receivers"
                @if !r.window.long_enough { " (fewer than 14: wait before enforcing)" } "."
            }
            @if !r.blockers.is_empty() {
                h3 { "Blockers" }
                ul { @for b in &r.blockers {
                    li { strong { (b.name) } " [" (b.kind.as_str()) "]: " (b.failing) " of "
                        (b.messages) " messages fail; fix: " (b.fix) }
                } }
            }
            @match &r.next {
                Some(n) => {
                    p { "Next: " strong { @if n.ready { "ready" } @else { "not yet" } } " — " (n.why) }
                    pre { (n.name) " TXT \"" (n.record) "\"" }
                    @for note in &n.notes { p.note { (note) } }
                }
                None => { p { "p=reject is published: nothing further to roll out." } }
            }
        }
    }
}

fn top_sources(s: &Summary, p: &Params, name: &dyn Fn(&str) -> Option<String>) -> Table {
    let mut t = Table::new(
        "top",
        "Top sources",
        &[
            "ip",
            "name",
            "rdns",
            "messages",
            "dmarc_pass",
            "pass_rate",
            "spf_aligned",
            "dkim_aligned",
            "reporters",
        ],
    );
    for x in &s.top_sources {
        t.row(vec![
            Cell::Link(x.ip.clone(), source_href(&x.ip, p)),
            Cell::Opt(name(&x.ip)),
            Cell::Opt(x.rdns.clone()),
            Cell::Num(x.messages),
            Cell::Num(x.dmarc_pass),
            Cell::Pct(x.dmarc_pass, x.messages),
            Cell::Pct(x.spf_aligned_pass, x.messages),
            Cell::Pct(x.dkim_aligned_pass, x.messages),
            Cell::Num(x.reporters),
        ]);
    }
    t
}

fn failing_sources(s: &Summary, p: &Params, name: &dyn Fn(&str) -> Option<String>) -> Table {
    let mut t = Table::new(
        "failing",
        "Sources failing DMARC",
        &[
            "ip",
            "name",
            "rdns",
            "failing",
            "rejected",
            "quarantined",
            "header_from",
            "envelope_from",
        ],
    );
    for x in &s.failing_sources {
        let from = if x.header_from_count > 1 {
            format!("{} (+{} more)", x.header_from, x.header_from_count - 1)
        } else {
            x.header_from.clone()
        };
        t.row(vec![
            Cell::Link(x.ip.clone(), source_href(&x.ip, p)),
            Cell::Opt(name(&x.ip)),
            Cell::Opt(x.rdns.clone()),
            Cell::Num(x.failing),
            Cell::Num(x.rejected),
            Cell::Num(x.quarantined),
            Cell::Text(from),
            Cell::Opt(x.envelope_from.clone()),
        ]);
    }
    t
}

async fn load_source(
    state: &Arc<AppState>,
    ip: String,
    w: &Window,
) -> Result<SourceDetail, HttpError> {
    if ip.len() > 64 {
        return Err(HttpError::bad_request("not a source address"));
    }
    let list = w.list();
    state.with_store(move |s| s.source_detail(&ip, &list)).await
}

async fn source(
    State(state): St,
    Path(ip): Path<String>,
    Query(p): Query<Params>,
    headers: HeaderMap,
) -> Res {
    let w = p.window()?;
    let d = load_source(&state, ip.clone(), &w).await?;
    let mut page = Page::new(format!("Source {ip}"));
    let total: i64 = d.days.iter().map(|x| x.messages).sum();
    let pass: i64 = d.days.iter().map(|x| x.dmarc_pass).sum();
    page.html(html! {
        p.totals {
            "Reverse DNS: "
            @match (&d.rdns, d.rdns_confirmed) {
                (Some(n), Some(true)) => { strong { (n) } " (forward-confirmed)" }
                (Some(n), Some(false)) => { strong { (n) } " (does not resolve back to the address)" }
                (Some(n), None) => { strong { (n) } }
                (None, _) => { "none cached" }
            }
            ". " (total) " messages, DMARC pass " (pct_number(pass, total)) "%."
        }
    });
    if !d.days.is_empty() {
        let mut per_day: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for x in &d.days {
            let e = per_day.entry(x.day.as_str()).or_default();
            e.0 += x.messages;
            e.1 += x.dmarc_pass;
        }
        let max = per_day.values().map(|v| v.0).max().unwrap_or(1).max(1) as f64;
        page.html(line_chart(
            "Messages per day",
            &[
                Series {
                    name: "messages".into(),
                    points: per_day
                        .iter()
                        .map(|(k, v)| (k.to_string(), Some(v.0 as f64)))
                        .collect(),
                },
                Series {
                    name: "passing DMARC".into(),
                    points: per_day
                        .iter()
                        .map(|(k, v)| (k.to_string(), Some(v.1 as f64)))
                        .collect(),
                },
            ],
            0.0,
            max,
            "",
        ));
    }
    let mut t = Table::new(
        "days",
        "Per day",
        &[
            "day",
            "policy_domain",
            "reports",
            "messages",
            "dmarc_pass",
            "spf_aligned",
            "dkim_aligned",
        ],
    );
    for x in &d.days {
        t.row(vec![
            Cell::Text(x.day.clone()),
            Cell::Link(x.policy_domain.clone(), domain_href(&x.policy_domain, &p)),
            Cell::Num(x.reports),
            Cell::Num(x.messages),
            Cell::Num(x.dmarc_pass),
            Cell::Num(x.spf_aligned_pass),
            Cell::Num(x.dkim_aligned_pass),
        ]);
    }
    page.table(t);
    for (id, title, col, rows) in [
        ("dkim", "DKIM results", "selector", &d.dkim),
        ("spf", "SPF results", "scope", &d.spf),
    ] {
        let mut t = Table::new(id, title, &["domain", col, "result", "messages"]);
        for x in rows {
            t.row(vec![
                Cell::Text(x.domain.clone()),
                Cell::Opt(x.detail.clone()),
                Cell::Text(x.result.clone()),
                Cell::Num(x.messages),
            ]);
        }
        page.table(t);
    }
    let mut t = Table::new(
        "from",
        "From domains",
        &["header_from", "messages", "dmarc_pass"],
    );
    for (f, m, pass) in &d.header_from {
        t.row(vec![Cell::Text(f.clone()), Cell::Num(*m), Cell::Num(*pass)]);
    }
    page.table(t);
    let mut t = Table::new("reporters", "Reporters", &["reporter", "messages"]);
    for (r, m) in &d.reporters {
        t.row(vec![Cell::Text(r.clone()), Cell::Num(*m)]);
    }
    page.table(t);
    page.respond(
        &p,
        &format!("/source/{}", url_encode(&ip)),
        &headers,
        &state,
    )
}

async fn reports(State(state): St, Query(p): Query<Params>, headers: HeaderMap) -> Res {
    let w = p.window()?;
    let q = summary_query(&p, &w, Granularity::Total);
    let mut list = w.list();
    list.offset = p.offset.unwrap_or(0);
    let (reporters, entries) = state
        .with_store(move |s| Ok((s.reporters(&q)?, s.aggregate_reports(&list)?)))
        .await?;
    let mut page = Page::new("Reports received");
    let mut t = Table::new(
        "reporters",
        "By reporter",
        &["reporter", "reports", "messages", "first", "last"],
    );
    for r in &reporters {
        let mut with = p.clone();
        with.reporter = Some(r.org_name.clone());
        let href = format!("/reports{}", with.keep());
        t.row(vec![
            Cell::Link(r.org_name.clone(), href),
            Cell::Num(r.reports),
            Cell::Num(r.messages),
            Cell::Time(r.first),
            Cell::Time(r.last),
        ]);
    }
    page.table(t);
    let mut t = Table::new(
        "reports",
        match &w.reporter {
            Some(r) => format!("Reports from {r}"),
            None => "Reports, newest first".to_string(),
        },
        &[
            "id",
            "reporter",
            "report_id",
            "domain",
            "begin",
            "end",
            "rows",
            "messages",
            "policy",
            "source",
        ],
    );
    for e in &entries {
        t.row(vec![
            Cell::Link(e.id.to_string(), format!("/reports/{}", e.id)),
            Cell::Text(e.org_name.clone()),
            Cell::Text(e.report_id.clone()),
            Cell::Link(e.policy_domain.clone(), domain_href(&e.policy_domain, &p)),
            Cell::Time(e.begin),
            Cell::Time(e.end),
            Cell::Num(e.record_count),
            Cell::Num(e.message_count),
            Cell::Opt(e.policy_p.clone()),
            Cell::Text(e.source.clone()),
        ]);
    }
    let more = entries.len() == dmarc_store::browse::MAX_PAGE;
    page.table(t);
    if more {
        let next = p.offset.unwrap_or(0) + dmarc_store::browse::MAX_PAGE;
        let keep = p.keep();
        let sep = if keep.is_empty() { "?" } else { "&" };
        page.html(
            html! { p { a href={ "/reports" (keep) (sep) "offset=" (next) } { "Older reports" } } },
        );
    }
    page.respond(&p, "/reports", &headers, &state)
}

fn auth_text(v: &[dmarc_store::browse::AuthResult]) -> String {
    v.iter()
        .map(|a| match &a.detail {
            Some(d) => format!("{} ({d}): {}", a.domain, a.result),
            None => format!("{}: {}", a.domain, a.result),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn report(
    State(state): St,
    Path(id): Path<i64>,
    Query(p): Query<Params>,
    headers: HeaderMap,
) -> Res {
    let (e, rows) = state
        .with_store(move |s| s.aggregate_report(id))
        .await?
        .ok_or_else(|| HttpError::not_found(format!("no aggregate report {id}")))?;
    let mut page = Page::new(format!("Report {} from {}", e.report_id, e.org_name));
    let mut t = Table::new("report", "The report", &["field", "value"]);
    let stage = dmarc_store::browse::PublishedPolicy {
        domain: e.policy_domain.clone(),
        p: e.policy_p.clone(),
        sp: e.policy_sp.clone(),
        pct: e.policy_pct,
        testing: e.policy_testing,
        seen: e.end,
    }
    .stage();
    for (k, v) in [
        ("reporter", Cell::Text(e.org_name.clone())),
        ("contact", Cell::Text(e.email.clone())),
        ("report_id", Cell::Text(e.report_id.clone())),
        (
            "domain",
            Cell::Link(e.policy_domain.clone(), domain_href(&e.policy_domain, &p)),
        ),
        ("begin", Cell::Time(e.begin)),
        ("end", Cell::Time(e.end)),
        ("policy", Cell::Text(stage)),
        ("sp", Cell::Opt(e.policy_sp.clone())),
        ("rows", Cell::Num(e.record_count)),
        ("messages", Cell::Num(e.message_count)),
        ("original file", Cell::Text(e.source.clone())),
        ("part of it", Cell::Text(e.source_part.clone())),
        ("stored", Cell::Time(e.ingested_at)),
    ] {
        t.row(vec![Cell::Text(k.into()), v]);
    }
    page.table(t);
    let mut t = Table::new(
        "rows",
        "Rows",
        &[
            "row",
            "source_ip",
            "messages",
            "disposition",
            "dkim_aligned",
            "spf_aligned",
            "header_from",
            "envelope_from",
            "dkim",
            "spf",
            "reasons",
        ],
    );
    for r in &rows {
        let reasons = r
            .reasons
            .iter()
            .map(|(t, c)| match c {
                Some(c) => format!("{t}: {c}"),
                None => t.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        t.row(vec![
            Cell::Num(r.row_no + 1),
            Cell::Link(r.source_ip.clone(), source_href(&r.source_ip, &p)),
            Cell::Num(r.message_count),
            Cell::Opt(r.disposition.clone()),
            Cell::Opt(r.dkim_aligned.clone()),
            Cell::Opt(r.spf_aligned.clone()),
            Cell::Text(r.header_from.clone()),
            Cell::Opt(r.envelope_from.clone()),
            Cell::Text(auth_text(&r.dkim)),
            Cell::Text(auth_text(&r.spf)),
            Cell::Text(reasons),
        ]);
    }
    page.table(t);
    page.respond(&p, &format!("/reports/{id}"), &headers, &state)
}

async fn failures(State(state): St, Query(p): Query<Params>, headers: HeaderMap) -> Res {
    let w = p.window()?;
    let q = summary_query(&p, &w, Granularity::Total);
    let mut list = w.list();
    list.offset = p.offset.unwrap_or(0);
    let (domains, entries) = state
        .with_store(move |s| Ok((s.failure_report_domains(&q)?, s.failure_reports(&list)?)))
        .await?;
    let mut page = Page::new("Failure reports");
    let mut t = Table::new(
        "domains",
        "Per reported domain",
        &["domain", "failure_reports"],
    );
    for (d, n) in &domains {
        t.row(vec![Cell::Text(d.clone()), Cell::Num(*n)]);
    }
    page.table(t);
    let mut t = Table::new(
        "reports",
        "Failure reports, newest first",
        &[
            "arrival",
            "reporter",
            "domain",
            "source_ip",
            "auth_failure",
            "feedback_type",
            "delivery_result",
            "mail_from",
            "rcpt_to",
            "incidents",
            "authentication_results",
        ],
    );
    for e in &entries {
        t.row(vec![
            e.arrival.map_or(Cell::Opt(None), Cell::Time),
            Cell::Text(e.reporter.clone()),
            Cell::Text(e.reported_domain.clone()),
            match &e.source_ip {
                Some(ip) => Cell::Link(ip.clone(), source_href(ip, &p)),
                None => Cell::Opt(None),
            },
            Cell::Opt(e.auth_failure.clone()),
            Cell::Opt(e.feedback_type.clone()),
            Cell::Opt(e.delivery_result.clone()),
            Cell::Opt(e.original_mail_from.clone()),
            Cell::Text(e.original_rcpt_to.clone()),
            e.incidents.map_or(Cell::Opt(None), Cell::Num),
            Cell::Text(e.authentication_results.clone()),
        ]);
    }
    page.table(t);
    page.respond(&p, "/failures", &headers, &state)
}

async fn tls(State(state): St, Query(p): Query<Params>, headers: HeaderMap) -> Res {
    let w = p.window()?;
    let list = w.list();
    let (sessions, fails) = state
        .with_store(move |s| Ok((s.tls_sessions(&list)?, s.tls_failures(&list)?)))
        .await?;
    let mut page = Page::new("SMTP TLS reports");
    let mut t = Table::new(
        "sessions",
        "Sessions per policy",
        &[
            "policy_domain",
            "policy_type",
            "mx",
            "reports",
            "successful",
            "failed",
            "failure_rate",
        ],
    );
    for s in &sessions {
        t.row(vec![
            Cell::Text(s.policy_domain.clone()),
            Cell::Text(s.policy_type.clone()),
            Cell::Text(s.mx_host.clone()),
            Cell::Num(s.reports),
            Cell::Num(s.successful_sessions),
            Cell::Num(s.failed_sessions),
            Cell::Pct(s.failed_sessions, s.successful_sessions + s.failed_sessions),
        ]);
    }
    page.table(t);
    let mut t = Table::new(
        "failures",
        "Failures by type and MX",
        &[
            "policy_domain",
            "mx",
            "result_type",
            "failed_sessions",
            "reports",
            "detail",
        ],
    );
    for f in &fails {
        t.row(vec![
            Cell::Text(f.policy_domain.clone()),
            Cell::Text(f.mx.clone()),
            Cell::Text(f.result_type.clone()),
            Cell::Num(f.failed_sessions),
            Cell::Num(f.reports),
            Cell::Opt(f.detail.clone()),
        ]);
    }
    page.table(t);
    page.respond(&p, "/tls", &headers, &state)
}

async fn rejected(State(state): St, Query(p): Query<Params>, headers: HeaderMap) -> Res {
    let entries = state.with_store(|s| s.rejected()).await?;
    let mut page = Page::new("Rejected inputs");
    let mut t = Table::new(
        "rejected",
        "Inputs that could not be read",
        &[
            "last_seen",
            "source",
            "kind",
            "part",
            "error_kind",
            "error",
            "size",
            "times_seen",
            "content",
        ],
    );
    for e in entries.iter().take(dmarc_store::browse::MAX_PAGE) {
        t.row(vec![
            Cell::Time(e.last_seen),
            Cell::Text(e.source.clone()),
            Cell::Text(e.source_kind.clone()),
            Cell::Text(e.part.clone()),
            Cell::Text(e.error_kind.clone()),
            Cell::Text(e.error.clone()),
            Cell::Num(e.size),
            Cell::Num(e.times_seen),
            Cell::Link("download".into(), format!("/rejected/{}/content", e.id)),
        ]);
    }
    page.table(t);
    page.respond(&p, "/rejected", &headers, &state)
}

async fn alerts(State(state): St, Query(p): Query<Params>, headers: HeaderMap) -> Res {
    let states = state.with_store(|s| s.alert_states()).await?;
    let mut page = Page::new("Alerts");
    let mut t = Table::new(
        "alerts",
        "Conditions the alert rules found, active first",
        &[
            "state",
            "rule",
            "subject",
            "detail",
            "fired",
            "last_seen",
            "cleared",
            "delivered",
            "delivery",
        ],
    );
    t.empty = "No alert has fired (rules are set in the [alerts] section of the configuration).";
    for a in &states {
        t.row(vec![
            Cell::Text(if a.active { "active" } else { "cleared" }.into()),
            Cell::Text(a.rule.clone()),
            Cell::Text(a.subject.clone()),
            Cell::Text(a.detail.clone()),
            Cell::Time(a.fired_at),
            Cell::Time(a.last_seen),
            a.cleared_at.map_or(Cell::Opt(None), Cell::Time),
            a.delivered_at.map_or(Cell::Opt(None), Cell::Time),
            Cell::Text(a.delivery.clone()),
        ]);
    }
    page.table(t);
    page.respond(&p, "/alerts", &headers, &state)
}

async fn api_alerts(State(state): St) -> Res {
    json(&state.with_store(|s| s.alert_states()).await?)
}

/// The kept bytes of a rejected input, as a download (never shown inline).
async fn rejected_content(State(state): St, Path(id): Path<i64>) -> Res {
    let bytes = state
        .with_store(move |s| s.rejected_content(id))
        .await?
        .ok_or_else(|| HttpError::not_found(format!("no kept content for rejected input {id}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"rejected-{id}.bin\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// JSON as the command line prints it with `--json` (pretty, a final newline).
fn json<T: Serialize>(v: &T) -> Res {
    let mut body = serde_json::to_vec_pretty(v)
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    body.push(b'\n');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/summary`: what `dmarc summary --json --no-rdns` prints for the same
/// `domain`, `since`, `until`, `by` and `top` (reverse-DNS names from the cache).
async fn api_summary(State(state): St, Query(p): Query<Params>) -> Res {
    let w = p.window()?;
    let q = summary_query(&p, &w, granularity(&p)?);
    json(&*state.summary(q).await?)
}

async fn api_advice(state: &Arc<AppState>, p: &Params) -> Result<crate::Advice, HttpError> {
    let w = p.window()?;
    let d = w
        .domain
        .as_deref()
        .ok_or_else(|| HttpError::bad_request("domain= is required"))?;
    let d = dmarc_proto::dmarc::DomainName::new(d.trim_end_matches('.'))
        .map_err(|_| HttpError::bad_request(format!("{d:?} is not a domain name")))?;
    let pending = state.advice(&d, w.since, w.until).await?;
    crate::wait_advice(pending, None)
        .await
        .ok_or_else(|| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "no advice"))
}

/// `GET /api/sources?domain=D`: what `dmarc sources D --json` prints.
async fn api_sources(State(state): St, Query(p): Query<Params>) -> Res {
    match api_advice(&state, &p).await?.as_ref() {
        Ok((s, _)) => json(&s.sources),
        Err(e) => Err(HttpError::new(StatusCode::BAD_GATEWAY, e.clone())),
    }
}

/// `GET /api/rollout?domain=D`: what `dmarc rollout D --json` prints.
async fn api_rollout(State(state): St, Query(p): Query<Params>) -> Res {
    match api_advice(&state, &p).await?.as_ref() {
        Ok((_, r)) => json(r),
        Err(e) => Err(HttpError::new(StatusCode::BAD_GATEWAY, e.clone())),
    }
}

async fn api_reports(State(state): St, Query(p): Query<Params>) -> Res {
    let mut list: ListQuery = p.window()?.list();
    list.offset = p.offset.unwrap_or(0);
    json(
        &state
            .with_store(move |s| s.aggregate_reports(&list))
            .await?,
    )
}

#[derive(Serialize)]
struct ReportJson {
    report: dmarc_store::browse::AggregateReportEntry,
    rows: Vec<dmarc_store::browse::ReportRow>,
}

async fn api_report(State(state): St, Path(id): Path<i64>) -> Res {
    let (report, rows) = state
        .with_store(move |s| s.aggregate_report(id))
        .await?
        .ok_or_else(|| HttpError::not_found(format!("no aggregate report {id}")))?;
    json(&ReportJson { report, rows })
}

async fn api_source(State(state): St, Path(ip): Path<String>, Query(p): Query<Params>) -> Res {
    let w = p.window()?;
    json(&load_source(&state, ip, &w).await?)
}

async fn api_failures(State(state): St, Query(p): Query<Params>) -> Res {
    let mut list = p.window()?.list();
    list.offset = p.offset.unwrap_or(0);
    json(&state.with_store(move |s| s.failure_reports(&list)).await?)
}

#[derive(Serialize)]
struct TlsJson {
    sessions: Vec<dmarc_store::browse::TlsPolicySessions>,
    failures: Vec<dmarc_store::browse::TlsFailure>,
}

async fn api_tls(State(state): St, Query(p): Query<Params>) -> Res {
    let list = p.window()?.list();
    let (sessions, failures) = state
        .with_store(move |s| Ok((s.tls_sessions(&list)?, s.tls_failures(&list)?)))
        .await?;
    json(&TlsJson { sessions, failures })
}

/// `GET /api/rejected`: the entries `dmarc report rejected --json` prints, as one array.
async fn api_rejected(State(state): St) -> Res {
    json(&state.with_store(|s| s.rejected()).await?)
}

#[derive(Deserialize)]
struct LoginForm {
    secret: String,
    csrf: String,
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn login_form(State(state): St) -> Res {
    if !state.credentials.configured() {
        return Ok(Redirect::to("/").into_response());
    }
    let csrf =
        auth::random_token().map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "dmarc: log in" }
                link rel="stylesheet" href="/style.css"; }
            body { main {
                h1 { "Log in" }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Password or token " input type="password" name="secret" autofocus; }
                    button type="submit" { "Log in" }
                }
            } }
        }
    };
    Ok((
        [(
            header::SET_COOKIE,
            auth::set_cookie(auth::CSRF_COOKIE, &csrf, None),
        )],
        body,
    )
        .into_response())
}

async fn login(State(state): St, headers: HeaderMap, Form(f): Form<LoginForm>) -> Res {
    let cookie = auth::cookie(&headers, auth::CSRF_COOKIE).unwrap_or("");
    if !auth::tokens_match(cookie, &f.csrf) {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "the login form's CSRF token does not match its cookie: reload the login page",
        ));
    }
    let creds = state.credentials.clone();
    let secret = f.secret;
    // Argon2 takes tens of milliseconds of CPU: off the async threads.
    let ok = tokio::task::spawn_blocking(move || creds.check(&secret))
        .await
        .unwrap_or(false);
    if !ok {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        return Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "wrong password or token",
        ));
    }
    let (id, _) = state
        .sessions
        .start(state.credentials.session_lifetime)
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let mut res = Redirect::to("/").into_response();
    let h = res.headers_mut();
    for c in [
        auth::set_cookie(
            auth::SESSION_COOKIE,
            &id,
            Some(state.credentials.session_lifetime),
        ),
        auth::set_cookie(auth::CSRF_COOKIE, "", Some(std::time::Duration::ZERO)),
    ] {
        if let Ok(v) = c.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

async fn logout(State(state): St, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Res {
    let id = auth::cookie(&headers, auth::SESSION_COOKIE).unwrap_or("");
    match state.sessions.csrf_of(id) {
        Some(csrf) if auth::tokens_match(&csrf, &f.csrf) => {
            state.sessions.end(id);
            let mut res = Redirect::to("/login").into_response();
            if let Ok(v) =
                auth::set_cookie(auth::SESSION_COOKIE, "", Some(std::time::Duration::ZERO)).parse()
            {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(res)
        }
        _ => Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token",
        )),
    }
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
        .into_response()
}
