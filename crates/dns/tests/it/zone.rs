//! `ZoneFile`: RFC 1035 §5 master files, and the `Lookup` contract over them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use dmarc_dns::{ZoneError, ZoneFile};
use dmarc_proto::{DnsError, Lookup, MxRecord};

fn zone(text: &str) -> ZoneFile {
    match ZoneFile::parse(text, None) {
        Ok(z) => z,
        Err(e) => panic!("zone should parse: {e}"),
    }
}

fn zone_err(text: &str) -> ZoneError {
    match ZoneFile::parse(text, None) {
        Ok(z) => panic!("zone should not parse, got {z:?}"),
        Err(e) => e,
    }
}

fn txt_strings(v: Vec<Vec<u8>>) -> Vec<String> {
    v.into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect()
}

fn tmp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("zone-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------
// The mail-bench corpus: zone.txt must answer exactly as zone.json says.

#[tokio::test]
async fn mail_bench_zone_txt_matches_zone_json() {
    let dir = dmarc_testkit::corpus("mail-bench");
    let zone = ZoneFile::load(&dir.join("zone.txt")).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("zone.json")).unwrap()).unwrap();
    let map = json.as_object().unwrap();
    assert!(map.len() > 100, "zone.json has {} names", map.len());
    let mut checked = 0;
    for (name, types) in map {
        let types = types.as_object().unwrap();
        for qtype in ["A", "AAAA", "MX", "TXT"] {
            let want: Option<Vec<String>> = types.get(qtype).map(|v| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect()
            });
            let got: Result<Vec<String>, DnsError> = match qtype {
                "A" => zone
                    .a(name)
                    .await
                    .map(|v| v.iter().map(ToString::to_string).collect()),
                "AAAA" => zone
                    .aaaa(name)
                    .await
                    .map(|v| v.iter().map(ToString::to_string).collect()),
                "MX" => zone.mx(name).await.map(|v| {
                    v.iter()
                        .map(|m| format!("{} {}", m.preference, m.exchange))
                        .collect()
                }),
                _ => zone.txt(name).await.map(txt_strings),
            };
            match want {
                Some(mut want) => {
                    let mut got = got.unwrap_or_else(|e| panic!("{name} {qtype}: {e}"));
                    want.sort();
                    got.sort();
                    assert_eq!(got, want, "{name} {qtype}");
                }
                None => assert_eq!(got, Err(DnsError::NoData), "{name} {qtype}"),
            }
            checked += 1;
        }
        // With a trailing dot and in upper case, the same.
        let upper = format!("{}.", name.to_ascii_uppercase());
        assert_eq!(
            zone.txt(&upper).await.is_ok(),
            types.contains_key("TXT"),
            "{upper}"
        );
    }
    assert!(checked >= 4 * map.len());
    // Names the zone does not hold.
    for absent in [
        "nonexistent.brand0.example",
        "zz-no-such-brand.example",
        "_dmarc.nosuch.example",
    ] {
        assert_eq!(zone.txt(absent).await, Err(DnsError::NxDomain), "{absent}");
        assert_eq!(zone.a(absent).await, Err(DnsError::NxDomain), "{absent}");
    }
    assert_eq!(zone.name_count(), map.len());
}

// ---------------------------------------------------------------------------------------
// RFC 1035 §5.1 syntax.

#[tokio::test]
async fn owners_origin_ttl_and_class() {
    let z = zone(
        "$ORIGIN Example.COM.\n\
         $TTL 1h\n\
         @            IN  A     192.0.2.1\n\
         \t           3600 IN AAAA 2001:db8::1 ; blank owner: example.com\n\
         www          IN 300 A  192.0.2.2\n\
         mail.other.  A         192.0.2.3\n\
         sub          CLASS1 1d  TXT plain\n\
         $ORIGIN sub\n\
         deep         TXT \"deeper\"\n",
    );
    assert_eq!(
        z.a("example.com").await,
        Ok(vec![Ipv4Addr::new(192, 0, 2, 1)])
    );
    assert_eq!(
        z.aaaa("EXAMPLE.com.").await,
        Ok(vec!["2001:db8::1".parse::<Ipv6Addr>().unwrap()])
    );
    assert_eq!(
        z.a("www.example.com").await,
        Ok(vec![Ipv4Addr::new(192, 0, 2, 2)])
    );
    assert_eq!(
        z.a("mail.other").await,
        Ok(vec![Ipv4Addr::new(192, 0, 2, 3)])
    );
    assert_eq!(
        txt_strings(z.txt("sub.example.com").await.unwrap()),
        ["plain"]
    );
    // `$ORIGIN sub` is relative to the previous origin.
    assert_eq!(
        txt_strings(z.txt("deep.sub.example.com").await.unwrap()),
        ["deeper"]
    );
}

#[tokio::test]
async fn crlf_line_endings() {
    let z = zone("$ORIGIN example.com.\r\n@ TXT ( \"a\"\r\n \"b\" )\r\n\r\nwww A 192.0.2.1\r\n");
    assert_eq!(z.txt("example.com").await, Ok(vec![b"ab".to_vec()]));
    assert!(z.a("www.example.com").await.is_ok());
}

#[tokio::test]
async fn default_origin() {
    let z = ZoneFile::parse("@ A 192.0.2.1\nwww A 192.0.2.2\n", Some("example.net.")).unwrap();
    assert!(z.a("example.net").await.is_ok());
    assert!(z.a("www.example.net").await.is_ok());
    let z = ZoneFile::parse("www A 192.0.2.2\n", Some("example.net")).unwrap();
    assert!(z.a("www.example.net").await.is_ok());
}

#[tokio::test]
async fn parentheses_comments_and_multi_string_txt() {
    let z = zone(
        "example.com. IN TXT ( \"v=DKIM1; k=rsa; \" ; first part\n\
         \t\"p=MIGf\"   ; second part\n\
         \t\"MA0G\" )\n\
         example.com. IN TXT \"second\" \"record\"\n\
         example.com. IN SOA ns.example.com. host.example.com. (\n\
         \t2024010101 ; serial\n\
         \t1h 15m 1w 300 )\n",
    );
    let mut got = txt_strings(z.txt("example.com").await.unwrap());
    got.sort();
    assert_eq!(got, ["secondrecord", "v=DKIM1; k=rsa; p=MIGfMA0G"]);
}

#[tokio::test]
async fn escapes_in_strings_and_names() {
    let z = ZoneFile::parse_bytes(
        b"a\\.b.example. TXT \"q\\\"uote\" \"semi\\;colon\" \"\\065\\066\\255\" \"back\\\\slash\"\n\
          x.example. TXT unquoted\\ with\\ spaces\n\
          raw.example. TXT \"caf\xc3\xa9 \xff\"\n\
          empty.example. TXT \"\"\n",
        None,
    )
    .unwrap();
    assert_eq!(
        z.txt(r"a\.b.example").await,
        Ok(vec![b"q\"uotesemi;colonAB\xffback\\slash".to_vec()])
    );
    // The escaped dot is inside a label: "b.example" has no such record and
    // "a.b.example" is a different name.
    assert_eq!(z.txt("a.b.example").await, Err(DnsError::NxDomain));
    assert_eq!(z.txt(r"A\046B.EXAMPLE.").await.unwrap().len(), 1);
    assert_eq!(
        z.txt("x.example").await,
        Ok(vec![b"unquoted with spaces".to_vec()])
    );
    assert_eq!(
        z.txt("raw.example").await,
        Ok(vec![b"caf\xc3\xa9 \xff".to_vec()])
    );
    assert_eq!(z.txt("empty.example").await, Ok(vec![Vec::new()]));
}

#[tokio::test]
async fn non_utf8_bytes_survive_load() {
    let dir = tmp_dir("bytes");
    let path = dir.join("db.bytes");
    std::fs::write(&path, b"bin.example. 60 IN TXT \"\x80\x81\" \"\\000\"\n").unwrap();
    let z = ZoneFile::load(&path).unwrap();
    assert_eq!(z.txt("bin.example").await, Ok(vec![vec![0x80, 0x81, 0]]));
}

// ---------------------------------------------------------------------------------------
// The Lookup contract: NXDOMAIN, NODATA, CNAMEs, names.

#[tokio::test]
async fn nxdomain_nodata_and_empty_non_terminals() {
    let z = zone(
        "$ORIGIN example.com.\n\
         sel._domainkey TXT \"v=DKIM1; p=\"\n\
         host A 192.0.2.1\n",
    );
    assert_eq!(z.txt("host.example.com").await, Err(DnsError::NoData));
    assert_eq!(z.mx("host.example.com").await, Err(DnsError::NoData));
    assert_eq!(z.txt("nope.example.com").await, Err(DnsError::NxDomain));
    // Empty non-terminals exist.
    assert_eq!(z.txt("_domainkey.example.com").await, Err(DnsError::NoData));
    assert_eq!(z.txt("example.com").await, Err(DnsError::NoData));
    assert_eq!(z.a("com").await, Err(DnsError::NoData));
    // Below an existing name without records there: NXDOMAIN.
    assert_eq!(
        z.txt("x.sel._domainkey.example.com").await,
        Err(DnsError::NxDomain)
    );
}

#[tokio::test]
async fn spf_type_records_exist_but_are_never_served() {
    let z = zone(
        "spfonly.example. IN SPF \"v=spf1 -all\"\n\
         both.example. IN SPF \"v=spf1 +all\"\n\
         both.example. IN TXT \"v=spf1 -all\"\n",
    );
    assert_eq!(z.txt("spfonly.example").await, Err(DnsError::NoData));
    assert_eq!(
        txt_strings(z.txt("both.example").await.unwrap()),
        ["v=spf1 -all"]
    );
}

#[tokio::test]
async fn other_types_make_names_exist() {
    let z = zone(
        "$ORIGIN example.org.\n\
         @ NS ns1\n\
         @ SOA ns1 hostmaster 1 7200 3600 1209600 300\n\
         caa CAA 0 issue \"letsencrypt.org\"\n\
         srv SRV 10 5 443 target\n\
         gen TYPE65280 \\# 3 abcdef\n\
         gen2 TYPE65281 \\# 0\n\
         key DNSKEY 257 3 13 ( AAAA\n BBBB )\n\
         tlsa TLSA 3 1 1 0123\n",
    );
    for name in [
        "example.org",
        "caa.example.org",
        "srv.example.org",
        "gen.example.org",
        "gen2.example.org",
        "key.example.org",
        "tlsa.example.org",
    ] {
        assert_eq!(z.txt(name).await, Err(DnsError::NoData), "{name}");
        assert_eq!(z.a(name).await, Err(DnsError::NoData), "{name}");
    }
}

#[tokio::test]
async fn generic_rdata_of_served_types_is_decoded() {
    let z = zone(
        "a.example. TYPE1 \\# 4 C0000201\n\
         t.example. TXT \\# 8 03616263 03646566\n\
         m.example. MX \\# 8 000a 026d78 0165 00\n\
         n.example. MX \\# 3 0000 00\n",
    );
    assert_eq!(
        z.a("a.example").await,
        Ok(vec![Ipv4Addr::new(192, 0, 2, 1)])
    );
    assert_eq!(z.txt("t.example").await, Ok(vec![b"abcdef".to_vec()]));
    assert_eq!(
        z.mx("m.example").await,
        Ok(vec![MxRecord {
            preference: 10,
            exchange: "mx.e".into()
        }])
    );
    assert_eq!(
        z.mx("n.example").await,
        Ok(vec![MxRecord {
            preference: 0,
            exchange: String::new()
        }])
    );
}

#[tokio::test]
async fn mx_ptr_names_lower_case_without_dot_and_null_mx() {
    let z = zone(
        "$ORIGIN Example.COM.\n\
         @ MX 10 MX1\n\
         @ MX 20 mx2.Other.NET.\n\
         @ MX 20 mx2.other.net. ; duplicate, kept once\n\
         null MX 0 .\n\
         1.2.0.192.in-addr.arpa. PTR Host.Example.COM.\n\
         1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. PTR v6.example.com.\n",
    );
    assert_eq!(
        z.mx("example.com").await,
        Ok(vec![
            MxRecord {
                preference: 10,
                exchange: "mx1.example.com".into()
            },
            MxRecord {
                preference: 20,
                exchange: "mx2.other.net".into()
            },
        ])
    );
    assert_eq!(
        z.mx("null.example.com").await,
        Ok(vec![MxRecord {
            preference: 0,
            exchange: String::new()
        }])
    );
    let v4: IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(z.ptr(v4).await, Ok(vec!["host.example.com".to_string()]));
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(z.ptr(v6).await, Ok(vec!["v6.example.com".to_string()]));
    let other: IpAddr = "192.0.2.2".parse().unwrap();
    assert_eq!(z.ptr(other).await, Err(DnsError::NxDomain));
}

#[tokio::test]
async fn cnames_are_followed() {
    let z = zone(
        "$ORIGIN example.com.\n\
         alias CNAME hop\n\
         hop CNAME target\n\
         target A 192.0.2.7\n\
         target TXT \"at target\"\n\
         dangling CNAME nowhere.example.net.\n\
         toempty CNAME host\n\
         host MX 10 mx\n",
    );
    assert_eq!(
        z.a("ALIAS.example.com").await,
        Ok(vec![Ipv4Addr::new(192, 0, 2, 7)])
    );
    assert_eq!(
        txt_strings(z.txt("alias.example.com").await.unwrap()),
        ["at target"]
    );
    assert_eq!(z.aaaa("alias.example.com").await, Err(DnsError::NoData));
    assert_eq!(z.a("dangling.example.com").await, Err(DnsError::NxDomain));
    assert_eq!(z.a("toempty.example.com").await, Err(DnsError::NoData));
}

#[tokio::test]
async fn cname_loops_and_long_chains_are_temporary_errors() {
    let z = zone(
        "a.example. CNAME b.example.\n\
         b.example. CNAME c.example.\n\
         c.example. CNAME a.example.\n\
         self.example. CNAME self.example.\n",
    );
    match z.a("a.example").await {
        Err(DnsError::Temporary(why)) => {
            assert!(why.contains("loop"), "{why}");
            assert!(
                why.contains("a.example -> b.example -> c.example -> a.example"),
                "{why}"
            );
        }
        other => panic!("expected a temporary error, got {other:?}"),
    }
    assert!(matches!(
        z.txt("self.example").await,
        Err(DnsError::Temporary(_))
    ));

    let mut text = String::new();
    for i in 0..dmarc_dns::zone::MAX_CNAME_CHAIN + 1 {
        text.push_str(&format!("c{i}.example. CNAME c{}.example.\n", i + 1));
    }
    text.push_str(&format!(
        "c{}.example. A 192.0.2.1\n",
        dmarc_dns::zone::MAX_CNAME_CHAIN + 1
    ));
    let z = zone(&text);
    match z.a("c0.example").await {
        Err(DnsError::Temporary(why)) => assert!(why.contains("longer than"), "{why}"),
        other => panic!("expected a temporary error, got {other:?}"),
    }
    // The longest allowed chain still resolves.
    assert!(z.a("c1.example").await.is_ok());
}

#[tokio::test]
async fn wildcards() {
    let z = zone(
        "$ORIGIN example.com.\n\
         *       TXT \"wild\"\n\
         host    A 192.0.2.1\n\
         *.sub   MX 10 mx\n\
         x.sub   A 192.0.2.2\n",
    );
    assert_eq!(
        txt_strings(z.txt("anything.example.com").await.unwrap()),
        ["wild"]
    );
    assert_eq!(
        txt_strings(z.txt("a.b.c.example.com").await.unwrap()),
        ["wild"]
    );
    // A name that exists is not covered by the wildcard.
    assert_eq!(z.txt("host.example.com").await, Err(DnsError::NoData));
    // sub is an empty non-terminal, so the closest encloser of y.sub is sub.
    assert_eq!(z.mx("y.sub.example.com").await.unwrap().len(), 1);
    assert_eq!(z.txt("y.sub.example.com").await, Err(DnsError::NoData));
    // Below an existing name with no wildcard child: NXDOMAIN (RFC 4592 §3.3.1).
    assert_eq!(z.txt("z.host.example.com").await, Err(DnsError::NxDomain));
}

#[tokio::test]
async fn query_count_and_invalid_query_names() {
    let z = zone("a.example. A 192.0.2.1\n");
    assert_eq!(z.query_count(), 0);
    let _ = z.a("a.example").await;
    let _ = z.txt("b.example").await;
    let _ = z.mx("a..example").await;
    assert_eq!(z.query_count(), 3);
    assert!(matches!(
        z.a("a..example").await,
        Err(DnsError::Temporary(_))
    ));
    let long = format!("{}.example", "x".repeat(64));
    assert!(matches!(z.a(&long).await, Err(DnsError::Temporary(_))));
    assert!(z.a("a.example.").await.is_ok());
}

#[tokio::test]
async fn include_is_relative_to_the_including_file() {
    let dir = tmp_dir("include");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("main.zone"),
        "$ORIGIN example.com.\n\
         $INCLUDE sub/part.zone keys.example.com.\n\
         after TXT \"origin restored\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("sub/part.zone"), "sel TXT \"included\"\n").unwrap();
    let z = ZoneFile::load(&dir.join("main.zone")).unwrap();
    assert_eq!(
        txt_strings(z.txt("sel.keys.example.com").await.unwrap()),
        ["included"]
    );
    assert_eq!(
        txt_strings(z.txt("after.example.com").await.unwrap()),
        ["origin restored"]
    );

    std::fs::write(dir.join("loop.zone"), "$INCLUDE loop.zone\n").unwrap();
    let e = ZoneFile::load(&dir.join("loop.zone")).unwrap_err();
    assert!(e.to_string().contains("nested more than"), "{e}");

    std::fs::write(dir.join("missing.zone"), "\n$INCLUDE nothere.zone\n").unwrap();
    let e = ZoneFile::load(&dir.join("missing.zone")).unwrap_err();
    assert!(e.to_string().contains("missing.zone:2"), "{e}");
    assert!(std::error::Error::source(&e).is_some());

    let e = zone_err("$INCLUDE other.zone\n");
    assert!(e.reason().contains("ZoneFile::load"), "{e}");
}

/// Issue 9: `$INCLUDE` stays below the including file's directory (an absolute path, `..`
/// or a symbolic link out of it is refused without reading the file) unless allowed.
#[tokio::test]
async fn include_outside_the_including_directory_is_refused() {
    let dir = tmp_dir("include-confined");
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "root:$6$SECRETHASHSECRETHASH:19000:0:99999:7:::\n").unwrap();
    let _ = std::fs::remove_file(zones.join("link.txt"));
    std::os::unix::fs::symlink(&secret, zones.join("link.txt")).unwrap();
    for include in [
        secret.display().to_string(),
        "../secret.txt".to_string(),
        "link.txt".to_string(),
    ] {
        std::fs::write(zones.join("main.zone"), format!("$INCLUDE {include}\n")).unwrap();
        let e = ZoneFile::load(&zones.join("main.zone")).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("is outside"), "{text}");
        assert!(text.contains("main.zone:1"), "{text}");
        assert!(!text.contains("SECRETHASH"), "{text}");
        // Allowed explicitly: read (and refused as a zone, quoting only a short prefix).
        let e = ZoneFile::load_with(
            &zones.join("main.zone"),
            &dmarc_dns::LoadOptions {
                include_anywhere: true,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(!e.to_string().contains("is outside"), "{e}");
    }
}

/// Issue 9: an error quotes at most a short prefix of the offending text.
#[test]
fn errors_quote_only_a_short_prefix() {
    let label = "x".repeat(20 << 20);
    let e = zone_err(&format!("{label}.example. A 192.0.2.1\n"));
    let text = e.to_string();
    assert!(text.len() < 300, "{} bytes: {}", text.len(), &text[..300]);
    assert!(text.contains("bytes)"), "{text}");
    let e = zone_err(&format!("a.example. {label} x\n"));
    assert!(e.to_string().len() < 300);
    let e = zone_err(&format!("a.example. A {label}\n"));
    assert!(e.to_string().len() < 300);
}

// ---------------------------------------------------------------------------------------
// Errors: where and what.

#[test]
fn errors_say_where_and_what() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "a.example. A 192.0.2.1\nb.example. A 300.1.1.1\n",
            2,
            "invalid address",
        ),
        ("www A 192.0.2.1\n", 1, "no origin"),
        ("@ A 192.0.2.1\n", 1, "no origin"),
        (" A 192.0.2.1\n", 1, "no owner name came before"),
        ("a.example. FOO bar\n", 1, "unknown record type FOO"),
        ("a.example. CH TXT \"x\"\n", 1, "only IN"),
        ("a.example. IN\n", 1, "no type"),
        ("a.example. TXT\n", 1, "at least one character-string"),
        ("a.example. MX 10\n", 1, "preference and an exchange"),
        ("a.example. MX 70000 mx.example.\n", 1, "invalid preference"),
        ("a.example. A 192.0.2.1 extra\n", 1, "one IPv4 address"),
        ("a.example. AAAA 192.0.2.1\n", 1, "invalid address"),
        ("\n\na.example. TXT ( \"x\"\n", 3, "never closed"),
        ("a.example. TXT \"x\" )\n", 1, "without a matching"),
        ("a.example. TXT \"open\n\n", 1, "never closed"),
        ("$FOO bar\n", 1, "unknown directive"),
        ("$ORIGIN\n", 1, "$ORIGIN takes"),
        ("$TTL soon\n", 1, "invalid TTL"),
        ("a.example. 99999999999 A 192.0.2.1\n", 1, "RFC 2181"),
        ("a..example. A 192.0.2.1\n", 1, "empty label"),
        ("a.example. TXT \"\\999\"\n", 1, "larger than 255"),
        ("a.example. TXT \"\\12\"\n", 1, "three decimal digits"),
        (
            "a.example. CNAME b.example.\na.example. A 192.0.2.1\n",
            2,
            "is a CNAME",
        ),
        (
            "a.example. A 192.0.2.1\na.example. CNAME b.example.\n",
            2,
            "must be alone",
        ),
        (
            "a.example. CNAME b.example.\na.example. CNAME c.example.\n",
            2,
            "second CNAME",
        ),
        ("a.example. TYPE1 \\# 3 c00002\n", 1, "4 octets"),
        ("a.example. TXT \\# 2 0561\n", 1, "runs past"),
        ("a.example. MX \\# 4 000a c000\n", 1, "compression"),
        ("a.example. TYPE255 \\# 0\n", 1, "query or transport type"),
        ("a.example. SOA ns. host. 1 2 3\n", 1, "7 fields"),
        ("a.example. CAA 0 is-sue \"x\"\n", 1, "letters and digits"),
        ("\"a.example.\" A 192.0.2.1\n", 1, "cannot be quoted"),
    ];
    for (text, line, what) in cases {
        let e = zone_err(text);
        assert_eq!(e.line(), *line, "{text:?}: {e}");
        assert!(e.reason().contains(what), "{text:?}: {e} (wanted {what:?})");
        assert_eq!(e.file(), "<zone text>");
        assert!(
            e.to_string().starts_with(&format!("<zone text>:{line}: ")),
            "{e}"
        );
    }
    // A 256-octet character-string.
    let long = format!("a.example. TXT \"{}\"\n", "x".repeat(256));
    assert!(zone_err(&long).reason().contains("at most 255"));
    let ok = format!("a.example. TXT \"{}\"\n", "x".repeat(255));
    assert!(ZoneFile::parse(&ok, None).is_ok());
    // A bad default origin.
    assert!(ZoneFile::parse("", Some("a..b")).is_err());
}

#[test]
fn unreadable_file_is_an_io_error() {
    let e = ZoneFile::load(std::path::Path::new("/nonexistent/zone.txt")).unwrap_err();
    assert_eq!(e.line(), 0);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/zone.txt: cannot read"),
        "{e}"
    );
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn hostile_input_never_panics() {
    // Every prefix of a zone exercising most of the syntax parses or fails cleanly.
    let text = "$ORIGIN ex\\097mple.\n$TTL 1h\n@ IN SOA ns host ( 1 2 3 4 5 )\n\
                \t MX 10 mx ; c\n\"q\" TXT \"a\\\"b\" c\\ d\nx TYPE99 \\# 2 0141\n*.w CNAME x\n";
    for end in 0..=text.len() {
        if let Some(prefix) = text.get(..end) {
            let _ = ZoneFile::parse(prefix, Some("example."));
        }
    }
    for bytes in [
        &b"\xff\xfe A 1"[..],
        b"\\",
        b"(",
        b")",
        b"\"",
        b"a.\\",
        b"$",
        b"a TXT \\# 99999 00",
    ] {
        let _ = ZoneFile::parse_bytes(bytes, None);
    }
}

#[tokio::test]
async fn cname_is_seen_without_being_followed_and_nodes_show_ns_and_soa() {
    let zone = ZoneFile::parse(
        "$ORIGIN example.com.\n\
         @ IN SOA ns1 hostmaster 7 3600 600 86400 300\n\
         @ IN NS ns1\n\
         ns1 IN A 192.0.2.53\n\
         s1._domainkey IN CNAME s1.dkim.Service.Example.\n\
         *.wild IN CNAME target\n\
         target IN TXT \"x\"\n",
        None,
    )
    .unwrap();
    assert_eq!(
        zone.cname("s1._domainkey.example.com").await,
        Ok(vec!["s1.dkim.service.example".to_string()])
    );
    assert_eq!(
        zone.cname("a.wild.example.com.").await,
        Ok(vec!["target.example.com".to_string()])
    );
    assert_eq!(
        zone.cname("target.example.com").await,
        Err(DnsError::NoData)
    );
    assert_eq!(
        zone.cname("_domainkey.example.com").await,
        Err(DnsError::NoData)
    );
    assert_eq!(
        zone.cname("nope.example.com").await,
        Err(DnsError::NxDomain)
    );
    let apex = zone.node("example.com").unwrap();
    assert_eq!(apex.ns(), ["ns1.example.com"]);
    assert_eq!(apex.soa().unwrap().serial, 7);
    assert_eq!(apex.soa().unwrap().minimum, 300);
    let (owner, soa) = zone.soa_for("deep.below.example.com").unwrap();
    assert_eq!(
        (owner.as_str(), soa.mname.as_str()),
        ("example.com", "ns1.example.com")
    );
    assert!(zone.soa_for("example.org").is_none());
    assert!(
        zone.node("s1._domainkey.example.com")
            .unwrap()
            .cname()
            .is_some()
    );
    assert_eq!(
        zone.node("_domainkey.example.com").unwrap_err(),
        DnsError::NoData
    );
}
