//! Rendering a result: the Received-SPF header field (§9.1) and the `spf` result of
//! Authentication-Results (RFC 8601 §2.7.2).

use std::fmt::Write as _;

use super::{Identity, SpfOutput, SpfResult};
use crate::auth_results::{MethodResult, ResultSink};

impl SpfOutput {
    /// The comment for Received-SPF (§9.1), e.g.
    /// `mx.example.org: domain of alice@example.com designates 192.0.2.1 as permitted sender`.
    pub fn comment(&self, receiver: &str) -> String {
        let who = match self.identity {
            Identity::MailFrom => format!("domain of {}", self.sender),
            Identity::Helo => format!("domain of {}", self.domain),
        };
        let ip = self.ip;
        let text = match self.result {
            SpfResult::Pass => format!("{who} designates {ip} as permitted sender"),
            SpfResult::Fail => format!("{who} does not designate {ip} as permitted sender"),
            SpfResult::SoftFail => {
                format!(
                    "{who} does not designate {ip} as permitted sender (softfail: transitioning)"
                )
            }
            SpfResult::Neutral => format!("{ip} is neither permitted nor denied by {who}"),
            SpfResult::None => format!("{who} does not publish an SPF record: {}", self.reason),
            SpfResult::TempError => format!("temporary error checking {who}: {}", self.reason),
            SpfResult::PermError => format!(
                "permanent error in the SPF record of {who}: {}",
                self.reason
            ),
        };
        format!("{receiver}: {text}")
    }

    /// The whole Received-SPF header field (§9.1) on one line, without the final CRLF:
    ///
    /// ```text
    /// Received-SPF: pass (mx.example.org: domain of alice@example.com designates
    ///  192.0.2.1 as permitted sender) client-ip=192.0.2.1;
    ///  envelope-from="alice@example.com"; helo=mail.example.com; receiver=mx.example.org;
    ///  identity=mailfrom; mechanism="ip4:192.0.2.0/24"
    /// ```
    pub fn received_spf(&self, receiver: &str) -> String {
        let mut s = format!("Received-SPF: {} ", self.result);
        push_comment(&mut s, &self.comment(receiver));
        let mut pairs: Vec<(&str, String)> = vec![
            ("client-ip", self.ip.to_string()),
            ("envelope-from", self.sender.to_string()),
            ("helo", self.helo.to_string()),
            ("receiver", receiver.to_owned()),
            ("identity", self.identity.as_str().to_owned()),
        ];
        if let Some(t) = &self.deciding_term {
            pairs.push(("mechanism", t.term().to_owned()));
        }
        if matches!(self.result, SpfResult::PermError | SpfResult::TempError) {
            pairs.push(("problem", self.reason.to_string()));
        }
        for (i, (k, v)) in pairs.iter().enumerate() {
            s.push(if i == 0 { ' ' } else { ';' });
            if i > 0 {
                s.push(' ');
            }
            let _ = write!(s, "{k}=");
            push_value(&mut s, v);
        }
        s
    }

    /// The `spf` result for Authentication-Results (RFC 8601 §2.7.2): `spf=pass` with
    /// `smtp.mailfrom` (the sender checked) or `smtp.helo`, and the reason as a comment
    /// for the error results.
    pub fn auth_result(&self) -> MethodResult<'_> {
        MethodResult::collect(|m| self.write_auth_result(m))
    }

    /// Writes the `spf` result (as [`auth_result`](Self::auth_result) describes it) into
    /// `sink`.
    pub fn write_auth_result<'a>(&'a self, sink: &mut impl ResultSink<'a>) {
        sink.result("spf", self.result.as_str());
        if matches!(
            self.result,
            SpfResult::PermError | SpfResult::TempError | SpfResult::None
        ) {
            sink.reason(self.reason.as_str().into());
        }
        match self.identity {
            Identity::MailFrom => sink.property("smtp", "mailfrom", self.sender.as_str().into()),
            Identity::Helo => sink.property("smtp", "helo", self.domain.as_str().into()),
        }
    }
}

/// A comment: parentheses and backslashes escaped, controls replaced by spaces.
fn push_comment(s: &mut String, text: &str) {
    s.push('(');
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                s.push('\\');
                s.push(c);
            }
            c if c.is_control() => s.push(' '),
            c => s.push(c),
        }
    }
    s.push(')');
}

/// A key-value-pair value (§9.1): a dot-atom when possible, else a quoted-string.
fn push_value(s: &mut String, v: &str) {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let dot_atom = !v.is_empty() && v.split('.').all(|p| !p.is_empty() && p.chars().all(atext));
    if dot_atom {
        s.push_str(v);
        return;
    }
    s.push('"');
    for c in v.chars() {
        match c {
            '"' | '\\' => {
                s.push('\\');
                s.push(c);
            }
            c if c.is_control() => s.push(' '),
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::super::Trace;
    use super::*;

    fn output(result: SpfResult, identity: Identity) -> SpfOutput {
        SpfOutput {
            result,
            reason: "the reason (with parentheses)".into(),
            explanation: None,
            identity,
            domain: "example.com".into(),
            sender: "alice@example.com".into(),
            helo: "mail.example.com".into(),
            ip: "192.0.2.1".parse().unwrap(),
            lookups: 0,
            void_lookups: 0,
            dns_queries: 0,
            deciding_term: None,
            trace: Trace::default(),
        }
    }

    #[test]
    fn every_result_renders() {
        let cases = [
            (SpfResult::Pass, "designates 192.0.2.1 as permitted sender"),
            (
                SpfResult::Fail,
                "does not designate 192.0.2.1 as permitted sender",
            ),
            (SpfResult::SoftFail, "(softfail: transitioning\\)"),
            (
                SpfResult::Neutral,
                "192.0.2.1 is neither permitted nor denied",
            ),
            (SpfResult::None, "does not publish an SPF record"),
            (SpfResult::TempError, "temporary error"),
            (SpfResult::PermError, "permanent error"),
        ];
        for (result, needle) in cases {
            let h = output(result, Identity::MailFrom).received_spf("mx.example.net");
            assert!(
                h.starts_with(&format!("Received-SPF: {result} (mx.example.net: ")),
                "{h}"
            );
            assert!(h.contains(needle), "{h}");
            assert!(h.contains("identity=mailfrom"), "{h}");
            let errors = matches!(result, SpfResult::TempError | SpfResult::PermError);
            assert_eq!(
                h.contains("problem=\"the reason (with parentheses)\""),
                errors,
                "{h}"
            );
            if errors {
                assert!(
                    h.contains("the reason \\(with parentheses\\)"),
                    "comment escaped: {h}"
                );
            }
        }
        let ar = output(SpfResult::Pass, Identity::Helo)
            .auth_result()
            .to_string();
        assert_eq!(ar, "spf=pass smtp.helo=example.com");
        let ar = output(SpfResult::TempError, Identity::MailFrom)
            .auth_result()
            .to_string();
        assert_eq!(
            ar,
            "spf=temperror reason=\"the reason (with parentheses)\" smtp.mailfrom=alice@example.com"
        );
    }
}
