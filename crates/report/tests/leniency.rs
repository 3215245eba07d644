//! Real-world leniency, each case with what it must keep and what it must say.

use dmarc_report::aggregate::*;
use dmarc_report::failure::{AuthFailure, FeedbackType, IdentityAlignment};
use dmarc_report::{Limits, ParsedReport, parse, parse_message, parse_named};

use crate::hostile::{SMALL_REPORT, gzip, zip_of};

fn agg(xml: &str) -> AggregateReport {
    dmarc_report::parse_aggregate_xml(xml.as_bytes(), &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn only(
    results: Vec<Result<dmarc_report::Parsed, dmarc_report::ReportError>>,
) -> dmarc_report::Parsed {
    assert_eq!(results.len(), 1, "{results:?}");
    results
        .into_iter()
        .next()
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn as_agg(p: &dmarc_report::Parsed) -> &AggregateReport {
    match &p.report {
        ParsedReport::Aggregate(a) => a,
        other => panic!("not aggregate: {other:?}"),
    }
}

#[test]
fn capitalised_words_padding_decimal_epochs_no_version() {
    let xml = r#"<feedback>
 <report_metadata>
  <org_name>  Example Org  </org_name><email>a@b</email><report_id>
     id-1
  </report_id>
  <date_range><begin>1337270400.0</begin><end> 1337356799.000 </end></date_range>
 </report_metadata>
 <policy_published><domain>Example.COM.</domain><adkim>R</adkim><aspf>Strict</aspf>
   <p>Reject</p><sp>QUARANTINE</sp><pct>100</pct><fo></fo></policy_published>
 <record><row><source_ip> 2001:DB8::1 </source_ip><count>7</count>
   <policy_evaluated><disposition>None</disposition><dkim>FAIL</dkim><spf>Pass</spf>
   <reason><type></type></reason></policy_evaluated></row>
   <identifiers><header_from>example.com</header_from></identifiers>
   <auth_results><spf><domain>example.com</domain><result>SoftFail</result></spf></auth_results>
 </record></feedback>"#;
    let r = agg(xml);
    assert_eq!(r.version, None);
    assert_eq!(r.metadata.org_name, "Example Org");
    assert_eq!(r.metadata.report_id, "id-1");
    assert_eq!(r.metadata.date_range.begin, 1_337_270_400);
    assert_eq!(r.metadata.date_range.end, 1_337_356_799);
    let p = &r.policy_published;
    assert_eq!(p.adkim, Some(Alignment::Relaxed));
    assert_eq!(p.aspf, Some(Alignment::Strict));
    assert_eq!(p.p, Some(Disposition::Reject));
    assert_eq!(p.sp, Some(Disposition::Quarantine));
    assert_eq!(p.pct, Some(100));
    assert_eq!(p.fo, None, "empty element is absent");
    let rec = &r.records[0];
    assert_eq!(rec.source_ip.to_string(), "2001:db8::1");
    assert_eq!(
        rec.policy_evaluated.disposition,
        Some(ActionDisposition::None)
    );
    assert_eq!(rec.policy_evaluated.dkim, Some(DmarcResult::Fail));
    assert!(
        rec.policy_evaluated.reasons.is_empty(),
        "empty reason type carries nothing"
    );
    assert_eq!(rec.auth_results.spf[0].result, SpfResult::SoftFail);
    assert_eq!(rec.auth_results.spf[0].scope, None);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let key = r.report_key();
    assert_eq!(key.policy_domain, "example.com");
    assert_eq!(
        (key.org_name.as_str(), key.report_id.as_str()),
        ("Example Org", "id-1")
    );
}

#[test]
fn unknown_words_are_kept_and_reported() {
    let xml = SMALL_REPORT
        .replace("<p>reject</p>", "<p>bounce</p>")
        .replace("<result>pass</result>", "<result>hardpass</result>");
    let r = agg(&xml);
    assert_eq!(
        r.policy_published.p,
        Some(Disposition::Unknown("bounce".into()))
    );
    assert_eq!(
        r.records[0].auth_results.dkim[0].result,
        DkimResult::Unknown("hardpass".into())
    );
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
}

#[test]
fn namespaces_prefixes_and_draft_identities() {
    let xml = SMALL_REPORT
        .replace(
            "<feedback>",
            r#"<d:feedback xmlns:d="http://dmarc.org/dmarc-xml/0.2">"#,
        )
        .replace("</feedback>", "</d:feedback>")
        .replace("identifiers>", "identities>");
    let r = agg(&xml);
    assert_eq!(r.records[0].identifiers.header_from, "example.com");
    let xml9990 = SMALL_REPORT.replace(
        "<feedback>",
        r#"<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">"#,
    );
    assert_eq!(agg(&xml9990), agg(SMALL_REPORT));
}

#[test]
fn crlf_and_lf_give_the_same_report() {
    let crlf = dmarc_testkit::to_crlf(SMALL_REPORT.as_bytes());
    let a = dmarc_report::parse_aggregate_xml(&crlf, &Limits::default()).unwrap();
    assert_eq!(a, agg(SMALL_REPORT));
}

#[test]
fn entities_and_stray_ampersands() {
    let xml = SMALL_REPORT.replace(
        "<org_name>example.net</org_name>",
        "<org_name>AT&amp;T &#233;&#x41; &lt;x&gt; & co</org_name>",
    );
    assert_eq!(agg(&xml).metadata.org_name, "AT&T éA <x> & co");
}

#[test]
fn invalid_utf8_is_replaced_with_a_warning() {
    let mut bytes = SMALL_REPORT.as_bytes().to_vec();
    let at = SMALL_REPORT.find("example.net").unwrap();
    bytes[at] = 0xff;
    let r = dmarc_report::parse_aggregate_xml(&bytes, &Limits::default()).unwrap();
    assert_eq!(r.metadata.org_name, "\u{fffd}xample.net");
    assert!(
        r.warnings.iter().any(|w| w.contains("UTF-8")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn latin1_declared_documents_are_decoded() {
    let xml = SMALL_REPORT
        .replace(
            r#"<?xml version="1.0"?>"#,
            r#"<?xml version="1.0" encoding="ISO-8859-1"?>"#,
        )
        .replace("example.net</org_name>", "M\u{fc}ller</org_name>");
    let bytes: Vec<u8> = xml.chars().map(|c| c as u32 as u8).collect();
    let r = dmarc_report::parse_aggregate_xml(&bytes, &Limits::default()).unwrap();
    assert_eq!(r.metadata.org_name, "Müller");
    assert!(r.warnings.iter().any(|w| w.contains("ISO-8859-1")));
}

#[test]
fn truncated_xml_keeps_complete_records_and_says_what_was_lost() {
    let one = &SMALL_REPORT
        [SMALL_REPORT.find("<record>").unwrap()..SMALL_REPORT.find("</feedback>").unwrap()];
    let full = SMALL_REPORT.replace("</feedback>", &format!("{one}{one}</feedback>"));
    // Cut in the middle of the third record.
    let third = full.rfind("<record>").unwrap();
    let cut = &full[..third + 40];
    let r = agg(cut);
    assert_eq!(r.records.len(), 2);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("ends inside") || w.contains("cut off")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn mismatched_tags_are_recovered() {
    let xml = SMALL_REPORT.replace(
        "<header_from>example.com</header_from>",
        "<header_from>example.com<foo</header_from>",
    );
    let r = agg(&xml);
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].identifiers.header_from, "example.com");
    assert!(!r.warnings.is_empty());
}

#[test]
fn unknown_elements_are_ignored_or_kept_as_extensions() {
    let xml = SMALL_REPORT
        .replace("<p>reject</p>", "<p>reject</p><x-vendor>1</x-vendor>")
        .replace(
            "</auth_results>",
            r#"</auth_results><vendor_score kind="a">5</vendor_score>"#,
        );
    let r = agg(&xml);
    assert_eq!(r.records[0].extensions.len(), 1);
    assert_eq!(r.records[0].extensions[0].name, "vendor_score");
    assert_eq!(r.records[0].extensions[0].content, "5");
    assert!(
        r.warnings.iter().any(|w| w.contains("x-vendor")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn several_spf_results_and_helo_scope() {
    let xml = SMALL_REPORT.replace(
        "</auth_results>",
        "<spf><domain>mx.example.com</domain><scope>helo</scope><result>pass</result></spf>\
         <spf><domain>example.com</domain><scope>mfrom</scope><result>fail</result></spf></auth_results>",
    );
    let r = agg(&xml);
    let spf = &r.records[0].auth_results.spf;
    assert_eq!(spf.len(), 2);
    assert_eq!(spf[0].scope, Some(SpfScope::Helo));
    assert_eq!(spf[1].scope, Some(SpfScope::MailFrom));
}

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.as_bytes()
        .chunks(76)
        .map(|l| String::from_utf8(l.to_vec()).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

fn email_with(ctype: &str, name: &str, body: &[u8]) -> Vec<u8> {
    format!(
        "From: dmarc@example.net\nTo: rua@example.com\nSubject: Report domain: example.com\n\
         MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\n\
         Content-Type: text/plain\n\nThis is an aggregate report.\n--B\n\
         Content-Type: {ctype}; name=\"{name}\"\nContent-Transfer-Encoding: base64\n\
         Content-Disposition: attachment; filename=\"{name}\"\n\n{}\n--B--\n",
        b64(body)
    )
    .into_bytes()
}

#[test]
fn email_with_zip_attachment_and_path() {
    let z = zip_of(&[("example.net!example.com!1!2.xml", SMALL_REPORT.as_bytes())]);
    let msg = email_with("application/zip", "report.zip", &z);
    let p = only(parse_named("message.eml", &msg, &Limits::default()));
    assert_eq!(
        p.source.to_string(),
        "message.eml > attachment report.zip > example.net!example.com!1!2.xml"
    );
    assert_eq!(as_agg(&p).records.len(), 1);
}

#[test]
fn gzip_labelled_octet_stream_is_found_by_magic() {
    let msg = email_with(
        "application/octet-stream",
        "r.dat",
        &gzip(SMALL_REPORT.as_bytes()),
    );
    let p = only(parse(&msg, &Limits::default()));
    assert_eq!(as_agg(&p).metadata.report_id, "r1");
}

#[test]
fn single_part_gzip_message_and_maildir_file() {
    let msg = format!(
        "Subject: Report\nContent-Type: application/gzip\nContent-Transfer-Encoding: base64\n\n{}\n",
        b64(&gzip(SMALL_REPORT.as_bytes()))
    );
    let p = only(parse_message(
        "cur/1700000000.M1P2.host:2,S",
        msg.as_bytes(),
        &Limits::default(),
    ));
    assert_eq!(as_agg(&p).records.len(), 1);
}

#[test]
fn inline_xml_report_in_quoted_printable_body() {
    let qp = SMALL_REPORT.replace('=', "=3D");
    let msg = format!(
        "Subject: Report\nContent-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: quoted-printable\n\n{qp}"
    );
    let p = only(parse(msg.as_bytes(), &Limits::default()));
    assert_eq!(as_agg(&p).metadata.org_name, "example.net");
}

#[test]
fn mbox_gives_one_result_per_message() {
    let m1 = email_with(
        "application/gzip",
        "a.xml.gz",
        &gzip(SMALL_REPORT.as_bytes()),
    );
    let m2 = email_with(
        "application/gzip",
        "b.xml.gz",
        &gzip(
            SMALL_REPORT
                .replace("<report_id>r1", "<report_id>r2")
                .as_bytes(),
        ),
    );
    let mut mbox = b"From dmarc@example.net Mon Jan  1 00:00:00 2024\n".to_vec();
    mbox.extend_from_slice(&m1);
    mbox.extend_from_slice(b"\nFrom dmarc@example.net Mon Jan  1 00:00:01 2024\n");
    mbox.extend_from_slice(&m2);
    let results = parse_named("inbox.mbox", &mbox, &Limits::default());
    assert_eq!(results.len(), 2, "{results:?}");
    let ids: Vec<String> = results
        .iter()
        .map(|r| as_agg(r.as_ref().unwrap()).metadata.report_id.clone())
        .collect();
    assert_eq!(ids, ["r1", "r2"]);
    assert!(
        results[1]
            .as_ref()
            .unwrap()
            .source
            .to_string()
            .starts_with("inbox.mbox > message 2")
    );
}

#[test]
fn trailing_bytes_after_a_gzip_member_are_ignored_with_a_warning() {
    let mut gz = gzip(SMALL_REPORT.as_bytes());
    gz.extend_from_slice(b"\r\n\r\nsome trailing junk");
    let p = only(parse_named("r.xml.gz", &gz, &Limits::default()));
    let a = as_agg(&p);
    assert_eq!(a.records.len(), 1);
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("after the last gzip member"))
    );
    assert_eq!(p.source.to_string(), "r.xml.gz > r.xml");
}

/// Issue 9: a gzip file of several members (valid, and what `zcat` reads) is read whole,
/// not cut after the first member.
#[test]
fn multi_member_gzip_is_read_whole() {
    let text = SMALL_REPORT.as_bytes();
    for pieces in [2, 3, 7] {
        let step = text.len().div_ceil(pieces);
        let mut gz = Vec::new();
        for chunk in text.chunks(step) {
            gz.extend_from_slice(&gzip(chunk));
        }
        let p = only(parse_named("r.xml.gz", &gz, &Limits::default()));
        let a = as_agg(&p);
        assert_eq!(a.records.len(), 1);
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
        assert_eq!(p.source.to_string(), "r.xml.gz > r.xml");
    }
    // Junk after the last of several members: a warning.
    let (head, tail) = text.split_at(text.len() / 2);
    let mut gz = gzip(head);
    gz.extend_from_slice(&gzip(tail));
    gz.extend_from_slice(b"junk");
    let p = only(parse_named("r.xml.gz", &gz, &Limits::default()));
    assert!(
        as_agg(&p)
            .warnings
            .iter()
            .any(|w| w.contains("4 bytes after the last gzip member (of 2)"))
    );
}

#[test]
fn tls_report_gzipped_with_nulls() {
    let json = br#"{"organization-name":"X","date-range":{"start-datetime":"2024-01-01T00:00:00Z",
      "end-datetime":"2024-01-01T23:59:59Z"},"contact-info":null,"report-id":"1",
      "policies":[{"policy":{"policy-type":"sts","policy-domain":"example.com","policy-string":null,
      "mx-host":null},"summary":{"total-successful-session-count":3,"total-failure-session-count":1},
      "failure-details":[{"result-type":"validation-failure","failed-session-count":1,
      "sending-mta-ip":null,"receiving-mx-hostname":null,"additional-information":null}]}]}"#;
    let p = only(parse(&gzip(json), &Limits::default()));
    let ParsedReport::SmtpTls(t) = &p.report else {
        panic!()
    };
    assert_eq!(t.contact_info, None);
    assert_eq!(t.date_range.begin, Some(1_704_067_200));
    assert_eq!(t.policies[0].failure_details[0].sending_mta_ip, None);
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[test]
fn rfc9991_example_failure_report() {
    // RFC 9991 §8 example, with a base64 feedback part, multipart/mixed and a blank first line.
    let fields = "\nFeedback-Type: auth-failure\nVersion: 1\nUser-Agent: DMARC-Filter/1.2.3\n\
        Auth-Failure: dmarc\nAuthentication-Results: gen.example;\n  dmarc=fail header.from=consumer.example\n\
        Identity-Alignment: dkim\nDKIM-Domain: consumer.example\nDKIM-Identity: @consumer.example\n\
        DKIM-Selector: epsilon\nOriginal-Envelope-Id: 65E1A3F0A0\n\
        Original-Mail-From: author=gen.example@forwarder.example\nSource-IP: 192.0.2.2\n\
        Source-Port: 12345\nReported-Domain: consumer.example\n\
        Arrival-Date: Tue, 19 Jul 2022 00:57:48 -0500\nDelivery-Result: reject\n";
    let msg = format!(
        "From: DMARC Filter <DMARC@gen.example>\nSubject: FW: subject\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"M\"\n\n--M\nContent-Type: text/plain\n\n\
         This is an authentication failure report.\n--M\nContent-Type: message/feedback-report\n\
         Content-Transfer-Encoding: base64\n\n{}\n--M\nContent-Type: text/rfc822-headers\n\n\
         From: someone@consumer.example\nSubject: original\n\n--M--\n",
        b64(fields.as_bytes())
    );
    let p = only(parse(msg.as_bytes(), &Limits::default()));
    let ParsedReport::Failure(f) = &p.report else {
        panic!("{p:?}")
    };
    assert_eq!(f.feedback_type, Some(FeedbackType::AuthFailure));
    assert_eq!(f.auth_failure, Some(AuthFailure::Dmarc));
    assert_eq!(
        f.identity_alignment,
        Some(IdentityAlignment {
            dkim: true,
            spf: false
        })
    );
    assert_eq!(f.source_ip.unwrap().to_string(), "192.0.2.2");
    assert_eq!(f.source_port, Some(12345));
    assert_eq!(f.reported_domain, ["consumer.example"]);
    assert_eq!(f.dkim_selector.as_deref(), Some("epsilon"));
    assert_eq!(f.arrival_timestamp, Some(1_658_210_268));
    assert_eq!(
        f.delivery_result,
        Some(dmarc_report::failure::DeliveryResult::Reject)
    );
    assert_eq!(
        f.original_headers.as_deref(),
        Some("From: someone@consumer.example\nSubject: original\n")
    );
    assert!(f.warnings.iter().any(|w| w.contains("multipart/report")));
}

#[test]
fn plain_text_failure_notice_without_arf() {
    let msg =
        b"From: mailer@receiver.example\nTo: ruf@example.com\nSubject: DMARC failure report\n\n\
        A message claiming to be from you has failed the published DMARC\n\
        policy for your domain.\n\n\
          Sender Domain: example.com\n\
          Sender IP Address: 198.51.100.7\n\
          Received Date: Mon, 1 Jan 2024 10:00:00 +0000\n\
          SPF Alignment: no\n\
          DKIM Alignment: yes\n\
          DMARC Results: Reject\n";
    let p = only(parse(msg, &Limits::default()));
    let ParsedReport::Failure(f) = &p.report else {
        panic!("{p:?}")
    };
    assert_eq!(f.feedback_type, Some(FeedbackType::AuthFailure));
    assert_eq!(f.source_ip.unwrap().to_string(), "198.51.100.7");
    assert_eq!(f.reported_domain, ["example.com"]);
    assert_eq!(f.arrival_timestamp, Some(1_704_103_200));
    assert_eq!(
        f.identity_alignment,
        Some(IdentityAlignment {
            dkim: false,
            spf: true
        })
    );
    assert!(f.warnings.iter().any(|w| w.contains("not an ARF report")));
}

fn parse_err(xml: &str) -> String {
    match parse(xml.as_bytes(), &Limits::default()).pop() {
        Some(Err(e)) => e.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Issue 9: a count that is a number but out of range is not called "not a number".
#[test]
fn out_of_range_count_is_not_called_not_a_number() {
    let big = SMALL_REPORT.replace("<count>2</count>", "<count>99999999999999999999999</count>");
    let e = parse_err(&big);
    assert!(e.contains("is out of range"), "{e}");
    assert!(!e.contains("not a number"), "{e}");
    let neg = SMALL_REPORT.replace("<count>2</count>", "<count>-3</count>");
    assert!(parse_err(&neg).contains("is negative"));
    let word = SMALL_REPORT.replace("<count>2</count>", "<count>two</count>");
    assert!(parse_err(&word).contains("\"two\" is not a number"));
}

/// Issue 9: dates present but out of range are not reported as missing.
#[test]
fn out_of_range_dates_are_not_called_missing() {
    let xml = SMALL_REPORT.replace(
        "<begin>1700000000</begin>",
        "<begin>99999999999999999999999999</begin>",
    );
    let e = parse_err(&xml);
    assert!(e.contains("unreadable <date_range>"), "{e}");
    assert!(e.contains("out of range for a time in seconds"), "{e}");
    assert!(!e.contains("no <date_range>"), "{e}");
    let gone = SMALL_REPORT.replace(
        "<date_range><begin>1700000000</begin><end>1700086399</end></date_range>",
        "",
    );
    assert!(parse_err(&gone).contains("no <date_range> <begin> and <end>"));
}

/// Issue 9: a report that begins after it ends, or is dated in year 9999, is read with a
/// warning.
#[test]
fn implausible_dates_are_warned_about() {
    let backwards = SMALL_REPORT.replace(
        "<begin>1700000000</begin><end>1700086399</end>",
        "<begin>1700086399</begin><end>1700000000</end>",
    );
    let a = agg(&backwards);
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("begins (1700086399) after it ends (1700000000)")),
        "{:?}",
        a.warnings
    );
    // 9999-01-01 and the day after.
    let far = SMALL_REPORT.replace(
        "<begin>1700000000</begin><end>1700086399</end>",
        "<begin>253370764800</begin><end>253370851199</end>",
    );
    let a = agg(&far);
    assert!(
        a.warnings.iter().any(|w| w.contains("past 2100-01-01")),
        "{:?}",
        a.warnings
    );
    assert!(agg(SMALL_REPORT).warnings.is_empty());
}

fn utf16(text: &str, little: bool) -> Vec<u8> {
    let mut out = if little {
        vec![0xff, 0xfe]
    } else {
        vec![0xfe, 0xff]
    };
    for u in text.encode_utf16() {
        out.extend_from_slice(&if little {
            u.to_le_bytes()
        } else {
            u.to_be_bytes()
        });
    }
    out
}

/// Issue 9: UTF-16 XML with a byte-order mark is decoded, not refused as "not a report".
#[test]
fn utf16_xml_with_bom_is_decoded() {
    let xml = SMALL_REPORT.replace(
        "<?xml version=\"1.0\"?>",
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
    );
    for little in [true, false] {
        let p = only(parse_named(
            "r.xml",
            &utf16(&xml, little),
            &Limits::default(),
        ));
        let a = as_agg(&p);
        assert_eq!(a.records.len(), 1);
        assert_eq!(a.policy_published.domain, "example.com");
        assert!(
            a.warnings.iter().any(|w| w.contains("document is UTF-16")),
            "{:?}",
            a.warnings
        );
    }
    // Gzipped too.
    let p = only(parse_named(
        "r.xml.gz",
        &gzip(&utf16(&xml, true)),
        &Limits::default(),
    ));
    assert_eq!(as_agg(&p).records.len(), 1);
}

/// Issue 9: a `<feedback>` inside another root element that is never closed (a real
/// reporter sends this) is recovered, with a warning saying what was skipped.
#[test]
fn feedback_inside_an_unclosed_other_root_is_recovered() {
    let body = SMALL_REPORT.replace("<?xml version=\"1.0\"?>", "");
    let wrapped = format!(
        "<?xml version=\"1.0\"?>\n<schema xmlns=\"urn:x\"><meta><x>1</x></meta><empty/>\n{body}"
    );
    let a = agg(&wrapped);
    assert_eq!(a.records.len(), 1);
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("the root element is <schema> (line 2)")
                && w.contains("4 element(s) of <schema> before it skipped")),
        "{:?}",
        a.warnings
    );
    // Closed, it is recovered too.
    let closed = format!("{wrapped}</schema>\n");
    assert_eq!(agg(&closed).records.len(), 1);
    // Without a <feedback> anywhere: the old error.
    let e = parse_err("<schema><x/></schema>");
    assert!(
        e.contains("root element is <schema>, not <feedback>, and no <feedback> is inside it"),
        "{e}"
    );
}
