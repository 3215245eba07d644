//! Observations: the messages this receiver has seen, counted under their aggregate-report
//! key (an [`Observation`] and the UTC hour it arrived in), so that reports can be made
//! from them later.
//!
//! Writers add counts by upsert (`INSERT ... ON CONFLICT DO UPDATE SET message_count =
//! message_count + excluded.message_count`), the same statement on SQLite and PostgreSQL,
//! so any number of writers (several MX hosts on one PostgreSQL database, several
//! processes on one SQLite file) give exact totals. A batch is one transaction; its rows
//! are written in key order, so two PostgreSQL writers take their row locks in the same
//! order and cannot deadlock.

use std::collections::BTreeMap;

use dmarc_receiver::Observation;
use dmarc_receiver::observation::{DkimAuth, Override, PublishedPolicy, SpfAuth};

use crate::backend::{self, Cell, Val};
use crate::write::sha256_hex;
use crate::{Store, StoreError};

/// The length of an observation period, in seconds: observations are counted per UTC
/// hour, a divisor of every report interval a domain asks for in whole hours (`ri=`).
pub const OBSERVATION_PERIOD: i64 = 3600;

/// A stored count: an observation, its period and how many messages it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservationCount {
    /// The start of the UTC hour, in Unix seconds.
    pub period_start: i64,
    /// The aggregate-report key.
    pub observation: Observation,
    /// Messages counted.
    pub count: u64,
}

/// The start of the period `ts` falls in.
pub fn period_of(ts: i64) -> i64 {
    ts - ts.rem_euclid(OBSERVATION_PERIOD)
}

/// The columns of one observation, ready to bind.
struct Row {
    policy_domain: String,
    source_ip: String,
    header_from: String,
    envelope_from: String,
    envelope_to: String,
    spf: String,
    dkim: String,
    overrides: String,
    published: String,
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Data(format!("observation: {e}")))
}

impl Row {
    fn of(o: &Observation) -> Result<Row, StoreError> {
        Ok(Row {
            policy_domain: o.policy_domain.clone().unwrap_or_default(),
            source_ip: o.source_ip.to_string(),
            header_from: o.header_from.clone().unwrap_or_default(),
            envelope_from: o.envelope_from.clone().unwrap_or_default(),
            envelope_to: o.envelope_to.join(","),
            spf: json(&o.spf)?,
            dkim: json(&o.dkim)?,
            overrides: json(&o.overrides)?,
            published: match &o.published {
                Some(p) => json(p)?,
                None => String::new(),
            },
        })
    }
}

impl Store {
    /// Adds observations, each with its arrival time (Unix seconds), to the counts: one
    /// transaction, one upsert per distinct key. Returns the number of messages added.
    pub fn add_observations(&mut self, items: &[(i64, Observation)]) -> Result<u64, StoreError> {
        // Count equal keys first: one statement per row of the report, not per message.
        let mut counts: BTreeMap<(i64, String), (&Observation, u64)> = BTreeMap::new();
        for (at, o) in items {
            let digest = sha256_hex(json(o)?.as_bytes());
            counts.entry((period_of(*at), digest)).or_insert((o, 0)).1 += 1;
        }
        self.upsert_counts(&counts)
    }

    /// Adds counts already made: each item is a period start (or any time in it, Unix
    /// seconds), an observation and how many messages it stands for (what a milter
    /// counting in memory flushes). One transaction, one upsert per distinct key; items
    /// with equal keys are summed. Returns the number of messages added.
    pub fn add_observation_counts(
        &mut self,
        items: &[(i64, &Observation, u64)],
    ) -> Result<u64, StoreError> {
        let mut counts: BTreeMap<(i64, String), (&Observation, u64)> = BTreeMap::new();
        for (at, o, n) in items {
            let digest = sha256_hex(json(*o)?.as_bytes());
            counts.entry((period_of(*at), digest)).or_insert((*o, 0)).1 += n;
        }
        self.upsert_counts(&counts)
    }

    /// One transaction of upserts, in key order (see the module's documentation).
    fn upsert_counts(
        &mut self,
        counts: &BTreeMap<(i64, String), (&Observation, u64)>,
    ) -> Result<u64, StoreError> {
        self.conn.begin()?;
        let res = (|| {
            let mut total = 0u64;
            for ((period, digest), (o, n)) in counts {
                let r = Row::of(o)?;
                let n = i64::try_from(*n)
                    .map_err(|_| StoreError::Data(format!("observation count {n} too large")))?;
                self.conn.exec(
                    "INSERT INTO observations (period_start, key_digest, policy_domain, \
                     source_ip, header_from, envelope_from, envelope_to, dmarc, disposition, \
                     dkim_aligned, spf_aligned, spf_results, dkim_results, overrides, \
                     policy_published, message_count) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (period_start, key_digest) DO UPDATE SET \
                     message_count = observations.message_count + excluded.message_count",
                    &[
                        Val::I64(*period),
                        Val::Text(digest),
                        Val::Text(&r.policy_domain),
                        Val::Text(&r.source_ip),
                        Val::Text(&r.header_from),
                        Val::Text(&r.envelope_from),
                        Val::Text(&r.envelope_to),
                        Val::Text(&o.dmarc),
                        Val::Text(&o.disposition),
                        Val::Text(&o.dkim_aligned),
                        Val::Text(&o.spf_aligned),
                        Val::Text(&r.spf),
                        Val::Text(&r.dkim),
                        Val::Text(&r.overrides),
                        Val::Text(&r.published),
                        Val::I64(n),
                    ],
                )?;
                total += n.unsigned_abs();
            }
            Ok::<_, StoreError>(total)
        })();
        match res {
            Ok(total) => {
                self.conn.commit()?;
                Ok(total)
            }
            Err(e) => {
                self.conn.rollback();
                Err(e)
            }
        }
    }

    /// The counts of periods starting in `[begin, end)`, for one policy domain (`""` for
    /// messages without a DMARC policy) or every one, ordered by period, policy domain
    /// and source IP.
    pub fn observation_counts(
        &mut self,
        policy_domain: Option<&str>,
        begin: i64,
        end: i64,
    ) -> Result<Vec<ObservationCount>, StoreError> {
        let cols = "SELECT period_start, policy_domain, source_ip, header_from, envelope_from, \
                    envelope_to, dmarc, disposition, dkim_aligned, spf_aligned, spf_results, \
                    dkim_results, overrides, policy_published, message_count \
                    FROM observations WHERE period_start >= ? AND period_start < ?";
        let rows = match policy_domain {
            Some(d) => self.conn.query(
                &format!(
                    "{cols} AND policy_domain = ? ORDER BY period_start, policy_domain, \
                     source_ip, key_digest"
                ),
                &[Val::I64(begin), Val::I64(end), Val::Text(d)],
            )?,
            None => self.conn.query(
                &format!("{cols} ORDER BY period_start, policy_domain, source_ip, key_digest"),
                &[Val::I64(begin), Val::I64(end)],
            )?,
        };
        rows.into_iter().map(decode).collect()
    }
}

fn bad(col: &str, what: &str) -> StoreError {
    StoreError::Data(format!("observations.{col}: {what}"))
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn parsed<T: serde::de::DeserializeOwned>(s: &str, col: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| bad(col, &e.to_string()))
}

fn decode(cells: Vec<Cell>) -> Result<ObservationCount, StoreError> {
    let r = backend::Row::new(&cells, "observations");
    let ip = r.str(2)?;
    let published = r.str(13)?;
    Ok(ObservationCount {
        period_start: r.int(0)?,
        count: r.count(14)?,
        observation: Observation {
            policy_domain: opt(r.text(1)?),
            source_ip: ip
                .parse()
                .map_err(|_| bad("source_ip", &format!("{ip:?} is not an IP address")))?,
            header_from: opt(r.text(3)?),
            envelope_from: opt(r.text(4)?),
            envelope_to: r
                .str(5)?
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect(),
            spf: parsed::<Vec<SpfAuth>>(r.str(10)?, "spf_results")?,
            dkim: parsed::<Vec<DkimAuth>>(r.str(11)?, "dkim_results")?,
            dmarc: r.text(6)?,
            spf_aligned: r.text(9)?,
            dkim_aligned: r.text(8)?,
            disposition: r.text(7)?,
            overrides: parsed::<Vec<Override>>(r.str(12)?, "overrides")?,
            published: if published.is_empty() {
                None
            } else {
                Some(parsed::<PublishedPolicy>(published, "policy_published")?)
            },
        },
    })
}
