//! Findings: one thing a check noticed, with its area, severity, stable code and a
//! sentence saying what to change.

use std::fmt;

use serde::Serialize;

/// The part of a domain's mail setup a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// The DMARC policy record (RFC 9989).
    Dmarc,
    /// The SPF record and everything it includes (RFC 7208).
    Spf,
    /// DKIM key records (RFC 6376).
    Dkim,
    /// The MX records (RFC 5321, RFC 7505).
    Mx,
    /// MTA-STS (RFC 8461).
    MtaSts,
    /// SMTP TLS Reporting (RFC 8460).
    TlsRpt,
    /// BIMI (draft-brand-indicators-for-message-identification).
    Bimi,
    /// The sender setup check: mail sent through one service.
    Sender,
}

impl Area {
    /// Every area, in the order output groups them.
    pub const ALL: [Area; 8] = [
        Area::Dmarc,
        Area::Spf,
        Area::Dkim,
        Area::Mx,
        Area::MtaSts,
        Area::TlsRpt,
        Area::Bimi,
        Area::Sender,
    ];

    /// `dmarc`, `spf`, `dkim`, `mx`, `mta_sts`, `tls_rpt`, `bimi` or `sender`.
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Dmarc => "dmarc",
            Area::Spf => "spf",
            Area::Dkim => "dkim",
            Area::Mx => "mx",
            Area::MtaSts => "mta_sts",
            Area::TlsRpt => "tls_rpt",
            Area::Bimi => "bimi",
            Area::Sender => "sender",
        }
    }

    /// A heading for people: `DMARC`, `SPF`, ...
    pub fn title(self) -> &'static str {
        match self {
            Area::Dmarc => "DMARC",
            Area::Spf => "SPF",
            Area::Dkim => "DKIM",
            Area::Mx => "MX",
            Area::MtaSts => "MTA-STS",
            Area::TlsRpt => "TLS-RPT",
            Area::Bimi => "BIMI",
            Area::Sender => "Sender setup",
        }
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is wrong.
    Info,
    /// Works, but weakens protection or will break under some receivers.
    Warning,
    /// Broken: receivers ignore the record, fail the check, or reports are lost.
    Error,
}

impl Severity {
    /// `info`, `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, $area:ident, $severity:ident; )*) => {
        /// A stable identifier for one kind of finding. The text form (`dmarc_policy_none`)
        /// never changes once released; scripts and dashboards may match on it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable text form.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text,)* }
            }

            /// The area the code belongs to.
            pub fn area(self) -> Area {
                match self { $(Code::$variant => Area::$area,)* }
            }

            /// The severity a finding of this code has.
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }

            /// The code of a text form.
            pub fn from_text(text: &str) -> Option<Code> {
                match text { $($text => Some(Code::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    /// No DMARC record applies to the domain.
    DmarcMissing = "dmarc_missing", Dmarc, Error;
    /// A TXT record at `_dmarc` that looks like DMARC but does not start with `v=DMARC1`.
    DmarcVersion = "dmarc_version", Dmarc, Error;
    /// A syntax error in the record: the part is ignored (§4.8).
    DmarcSyntax = "dmarc_syntax", Dmarc, Error;
    /// Something receivers tolerate but the grammar does not allow.
    DmarcSyntaxWarning = "dmarc_syntax_warning", Dmarc, Warning;
    /// The record has no usable policy (§4.10.1).
    DmarcNoUsablePolicy = "dmarc_no_usable_policy", Dmarc, Error;
    /// A tag DMARC does not define.
    DmarcUnknownTag = "dmarc_unknown_tag", Dmarc, Warning;
    /// `pct`, `rf` or `ri`, which RFC 9989 removed.
    DmarcHistoricTag = "dmarc_historic_tag", Dmarc, Warning;
    /// More than one DMARC record at one name: all are discarded.
    DmarcMultipleRecords = "dmarc_multiple_records", Dmarc, Error;
    /// A DMARC record published where receivers never look.
    DmarcWrongName = "dmarc_wrong_name", Dmarc, Error;
    /// `p=none`: monitoring only.
    DmarcPolicyNone = "dmarc_policy_none", Dmarc, Warning;
    /// `sp` or `np` weaker than `p`.
    DmarcSubdomainWeaker = "dmarc_subdomain_weaker", Dmarc, Warning;
    /// `t=y`: the policy is applied one step milder.
    DmarcTesting = "dmarc_testing", Dmarc, Warning;
    /// No `rua`: no aggregate reports.
    DmarcNoRua = "dmarc_no_rua", Dmarc, Warning;
    /// An external aggregate-report destination that has not authorised the domain.
    DmarcRuaNotAuthorized = "dmarc_rua_not_authorized", Dmarc, Error;
    /// An external failure-report destination that has not authorised the domain.
    DmarcRufNotAuthorized = "dmarc_ruf_not_authorized", Dmarc, Error;
    /// A report address whose domain accepts no mail.
    DmarcReportNoMx = "dmarc_report_no_mx", Dmarc, Error;
    /// More than two URIs in `rua` or `ruf`.
    DmarcTooManyUris = "dmarc_too_many_uris", Dmarc, Warning;
    /// A report URI other than `mailto:`.
    DmarcUriScheme = "dmarc_uri_scheme", Dmarc, Warning;
    /// Strict SPF alignment with a MAIL FROM subdomain in use.
    DmarcStrictSpfBreaks = "dmarc_strict_spf_breaks", Dmarc, Warning;
    /// Strict DKIM alignment with a subdomain signer in use.
    DmarcStrictDkimBreaks = "dmarc_strict_dkim_breaks", Dmarc, Warning;
    /// `fo` without `ruf`.
    DmarcFoWithoutRuf = "dmarc_fo_without_ruf", Dmarc, Info;
    /// RFC 7489 discovery finds another record than the RFC 9989 tree walk.
    DmarcDiscoveryDiffers = "dmarc_discovery_differs", Dmarc, Warning;
    /// A temporary DNS failure while looking for the record.
    DmarcDnsError = "dmarc_dns_error", Dmarc, Error;

    /// No SPF record.
    SpfMissing = "spf_missing", Spf, Warning;
    /// More than one SPF record: permerror (§4.5).
    SpfMultipleRecords = "spf_multiple_records", Spf, Error;
    /// A syntax error: permerror (§4.6).
    SpfSyntax = "spf_syntax", Spf, Error;
    /// More than 10 DNS-querying terms (§4.6.4).
    SpfTooManyLookups = "spf_too_many_lookups", Spf, Error;
    /// More than 2 void lookups (§4.6.4).
    SpfTooManyVoidLookups = "spf_too_many_void_lookups", Spf, Error;
    /// An include or redirect loop.
    SpfLoop = "spf_loop", Spf, Error;
    /// An include target without an SPF record: permerror (§5.2).
    SpfIncludeMissing = "spf_include_missing", Spf, Error;
    /// A redirect target without an SPF record: permerror (§6.1).
    SpfRedirectMissing = "spf_redirect_missing", Spf, Error;
    /// A redirect ignored because the record has `all` (§6.1).
    SpfRedirectIgnored = "spf_redirect_ignored", Spf, Warning;
    /// The `ptr` mechanism (§5.5: do not use).
    SpfPtr = "spf_ptr", Spf, Warning;
    /// `+all`: anyone may send.
    SpfPassAll = "spf_pass_all", Spf, Error;
    /// `?all`: no assertion.
    SpfNeutralAll = "spf_neutral_all", Spf, Warning;
    /// No `all` and no `redirect`: the default result is neutral (§4.7).
    SpfNoAll = "spf_no_all", Spf, Warning;
    /// Terms after `all`, never evaluated.
    SpfTermsAfterAll = "spf_terms_after_all", Spf, Warning;
    /// An `a` target without addresses (a void lookup).
    SpfANoAddress = "spf_a_no_address", Spf, Warning;
    /// An `mx` target without MX records (a void lookup).
    SpfMxNoRecords = "spf_mx_no_records", Spf, Warning;
    /// An MX host of an `mx` mechanism without addresses.
    SpfMxHostNoAddress = "spf_mx_host_no_address", Spf, Warning;
    /// More than 10 MX hosts behind one `mx` (§4.6.4): permerror.
    SpfTooManyMx = "spf_too_many_mx", Spf, Error;
    /// A record over 450 bytes (§3.4).
    SpfRecordLong = "spf_record_long", Spf, Warning;
    /// A record over 255 bytes, which must be published as several strings.
    SpfRecordSplit = "spf_record_split", Spf, Info;
    /// Two terms glued together, as when strings are split without a space (§3.3).
    SpfSplitGlued = "spf_split_glued", Spf, Error;
    /// An `exp=` target without a TXT record.
    SpfExpMissing = "spf_exp_missing", Spf, Warning;
    /// A target with macros, which a static check cannot follow.
    SpfMacroNotFollowed = "spf_macro_not_followed", Spf, Info;
    /// What a receiver's evaluation ends in when it is an error not explained above.
    SpfPermerror = "spf_permerror", Spf, Error;
    /// A temporary DNS failure.
    SpfDnsError = "spf_dns_error", Spf, Error;

    /// None of the selectors tried has a key.
    DkimNoSelectorFound = "dkim_no_selector_found", Dkim, Info;
    /// A selector named (or seen in reports) without a key.
    DkimSelectorMissing = "dkim_selector_missing", Dkim, Error;
    /// `p=` empty: the key is revoked.
    DkimRevoked = "dkim_revoked", Dkim, Warning;
    /// The key record does not parse.
    DkimSyntax = "dkim_syntax", Dkim, Error;
    /// The public key does not parse.
    DkimBadKey = "dkim_bad_key", Dkim, Error;
    /// RSA below 1024 bits: unusable (RFC 8301 §3.2).
    DkimRsaTooSmall = "dkim_rsa_too_small", Dkim, Error;
    /// RSA below 2048 bits.
    DkimRsaWeak = "dkim_rsa_weak", Dkim, Warning;
    /// `t=y`: testing mode.
    DkimTesting = "dkim_testing", Dkim, Warning;
    /// `h=` allows only SHA-1 (RFC 8301 §3.1).
    DkimSha1Only = "dkim_sha1_only", Dkim, Error;
    /// `s=` excludes email.
    DkimNotForEmail = "dkim_not_for_email", Dkim, Error;
    /// A CNAME to a name without a key.
    DkimCnameDangling = "dkim_cname_dangling", Dkim, Error;
    /// A temporary DNS failure.
    DkimDnsError = "dkim_dns_error", Dkim, Error;

    /// No MX records.
    MxMissing = "mx_missing", Mx, Warning;
    /// A null MX: the domain accepts no mail (RFC 7505).
    MxNull = "mx_null", Mx, Info;
    /// A null MX beside other MX records (RFC 7505 §3).
    MxNullMixed = "mx_null_mixed", Mx, Error;
    /// An MX host without addresses.
    MxHostNoAddress = "mx_host_no_address", Mx, Error;
    /// An MX host that is a CNAME (RFC 2181 §10.3).
    MxHostCname = "mx_host_cname", Mx, Warning;
    /// An MX host address without reverse DNS.
    MxHostNoPtr = "mx_host_no_ptr", Mx, Warning;
    /// An MX exchange written as an IP address.
    MxIpLiteral = "mx_ip_literal", Mx, Error;
    /// A temporary DNS failure.
    MxDnsError = "mx_dns_error", Mx, Error;

    /// No MTA-STS record.
    MtaStsMissing = "mta_sts_missing", MtaSts, Info;
    /// The `_mta-sts` record is malformed.
    MtaStsRecordSyntax = "mta_sts_record_syntax", MtaSts, Error;
    /// More than one `_mta-sts` record.
    MtaStsMultipleRecords = "mta_sts_multiple_records", MtaSts, Error;
    /// The policy could not be fetched.
    MtaStsPolicyFetch = "mta_sts_policy_fetch", MtaSts, Error;
    /// The policy file is malformed.
    MtaStsPolicySyntax = "mta_sts_policy_syntax", MtaSts, Error;
    /// `mode: testing`.
    MtaStsTesting = "mta_sts_testing", MtaSts, Info;
    /// `mode: none`.
    MtaStsModeNone = "mta_sts_mode_none", MtaSts, Warning;
    /// An MX host not matched by the policy's `mx` patterns.
    MtaStsMxNotCovered = "mta_sts_mx_not_covered", MtaSts, Error;
    /// `max_age` outside a day to a year.
    MtaStsMaxAge = "mta_sts_max_age", MtaSts, Warning;

    /// No TLS-RPT record.
    TlsRptMissing = "tls_rpt_missing", TlsRpt, Info;
    /// The `_smtp._tls` record is malformed.
    TlsRptSyntax = "tls_rpt_syntax", TlsRpt, Error;
    /// More than one TLS-RPT record.
    TlsRptMultipleRecords = "tls_rpt_multiple_records", TlsRpt, Error;

    /// The BIMI record is malformed.
    BimiSyntax = "bimi_syntax", Bimi, Error;
    /// `l=` is not an HTTPS URL of an SVG file.
    BimiLogoUrl = "bimi_logo_url", Bimi, Error;
    /// No `a=` evidence (VMC/CMC).
    BimiNoEvidence = "bimi_no_evidence", Bimi, Warning;
    /// `a=` is not an HTTPS URL.
    BimiEvidenceUrl = "bimi_evidence_url", Bimi, Error;
    /// The DMARC policy does not enforce, which BIMI requires.
    BimiDmarcNotEnforcing = "bimi_dmarc_not_enforcing", Bimi, Error;

    /// The custom MAIL FROM domain does not exist.
    SenderMailFromMissing = "sender_mail_from_missing", Sender, Error;
    /// The MAIL FROM domain lacks the service's MX.
    SenderMailFromNoMx = "sender_mail_from_no_mx", Sender, Warning;
    /// The MAIL FROM domain's SPF does not authorise the service.
    SenderSpfNotAuthorizing = "sender_spf_not_authorizing", Sender, Error;
    /// The MAIL FROM domain does not align under `aspf`.
    SenderSpfNotAligned = "sender_spf_not_aligned", Sender, Error;
    /// A DKIM selector of the service has no key.
    SenderDkimMissing = "sender_dkim_missing", Sender, Error;
    /// The DKIM CNAME points elsewhere than the service.
    SenderDkimCnameWrong = "sender_dkim_cname_wrong", Sender, Error;
    /// The DKIM `d=` does not align under `adkim`.
    SenderDkimNotAligned = "sender_dkim_not_aligned", Sender, Error;
    /// Neither SPF nor DKIM will align: DMARC fails.
    SenderNoAlignment = "sender_no_alignment", Sender, Error;
    /// Only SPF aligns, which forwarding breaks.
    SenderSpfOnly = "sender_spf_only", Sender, Warning;
    /// The verdict when the setup passes.
    SenderAligned = "sender_aligned", Sender, Info;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One thing a check noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The area.
    pub area: Area,
    /// How serious.
    pub severity: Severity,
    /// The stable code.
    pub code: Code,
    /// What is wrong and what to change, for a person.
    pub message: String,
    /// The DNS name (or URL) the finding concerns, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Finding {
    /// A finding of `code` (its area and severity) with `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Finding {
        Finding {
            area: code.area(),
            severity: code.severity(),
            code,
            message: message.into(),
            name: None,
        }
    }

    /// The same, about `name`.
    pub fn at(code: Code, name: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            name: Some(name.into()),
            ..Finding::new(code, message)
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}] {}", self.severity, self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_prefixed_by_their_area() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert!(code.as_str().starts_with(code.area().as_str()), "{code}");
            assert_eq!(Code::from_text(code.as_str()), Some(*code));
        }
    }
}
