//! One `report send` run for aggregate reports: make the reports of every closed period not
//! made yet, decide their destinations, and deliver whatever is due, recording every step
//! in the store so that a run stopped anywhere resumes where it stopped and no destination
//! gets a report twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use dmarc_proto::clock::Clock;
use dmarc_proto::dmarc::ReportKind;
use dmarc_proto::dmarc::record::{Psd, parse_report_uri};
use dmarc_proto::dns::Lookup;
use dmarc_receiver::failure::FailureCandidate;
use dmarc_store::time::format_utc;
use dmarc_store::{Delivery, DeliveryStatus, OutgoingReport, QueuedCandidate, Store};

use crate::Error;
use crate::aggregate::{self, DAY};
use crate::config::Config;
use crate::destinations::{self, Decision, Published};
use crate::failure::{self as fr, FAILURE, Redaction};
use crate::mail::{self, Letter, Signer};
use crate::transport::{Outcome, Transport};

/// The kind word of aggregate reports in the store.
pub const AGGREGATE: &str = "aggregate";
/// The media type of a gzip-compressed aggregate report.
pub const GZIP: &str = "application/gzip";

/// What to do in one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only the periods of this UTC day (its midnight, Unix seconds).
    pub day: Option<i64>,
    /// Write each report (`.xml.gz`) and each message (`.eml`) into this directory instead
    /// of sending, and change nothing in the store.
    pub dry_run: Option<PathBuf>,
    /// Now, Unix seconds.
    pub now: i64,
}

/// One thing the run did, for the log a person reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The policy domain.
    pub policy_domain: String,
    /// The report's period.
    pub begin: i64,
    /// End of the period (inclusive).
    pub end: i64,
    /// The destination URI (empty for an event about the report itself).
    pub destination: String,
    /// `made`, `sent`, `deferred`, `failed`, `skipped`, `written` ...
    pub status: String,
    /// Why, for a person.
    pub detail: String,
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} .. {}",
            self.policy_domain,
            format_utc(self.begin),
            format_utc(self.end)
        )?;
        if !self.destination.is_empty() {
            write!(f, " {}", self.destination)?;
        }
        write!(f, ": {}: {}", self.status, self.detail)
    }
}

/// The whole run's context.
pub struct Run<'a, L: Lookup> {
    /// The store.
    pub store: &'a mut Store,
    /// DNS.
    pub lookup: &'a L,
    /// The configuration.
    pub config: &'a Config,
    /// The DKIM signer of report messages, if configured.
    pub signer: Option<&'a Signer>,
    /// Where messages go (not used in a dry run).
    pub transport: &'a mut dyn Transport,
    /// The clock for the signature's `t=`.
    pub clock: &'a dyn Clock,
    /// What to do.
    pub options: RunOptions,
    /// What was done.
    pub events: Vec<Event>,
    records: HashMap<String, Published>,
}

impl<L: Lookup> std::fmt::Debug for Run<'_, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("options", &self.options)
            .finish()
    }
}

/// A report not stored (dry run) or stored, with what its deliveries need.
struct Made {
    report: OutgoingReport,
    deliveries: Vec<Delivery>,
    /// The candidate a failure report was made from (its text and Subject).
    candidate: Option<FailureCandidate>,
}

/// The kind of a stored report.
fn kind_of(r: &OutgoingReport) -> ReportKind {
    if r.kind == FAILURE {
        ReportKind::Failure
    } else {
        ReportKind::Aggregate
    }
}

impl<'a, L: Lookup> Run<'a, L> {
    /// A run.
    pub fn new(
        store: &'a mut Store,
        lookup: &'a L,
        config: &'a Config,
        signer: Option<&'a Signer>,
        transport: &'a mut dyn Transport,
        clock: &'a dyn Clock,
        options: RunOptions,
    ) -> Self {
        Run {
            store,
            lookup,
            config,
            signer,
            transport,
            clock,
            options,
            events: Vec::new(),
            records: HashMap::new(),
        }
    }

    fn dry(&self) -> bool {
        self.options.dry_run.is_some()
    }

    fn event(&mut self, r: &OutgoingReport, destination: &str, status: &str, detail: String) {
        self.events.push(Event {
            policy_domain: r.policy_domain.clone(),
            begin: r.begin,
            // A failure report is about one message: its arrival (end_ts holds the
            // candidate's id, see `Run::failure`).
            end: if r.kind == FAILURE { r.begin } else { r.end },
            destination: destination.to_owned(),
            status: status.to_owned(),
            detail,
        });
    }

    async fn published(&mut self, policy_domain: &str) -> Published {
        if let Some(p) = self.records.get(policy_domain) {
            return p.clone();
        }
        let p = destinations::published_record(self.lookup, policy_domain).await;
        self.records.insert(policy_domain.to_owned(), p.clone());
        p
    }

    /// Runs: makes the reports of the closed periods not made yet, then delivers what is
    /// due (new reports and earlier ones with deferred destinations).
    pub async fn aggregate(&mut self) -> Result<(), Error> {
        let now = self.options.now;
        if !self.dry() {
            let retry_at = now + self.config.delivery.retry_after;
            let n = self.store.retry_interrupted_deliveries(now, retry_at)?;
            if n > 0 {
                self.events.push(Event {
                    policy_domain: String::new(),
                    begin: 0,
                    end: 0,
                    destination: String::new(),
                    status: "deferred".into(),
                    detail: format!(
                        "{n} deliveries were interrupted by an earlier run (maybe delivered); \
                         sent again at {} UTC with the same Message-ID and report id",
                        format_utc(retry_at)
                    ),
                });
            }
        }
        let day = self.options.day;
        let mut hours: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for (pd, hour) in self.store.observed_periods(now)? {
            if day.is_some_and(|d| hour < d || hour >= d + DAY) {
                continue;
            }
            hours.entry(pd).or_default().insert(hour);
        }
        let mut delivered: BTreeSet<i64> = BTreeSet::new();
        for (pd, hours) in hours {
            let record = match self.published(&pd).await {
                Published::Record(r) => Some(r),
                Published::None(_) => None,
                Published::TempError(why) => {
                    self.events.push(Event {
                        policy_domain: pd.clone(),
                        begin: *hours.first().unwrap_or(&0),
                        end: *hours.last().unwrap_or(&0),
                        destination: String::new(),
                        status: "deferred".into(),
                        detail: format!("DNS: {why}; the reports wait for the next run"),
                    });
                    continue;
                }
            };
            let len = aggregate::period_length(
                record.as_ref().and_then(|r| r.ri),
                self.config.aggregate.honour_ri,
            );
            let periods: BTreeSet<i64> = hours
                .iter()
                .map(|h| aggregate::period_start(*h, len))
                .filter(|b| b + len + self.config.aggregate.close_delay <= now)
                .collect();
            for begin in periods {
                let end = begin + len;
                let made = match self.store.outgoing_report(AGGREGATE, &pd, begin, end - 1)? {
                    Some(existing) => {
                        let deliveries = self.store.deliveries(existing.id)?;
                        if !deliveries.is_empty() {
                            // Made by an earlier run: its open deliveries come below.
                            continue;
                        }
                        Made {
                            report: existing,
                            deliveries,
                            candidate: None,
                        }
                    }
                    None => match self.make(&pd, begin, end)? {
                        Some(m) => m,
                        None => continue,
                    },
                };
                let made = self
                    .add_destinations(made, record.as_deref(), ReportKind::Aggregate)
                    .await?;
                delivered.insert(made.report.id);
                self.deliver(made).await?;
            }
        }
        if self.dry() {
            return Ok(());
        }
        for report in self.store.reports_with_open_deliveries(AGGREGATE, now)? {
            if delivered.contains(&report.id)
                || day.is_some_and(|d| report.begin < d || report.begin >= d + DAY)
            {
                continue;
            }
            let deliveries = self.store.deliveries(report.id)?;
            self.deliver(Made {
                report,
                deliveries,
                candidate: None,
            })
            .await?;
        }
        Ok(())
    }

    /// Failure reports (RFC 9991): one per queued candidate that is still to be reported
    /// (its policy record at sending time has `ruf=` and is not `psd=y`, it is not our own
    /// report mail, it is younger than `failure.max_age`, and its policy domain has had
    /// fewer than `failure.per_domain_per_hour` reports in the last hour: the rest is
    /// dropped, as RFC 9991 §8.1 suggests, and each drop is recorded with its reason),
    /// then the deliveries of earlier failure reports that are due. Nothing happens unless
    /// `failure.enabled`.
    ///
    /// A failure report is kept in `outgoing_reports` like an aggregate report: `begin_ts`
    /// is the message's arrival and `end_ts` the candidate's id (a failure report has no
    /// period; the pair keeps the (kind, policy domain, begin, end) key unique).
    pub async fn failure(&mut self) -> Result<(), Error> {
        if !self.config.failure.enabled {
            return Ok(());
        }
        let now = self.options.now;
        let o = self.config.failure.clone();
        let mut made_now: HashMap<String, u64> = HashMap::new();
        let mut delivered: BTreeSet<i64> = BTreeSet::new();
        let queued = self.store.failure_candidates("queued", 10_000)?;
        // Each candidate leads a group of the like incidents that arrived within
        // `merge_window` of it (none when the window is 0); one report stands for a group.
        let mut groups: Vec<(QueuedCandidate, Vec<i64>)> = Vec::new();
        for q in queued {
            let c = &q.candidate;
            let event = |status: &str, detail: String| Event {
                policy_domain: c.policy_domain.clone(),
                begin: c.arrival,
                end: c.arrival,
                destination: String::new(),
                status: status.to_owned(),
                detail,
            };
            let drop_why = if fr::is_our_report_mail(c, self.config) {
                Some("the message is our own report mail (no reports about reports)".to_owned())
            } else if now - c.arrival > o.max_age {
                Some(format!(
                    "the message arrived more than {} s ago (failure.max_age)",
                    o.max_age
                ))
            } else {
                None
            };
            if let Some(why) = drop_why {
                self.drop_candidate(&[q.id], event("dropped", why))?;
                continue;
            }
            let like = groups.iter_mut().find(|(lead, _)| {
                c.arrival - lead.candidate.arrival <= o.merge_window
                    && fr::like_incidents(&lead.candidate, c)
            });
            match like {
                Some((_, merged)) if o.merge_window > 0 => merged.push(q.id),
                _ => groups.push((q, Vec::new())),
            }
        }
        for (q, merged) in groups {
            let c = q.candidate;
            // The window is still open: like incidents may still come.
            if now < c.arrival + o.merge_window {
                continue;
            }
            let pd = c.policy_domain.clone();
            let incidents = 1 + merged.len() as u64;
            let ids: Vec<i64> = std::iter::once(q.id)
                .chain(merged.iter().copied())
                .collect();
            let event = |status: &str, detail: String| Event {
                policy_domain: pd.clone(),
                begin: c.arrival,
                end: c.arrival,
                destination: String::new(),
                status: status.to_owned(),
                detail: if incidents > 1 {
                    format!("{detail} ({incidents} like incidents)")
                } else {
                    detail
                },
            };
            let record = match self.published(&pd).await {
                Published::Record(r) => Some(r),
                Published::None(why) => {
                    self.drop_candidate(&ids, event("dropped", why))?;
                    continue;
                }
                Published::TempError(why) => {
                    self.events.push(event(
                        "deferred",
                        format!("DNS: {why}; the candidate waits for the next run"),
                    ));
                    continue;
                }
            };
            let drop_why = match &record {
                Some(r) if r.ruf.is_empty() => {
                    Some("the DMARC record has no usable ruf= URI now".to_owned())
                }
                Some(r) if r.psd == Psd::Yes => Some(
                    "the DMARC record is a Public Suffix Domain's (psd=y): its ruf= is not used"
                        .to_owned(),
                ),
                _ => None,
            };
            if let Some(why) = drop_why {
                self.drop_candidate(&ids, event("dropped", why))?;
                continue;
            }
            let recent = self.store.reports_made_since(FAILURE, &pd, now - 3600)?
                + made_now.get(&pd).copied().unwrap_or(0);
            if recent >= o.per_domain_per_hour {
                let why = format!(
                    "rate limit: {recent} failure reports about {pd} in the last hour (at most {})",
                    o.per_domain_per_hour
                );
                self.drop_candidate(&ids, event("dropped", why))?;
                continue;
            }
            // SPF-DNS: the SPF record of an aligned MAIL FROM domain that failed, as
            // published now.
            let spf_dns = match fr::aligned_spf_failure(&c) {
                Some(domain) => self
                    .lookup
                    .txt(&domain)
                    .await
                    .ok()
                    .and_then(|rrs| {
                        rrs.into_iter()
                            .map(|t| String::from_utf8_lossy(&t).into_owned())
                            .find(|t| t.to_ascii_lowercase().starts_with("v=spf1"))
                    })
                    .map(|rec| format!("txt : {domain} : \"{}\"", rec.replace('"', "'"))),
                None => None,
            };
            let receiver = self.config.organization.receiver_domain();
            let report_id = format!("{}.{}.{pd}@{receiver}", c.arrival, q.id);
            let out = OutgoingReport {
                id: 0,
                kind: FAILURE.to_owned(),
                policy_domain: pd.clone(),
                begin: c.arrival,
                end: q.id,
                filename: format!("{receiver}!{pd}!{}!{}", c.arrival, q.id),
                report_id,
                media_type: fr::FEEDBACK_REPORT.to_owned(),
                content: fr::content(
                    &c,
                    self.config,
                    &Redaction::random(),
                    spf_dns.as_deref(),
                    incidents,
                ),
                record_count: 1,
                message_count: incidents,
                created_at: now,
            };
            let report = if self.dry() {
                out
            } else {
                let saved = self.store.save_outgoing_report(&out)?;
                self.store.finish_failure_candidate(
                    q.id,
                    "reported",
                    &format!("failure report {}", saved.report_id),
                    Some(saved.id),
                )?;
                for id in &merged {
                    self.store.finish_failure_candidate(
                        *id,
                        "merged",
                        &format!(
                            "a like incident, counted in failure report {}",
                            saved.report_id
                        ),
                        Some(saved.id),
                    )?;
                }
                saved
            };
            if self.dry() {
                // Not in the store: counted here for the rate limit.
                *made_now.entry(pd.clone()).or_default() += 1;
            }
            self.event(
                &report,
                "",
                "made",
                format!(
                    "failure report ({}) about {} from {}, report id {}",
                    c.auth_failure,
                    if incidents > 1 {
                        format!("{incidents} like messages")
                    } else {
                        "a message".to_owned()
                    },
                    c.source_ip,
                    report.report_id
                ),
            );
            let made = Made {
                deliveries: if self.dry() {
                    Vec::new()
                } else {
                    self.store.deliveries(report.id)?
                },
                report,
                candidate: Some(c),
            };
            let made = if made.deliveries.is_empty() {
                self.add_destinations(made, record.as_deref(), ReportKind::Failure)
                    .await?
            } else {
                made
            };
            delivered.insert(made.report.id);
            self.deliver(made).await?;
        }
        if self.dry() {
            return Ok(());
        }
        for report in self.store.reports_with_open_deliveries(FAILURE, now)? {
            if delivered.contains(&report.id) {
                continue;
            }
            let deliveries = self.store.deliveries(report.id)?;
            let candidate = self
                .store
                .failure_candidate_of_report(report.id)?
                .map(|q| q.candidate);
            self.deliver(Made {
                report,
                deliveries,
                candidate,
            })
            .await?;
        }
        Ok(())
    }

    /// Records that candidates are not reported, and why.
    fn drop_candidate(&mut self, ids: &[i64], event: Event) -> Result<(), Error> {
        if !self.dry() {
            for id in ids {
                self.store
                    .finish_failure_candidate(*id, "dropped", &event.detail, None)?;
            }
        }
        self.events.push(event);
        Ok(())
    }

    /// Makes (and, unless dry, keeps) the report of `[begin, end)`.
    fn make(&mut self, pd: &str, begin: i64, end: i64) -> Result<Option<Made>, Error> {
        let counts = self.store.observation_counts(Some(pd), begin, end)?;
        let Some(report) = aggregate::build(self.config, pd, begin, end, &counts) else {
            return Ok(None);
        };
        let receiver = self.config.organization.receiver_domain();
        let rid = report.metadata.report_id.clone();
        let content = aggregate::gzip_xml(&report, self.config.aggregate.format)
            .map_err(|e| Error::Io(format!("compressing the report: {e}")))?;
        let out = OutgoingReport {
            id: 0,
            kind: AGGREGATE.to_owned(),
            policy_domain: pd.to_owned(),
            begin,
            end: end - 1,
            filename: aggregate::file_name(&receiver, pd, begin, end - 1, &rid),
            report_id: rid,
            media_type: GZIP.to_owned(),
            content,
            record_count: report.records.len() as u64,
            message_count: report.message_count(),
            created_at: self.options.now,
        };
        let report = if self.dry() {
            out
        } else {
            self.store.save_outgoing_report(&out)?
        };
        let detail = format!(
            "{} messages in {} rows, {} bytes compressed, report id {}",
            report.message_count,
            report.record_count,
            report.content.len(),
            report.report_id
        );
        self.event(&report, "", "made", detail);
        if let Some(dir) = &self.options.dry_run {
            let path = dir.join(&report.filename);
            std::fs::write(&path, &report.content)
                .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        }
        Ok(Some(Made {
            report,
            deliveries: Vec::new(),
            candidate: None,
        }))
    }

    /// Decides the destinations of a report just made, from the record at sending time
    /// (its `rua` or `ruf`, by `kind`).
    async fn add_destinations(
        &mut self,
        mut made: Made,
        record: Option<&dmarc_proto::dmarc::Record>,
        kind: ReportKind,
    ) -> Result<Made, Error> {
        let (tag, uris) = match (kind, record) {
            (ReportKind::Aggregate, Some(r)) => ("rua", r.rua.as_slice()),
            (ReportKind::Failure, Some(r)) => ("ruf", r.ruf.as_slice()),
            (_, None) => ("", &[][..]),
        };
        let now = self.options.now;
        let row = |destination: &str, address: &str, status, detail: String, next| Delivery {
            report: made.report.id,
            destination: destination.to_owned(),
            address: address.to_owned(),
            status,
            detail,
            attempts: 0,
            next_attempt: next,
            updated_at: now,
            sent_at: None,
            message_id: None,
        };
        let mut rows = Vec::new();
        match record {
            None => {
                let why = match self.records.get(&made.report.policy_domain) {
                    Some(Published::None(why)) => why.clone(),
                    _ => "no DMARC record now".to_owned(),
                };
                rows.push(row("", "", DeliveryStatus::Skipped, why, None));
            }
            Some(_) if uris.is_empty() => rows.push(row(
                "",
                "",
                DeliveryStatus::Skipped,
                format!("the DMARC record has no usable {tag}= URI now"),
                None,
            )),
            Some(_) => {
                let checked = destinations::check(
                    self.lookup,
                    &made.report.policy_domain,
                    uris,
                    kind,
                    &self.config.delivery,
                )
                .await;
                for d in checked {
                    rows.push(match d.decision {
                        Decision::Send { address, note, .. } => {
                            row(&d.uri, &address, DeliveryStatus::Pending, note, None)
                        }
                        Decision::Skip(why) => row(&d.uri, "", DeliveryStatus::Skipped, why, None),
                        Decision::Later(why) => row(
                            &d.uri,
                            "",
                            DeliveryStatus::Deferred,
                            why,
                            Some(now + self.config.delivery.retry_after),
                        ),
                    });
                }
            }
        }
        for d in rows {
            if !self.dry() {
                self.store.add_delivery(&d)?;
            }
            if d.status == DeliveryStatus::Skipped {
                let (dest, detail) = (d.destination.clone(), d.detail.clone());
                self.event(&made.report, &dest, "skipped", detail);
            }
            made.deliveries.push(d);
        }
        Ok(made)
    }

    fn text(&self, r: &OutgoingReport) -> String {
        let o = &self.config.organization;
        format!(
            "This is a DMARC aggregate report (RFC 9990) from {} ({}).\n\n\
             Policy domain: {}\nPeriod: {} to {} UTC\nMessages: {} in {} rows\n\
             Report-ID: {}\nAttachment: {}\n\n\
             Questions about this report: {}{}\n",
            o.name,
            o.receiver_domain(),
            r.policy_domain,
            format_utc(r.begin),
            format_utc(r.end),
            r.message_count,
            r.record_count,
            r.report_id,
            r.filename,
            o.email,
            o.extra_contact_info
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        )
    }

    /// Delivers the open destinations of one report that are due.
    async fn deliver(&mut self, made: Made) -> Result<(), Error> {
        let now = self.options.now;
        let r = made.report;
        let d_opts = self.config.delivery.clone();
        for d in made.deliveries {
            if !d.status.is_open() || d.next_attempt.is_some_and(|t| t > now) {
                continue;
            }
            let mut address = d.address.clone();
            let mut max_size = None;
            // Decided again: the check of a destination that could not be made before,
            // and the size limit (kept in the URI).
            if let Ok(uri) = parse_report_uri(&d.destination) {
                max_size = uri.max_size;
                if address.is_empty() {
                    let checked = destinations::check(
                        self.lookup,
                        &r.policy_domain,
                        std::slice::from_ref(&uri),
                        kind_of(&r),
                        &d_opts,
                    )
                    .await;
                    match checked.into_iter().next().map(|c| c.decision) {
                        Some(Decision::Send { address: a, .. }) => address = a,
                        Some(Decision::Skip(why)) => {
                            self.finish(&r, &d, DeliveryStatus::Skipped, &why, None, None)?;
                            continue;
                        }
                        Some(Decision::Later(why)) => {
                            let attempts = d.attempts + 1;
                            self.retry_or_fail(&r, &d, attempts, &why)?;
                            continue;
                        }
                        None => continue,
                    }
                }
            }
            let letter = match &made.candidate {
                Some(c) if r.kind == FAILURE => {
                    let (fields, header) = fr::split_content(&r.content);
                    Letter {
                        policy_domain: &r.policy_domain,
                        report_id: &r.report_id,
                        filename: "",
                        media_type: &r.media_type,
                        content: fields,
                        text: fr::text(c, self.config),
                        to: &address,
                        content_type: Some("multipart/report; report-type=feedback-report".into()),
                        subject: Some(fr::subject(c)),
                        extra: Some((fr::RFC822_HEADERS, header)),
                    }
                }
                _ => Letter {
                    policy_domain: &r.policy_domain,
                    report_id: &r.report_id,
                    filename: &r.filename,
                    media_type: &r.media_type,
                    content: &r.content,
                    text: self.text(&r),
                    to: &address,
                    content_type: None,
                    subject: None,
                    extra: None,
                },
            };
            let message = mail::compose(self.config, &letter, now, self.signer, self.clock)?;
            let limit = max_size
                .unwrap_or(u64::MAX)
                .min(self.config.aggregate.max_message_size);
            if message.len() as u64 > limit {
                let why = format!(
                    "too large: the message is {} bytes, the limit is {limit}",
                    message.len()
                );
                self.finish(&r, &d, DeliveryStatus::Skipped, &why, None, None)?;
                continue;
            }
            if let Some(dir) = self.options.dry_run.clone() {
                let safe: String = address
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || "@.-_+".contains(c) {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let path = dir.join(format!(
                    "{}!{safe}.eml",
                    r.filename.trim_end_matches(".xml.gz")
                ));
                std::fs::write(&path, &message)
                    .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
                self.event(&r, &d.destination, "written", path.display().to_string());
                continue;
            }
            if let Some(h) = self.store.destination_health(&address)?
                && let Some(until) = h.suppressed_until.filter(|u| *u > now)
            {
                let why = format!(
                    "{address} is suppressed until {} UTC after {} bounces in a row (last: {})",
                    format_utc(until),
                    h.consecutive_failures,
                    h.reason
                );
                self.finish(&r, &d, DeliveryStatus::Deferred, &why, Some(until), None)?;
                continue;
            }
            let recent = self.store.sent_to_since(&address, now - 3600)?;
            if recent >= d_opts.per_destination_per_hour {
                let why = format!(
                    "rate limit: {recent} reports sent to {address} in the last hour (at most {})",
                    d_opts.per_destination_per_hour
                );
                self.finish(
                    &r,
                    &d,
                    DeliveryStatus::Deferred,
                    &why,
                    Some(now + 3600),
                    None,
                )?;
                continue;
            }
            if !self.store.claim_delivery(r.id, &d.destination, now)? {
                continue;
            }
            let from = self.config.organization.envelope_sender().to_owned();
            let attempts = d.attempts + 1;
            match self.transport.send(&from, &address, &message) {
                Outcome::Sent(answer) => {
                    let mid = message_id(&message);
                    self.finish(&r, &d, DeliveryStatus::Sent, &answer, None, mid.as_deref())?;
                    self.store.record_destination_outcome(
                        &address,
                        true,
                        "",
                        d_opts.bounces_to_suppress,
                        d_opts.suppress_for,
                        now,
                    )?;
                }
                Outcome::Temporary(why) => self.retry_or_fail(&r, &d, attempts, &why)?,
                Outcome::Permanent(why) => {
                    self.finish(&r, &d, DeliveryStatus::Failed, &why, None, None)?;
                    let h = self.store.record_destination_outcome(
                        &address,
                        false,
                        &why,
                        d_opts.bounces_to_suppress,
                        d_opts.suppress_for,
                        now,
                    )?;
                    if let Some(until) = h.suppressed_until {
                        self.event(
                            &r,
                            &d.destination,
                            "suppressed",
                            format!(
                                "{address} bounced {} times in a row; no reports until {} UTC",
                                h.consecutive_failures,
                                format_utc(until)
                            ),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn retry_or_fail(
        &mut self,
        r: &OutgoingReport,
        d: &Delivery,
        attempts: u64,
        why: &str,
    ) -> Result<(), Error> {
        let o = &self.config.delivery;
        if attempts >= o.max_attempts {
            let why = format!(
                "{why} (attempt {attempts} of {}: giving up)",
                o.max_attempts
            );
            self.finish(r, d, DeliveryStatus::Failed, &why, None, None)
        } else {
            let next = self.options.now + o.backoff(attempts);
            let why = format!(
                "{why} (attempt {attempts} of {}; next at {} UTC)",
                o.max_attempts,
                format_utc(next)
            );
            self.finish(r, d, DeliveryStatus::Deferred, &why, Some(next), None)
        }
    }

    fn finish(
        &mut self,
        r: &OutgoingReport,
        d: &Delivery,
        status: DeliveryStatus,
        why: &str,
        next: Option<i64>,
        message_id: Option<&str>,
    ) -> Result<(), Error> {
        if !self.dry() {
            self.store.finish_delivery(
                r.id,
                &d.destination,
                status,
                why,
                next,
                message_id,
                self.options.now,
            )?;
        }
        self.event(r, &d.destination, status.as_str(), why.to_owned());
        Ok(())
    }
}

/// The Message-ID field's value of a composed message.
fn message_id(message: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(message).ok()?;
    let header = text.split("\r\n\r\n").next()?;
    header
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .map(str::to_owned)
}
