//! Writing an [`AggregateReport`] as RFC 9990 XML (namespace
//! `urn:ietf:params:xml:ns:dmarc-2.0`), in the element order of the RFC 9990 schema.
//!
//! What RFC 9990 cannot say is left out: `<pct>` (removed by RFC 9990) is not written. Values
//! the schema does not allow (an `Unknown` word, several `<error>`s or SPF results, a missing
//! `<p>` or selector) are written as they are, so nothing is silently changed, but such a
//! document does not validate.
//!
//! Checked once with libxml2 (Python lxml) against `rfc9990-dmarc-2.0.xsd`: all documents
//! written by the round-trip property test validate (run it with `DMARC_DUMP_XML_DIR=dir` to
//! get them) except those carrying the RFC 7489 SPF scope `helo`, and so do the corpus reports
//! rewritten by `examples/to_rfc9990.rs` whose data has every element the schema requires.

use std::fmt::Write as _;

use quick_xml::escape::escape;

use super::{AggregateReport, Extension, Record};

/// The RFC 9990 XML namespace.
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:dmarc-2.0";

/// Writes the report as an RFC 9990 XML document (UTF-8, with an XML declaration).
pub fn to_xml(report: &AggregateReport) -> String {
    let mut w = Writer {
        out: String::with_capacity(1024 + report.records.len() * 700),
        indent: 0,
    };
    w.out
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    w.open_attrs("feedback", &[("xmlns", Some(NAMESPACE))]);
    w.leaf("version", Some(report.version.as_deref().unwrap_or("1.0")));

    let m = &report.metadata;
    w.open("report_metadata");
    w.leaf("org_name", Some(&m.org_name));
    w.leaf("email", Some(&m.email));
    w.leaf("extra_contact_info", m.extra_contact_info.as_deref());
    w.leaf("report_id", Some(&m.report_id));
    w.open("date_range");
    w.leaf("begin", Some(&m.date_range.begin.to_string()));
    w.leaf("end", Some(&m.date_range.end.to_string()));
    w.close("date_range");
    for e in &m.errors {
        w.leaf("error", Some(e));
    }
    w.leaf("generator", m.generator.as_deref());
    w.close("report_metadata");

    let p = &report.policy_published;
    w.open("policy_published");
    w.leaf("domain", Some(&p.domain));
    w.leaf("p", p.p.as_ref().map(|v| v.as_str()));
    w.leaf("sp", p.sp.as_ref().map(|v| v.as_str()));
    w.leaf("np", p.np.as_ref().map(|v| v.as_str()));
    w.leaf("adkim", p.adkim.as_ref().map(|v| v.as_str()));
    w.leaf("aspf", p.aspf.as_ref().map(|v| v.as_str()));
    w.leaf(
        "discovery_method",
        p.discovery_method.as_ref().map(|v| v.as_str()),
    );
    w.leaf("fo", p.fo.as_deref());
    w.leaf("testing", p.testing.map(|t| if t { "y" } else { "n" }));
    w.close("policy_published");

    if !report.extensions.is_empty() {
        w.open("extension");
        w.extensions(&report.extensions);
        w.close("extension");
    }
    for r in &report.records {
        w.record(r);
    }
    w.close("feedback");
    w.out
}

struct Writer {
    out: String,
    indent: usize,
}

impl Writer {
    fn pad(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
    }

    fn open(&mut self, name: &str) {
        self.open_attrs(name, &[]);
    }

    fn open_attrs(&mut self, name: &str, attrs: &[(&str, Option<&str>)]) {
        self.pad();
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            if let Some(v) = v {
                let _ = write!(self.out, " {k}=\"{}\"", escape(*v));
            }
        }
        self.out.push_str(">\n");
        self.indent += 1;
    }

    fn close(&mut self, name: &str) {
        self.indent = self.indent.saturating_sub(1);
        self.pad();
        let _ = writeln!(self.out, "</{name}>");
    }

    fn leaf(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.pad();
            let _ = writeln!(self.out, "<{name}>{}</{name}>", escape(v));
        }
    }

    fn extensions(&mut self, exts: &[Extension]) {
        for e in exts {
            self.pad();
            let _ = write!(self.out, "<extension name=\"{}\"", escape(e.name.as_str()));
            if let Some(d) = &e.definition {
                let _ = write!(self.out, " definition=\"{}\"", escape(d.as_str()));
            }
            // The content is raw XML already.
            let _ = writeln!(self.out, ">{}</extension>", e.content);
        }
    }

    fn record(&mut self, r: &Record) {
        self.open("record");
        self.open("row");
        self.leaf("source_ip", Some(&r.source_ip.to_string()));
        self.leaf("count", Some(&r.count.to_string()));
        let pe = &r.policy_evaluated;
        self.open("policy_evaluated");
        self.leaf("disposition", pe.disposition.as_ref().map(|v| v.as_str()));
        self.leaf("dkim", pe.dkim.as_ref().map(|v| v.as_str()));
        self.leaf("spf", pe.spf.as_ref().map(|v| v.as_str()));
        for reason in &pe.reasons {
            self.open("reason");
            self.leaf("type", Some(reason.kind.as_str()));
            self.leaf("comment", reason.comment.as_deref());
            self.close("reason");
        }
        self.close("policy_evaluated");
        self.close("row");
        let id = &r.identifiers;
        self.open("identifiers");
        self.leaf("header_from", Some(&id.header_from));
        self.leaf("envelope_from", id.envelope_from.as_deref());
        self.leaf("envelope_to", id.envelope_to.as_deref());
        self.close("identifiers");
        self.open("auth_results");
        for d in &r.auth_results.dkim {
            self.open("dkim");
            self.leaf("domain", Some(&d.domain));
            self.leaf("selector", d.selector.as_deref());
            self.leaf("result", Some(d.result.as_str()));
            self.leaf("human_result", d.human_result.as_deref());
            self.close("dkim");
        }
        for s in &r.auth_results.spf {
            self.open("spf");
            self.leaf("domain", Some(&s.domain));
            self.leaf("scope", s.scope.as_ref().map(|v| v.as_str()));
            self.leaf("result", Some(s.result.as_str()));
            self.leaf("human_result", s.human_result.as_deref());
            self.close("spf");
        }
        self.close("auth_results");
        if !r.extensions.is_empty() {
            self.open("extensions");
            self.extensions(&r.extensions);
            self.close("extensions");
        }
        self.close("record");
    }
}
