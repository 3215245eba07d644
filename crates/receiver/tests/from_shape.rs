//! Regression tests for the DMARC bypass through the shape of From (issue 9): a spoof of a
//! `p=reject` domain must not be accepted because its From field is padded past the field
//! limit, duplicated, broken, or holds addresses in several domains (RFC 9989 §5.3.1,
//! §11.5). Each shape goes through the receiver's single call, with the defaults and
//! with the opt-ins that let it through.

// The zone helper of the protocol crate's DMARC tests.
#[path = "../../proto/tests/dmarc_support/mod.rs"]
mod dmarc_support;

use dmarc_proto::FixedClock;
use dmarc_proto::dmarc::{
    AuthorOptions, DmarcResult, MAX_AUTHOR_DOMAINS, MAX_FIELD_LEN, MultipleAddresses,
    MultipleFields, Unreadable,
};
use dmarc_receiver::{Action, FixedDraw, ReceiverConfig, SmtpFacts, Verdicts, verify_message};
use dmarc_support::Zone;
use futures_executor::block_on;

/// victim.example publishes p=reject; the attacker owns attacker.example, whose SPF passes
/// for the sending IP (so a message in attacker.example alone passes DMARC).
fn zone() -> Zone {
    Zone::new()
        .txt("_dmarc.victim.example", "v=DMARC1; p=reject")
        .txt("victim.example", "v=spf1 -all")
        .txt("_dmarc.attacker.example", "v=DMARC1; p=none")
        .txt("attacker.example", "v=spf1 ip4:192.0.2.1 -all")
}

fn verify(config: &ReceiverConfig, header: &str) -> Verdicts {
    let message = format!("{header}Subject: wire the money\r\n\r\nNow.\r\n");
    let facts = SmtpFacts::new("192.0.2.1".parse().unwrap(), "mail.attacker.example")
        .with_mail_from("bounce@attacker.example");
    block_on(verify_message(
        &zone(),
        &FixedClock::from_unix_seconds(1_700_000_000),
        &FixedDraw(0),
        config,
        &facts,
        message.as_bytes(),
    ))
}

fn default_config() -> ReceiverConfig {
    ReceiverConfig::new("mx.receiver.example")
}

fn with_author(author: AuthorOptions) -> ReceiverConfig {
    let mut c = default_config();
    c.dmarc.author = author;
    c
}

fn padded_from() -> String {
    format!(
        "From: \"{}\" <ceo@victim.example>\r\n",
        "A".repeat(MAX_FIELD_LEN + 10)
    )
}

const TWO_FROM_FIELDS: &str = "From: ceo@victim.example\r\nFrom: x@attacker.example\r\n";
const TWO_DOMAINS: &str = "From: ceo@victim.example, x@attacker.example\r\n";

#[test]
fn plain_spoof_is_rejected() {
    let v = verify(&default_config(), "From: ceo@victim.example\r\n");
    assert_eq!(v.dmarc.result, DmarcResult::Fail);
    assert_eq!(v.action, Action::Reject);
    // The attacker's own domain passes: the shapes below mix the two.
    let v = verify(&default_config(), "From: x@attacker.example\r\n");
    assert_eq!(v.dmarc.result, DmarcResult::Pass);
    assert_eq!(v.action, Action::Accept);
}

#[test]
fn from_longer_than_field_limit_does_not_bypass_dmarc() {
    let v = verify(&default_config(), &padded_from());
    assert_eq!(v.dmarc.result, DmarcResult::Fail, "{}", v.dmarc.reason);
    assert_eq!(v.action, Action::Reject);
    assert_eq!(v.dmarc.author_domain.as_deref(), Some("victim.example"));
    assert!(
        v.dmarc.reason.contains("longer than 16384 bytes")
            && v.dmarc
                .reason
                .contains("treated as a DMARC failure of victim.example"),
        "{}",
        v.dmarc.reason
    );
    // Configured to refuse: refused, whatever the domains.
    let reject = with_author(AuthorOptions {
        unreadable: Unreadable::Reject,
        ..AuthorOptions::default()
    });
    let v = verify(&reject, &padded_from());
    assert_eq!(v.dmarc.result, DmarcResult::PermError);
    assert_eq!(v.action, Action::Reject);
    // Accepting is an explicit opt-in.
    let accept = with_author(AuthorOptions {
        unreadable: Unreadable::Accept,
        ..AuthorOptions::default()
    });
    let v = verify(&accept, &padded_from());
    assert_eq!(v.dmarc.result, DmarcResult::PermError);
    assert_eq!(v.action, Action::Accept);
}

#[test]
fn two_from_fields_do_not_bypass_dmarc() {
    let v = verify(&default_config(), TWO_FROM_FIELDS);
    assert_eq!(v.dmarc.result, DmarcResult::Fail, "{}", v.dmarc.reason);
    assert_eq!(v.action, Action::Reject);
    assert!(
        v.dmarc.reason.contains("2 From fields"),
        "{}",
        v.dmarc.reason
    );
    // Even when both name the attacker's passing domain, a duplicated From is no pass.
    let v = verify(
        &default_config(),
        "From: x@attacker.example\r\nFrom: y@attacker.example\r\n",
    );
    assert_eq!(v.dmarc.result, DmarcResult::Fail);
    // Pooled and evaluated: the strictest verdict (victim.example's reject).
    let pool = with_author(AuthorOptions {
        multiple_fields: MultipleFields::Evaluate,
        ..AuthorOptions::default()
    });
    assert_eq!(verify(&pool, TWO_FROM_FIELDS).action, Action::Reject);
    let reject = with_author(AuthorOptions {
        multiple_fields: MultipleFields::Reject,
        ..AuthorOptions::default()
    });
    let v = verify(&reject, TWO_FROM_FIELDS);
    assert_eq!(
        (v.dmarc.result, v.action),
        (DmarcResult::PermError, Action::Reject)
    );
    let accept = with_author(AuthorOptions {
        multiple_fields: MultipleFields::Accept,
        ..AuthorOptions::default()
    });
    let v = verify(&accept, TWO_FROM_FIELDS);
    assert_eq!(
        (v.dmarc.result, v.action),
        (DmarcResult::PermError, Action::Accept)
    );
}

#[test]
fn from_with_two_domains_does_not_bypass_dmarc() {
    let v = verify(&default_config(), TWO_DOMAINS);
    assert_eq!(v.dmarc.result, DmarcResult::Fail, "{}", v.dmarc.reason);
    assert_eq!(v.action, Action::Reject);
    assert_eq!(v.dmarc.author_domain.as_deref(), Some("victim.example"));
    assert!(
        v.dmarc.reason.contains("strictest of 2 Author Domains"),
        "{}",
        v.dmarc.reason
    );
    // In either order.
    let v = verify(
        &default_config(),
        "From: x@attacker.example, ceo@victim.example\r\n",
    );
    assert_eq!(v.action, Action::Reject);
    // Group syntax is no way round it.
    let v = verify(
        &default_config(),
        "From: Team: x@attacker.example, ceo@victim.example;\r\n",
    );
    assert_eq!(v.action, Action::Reject);
    // OpenDMARC's RejectMultiValueFrom.
    let reject = with_author(AuthorOptions {
        multiple_addresses: MultipleAddresses::Reject,
        ..AuthorOptions::default()
    });
    let v = verify(&reject, "From: x@attacker.example, y@attacker.example\r\n");
    assert_eq!(
        (v.dmarc.result, v.action),
        (DmarcResult::PermError, Action::Reject)
    );
    // Declining is an explicit opt-in.
    for opt_in in [
        MultipleAddresses::SameDomainOnly,
        MultipleAddresses::Decline,
    ] {
        let c = with_author(AuthorOptions {
            multiple_addresses: opt_in,
            ..AuthorOptions::default()
        });
        let v = verify(&c, TWO_DOMAINS);
        assert_eq!(
            (v.dmarc.result, v.action),
            (DmarcResult::None, Action::Accept)
        );
    }
}

#[test]
fn from_with_too_many_domains_is_refused() {
    let many: Vec<String> = (0..=MAX_AUTHOR_DOMAINS)
        .map(|i| format!("x@d{i}.attacker.example"))
        .collect();
    let v = verify(
        &default_config(),
        &format!("From: {}, ceo@victim.example\r\n", many.join(", ")),
    );
    assert_eq!(v.dmarc.result, DmarcResult::PermError);
    assert!(v.dmarc.from_refused);
    assert_eq!(v.action, Action::Reject);
}

#[test]
fn victim_after_many_addresses_is_still_evaluated() {
    // More addresses than are kept (64), the victim's last: its domain still counts.
    let many: Vec<String> = (0..100).map(|i| format!("x{i}@attacker.example")).collect();
    let v = verify(
        &default_config(),
        &format!("From: {}, ceo@victim.example\r\n", many.join(", ")),
    );
    assert_eq!(v.dmarc.result, DmarcResult::Fail, "{}", v.dmarc.reason);
    assert_eq!(v.action, Action::Reject);
}

#[test]
fn broken_from_does_not_bypass_dmarc() {
    // An unclosed quoted string makes the field unreadable; the domain it names still
    // fails.
    let v = verify(&default_config(), "From: \"Boss <ceo@victim.example>\r\n");
    assert_eq!(v.dmarc.result, DmarcResult::Fail, "{}", v.dmarc.reason);
    assert_eq!(v.action, Action::Reject);
    // An invalid domain beside the victim's.
    let v = verify(
        &default_config(),
        "From: a@[192.0.2.1], ceo@victim.example\r\n",
    );
    assert_eq!(v.action, Action::Reject);
}

#[test]
fn from_naming_no_domain_is_refused() {
    for header in [
        "",
        "From: Nobody\r\n",
        "From: undisclosed:;\r\n",
        "From: a@[192.0.2.1]\r\n",
    ] {
        let v = verify(&default_config(), header);
        assert_eq!(v.dmarc.result, DmarcResult::PermError, "{header:?}");
        assert!(v.dmarc.from_refused, "{header:?}");
        assert_eq!(v.action, Action::Reject, "{header:?}");
        assert!(
            v.authentication_results_header()
                .contains("dmarc=permerror"),
            "{header:?}"
        );
    }
}
