//! Who may look: a password (stored as an Argon2 hash) or a token from the
//! configuration, sessions in secure cookies, and CSRF tokens on every form that changes
//! state.
//!
//! When authentication is configured, every request needs it, from loopback clients too:
//! a browser session cookie (`dmarc_session`: `HttpOnly`, `Secure`, `SameSite=Strict`),
//! or `Authorization: Bearer TOKEN` for scripts. The login form is protected by a
//! double-submit token (a `dmarc_csrf` cookie repeated in the form); once logged in, each
//! session has its own CSRF token that every `POST` must carry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "dmarc_session";
/// The login form's double-submit cookie.
pub const CSRF_COOKIE: &str = "dmarc_csrf";
/// The most sessions kept at once (the oldest is dropped beyond).
const MAX_SESSIONS: usize = 1000;

/// The credentials the configuration names.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// An Argon2 PHC string (`$argon2id$v=19$...`), checked against the login form.
    pub password_hash: Option<String>,
    /// A token, accepted as `Authorization: Bearer` and in the login form.
    pub token: Option<String>,
    /// How long a session lasts.
    pub session_lifetime: Duration,
}

impl Credentials {
    /// True when something is configured.
    pub fn configured(&self) -> bool {
        self.password_hash.is_some() || self.token.is_some()
    }

    /// Checks the configured hash (its syntax), so that a typo fails at start, not at login.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(h) = &self.password_hash {
            PasswordHash::new(h).map_err(|e| {
                format!("password_hash is not an Argon2 PHC string ($argon2id$v=19$...): {e}")
            })?;
        }
        if let Some(t) = &self.token
            && t.len() < 16
        {
            return Err("token is shorter than 16 characters".into());
        }
        Ok(())
    }

    /// True when `secret` is the password or the token.
    pub fn check(&self, secret: &str) -> bool {
        if let Some(t) = &self.token
            && constant_time_eq(t.as_bytes(), secret.as_bytes())
        {
            return true;
        }
        match self.password_hash.as_deref().map(PasswordHash::new) {
            Some(Ok(hash)) => argon2::Argon2::default()
                .verify_password(secret.as_bytes(), &hash)
                .is_ok(),
            _ => false,
        }
    }

    /// True when the request carries the token as `Authorization: Bearer`.
    pub fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|v| constant_time_eq(v.trim().as_bytes(), token.as_bytes()))
    }
}

/// An Argon2id hash of `password` in PHC form, with a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

fn random(buf: &mut [u8]) -> Result<(), String> {
    aws_lc_rs::rand::fill(buf).map_err(|_| "the system random number generator failed".into())
}

/// 32 random bytes in hex.
pub fn random_token() -> Result<String, String> {
    let mut b = [0u8; 32];
    random(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// One logged-in browser.
#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    expires: Instant,
}

/// The sessions of this process (a restart logs everyone out).
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session; returns its id and CSRF token.
    pub fn start(&self, lifetime: Duration) -> Result<(String, String), String> {
        let id = random_token()?;
        let csrf = random_token()?;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                expires: now + lifetime,
            },
        );
        Ok((id, csrf))
    }

    /// The CSRF token of the live session `id`.
    pub fn csrf_of(&self, id: &str) -> Option<String> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id)
            .filter(|s| s.expires > Instant::now())
            .map(|s| s.csrf.clone())
    }

    /// Ends session `id`.
    pub fn end(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly`, `Secure`, `SameSite=Strict`, for the whole site.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>) -> String {
    let age = match max_age {
        Some(d) => format!("; Max-Age={}", d.as_secs()),
        None => String::new(),
    };
    format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite=Strict{age}")
}

/// True when `a` and `b` are the same non-empty token.
pub fn tokens_match(a: &str, b: &str) -> bool {
    !a.is_empty() && constant_time_eq(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_round_trip_and_token() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let c = Credentials {
            password_hash: Some(hash),
            token: Some("0123456789abcdef0123".into()),
            session_lifetime: Duration::from_secs(60),
        };
        c.validate().expect("valid");
        assert!(c.check("correct horse"));
        assert!(c.check("0123456789abcdef0123"));
        assert!(!c.check("wrong"));
        assert!(!c.check(""));
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "Bearer 0123456789abcdef0123".parse().expect("hv"),
        );
        assert!(c.bearer_ok(&h));
        h.insert(
            "authorization",
            "Bearer 0123456789abcdef0124".parse().expect("hv"),
        );
        assert!(!c.bearer_ok(&h));
    }

    #[test]
    fn bad_hash_and_short_token_are_refused_at_start() {
        let c = Credentials {
            password_hash: Some("plaintext".into()),
            ..Default::default()
        };
        assert!(c.validate().is_err());
        let c = Credentials {
            token: Some("short".into()),
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn sessions_expire_and_end() {
        let s = Sessions::default();
        let (id, csrf) = s.start(Duration::from_secs(60)).expect("start");
        assert_eq!(s.csrf_of(&id), Some(csrf));
        s.end(&id);
        assert_eq!(s.csrf_of(&id), None);
        let (id, _) = s.start(Duration::ZERO).expect("start");
        assert_eq!(s.csrf_of(&id), None);
    }

    #[test]
    fn cookies_are_read_and_set_safely() {
        let mut h = HeaderMap::new();
        h.insert("cookie", "a=1; dmarc_session=xyz; b=2".parse().expect("hv"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
        let c = set_cookie(SESSION_COOKIE, "v", None);
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(c.contains(attr), "{c}");
        }
    }
}
