//! What the stored aggregate reports say about the sources of one domain: the facts the
//! source naming and the policy simulation of `dmarc-owner` work from.
//!
//! Each list is a sum over report rows grouped by what it names, so every figure later
//! shown can be traced back to the rows: [`SourceFacts::outcomes`] holds, per source IP,
//! `From` domain and policy-evaluated outcome, the messages and the number of rows summed.
//! Names are compared lower-case without a trailing dot.

use std::collections::HashMap;

use serde::Serialize;

use crate::backend::{Row, Val};
use crate::{Store, StoreError, rollup};

/// What [`Store::source_facts`] covers.
#[derive(Debug, Clone, Default)]
pub struct SourceQuery {
    /// The domain: reports whose policy domain is it or one of its subdomains.
    pub domain: String,
    /// Only reports whose period's middle is at or after this Unix time.
    pub since: Option<i64>,
    /// Only reports whose period's middle is before this Unix time.
    pub until: Option<i64>,
}

/// Report rows of one source with one outcome, summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeRow {
    /// The source IP address as reported.
    pub ip: String,
    /// The policy domain of the reports.
    pub policy_domain: String,
    /// The `From` domain (lower-case, no trailing dot).
    pub header_from: String,
    /// The policy-evaluated DKIM result (`pass` means aligned and passing).
    pub dkim_aligned: Option<String>,
    /// The policy-evaluated SPF result (`pass` means aligned and passing).
    pub spf_aligned: Option<String>,
    /// The disposition the receiver applied.
    pub disposition: Option<String>,
    /// The policy the reports say was published (`p`, or `sp` for a subdomain `From`).
    pub published_p: Option<String>,
    /// Messages.
    pub messages: i64,
    /// Report rows summed.
    pub rows: i64,
}

impl OutcomeRow {
    /// True when the row passes DMARC: aligned DKIM or aligned SPF passed.
    pub fn dmarc_pass(&self) -> bool {
        self.dkim_aligned.as_deref() == Some("pass") || self.spf_aligned.as_deref() == Some("pass")
    }
}

/// DKIM results of one source for one signing domain and selector, summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DkimRow {
    /// The source IP address.
    pub ip: String,
    /// `d=` (lower-case, no trailing dot).
    pub domain: String,
    /// `s=`, when reported (lower-case).
    pub selector: Option<String>,
    /// The result (`pass`, `fail`, ...).
    pub result: String,
    /// The `From` domain of the rows.
    pub header_from: String,
    /// Messages of the rows carrying this result.
    pub messages: i64,
}

/// SPF results of one source for one domain, summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpfRow {
    /// The source IP address.
    pub ip: String,
    /// The domain checked (the MAIL FROM domain, or HELO), lower-case.
    pub domain: String,
    /// `mfrom` or `helo`, when reported.
    pub scope: Option<String>,
    /// The result.
    pub result: String,
    /// Messages of the rows carrying this result.
    pub messages: i64,
}

/// Policy override reasons of one source, summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonRow {
    /// The source IP address.
    pub ip: String,
    /// The reason type (`forwarded`, `mailing_list`, `trusted_forwarder`, ...).
    pub reason: String,
    /// Messages of the rows giving it.
    pub messages: i64,
}

/// The reports of one reporting organisation on one UTC day (of the period's middle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReporterDay {
    /// `org_name`.
    pub org_name: String,
    /// Days since the epoch.
    pub day: i64,
    /// Reports.
    pub reports: i64,
    /// Messages they count.
    pub messages: i64,
    /// Earliest period start.
    pub first: i64,
    /// Latest period end.
    pub last: i64,
}

/// Everything [`Store::source_facts`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceFacts {
    /// Outcomes per source, `From` domain and result.
    pub outcomes: Vec<OutcomeRow>,
    /// DKIM results per source.
    pub dkim: Vec<DkimRow>,
    /// SPF results per source.
    pub spf: Vec<SpfRow>,
    /// Override reasons per source.
    pub reasons: Vec<ReasonRow>,
    /// Reports per reporter and day.
    pub reporters: Vec<ReporterDay>,
}

/// The middle of a report period (as the summary computes it).
const MID: &str = "(r.begin_ts / 2 + r.end_ts / 2)";

fn norm(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

impl Store {
    /// Reads the facts about the sources of `q.domain` and its subdomains. Whole months
    /// come from the per-source sums kept at ingest (migration 7), the whole days of the
    /// partial months at the window's ends from the daily sums (migration 10), and only
    /// the parts of days left at bounds that are not midnights from the rows.
    pub fn source_facts(&mut self, q: &SourceQuery) -> Result<SourceFacts, StoreError> {
        self.source_facts_with(q, true)
    }

    /// [`Store::source_facts`] from the report rows alone (a check of the kept sums).
    pub fn source_facts_from_rows(&mut self, q: &SourceQuery) -> Result<SourceFacts, StoreError> {
        self.source_facts_with(q, false)
    }

    fn source_facts_with(
        &mut self,
        q: &SourceQuery,
        use_sums: bool,
    ) -> Result<SourceFacts, StoreError> {
        let domain = norm(&q.domain);
        let escaped = domain
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let below = format!("%.{escaped}");
        let split = rollup::plan(q.since, q.until, use_sums);
        // What to read: the rows of each partial window, then the sums of the months.
        let mut parts: Vec<Part> = Vec::new();
        for &(since, until) in &split.rows {
            let mut conds =
                vec!["(r.policy_domain = ? OR r.policy_domain LIKE ? ESCAPE '\\')".to_string()];
            let mut bounds = Vec::new();
            if let Some(s) = since {
                conds.push(format!("{MID} >= ?"));
                bounds.push(s);
            }
            if let Some(u) = until {
                conds.push(format!("{MID} < ?"));
                bounds.push(u);
            }
            parts.push(Part {
                sums: None,
                cond: conds.join(" AND "),
                bounds,
            });
        }
        for span in &split.sums {
            let (conds, bounds) = span.conds();
            let mut all =
                vec!["(s.policy_domain = ? OR s.policy_domain LIKE ? ESCAPE '\\')".to_string()];
            all.extend(conds);
            parts.push(Part {
                sums: Some(*span),
                cond: all.join(" AND "),
                bounds,
            });
        }
        let from = "FROM aggregate_reports r JOIN aggregate_records x ON x.report = r.id";
        let mut facts = SourceFacts::default();

        // Scans without GROUP BY, summed here: SQLite sorts to group, which costs more
        // than the scan itself on millions of rows; a hash map of interned names does not.
        // A missing value and `''` are the same (the sums keep a missing one as `''`).
        let mut names = Interner::default();
        let mut sums: HashMap<[u32; 8], (i64, i64)> = HashMap::new();
        for part in &parts {
            let sql = if let Some(span) = part.sums {
                format!(
                    "SELECT s.source_ip, s.policy_domain, s.header_from, s.dkim_aligned, \
                     s.spf_aligned, s.disposition, s.policy_p, s.policy_sp, s.messages, \
                     s.row_count FROM {} s WHERE {}",
                    span.table("sums"),
                    part.cond
                )
            } else {
                format!(
                    "SELECT x.source_ip, r.policy_domain, x.header_from, x.dkim_aligned, \
                     x.spf_aligned, x.disposition, r.policy_p, r.policy_sp, x.message_count, 1 \
                     {from} WHERE {}",
                    part.cond
                )
            };
            self.conn
                .for_each(&sql, &part.params(&domain, &below), |cells| {
                    let row = Row::new(cells, "source outcomes");
                    let mut key = [0u32; 8];
                    for (i, k) in key.iter_mut().enumerate() {
                        *k = names.opt(row.opt_str(i)?);
                    }
                    let e = sums.entry(key).or_default();
                    e.0 += row.int(8)?;
                    e.1 += row.int(9)?;
                    Ok(())
                })?;
        }
        for (key, (messages, rows)) in sums {
            let t = |i: usize| names.get(key[i]).map(str::to_string);
            let policy_domain = t(1).unwrap_or_default();
            let header_from = norm(&t(2).unwrap_or_default());
            let (p, sp) = (t(6), t(7));
            let published_p = if header_from != policy_domain && sp.is_some() {
                sp
            } else {
                p
            };
            facts.outcomes.push(OutcomeRow {
                ip: t(0).unwrap_or_default(),
                policy_domain,
                header_from,
                dkim_aligned: t(3).map(|s| norm(&s)),
                spf_aligned: t(4).map(|s| norm(&s)),
                disposition: t(5).map(|s| norm(&s)),
                published_p,
                messages,
                rows,
            });
        }
        merge(&mut facts.outcomes, |a, b| {
            (&a.ip, &a.policy_domain, &a.header_from, &a.dkim_aligned)
                == (&b.ip, &b.policy_domain, &b.header_from, &b.dkim_aligned)
                && (&a.spf_aligned, &a.disposition, &a.published_p)
                    == (&b.spf_aligned, &b.disposition, &b.published_p)
        });

        let mut sums: HashMap<[u32; 5], i64> = HashMap::new();
        for part in &parts {
            let sql = if let Some(span) = part.sums {
                format!(
                    "SELECT s.source_ip, s.domain, s.selector, s.result, s.header_from, \
                     s.messages FROM {} s WHERE {}",
                    span.table("dkim"),
                    part.cond
                )
            } else {
                format!(
                    "SELECT x.source_ip, d.domain, d.selector, d.result, x.header_from, \
                     x.message_count {from} JOIN aggregate_dkim d ON d.report = x.report \
                     AND d.row_no = x.row_no WHERE {}",
                    part.cond
                )
            };
            self.conn
                .for_each(&sql, &part.params(&domain, &below), |cells| {
                    let row = Row::new(cells, "source DKIM results");
                    let mut key = [0u32; 5];
                    for (i, k) in key.iter_mut().enumerate() {
                        *k = names.opt(row.opt_str(i)?);
                    }
                    *sums.entry(key).or_default() += row.int(5)?;
                    Ok(())
                })?;
        }
        for (key, messages) in sums {
            let t = |i: usize| names.get(key[i]).map(str::to_string);
            facts.dkim.push(DkimRow {
                ip: t(0).unwrap_or_default(),
                domain: norm(&t(1).unwrap_or_default()),
                selector: t(2).map(|s| norm(&s)).filter(|s| !s.is_empty()),
                result: norm(&t(3).unwrap_or_default()),
                header_from: norm(&t(4).unwrap_or_default()),
                messages,
            });
        }
        merge_dkim(&mut facts.dkim);

        let mut sums: HashMap<[u32; 4], i64> = HashMap::new();
        for part in &parts {
            let sql = if let Some(span) = part.sums {
                format!(
                    "SELECT s.source_ip, s.domain, s.scope, s.result, s.messages \
                     FROM {} s WHERE {}",
                    span.table("spf"),
                    part.cond
                )
            } else {
                format!(
                    "SELECT x.source_ip, s.domain, s.scope, s.result, x.message_count {from} \
                     JOIN aggregate_spf s ON s.report = x.report AND s.row_no = x.row_no \
                     WHERE {}",
                    part.cond
                )
            };
            self.conn
                .for_each(&sql, &part.params(&domain, &below), |cells| {
                    let row = Row::new(cells, "source SPF results");
                    let mut key = [0u32; 4];
                    for (i, k) in key.iter_mut().enumerate() {
                        *k = names.opt(row.opt_str(i)?);
                    }
                    *sums.entry(key).or_default() += row.int(4)?;
                    Ok(())
                })?;
        }
        for (key, messages) in sums {
            let t = |i: usize| names.get(key[i]).map(str::to_string);
            facts.spf.push(SpfRow {
                ip: t(0).unwrap_or_default(),
                domain: norm(&t(1).unwrap_or_default()),
                scope: t(2).map(|s| norm(&s)),
                result: norm(&t(3).unwrap_or_default()),
                messages,
            });
        }
        facts.spf.sort_by(|a, b| {
            (&a.ip, &a.domain, &a.scope, &a.result).cmp(&(&b.ip, &b.domain, &b.scope, &b.result))
        });
        facts.spf.dedup_by(|b, a| {
            let same =
                (&a.ip, &a.domain, &a.scope, &a.result) == (&b.ip, &b.domain, &b.scope, &b.result);
            if same {
                a.messages += b.messages;
            }
            same
        });

        let mut sums: HashMap<[u32; 2], i64> = HashMap::new();
        for part in &parts {
            let sql = if let Some(span) = part.sums {
                format!(
                    "SELECT s.source_ip, s.reason_type, s.messages \
                     FROM {} s WHERE {}",
                    span.table("reasons"),
                    part.cond
                )
            } else {
                format!(
                    "SELECT x.source_ip, a.reason_type, x.message_count {from} \
                     JOIN aggregate_reasons a ON a.report = x.report AND a.row_no = x.row_no \
                     WHERE {}",
                    part.cond
                )
            };
            self.conn
                .for_each(&sql, &part.params(&domain, &below), |cells| {
                    let row = Row::new(cells, "source override reasons");
                    let key = [names.opt(row.opt_str(0)?), names.opt(row.opt_str(1)?)];
                    *sums.entry(key).or_default() += row.int(2)?;
                    Ok(())
                })?;
        }
        for (key, messages) in sums {
            let t = |i: usize| names.get(key[i]).map(str::to_string);
            facts.reasons.push(ReasonRow {
                ip: t(0).unwrap_or_default(),
                reason: norm(&t(1).unwrap_or_default()),
                messages,
            });
        }
        facts
            .reasons
            .sort_by(|a, b| (&a.ip, &a.reason).cmp(&(&b.ip, &b.reason)));
        facts.reasons.dedup_by(|b, a| {
            let same = (&a.ip, &a.reason) == (&b.ip, &b.reason);
            if same {
                a.messages += b.messages;
            }
            same
        });

        let mut conds =
            vec!["(r.policy_domain = ? OR r.policy_domain LIKE ? ESCAPE '\\')".to_string()];
        let mut params = vec![Val::Text(&domain), Val::Text(&below)];
        if let Some(s) = q.since {
            conds.push(format!("{MID} >= ?"));
            params.push(Val::I64(s));
        }
        if let Some(u) = q.until {
            conds.push(format!("{MID} < ?"));
            params.push(Val::I64(u));
        }
        let w = conds.join(" AND ");
        let sql = format!(
            "SELECT r.org_name, {MID} / 86400, COUNT(*), \
             CAST(COALESCE(SUM(r.message_count), 0) AS BIGINT), MIN(r.begin_ts), MAX(r.end_ts) \
             FROM aggregate_reports r WHERE {w} GROUP BY r.org_name, {MID} / 86400 \
             ORDER BY r.org_name, 2"
        );
        for cells in self.conn.query(&sql, &params)? {
            let row = Row::new(&cells, "reporters per day");
            facts.reporters.push(ReporterDay {
                org_name: row.text(0)?,
                day: row.int(1)?,
                reports: row.int(2)?,
                messages: row.int(3)?,
                first: row.int(4)?,
                last: row.int(5)?,
            });
        }
        Ok(facts)
    }
}

/// One part of a window: report rows (`r`, `x`) or per-source sums (`s`) of a span, with the
/// conditions after the domain's two and the bounds they bind.
struct Part {
    sums: Option<rollup::Span>,
    cond: String,
    bounds: Vec<i64>,
}

impl Part {
    fn params<'a>(&self, domain: &'a str, below: &'a str) -> Vec<Val<'a>> {
        let mut p = vec![Val::Text(domain), Val::Text(below)];
        p.extend(self.bounds.iter().copied().map(Val::I64));
        p
    }
}

/// Names seen in a scan, each stored once; 0 stands for NULL (and for `''`, which the
/// per-source sums keep for a missing value).
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn opt(&mut self, s: Option<&str>) -> u32 {
        let Some(s) = s.filter(|s| !s.is_empty()) else {
            return 0;
        };
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        self.names.push(s.to_string());
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.ids.insert(s.to_string(), id);
        id
    }

    fn get(&self, id: u32) -> Option<&str> {
        let i = usize::try_from(id).ok()?.checked_sub(1)?;
        self.names.get(i).map(String::as_str)
    }
}

/// Sorts outcome rows and sums those `same` calls equal (raw spellings that normalised to
/// the same values).
fn merge(rows: &mut Vec<OutcomeRow>, same: impl Fn(&OutcomeRow, &OutcomeRow) -> bool) {
    rows.sort_by(|a, b| {
        (
            &a.ip,
            &a.policy_domain,
            &a.header_from,
            &a.dkim_aligned,
            &a.spf_aligned,
        )
            .cmp(&(
                &b.ip,
                &b.policy_domain,
                &b.header_from,
                &b.dkim_aligned,
                &b.spf_aligned,
            ))
            .then((&a.disposition, &a.published_p).cmp(&(&b.disposition, &b.published_p)))
    });
    rows.dedup_by(|b, a| {
        let s = same(a, b);
        if s {
            a.messages += b.messages;
            a.rows += b.rows;
        }
        s
    });
}

fn merge_dkim(rows: &mut Vec<DkimRow>) {
    let key = |r: &DkimRow| {
        (
            r.ip.clone(),
            r.domain.clone(),
            r.selector.clone(),
            r.result.clone(),
            r.header_from.clone(),
        )
    };
    rows.sort_by_key(key);
    rows.dedup_by(|b, a| {
        let s = key(a) == key(b);
        if s {
            a.messages += b.messages;
        }
        s
    });
}
