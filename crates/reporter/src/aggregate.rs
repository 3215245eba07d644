//! Aggregate reports from stored observations: periods, the report itself (rows grouped by
//! the aggregate key with their counts), its id, its file name, its gzip.

use std::collections::HashMap;
use std::io::Write as _;

use dmarc_receiver::Observation;
use dmarc_report::aggregate::generate::{Format, write_xml};
use dmarc_report::aggregate::{
    ActionDisposition, AggregateReport, Alignment, AuthResults, DateRange, DiscoveryMethod,
    Disposition, DkimAuthResult, DkimResult, DmarcResult, Identifiers, OverrideReason,
    PolicyEvaluated, PolicyOverride, PolicyPublished, Record, ReportMetadata, SpfAuthResult,
    SpfResult, SpfScope,
};
use dmarc_store::ObservationCount;
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::config::{Config, XmlFormat};

/// One UTC day.
pub const DAY: i64 = 86_400;
/// The shortest period a report covers.
pub const HOUR: i64 = 3_600;

/// The length of a domain's report period: a UTC day, or, when `honour_ri` and the record
/// asks for less (`ri=`), the largest whole number of hours dividing the day that is not
/// longer than `ri` (and never under an hour), so that periods stay aligned on midnight UTC.
pub fn period_length(ri: Option<u32>, honour_ri: bool) -> i64 {
    let Some(ri) = ri.filter(|_| honour_ri) else {
        return DAY;
    };
    let hours = (i64::from(ri) / HOUR).clamp(1, 24);
    (1..=hours)
        .rev()
        .find(|h| 24 % h == 0)
        .map_or(DAY, |h| h * HOUR)
}

/// The period of length `len` that `ts` falls in: `[begin, begin + len)`.
pub fn period_start(ts: i64, len: i64) -> i64 {
    ts - ts.rem_euclid(len)
}

/// The report id: stable (the same report made again has the same id, RFC 9990 §3 asks a
/// re-sent report to keep its identifiers) and unique per receiver, policy domain and
/// period: `<begin>.<end>.<policy-domain>@<receiver>`.
pub fn report_id(receiver: &str, policy_domain: &str, begin: i64, end: i64) -> String {
    format!("{begin}.{end}.{policy_domain}@{receiver}")
}

/// The `unique-id` of the file name (letters and digits only): the first 16 hex digits of
/// the SHA-256 of the report id.
pub fn unique_id(report_id: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, report_id.as_bytes());
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The attachment file name (RFC 9990 §3): `receiver!policy-domain!begin!end!unique-id.xml.gz`.
pub fn file_name(receiver: &str, policy_domain: &str, begin: i64, end: i64, rid: &str) -> String {
    format!(
        "{receiver}!{policy_domain}!{begin}!{end}!{}.xml.gz",
        unique_id(rid)
    )
}

/// Builds the report about `policy_domain` for `[begin, end)` from its observation counts
/// (any number of hourly counts of the same key are added up). `None` when there is no
/// message to report.
pub fn build(
    config: &Config,
    policy_domain: &str,
    begin: i64,
    end: i64,
    counts: &[ObservationCount],
) -> Option<AggregateReport> {
    let format = config.aggregate.format;
    // The same key over several hours is one row; the published policy is the one seen
    // last in the period.
    let mut rows: HashMap<&Observation, u64> = HashMap::new();
    let mut published = None;
    let mut last_seen = i64::MIN;
    for c in counts {
        if c.observation.policy_domain.as_deref() != Some(policy_domain)
            || c.period_start < begin
            || c.period_start >= end
        {
            continue;
        }
        *rows.entry(&c.observation).or_insert(0) += c.count;
        if c.period_start >= last_seen && c.observation.published.is_some() {
            last_seen = c.period_start;
            published = c.observation.published.as_ref();
        }
    }
    if rows.is_empty() {
        return None;
    }
    let mut records: Vec<Record> = rows
        .into_iter()
        .map(|(o, n)| record(o, n, format))
        .collect();
    records.sort_by(|a, b| {
        (a.source_ip, &a.identifiers.header_from, a.count)
            .cmp(&(b.source_ip, &b.identifiers.header_from, b.count))
            .then_with(|| format!("{a:?}").cmp(&format!("{b:?}")))
    });
    let org = &config.organization;
    let receiver = org.receiver_domain();
    let end_inclusive = end - 1;
    let policy_published = match published {
        Some(p) => PolicyPublished {
            domain: policy_domain.to_owned(),
            p: Some(Disposition::parse(&p.p)),
            sp: p.sp.as_deref().map(Disposition::parse),
            np: p.np.as_deref().map(Disposition::parse),
            adkim: Some(Alignment::parse(&p.adkim)),
            aspf: Some(Alignment::parse(&p.aspf)),
            pct: p.pct,
            fo: p.fo.clone(),
            testing: Some(p.testing),
            discovery_method: Some(DiscoveryMethod::parse(&config.aggregate.discovery_method)),
        },
        None => PolicyPublished {
            domain: policy_domain.to_owned(),
            p: Some(Disposition::None),
            discovery_method: Some(DiscoveryMethod::parse(&config.aggregate.discovery_method)),
            ..PolicyPublished::default()
        },
    };
    Some(AggregateReport {
        version: Some("1.0".to_owned()),
        metadata: ReportMetadata {
            org_name: org.name.clone(),
            email: org.email.clone(),
            extra_contact_info: org.extra_contact_info.clone(),
            report_id: report_id(&receiver, policy_domain, begin, end_inclusive),
            date_range: DateRange {
                begin,
                end: end_inclusive,
            },
            errors: Vec::new(),
            generator: Some(format!("dmarc {}", env!("CARGO_PKG_VERSION"))),
        },
        policy_published,
        records,
        extensions: Vec::new(),
        warnings: Vec::new(),
    })
}

/// One row: the observation in the report's words. RFC 9990 reports carry the MAIL FROM
/// SPF result only (its schema has one `<spf>`); RFC 7489 ones the HELO result too.
fn record(o: &Observation, count: u64, format: XmlFormat) -> Record {
    let aligned = |s: &str| {
        if s == "pass" {
            DmarcResult::Pass
        } else {
            DmarcResult::Fail
        }
    };
    let reasons = o
        .overrides
        .iter()
        .map(|r| OverrideReason {
            kind: match r.kind.as_str() {
                // RFC 9990 has no sampled_out; the comment says what happened.
                "sampled_out" => PolicyOverride::Other,
                k => PolicyOverride::parse(k),
            },
            comment: (!r.comment.is_empty()).then(|| r.comment.as_str().into()),
        })
        .collect();
    let spf = o
        .spf
        .iter()
        .filter(|s| format == XmlFormat::Rfc7489 || s.scope == "mfrom")
        .map(|s| SpfAuthResult {
            domain: s.domain.as_str().into(),
            scope: Some(SpfScope::parse(&s.scope)),
            result: SpfResult::parse(&s.result),
            human_result: s.human_result.as_deref().map(Into::into),
        })
        .collect();
    Record {
        source_ip: o.source_ip,
        count,
        policy_evaluated: PolicyEvaluated {
            disposition: Some(ActionDisposition::parse(&o.disposition)),
            dkim: Some(aligned(&o.dkim_aligned)),
            spf: Some(aligned(&o.spf_aligned)),
            reasons,
        },
        identifiers: Identifiers {
            header_from: o.header_from.as_deref().unwrap_or_default().into(),
            envelope_from: o.envelope_from.as_deref().map(Into::into),
            envelope_to: o.envelope_to.first().map(|d| d.as_str().into()),
        },
        auth_results: AuthResults {
            dkim: o
                .dkim
                .iter()
                .map(|d| DkimAuthResult {
                    domain: d.domain.as_str().into(),
                    // The RFC 9990 schema requires a selector; a signature without s= has
                    // an empty one.
                    selector: Some(d.selector.as_deref().unwrap_or_default().into()),
                    result: DkimResult::parse(&d.result),
                    human_result: d.human_result.as_deref().map(Into::into),
                })
                .collect(),
            spf,
        },
        extensions: Vec::new(),
    }
}

/// The XML format of the configuration, as the writer names it.
pub fn xml_format(f: XmlFormat) -> Format {
    match f {
        XmlFormat::Rfc9990 => Format::Rfc9990,
        XmlFormat::Rfc7489 => Format::Rfc7489,
    }
}

/// The report as gzip-compressed XML, streamed from the writer into the encoder.
pub fn gzip_xml(report: &AggregateReport, format: XmlFormat) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    write_xml(report, xml_format(format), &mut gz)?;
    gz.flush()?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_ri_only_when_asked_and_stay_on_whole_hours() {
        assert_eq!(period_length(None, true), DAY);
        assert_eq!(period_length(Some(3600), false), DAY);
        assert_eq!(period_length(Some(3600), true), HOUR);
        assert_eq!(period_length(Some(60), true), HOUR);
        assert_eq!(period_length(Some(5 * 3600), true), 4 * HOUR);
        assert_eq!(period_length(Some(7 * 3600 + 5), true), 6 * HOUR);
        assert_eq!(period_length(Some(604_800), true), DAY);
        assert_eq!(period_start(DAY + 5, DAY), DAY);
        assert_eq!(period_start(DAY + 4 * HOUR + 1, 4 * HOUR), DAY + 4 * HOUR);
    }

    #[test]
    fn ids_and_file_names_are_stable_and_well_formed() {
        let rid = report_id("mx.example.net", "example.com", 86_400, 172_799);
        assert_eq!(rid, "86400.172799.example.com@mx.example.net");
        let name = file_name("mx.example.net", "example.com", 86_400, 172_799, &rid);
        assert_eq!(
            name,
            file_name("mx.example.net", "example.com", 86_400, 172_799, &rid)
        );
        let (head, id) = name.trim_end_matches(".xml.gz").rsplit_once('!').unwrap();
        assert_eq!(head, "mx.example.net!example.com!86400!172799");
        assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(
            unique_id(&rid),
            unique_id("86400.172799.example.org@mx.example.net")
        );
    }
}
