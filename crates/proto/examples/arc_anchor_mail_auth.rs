//! The anchor for the whole-process ARC benchmark (BENCHMARKS.md, "ARC"): mail-auth 0.13
//! validating the ARC chain of each file, as `dmarc arc verify` does, one line per file.
//! Dev-only (mail-auth is a dev-dependency).
//!
//! Usage: `arc_anchor_mail_auth ZONE.json FILE...` where ZONE.json maps key names to
//! their TXT values. Exit 0 when every chain passes, 1 otherwise.

use std::collections::HashMap;
use std::hash::Hash;
use std::io::Write;

use mail_auth::common::parse::TxtRecordParser;

/// mail-auth's resolver cache, filled in advance with the parsed key records.
struct WarmTxt(HashMap<Box<str>, mail_auth::Txt>);

impl mail_auth::ResolverCache<Box<str>, mail_auth::Txt> for WarmTxt {
    fn get<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }
    fn remove<Q>(&self, _: &Q) -> Option<mail_auth::Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }
    fn insert(&self, _: Box<str>, _: mail_auth::Txt, _: std::time::Instant) {}
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let zone_path = args
        .next()
        .expect("usage: arc_anchor_mail_auth ZONE.json FILE...");
    let zone: HashMap<String, String> =
        serde_json::from_slice(&std::fs::read(zone_path).expect("zone")).expect("zone json");
    let mut warm = HashMap::new();
    for (name, value) in &zone {
        if let Ok(k) = mail_auth::common::verify::DomainKey::parse(value.as_bytes()) {
            let name = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
            warm.insert(name.into_boxed_str(), mail_auth::Txt::from(k));
        }
    }
    let warm = WarmTxt(warm);
    let authenticator = mail_auth::MessageAuthenticator::new_cloudflare().expect("resolver");
    let mut all_pass = true;
    let mut out = std::io::stdout().lock();
    for file in args {
        let raw = std::fs::read(&file).expect("message");
        let result = match mail_auth::AuthenticatedMessage::parse(&raw) {
            Some(m) => {
                let o = futures::executor::block_on(
                    authenticator.verify_arc(mail_auth::Parameters::new(&m).with_txt_cache(&warm)),
                );
                format!("{:?}", o.result())
            }
            None => "unparsable".to_string(),
        };
        all_pass &= result == "Pass";
        writeln!(out, "{file}: arc={result}").expect("stdout");
    }
    if all_pass {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
