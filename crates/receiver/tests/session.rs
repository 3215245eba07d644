//! The staged session fed as a milter feeds it (header fields one by one, the body in
//! small chunks, the DNS work driven between steps) gives the same verdicts as
//! `verify_message` over every mail-bench message, and its observations say what the
//! verdicts say.

use std::sync::Arc;

use dmarc_proto::FixedClock;
use dmarc_proto::message::Message;
use dmarc_receiver::{FixedDraw, Receiver, ReceiverConfig, SmtpFacts, verify_message};
use futures_executor::block_on;

#[path = "../../proto/benches/support/map_lookup.rs"]
mod map_lookup;

#[test]
fn streamed_session_equals_verify_message_on_mail_bench() {
    let dir = dmarc_testkit::corpus("mail-bench");
    let lookup = Arc::new(map_lookup::load_zone_json(&dir.join("zone.json")));
    let clock = Arc::new(FixedClock::from_unix_seconds(1_795_400_000));
    let config = Arc::new(ReceiverConfig::new("mx.receiver.example"));
    // Shared resources: the session owns what it needs ('static).
    let receiver = Receiver {
        lookup: lookup.clone(),
        clock: clock.clone(),
        rng: Arc::new(FixedDraw(0)),
        config: config.clone(),
    };
    let cases = map_lookup::mail_bench_cases(&dir);
    assert_eq!(cases.len(), 300);
    for (n, (message, (ip, helo, mail_from))) in cases.iter().enumerate() {
        let facts = SmtpFacts::new(*ip, helo.clone()).with_mail_from(mail_from.clone());
        let whole = block_on(verify_message(
            &*lookup,
            &*clock,
            &FixedDraw(0),
            &config,
            &facts,
            message,
        ));

        let streamed = block_on(async {
            let mut tx = receiver.connect(*ip, helo.clone()).mail_from(mail_from);
            tx.drive().await;
            tx.rcpt_to("<postmaster@receiver.example>");
            tx.rcpt_to("someone@Other.Example");
            let msg = Message::parse(message);
            for (i, f) in msg.headers().iter().enumerate() {
                if i % 2 == 0 {
                    tx.header_bytes(f.raw());
                } else {
                    // name, then the value after the colon, without the final line end.
                    let raw = f.raw_without_eol();
                    let colon = raw.iter().position(|&b| b == b':').expect("a colon");
                    tx.header(&raw[..colon], &raw[colon + 1..]);
                }
            }
            let mut body = tx.end_of_headers();
            for chunk in msg.body().chunks(97) {
                body.body(chunk);
                body.drive().await;
            }
            body.finish().await
        });
        assert_eq!(
            streamed.authentication_results_header(),
            whole.authentication_results_header(),
            "message {n}"
        );
        assert_eq!(streamed.action, whole.action, "message {n}");
        assert_eq!(streamed.explain(), whole.explain(), "message {n}");
        let o = streamed.observation();
        assert_eq!(
            o.envelope_to,
            ["receiver.example", "other.example"],
            "message {n}"
        );
        assert_eq!(o.source_ip, *ip);
        assert_eq!(o.dmarc, whole.dmarc.result.as_str());
        assert_eq!(o.dkim.len(), whole.dkim.len());
        assert_eq!(
            o.policy_domain.as_deref(),
            whole.dmarc.policy_domain.as_deref()
        );
        assert_eq!(
            o.published.as_ref().map(|p| p.p.as_str()),
            whole.dmarc.record.as_ref().map(|r| r.p.as_str())
        );
        let w = whole.observation();
        assert_eq!(w.envelope_to, Vec::<String>::new());
        assert_eq!(
            (o.spf.clone(), o.dkim.clone(), o.disposition.clone()),
            (w.spf, w.dkim, w.disposition)
        );
    }
}

/// The observation in the words of the aggregate report, on a message whose DMARC fails
/// under a published p=reject.
#[test]
fn observation_of_a_failing_message() {
    let dir = dmarc_testkit::corpus("mail-bench");
    let lookup = map_lookup::load_zone_json(&dir.join("zone.json"));
    let clock = FixedClock::from_unix_seconds(1_795_400_000);
    let config = ReceiverConfig::new("mx.receiver.example");
    let cases = map_lookup::mail_bench_cases(&dir);
    let mut seen_fail = 0;
    for (message, (ip, helo, mail_from)) in &cases {
        let facts = SmtpFacts::new(*ip, helo.clone()).with_mail_from(mail_from.clone());
        let v = block_on(verify_message(
            &lookup,
            &clock,
            &FixedDraw(0),
            &config,
            &facts,
            message,
        ));
        let o = v.observation();
        assert_eq!(o.spf[0].scope, "mfrom");
        assert_eq!(
            o.envelope_from.as_deref(),
            mail_from.rsplit_once('@').map(|(_, d)| d)
        );
        match v.dmarc.result.as_str() {
            "fail" => {
                seen_fail += 1;
                assert!(o.spf_aligned == "fail" && o.dkim_aligned == "fail");
                assert_eq!(
                    o.disposition,
                    v.dmarc.applied_policy.expect("a policy").as_str()
                );
                assert!(o.published.is_some());
            }
            "pass" => {
                assert_eq!(o.disposition, "none");
                assert!(o.spf_aligned == "pass" || o.dkim_aligned == "pass");
            }
            _ => assert_eq!(o.disposition, "none"),
        }
        let json = serde_json::to_string(&o).expect("json");
        let back: dmarc_receiver::Observation = serde_json::from_str(&json).expect("back");
        assert_eq!(back, o);
    }
    assert!(seen_fail > 10, "{seen_fail}");
}
