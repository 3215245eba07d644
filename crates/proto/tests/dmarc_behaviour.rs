//! DMARC behaviour the corpora do not pin down: DNS failure modes, `pct` sampling, the
//! existence test for `np`, the Author Domain options and the RFC 7489 list sections.

mod dmarc_support;

use std::sync::Arc;

use dmarc_proto::dmarc::{
    self, AuthResult, AuthorOptions, DkimIdentity, DmarcInput, DmarcOptions, DmarcResult,
    DnsFailureMode, MultipleAddresses, MultipleFields, Policy, PolicySource, Psl, PslSections,
    Spec, SpfIdentity, Unreadable,
};
use dmarc_support::Zone;
use futures_executor::block_on;

fn input(author: &str, dkim: &[&str]) -> DmarcInput {
    DmarcInput {
        author_domain: author.into(),
        spf: vec![],
        dkim: dkim
            .iter()
            .map(|d| DkimIdentity::new(*d, AuthResult::Pass))
            .collect(),
        pct_draw: None,
    }
}

#[test]
fn dns_failure_is_temperror_or_fails_open() {
    let zone = Zone::all_temperror();
    let out = block_on(dmarc::evaluate(
        &zone,
        &input("example.com", &[]),
        &DmarcOptions::default(),
    ));
    assert_eq!(out.result, DmarcResult::TempError);
    assert!(out.reason.contains("DNS"), "{}", out.reason);
    let open = DmarcOptions {
        dns_failure: DnsFailureMode::FailOpen,
        ..DmarcOptions::default()
    };
    let out = block_on(dmarc::evaluate(&zone, &input("example.com", &[]), &open));
    assert_eq!(out.result, DmarcResult::None);
    assert!(out.reason.contains("failing open"), "{}", out.reason);
}

#[test]
fn np_needs_the_existence_test_and_asks_concurrently_only_when_it_matters() {
    let zone = Zone::new().txt("_dmarc.example.com", "v=DMARC1; p=reject; np=quarantine");
    let out = block_on(dmarc::evaluate(
        &zone,
        &input("ghost.example.com", &[]),
        &DmarcOptions::default(),
    ));
    assert_eq!(out.author_domain_exists, Some(false));
    assert_eq!(out.policy_source, Some(PolicySource::Np));
    assert_eq!(out.requested_policy, Some(Policy::Quarantine));
    let types: Vec<String> = zone.queries().into_iter().map(|(t, _)| t).collect();
    assert!(types.contains(&"A".into()) && types.contains(&"MX".into()));

    // NODATA for A only, then an MX: the name exists.
    let zone = Zone::new()
        .txt("_dmarc.example.com", "v=DMARC1; p=reject; np=quarantine")
        .a("real.example.com", "192.0.2.1");
    let out = block_on(dmarc::evaluate(
        &zone,
        &input("real.example.com", &[]),
        &DmarcOptions::default(),
    ));
    assert_eq!(out.author_domain_exists, Some(true));
    assert_eq!(out.requested_policy, Some(Policy::Reject));

    // sp equals np: no existence queries at all.
    let zone = Zone::new().txt("_dmarc.example.com", "v=DMARC1; p=reject");
    let out = block_on(dmarc::evaluate(
        &zone,
        &input("ghost.example.com", &[]),
        &DmarcOptions::default(),
    ));
    assert_eq!(out.author_domain_exists, None);
    assert!(zone.queries().iter().all(|(t, _)| t == "TXT"));
}

#[test]
fn rfc7489_pct_sampling_uses_the_injected_draw() {
    let zone = Zone::new().txt("_dmarc.example.com", "v=DMARC1; p=reject; pct=30");
    let opts = DmarcOptions::rfc7489();
    let mut inp = input("example.com", &[]);
    inp.pct_draw = Some(29);
    let out = block_on(dmarc::evaluate(&zone, &inp, &opts));
    assert_eq!(out.spec, Spec::Rfc7489);
    assert_eq!(out.sampled, Some(true));
    assert_eq!(out.disposition(), Some(Policy::Reject));
    inp.pct_draw = Some(30);
    let out = block_on(dmarc::evaluate(&zone, &inp, &opts));
    assert_eq!(out.sampled, Some(false));
    assert_eq!(out.disposition(), Some(Policy::Quarantine));
    // RFC 9989 ignores pct.
    let out = block_on(dmarc::evaluate(&zone, &inp, &DmarcOptions::default()));
    assert_eq!(out.sampled, None);
    assert_eq!(out.disposition(), Some(Policy::Reject));
}

#[test]
fn rfc7489_ignores_np_and_t() {
    let zone = Zone::new().txt(
        "_dmarc.example.com",
        "v=DMARC1; p=reject; sp=reject; np=none; t=y",
    );
    let out = block_on(dmarc::evaluate(
        &zone,
        &input("ghost.example.com", &[]),
        &DmarcOptions::rfc7489(),
    ));
    assert_eq!(out.result, DmarcResult::Fail);
    assert_eq!(out.disposition(), Some(Policy::Reject));
    assert!(!out.testing);
}

#[test]
fn rfc7489_list_sections_are_configurable() {
    // a.b.blogspot.com: blogspot.com is a PRIVATE suffix.
    let zone = Zone::new()
        .txt("_dmarc.blogspot.com", "v=DMARC1; p=reject")
        .txt("_dmarc.b.blogspot.com", "v=DMARC1; p=none");
    let icann = DmarcOptions::rfc7489();
    let out = block_on(dmarc::evaluate(
        &zone,
        &input("a.b.blogspot.com", &[]),
        &icann,
    ));
    assert_eq!(out.policy_domain.as_deref(), Some("blogspot.com"));
    let all = DmarcOptions {
        psl_sections: PslSections::All,
        ..DmarcOptions::rfc7489()
    };
    let out = block_on(dmarc::evaluate(
        &zone,
        &input("a.b.blogspot.com", &[]),
        &all,
    ));
    assert_eq!(out.policy_domain.as_deref(), Some("b.blogspot.com"));
    // A list loaded from text.
    let custom = DmarcOptions {
        psl: Some(Arc::new(Psl::parse("com\nblogspot.com\n"))),
        ..DmarcOptions::rfc7489()
    };
    let out = block_on(dmarc::evaluate(
        &zone,
        &input("a.b.blogspot.com", &[]),
        &custom,
    ));
    assert_eq!(out.policy_domain.as_deref(), Some("b.blogspot.com"));
}

fn message(from: &[&str], options: &DmarcOptions) -> dmarc::DmarcOutput {
    let zone = Zone::new()
        .txt("_dmarc.example.com", "v=DMARC1; p=reject")
        .txt("_dmarc.example.org", "v=DMARC1; p=quarantine");
    let fields: Vec<&[u8]> = from.iter().map(|f| f.as_bytes()).collect();
    block_on(dmarc::evaluate_message(
        &zone,
        &fields,
        &[SpfIdentity::new("example.org", AuthResult::Pass)],
        &[],
        None,
        options,
    ))
}

fn with_author(author: AuthorOptions) -> DmarcOptions {
    DmarcOptions {
        author,
        ..DmarcOptions::default()
    }
}

#[test]
fn author_domain_outcomes() {
    let default = DmarcOptions::default();
    // No From field, no address: nothing to evaluate, refused by default.
    for from in [&[][..], &["Nobody"][..]] {
        let out = message(from, &default);
        assert_eq!(out.result, DmarcResult::PermError);
        assert!(out.from_refused, "{}", out.reason);
        assert_eq!(out.disposition(), Some(Policy::Reject));
    }
    // Several From fields: a failure of the domains they name (example.com: p=reject).
    let out = message(&["a@example.org", "b@example.com"], &default);
    assert_eq!(out.result, DmarcResult::Fail, "{}", out.reason);
    assert_eq!(out.author_domain.as_deref(), Some("example.com"));
    assert_eq!(out.disposition(), Some(Policy::Reject));
    assert!(out.reason.contains("2 From fields"), "{}", out.reason);
    // The old lenient readings are explicit opt-ins.
    let accept = with_author(AuthorOptions {
        unreadable: Unreadable::Accept,
        multiple_fields: MultipleFields::Accept,
        ..AuthorOptions::default()
    });
    let out = message(&[], &accept);
    assert_eq!(out.result, DmarcResult::PermError);
    assert_eq!(out.disposition(), None);
    let out = message(&["a@example.com", "b@example.com"], &accept);
    assert_eq!(out.result, DmarcResult::PermError);
    assert_eq!(out.disposition(), None);
    // Pooled: the fields' addresses evaluated as one field's.
    let pooled = with_author(AuthorOptions {
        multiple_fields: MultipleFields::Evaluate,
        ..AuthorOptions::default()
    });
    assert_eq!(
        message(&["a@example.org", "b@example.org"], &pooled).result,
        DmarcResult::Pass
    );
    // Same domain twice: one Author Domain.
    let out = message(&["a@example.org, b@example.org"], &default);
    assert_eq!(out.result, DmarcResult::Pass);
    // Two domains: each evaluated, the worst verdict wins (example.com fails with reject).
    let out = message(&["a@example.org, b@example.com"], &default);
    assert_eq!(out.result, DmarcResult::Fail);
    assert_eq!(out.author_domain.as_deref(), Some("example.com"));
    assert_eq!(out.disposition(), Some(Policy::Reject));
    // Declining is an opt-in.
    let same = with_author(AuthorOptions {
        multiple_addresses: MultipleAddresses::SameDomainOnly,
        ..AuthorOptions::default()
    });
    let out = message(&["a@example.org, b@example.com"], &same);
    assert!(out.declined);
    assert_eq!(out.result, DmarcResult::None);
    let decline = with_author(AuthorOptions {
        multiple_addresses: MultipleAddresses::Decline,
        ..AuthorOptions::default()
    });
    assert!(message(&["a@example.org, b@example.org"], &decline).declined);
    assert!(!message(&["a@example.org"], &decline).declined);
    // RejectMultiValueFrom: even one domain.
    let reject = with_author(AuthorOptions {
        multiple_addresses: MultipleAddresses::Reject,
        ..AuthorOptions::default()
    });
    let out = message(&["a@example.org, b@example.org"], &reject);
    assert!(out.from_refused);
    assert_eq!(out.disposition(), Some(Policy::Reject));
    assert_eq!(
        message(&["a@example.org"], &reject).result,
        DmarcResult::Pass
    );
}

#[test]
fn dkim_identities_are_bounded() {
    let zone = Zone::new().txt("_dmarc.example.com", "v=DMARC1; p=reject");
    let many: Vec<String> = (0..40).map(|i| format!("d{i}.example.com")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let out = block_on(dmarc::evaluate(
        &zone,
        &input("example.com", &refs),
        &DmarcOptions::default(),
    ));
    assert_eq!(out.dkim.len(), 16);
    // Each walk is at most eight queries, shared answers asked once.
    assert!(zone.queries().len() <= 2 + 16);
}

#[test]
fn only_pass_aligns_and_bad_identifiers_are_reported() {
    let zone = Zone::new().txt("_dmarc.example.com", "v=DMARC1; p=reject");
    let mut inp = input("example.com", &["exa mple.com"]);
    inp.spf = vec![SpfIdentity::new("example.com", AuthResult::SoftFail)];
    let out = block_on(dmarc::evaluate(&zone, &inp, &DmarcOptions::default()));
    assert_eq!(out.result, DmarcResult::Fail);
    assert!(out.spf[0].reason.to_string().contains("softfail"));
    assert!(
        out.dkim[0]
            .reason
            .to_string()
            .contains("not a usable domain")
    );
}

/// Every way an identifier is decided, with the words a person reads.
#[test]
fn alignment_reasons_name_the_domains() {
    use dmarc::AlignmentReason as R;
    let zone = Zone::new()
        .txt("_dmarc.example.com", "v=DMARC1; p=reject")
        .txt("_dmarc.esp.com", "v=DMARC1; p=none");
    let mut inp = input(
        "Mail.Example.COM.",
        &[
            "example.com",
            "Mail.Example.com",
            "esp.com",
            "other.net",
            "b.esp.com",
        ],
    );
    inp.spf = vec![SpfIdentity::new("bounce.example.com", AuthResult::Pass)];
    let out = block_on(dmarc::evaluate(&zone, &inp, &DmarcOptions::default()));
    assert_eq!(out.result, DmarcResult::Pass);
    assert_eq!(out.org_domain.as_deref(), Some("example.com"));
    let dkim: Vec<(String, bool, String)> = out
        .dkim
        .iter()
        .map(|r| (r.domain.clone(), r.aligned, r.reason.to_string()))
        .collect();
    assert_eq!(
        dkim[0],
        (
            "example.com".into(),
            true,
            "aligned (relaxed): both have the Organizational Domain example.com".into()
        )
    );
    assert_eq!(out.dkim[0].alignment_domain.as_deref(), Some("example.com"));
    assert_eq!(
        dkim[1],
        (
            "mail.example.com".into(),
            true,
            "aligned: identical to the Author Domain".into()
        )
    );
    assert_eq!(out.dkim[1].reason, R::Identical);
    assert_eq!(
        dkim[2].2,
        "not aligned: this domain is not under example.com, the Organizational Domain of mail.example.com"
    );
    assert_eq!(dkim[3].2, "not aligned: no common Organizational Domain");
    assert!(!dkim[4].1);
    assert_eq!(out.spf[0].reason.to_string(), dkim[0].2);
    assert!(out.spf[0].aligned);
    assert!(
        out.dkim
            .iter()
            .chain(&out.spf)
            .all(|r| r.reason != R::Pending)
    );

    // The author as its own Organizational Domain; strict mode; results other than pass.
    let zone = Zone::new().txt("_dmarc.brand.example", "v=DMARC1; p=reject; aspf=s");
    let mut inp = input("brand.example", &["esp.example"]);
    inp.dkim
        .push(DkimIdentity::new("brand.example", AuthResult::Fail));
    inp.spf = vec![SpfIdentity::new("mail.brand.example", AuthResult::Pass)];
    let out = block_on(dmarc::evaluate(&zone, &inp, &DmarcOptions::default()));
    assert_eq!(out.result, DmarcResult::Fail);
    assert_eq!(
        out.dkim[0].reason.to_string(),
        "not aligned: brand.example is its own Organizational Domain, and this domain is not under it"
    );
    assert_eq!(
        out.dkim[1].reason.to_string(),
        "not aligned: the result is fail, only pass can align"
    );
    assert_eq!(
        out.spf[0].reason.to_string(),
        "not aligned: strict alignment needs brand.example"
    );
    assert_eq!(
        out.reason,
        "no authenticated identifier is aligned; policy of brand.example=reject"
    );

    // A walk of its own: a different Organizational Domain below the Author Domain's.
    let zone = Zone::new()
        .txt("_dmarc.example.com", "v=DMARC1; p=reject")
        .txt("_dmarc.team.example.com", "v=DMARC1; p=none; psd=n");
    let out = block_on(dmarc::evaluate(
        &zone,
        &input("example.com", &["a.team.example.com"]),
        &DmarcOptions::default(),
    ));
    assert_eq!(
        out.dkim[0].reason.to_string(),
        "not aligned: Organizational Domain team.example.com, the Author Domain's is example.com"
    );
}

/// A small deterministic generator of hostile inputs: nothing may panic.
#[test]
fn hostile_records_and_from_fields_never_panic() {
    const PIECES: &[&str] = &[
        "v", "=", "DMARC1", ";", " ", "\t", "p", "sp", "np", "reject", "none", "rua", "ruf",
        "mailto:", "a@b", "!", "10", "k", "t", "g", ",", ":", "fo", "0", "1", "d", "s", "psd", "y",
        "pct", "101", "%", "%4", "\"", "<", ">", "(", ")", "@", "\\", "[", "]", "\u{e9}", "\u{0}",
        "\r\n", "xn--", "..", ".", "-", "\u{200b}", "\u{ff}",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let len = (next() % 24) as usize;
        let mut s = String::new();
        if next() % 2 == 0 {
            s.push_str("v=DMARC1;");
        }
        for _ in 0..len {
            s.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
        }
        for spec in [Spec::Rfc9989, Spec::Rfc7489] {
            match dmarc::Record::parse_for(s.as_bytes(), spec) {
                Ok(p) => {
                    // A record renders to text that parses back to the same record.
                    let again = dmarc::Record::parse_for(p.record.to_txt().as_bytes(), spec);
                    if spec == Spec::Rfc9989 && !p.record.fell_back_to_none {
                        assert_eq!(again.map(|a| a.record).as_ref(), Ok(&p.record), "{s:?}");
                    }
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
        let _ = dmarc::author_domains(&[s.as_bytes()], &AuthorOptions::default());
        let _ = dmarc::DomainName::new(&s);
        let _ = Psl::builtin().registrable_domain(&s, PslSections::All);
    }
}

/// The evaluation futures can be spawned on a multi-threaded runtime.
#[test]
fn futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let zone = Zone::new();
    let inp = input("example.com", &["example.com"]);
    let opts = DmarcOptions::default();
    let f = dmarc::evaluate(&zone, &inp, &opts);
    assert_send(&f);
    let g = dmarc::evaluate_message(&zone, &[], &[], &[], None, &opts);
    assert_send(&g);
    drop((f, g));
}

#[test]
fn identical_identifiers_make_the_author_domain_the_org_domain_without_a_walk() {
    let zone = Zone::new().txt(
        "_dmarc.mail.example.com",
        "v=DMARC1; p=bogus; rua=mailto:d@example.com",
    );
    let out = block_on(dmarc::evaluate(
        &zone,
        &input("mail.example.com", &["mail.example.com"]),
        &DmarcOptions::default(),
    ));
    assert_eq!(out.result, DmarcResult::Pass);
    assert_eq!(out.org_domain.as_deref(), Some("mail.example.com"));
    assert_eq!(zone.dmarc_queries(), ["_dmarc.mail.example.com"]);
    assert_eq!(out.requested_policy, Some(Policy::None));
    assert!(out.reason.contains("§4.10.1"), "{}", out.reason);
}
