//! Writing an [`AggregateReport`] as XML, streamed through quick-xml's writer into any
//! [`std::io::Write`] (a file, a gzip encoder): RFC 9990 (namespace
//! `urn:ietf:params:xml:ns:dmarc-2.0`, in the element order of the RFC 9990 schema) or, for
//! receivers that want it, the RFC 7489 Appendix C format.
//!
//! What the chosen format cannot say is left out: RFC 9990 has no `<pct>`; RFC 7489 has no
//! `<generator>`, `<np>`, `<discovery_method>`, `<testing>` or `<human_result>`. Values
//! the schema does not allow (an `Unknown` word, several `<error>`s or SPF results, a missing
//! `<p>` or selector) are written as they are, so nothing is silently changed, but such a
//! document does not validate; reports made from this receiver's observations
//! (`dmarc-reporter`) never carry them, and its tests validate them with `xmllint --schema`.
//!
//! Checked once with libxml2 (Python lxml) against `rfc9990-dmarc-2.0.xsd`: all documents
//! written by the round-trip property test validate (run it with `DMARC_DUMP_XML_DIR=dir` to
//! get them) except those carrying the RFC 7489 SPF scope `helo`, and so do the corpus reports
//! rewritten by `examples/to_rfc9990.rs` whose data has every element the schema requires.

use std::io::{self, Write};

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::{AggregateReport, Extension, Record};

/// The RFC 9990 XML namespace.
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:dmarc-2.0";

/// Which aggregate report format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// RFC 9990 (DMARC 2.0 namespace). The default.
    #[default]
    Rfc9990,
    /// RFC 7489 Appendix C (no namespace, `<pct>`, no RFC 9990 elements).
    Rfc7489,
}

/// Writes the report as an RFC 9990 XML document (UTF-8, with an XML declaration).
pub fn to_xml(report: &AggregateReport) -> String {
    let mut out = Vec::with_capacity(1024 + report.records.len() * 700);
    // Writing into a Vec cannot fail.
    let _ = write_xml(report, Format::Rfc9990, &mut out);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Streams the report as an XML document in `format` into `out`.
pub fn write_xml<W: Write>(report: &AggregateReport, format: Format, out: W) -> io::Result<()> {
    let mut w = Xml {
        w: Writer::new_with_indent(out, b' ', 2),
        format,
    };
    w.w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut root = BytesStart::new("feedback");
    if format == Format::Rfc9990 {
        root.push_attribute(("xmlns", NAMESPACE));
    }
    w.w.write_event(Event::Start(root))?;
    w.leaf("version", Some(report.version.as_deref().unwrap_or("1.0")))?;

    let m = &report.metadata;
    w.open("report_metadata")?;
    w.leaf("org_name", Some(&m.org_name))?;
    w.leaf("email", Some(&m.email))?;
    w.leaf("extra_contact_info", m.extra_contact_info.as_deref())?;
    w.leaf("report_id", Some(&m.report_id))?;
    w.open("date_range")?;
    w.leaf("begin", Some(&m.date_range.begin.to_string()))?;
    w.leaf("end", Some(&m.date_range.end.to_string()))?;
    w.close("date_range")?;
    for e in &m.errors {
        w.leaf("error", Some(e))?;
    }
    w.leaf9990("generator", m.generator.as_deref())?;
    w.close("report_metadata")?;

    let p = &report.policy_published;
    w.open("policy_published")?;
    w.leaf("domain", Some(&p.domain))?;
    match format {
        Format::Rfc9990 => {
            w.leaf("p", p.p.as_ref().map(|v| v.as_str()))?;
            w.leaf("sp", p.sp.as_ref().map(|v| v.as_str()))?;
            w.leaf("np", p.np.as_ref().map(|v| v.as_str()))?;
            w.leaf("adkim", p.adkim.as_ref().map(|v| v.as_str()))?;
            w.leaf("aspf", p.aspf.as_ref().map(|v| v.as_str()))?;
            w.leaf(
                "discovery_method",
                p.discovery_method.as_ref().map(|v| v.as_str()),
            )?;
            w.leaf("fo", p.fo.as_deref())?;
            w.leaf("testing", p.testing.map(|t| if t { "y" } else { "n" }))?;
        }
        Format::Rfc7489 => {
            // RFC 7489 Appendix C order: domain, adkim, aspf, p, sp, pct, fo.
            w.leaf("adkim", p.adkim.as_ref().map(|v| v.as_str()))?;
            w.leaf("aspf", p.aspf.as_ref().map(|v| v.as_str()))?;
            w.leaf("p", p.p.as_ref().map(|v| v.as_str()))?;
            w.leaf("sp", p.sp.as_ref().map(|v| v.as_str()))?;
            w.leaf("pct", Some(&p.pct.unwrap_or(100).to_string()))?;
            w.leaf("fo", p.fo.as_deref())?;
        }
    }
    w.close("policy_published")?;

    if !report.extensions.is_empty() && format == Format::Rfc9990 {
        w.open("extension")?;
        w.extensions(&report.extensions)?;
        w.close("extension")?;
    }
    for r in &report.records {
        w.record(r)?;
    }
    w.close("feedback")?;
    w.w.get_mut().write_all(b"\n")?;
    w.w.get_mut().flush()
}

struct Xml<W: Write> {
    w: Writer<W>,
    format: Format,
}

impl<W: Write> Xml<W> {
    fn open(&mut self, name: &str) -> io::Result<()> {
        self.w.write_event(Event::Start(BytesStart::new(name)))
    }

    fn close(&mut self, name: &str) -> io::Result<()> {
        self.w.write_event(Event::End(BytesEnd::new(name)))
    }

    fn leaf(&mut self, name: &str, value: Option<&str>) -> io::Result<()> {
        if let Some(v) = value {
            self.w
                .create_element(name)
                .write_text_content(BytesText::new(v))?;
        }
        Ok(())
    }

    /// An element RFC 7489 does not have.
    fn leaf9990(&mut self, name: &str, value: Option<&str>) -> io::Result<()> {
        match self.format {
            Format::Rfc9990 => self.leaf(name, value),
            Format::Rfc7489 => Ok(()),
        }
    }

    fn extensions(&mut self, exts: &[Extension]) -> io::Result<()> {
        for e in exts {
            let mut el = self
                .w
                .create_element("extension")
                .with_attribute(("name", e.name.as_str()));
            if let Some(d) = &e.definition {
                el = el.with_attribute(("definition", d.as_str()));
            }
            // The content is raw XML already.
            el.write_text_content(BytesText::from_escaped(e.content.as_str()))?;
        }
        Ok(())
    }

    fn record(&mut self, r: &Record) -> io::Result<()> {
        self.open("record")?;
        self.open("row")?;
        self.leaf("source_ip", Some(&r.source_ip.to_string()))?;
        self.leaf("count", Some(&r.count.to_string()))?;
        let pe = &r.policy_evaluated;
        self.open("policy_evaluated")?;
        self.leaf("disposition", pe.disposition.as_ref().map(|v| v.as_str()))?;
        self.leaf("dkim", pe.dkim.as_ref().map(|v| v.as_str()))?;
        self.leaf("spf", pe.spf.as_ref().map(|v| v.as_str()))?;
        for reason in &pe.reasons {
            self.open("reason")?;
            self.leaf("type", Some(reason.kind.as_str()))?;
            self.leaf("comment", reason.comment.as_deref())?;
            self.close("reason")?;
        }
        self.close("policy_evaluated")?;
        self.close("row")?;
        let id = &r.identifiers;
        self.open("identifiers")?;
        self.leaf("header_from", Some(&id.header_from))?;
        self.leaf("envelope_from", id.envelope_from.as_deref())?;
        self.leaf("envelope_to", id.envelope_to.as_deref())?;
        self.close("identifiers")?;
        self.open("auth_results")?;
        for d in &r.auth_results.dkim {
            self.open("dkim")?;
            self.leaf("domain", Some(&d.domain))?;
            self.leaf("selector", d.selector.as_deref())?;
            self.leaf("result", Some(d.result.as_str()))?;
            self.leaf9990("human_result", d.human_result.as_deref())?;
            self.close("dkim")?;
        }
        for s in &r.auth_results.spf {
            self.open("spf")?;
            self.leaf("domain", Some(&s.domain))?;
            self.leaf("scope", s.scope.as_ref().map(|v| v.as_str()))?;
            self.leaf("result", Some(s.result.as_str()))?;
            self.leaf9990("human_result", s.human_result.as_deref())?;
            self.close("spf")?;
        }
        self.close("auth_results")?;
        if !r.extensions.is_empty() && self.format == Format::Rfc9990 {
            self.open("extensions")?;
            self.extensions(&r.extensions)?;
            self.close("extensions")?;
        }
        self.close("record")
    }
}
