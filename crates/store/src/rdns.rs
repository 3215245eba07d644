//! Reverse-DNS names of report sources, looked up once and cached in the store.
//!
//! Every name found is also forward-confirmed (FCrDNS): the name's A or AAAA records must
//! hold the address, else anyone controlling the reverse zone of an address could name it
//! `mail.example.com`. Only confirmed names may be used to recognise a sender.
//!
//! Names (and "no name" answers) are kept for [`POSITIVE_TTL`] / [`NEGATIVE_TTL`]
//! seconds; temporary failures for [`TEMPFAIL_TTL`], so a failed lookup is retried on a
//! later run but not on every one. The store only keeps the answers: the lookups are the
//! owner crate's (`dmarc_owner::rdns`), so that the store does no DNS.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::backend::{Row, Val};
use crate::{Store, StoreError};

/// How long a found name is kept (30 days).
pub const POSITIVE_TTL: i64 = 30 * 86_400;
/// How long "no PTR record" is kept (7 days).
pub const NEGATIVE_TTL: i64 = 7 * 86_400;
/// How long a temporary failure is kept before asking again (1 hour).
pub const TEMPFAIL_TTL: i64 = 3600;

/// The outcome of one reverse lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdnsOutcome {
    /// The first PTR name (lower-case, no trailing dot).
    Name(String),
    /// No PTR record (NXDOMAIN or NODATA).
    NoName,
    /// A temporary failure, with what happened.
    TempError(String),
}

impl RdnsOutcome {
    fn status(&self) -> &'static str {
        match self {
            RdnsOutcome::Name(_) => "name",
            RdnsOutcome::NoName => "none",
            RdnsOutcome::TempError(_) => "temperror",
        }
    }
}

/// What the cache holds for one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdnsEntry {
    /// The PTR name, when one was found.
    pub name: Option<String>,
    /// Whether the name's addresses include the address (`None`: not checked yet, or the
    /// forward lookup failed temporarily).
    pub confirmed: Option<bool>,
    /// `name`, `none` or `temperror`.
    pub status: String,
    /// When it was looked up (Unix time).
    pub looked_up_at: i64,
}

impl RdnsEntry {
    /// The name, only when forward-confirmed.
    pub fn confirmed_name(&self) -> Option<&str> {
        match self.confirmed {
            Some(true) => self.name.as_deref(),
            _ => None,
        }
    }
}

impl RdnsEntry {
    /// Whether the entry is still good at time `at` (a name cached before forward
    /// confirmation existed is not: it is looked up again).
    fn is_fresh(&self, at: i64) -> bool {
        if self.status == "name" && self.confirmed.is_none() {
            return false;
        }
        let ttl = match self.status.as_str() {
            "name" => POSITIVE_TTL,
            "none" => NEGATIVE_TTL,
            _ => TEMPFAIL_TTL,
        };
        at.saturating_sub(self.looked_up_at) < ttl
    }
}

/// Addresses read per query by [`Store::cached_rdns_many`] (below SQLite's and
/// PostgreSQL's limits on parameters).
const RDNS_BATCH: usize = 500;

impl Store {
    /// The cache entry of `ip`, whatever its age.
    pub fn cached_rdns(&mut self, ip: &str) -> Result<Option<RdnsEntry>, StoreError> {
        Ok(self.cached_rdns_many(&[ip])?.remove(ip))
    }

    /// The cache entries of `ips` (those that have one), whatever their age: a few
    /// queries for any number of addresses, not one each (on PostgreSQL a round trip
    /// each, seconds for the tens of thousands of sources of a big domain).
    pub fn cached_rdns_many(
        &mut self,
        ips: &[&str],
    ) -> Result<HashMap<String, RdnsEntry>, StoreError> {
        let mut out = HashMap::with_capacity(ips.len());
        for chunk in ips.chunks(RDNS_BATCH) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT name, confirmed, status, looked_up_at, ip FROM rdns WHERE ip IN ({marks})"
            );
            let params: Vec<Val<'_>> = chunk.iter().map(|ip| Val::Text(ip)).collect();
            self.conn.for_each(&sql, &params, |cells| {
                let row = Row::new(cells, "rdns entry");
                let entry = RdnsEntry {
                    name: row.opt_text(0)?,
                    confirmed: row.opt_int(1)?.map(|c| c != 0),
                    status: row.text(2)?,
                    looked_up_at: row.int(3)?,
                };
                out.insert(row.text(4)?, entry);
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// The cached name of `ip`, if one was found (whatever its age).
    pub fn cached_rdns_name(&mut self, ip: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .cached_rdns(ip)?
            .filter(|e| e.status == "name")
            .and_then(|e| e.name))
    }

    /// Those of `ips` with no fresh cache entry at time `at`, in the order given.
    pub fn rdns_needing_lookup(
        &mut self,
        ips: &[IpAddr],
        at: i64,
    ) -> Result<Vec<IpAddr>, StoreError> {
        let text: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
        let refs: Vec<&str> = text.iter().map(String::as_str).collect();
        let cached = self.cached_rdns_many(&refs)?;
        Ok(ips
            .iter()
            .zip(&text)
            .filter(|(_, s)| !cached.get(s.as_str()).is_some_and(|e| e.is_fresh(at)))
            .map(|(ip, _)| *ip)
            .collect())
    }

    /// Records the outcome of a reverse lookup of `ip` made at time `at`, its name not
    /// forward-checked (it will be when it is next looked up).
    pub fn cache_rdns(
        &mut self,
        ip: IpAddr,
        outcome: &RdnsOutcome,
        at: i64,
    ) -> Result<(), StoreError> {
        self.cache_rdns_confirmed(ip, outcome, None, at)
    }

    /// Records the outcome of a reverse lookup of `ip` made at time `at`, and whether its
    /// name is forward-confirmed (`None`: not known).
    pub fn cache_rdns_confirmed(
        &mut self,
        ip: IpAddr,
        outcome: &RdnsOutcome,
        confirmed: Option<bool>,
        at: i64,
    ) -> Result<(), StoreError> {
        let ip = ip.to_string();
        let name = match outcome {
            RdnsOutcome::Name(n) => Some(n.as_str()),
            _ => None,
        };
        self.conn.exec(
            "INSERT INTO rdns (ip, name, status, looked_up_at, confirmed) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (ip) DO UPDATE SET name = excluded.name, status = excluded.status, \
             looked_up_at = excluded.looked_up_at, confirmed = excluded.confirmed",
            &[
                Val::Text(&ip),
                name.into(),
                Val::Text(outcome.status()),
                Val::I64(at),
                confirmed.map(i64::from).into(),
            ],
        )?;
        Ok(())
    }
}

/// One address's reverse lookup with its forward confirmation (what
/// `dmarc_owner::rdns::lookup_all` finds).
pub type Looked = (IpAddr, RdnsOutcome, Option<bool>);

impl Store {
    /// Caches what `dmarc_owner::rdns::lookup_all` found, as looked up at time `at`.
    pub fn cache_rdns_all(&mut self, found: &[Looked], at: i64) -> Result<(), StoreError> {
        for (ip, outcome, confirmed) in found {
            self.cache_rdns_confirmed(*ip, outcome, *confirmed, at)?;
        }
        Ok(())
    }
}
