//! Logins, sessions and CSRF for the annotator.
//!
//! - A session is a random 256-bit ID from the operating system's
//!   generator, kept in server memory only, sent as an `HttpOnly;
//!   SameSite=Strict; Path=/annotate` cookie (`Secure` too over TLS). It
//!   ends on logout, after `session_idle_secs` unused, when the account is
//!   removed, and when the node stops.
//! - Each session has its own CSRF token; every state-changing request
//!   must carry it (`X-CSRF-Token` for the JSON API, a hidden `csrf` field
//!   for forms), compared in constant time. The login form has its own
//!   double-submit token (a short-lived cookie and the same hidden field),
//!   so another site cannot log a browser in under its account.
//! - A wrong name or password gets one generic answer after a short
//!   delay; five failures for a name lock it for a few minutes, whatever
//!   password comes next.
//!
//! Every login, failed login and logout is written to the audit log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chacha20poly1305::aead::Generate;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::accounts::{Role, UserRecord, load_user, verify_password};
use super::{AppState, pages};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "chestnode_session";
/// The login form's double-submit cookie.
const LOGIN_COOKIE: &str = "chestnode_login";
/// Failures before a name is locked.
const MAX_FAILURES: u32 = 5;
/// How long a locked name stays locked.
const LOCKOUT: Duration = Duration::from_secs(5 * 60);
/// The pause before a refused login is answered.
const FAILURE_DELAY: Duration = Duration::from_millis(500);
/// Sessions held at once; the oldest idle ones go first beyond this.
const MAX_SESSIONS: usize = 10_000;
/// The message for every refused login.
pub const LOGIN_REFUSED: &str = "wrong user name or password";

struct Session {
    user: String,
    csrf: String,
    last_seen: Instant,
}

#[derive(Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// The server's sessions and login failure counters.
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Failures>>,
    idle: Duration,
}

/// 32 random bytes from the OS, as 64 lowercase hex digits.
fn random_token() -> String {
    let bytes = <[u8; 32]>::try_generate().expect("the operating system's random generator");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            idle,
        }
    }

    /// Starts a session for `user`; returns its ID.
    fn open(&self, user: &str) -> String {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        let idle = self.idle;
        sessions.retain(|_, s| s.last_seen.elapsed() < idle);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        let id = random_token();
        sessions.insert(
            id.clone(),
            Session {
                user: user.to_owned(),
                csrf: random_token(),
                last_seen: Instant::now(),
            },
        );
        id
    }

    /// The user and CSRF token of a live session, marking it used.
    fn touch(&self, id: &str) -> Option<(String, String)> {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        let session = sessions.get_mut(id)?;
        if session.last_seen.elapsed() >= self.idle {
            sessions.remove(id);
            return None;
        }
        session.last_seen = Instant::now();
        Some((session.user.clone(), session.csrf.clone()))
    }

    fn close(&self, id: &str) {
        self.sessions.lock().expect("sessions lock").remove(id);
    }

    /// Whether `user` is locked out now.
    fn locked(&self, user: &str) -> bool {
        let failures = self.failures.lock().expect("failures lock");
        failures
            .get(user)
            .and_then(|f| f.locked_until)
            .is_some_and(|until| Instant::now() < until)
    }

    /// Counts a failure; locks the name at the limit.
    fn failed(&self, user: &str) {
        let mut failures = self.failures.lock().expect("failures lock");
        // Names that are no longer locked are forgotten when the table is
        // large, so made-up names cannot fill memory.
        if failures.len() >= MAX_SESSIONS {
            let now = Instant::now();
            failures.retain(|_, f| f.locked_until.is_some_and(|until| now < until));
        }
        let entry = failures.entry(user.to_owned()).or_default();
        if entry
            .locked_until
            .is_some_and(|until| Instant::now() >= until)
        {
            *entry = Failures::default();
        }
        entry.count += 1;
        if entry.count >= MAX_FAILURES {
            entry.locked_until = Some(Instant::now() + LOCKOUT);
        }
    }

    fn succeeded(&self, user: &str) {
        self.failures.lock().expect("failures lock").remove(user);
    }
}

/// The value of cookie `name` in a request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn cookie_header(state: &AppState, name: &str, value: &str, max_age: Option<u64>) -> String {
    let mut text = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/annotate");
    if let Some(age) = max_age {
        text += &format!("; Max-Age={age}");
    }
    if state.tls {
        text += "; Secure";
    }
    text
}

/// A logged-in user, as every protected handler receives it.
#[derive(Debug, Clone)]
pub struct Reader {
    pub name: String,
    pub role: Role,
    pub cohorts: Vec<String>,
    pub csrf: String,
    session: String,
}

/// A state-changing request without the session's CSRF token: 403.
#[derive(Debug)]
pub struct CsrfRefused;

impl IntoResponse for CsrfRefused {
    fn into_response(self) -> Response {
        (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response()
    }
}

impl Reader {
    /// Checks a CSRF token sent with a state-changing request.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), CsrfRefused> {
        match sent {
            Some(token) if same_token(token, &self.csrf) => Ok(()),
            _ => Err(CsrfRefused),
        }
    }

    /// The token of the JSON API's `X-CSRF-Token` header.
    pub fn check_csrf_header(&self, headers: &HeaderMap) -> Result<(), CsrfRefused> {
        self.check_csrf(headers.get("x-csrf-token").and_then(|v| v.to_str().ok()))
    }
}

impl FromRequestParts<Arc<AppState>> for Reader {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Reader, Response> {
        let api = parts.uri.path().starts_with("/annotate/api/");
        let refuse = || {
            if api {
                (StatusCode::UNAUTHORIZED, "log in first").into_response()
            } else {
                Redirect::to("/annotate/login").into_response()
            }
        };
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(refuse());
        };
        let Some((user, csrf)) = state.sessions.touch(id) else {
            return Err(refuse());
        };
        // The account is read at every request: a removed user or a
        // changed assignment takes effect at once.
        let record: Option<UserRecord> = load_user(state.store.ledger(), &user).ok().flatten();
        let Some(record) = record else {
            state.sessions.close(id);
            return Err(refuse());
        };
        Ok(Reader {
            name: record.name,
            role: record.role,
            cohorts: record.cohorts,
            csrf,
            session: id.to_owned(),
        })
    }
}

/// `GET /annotate/login`: the form, with a fresh double-submit token.
pub async fn login_form(State(state): State<Arc<AppState>>) -> Response {
    login_page(&state, None, StatusCode::OK)
}

fn login_page(state: &AppState, error: Option<&str>, status: StatusCode) -> Response {
    let token = random_token();
    (
        status,
        [(
            header::SET_COOKIE,
            cookie_header(state, LOGIN_COOKIE, &token, Some(600)),
        )],
        pages::login(&token, error),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /annotate/login`.
pub async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !same_token(expected, &form.csrf) {
        return login_page(
            &state,
            Some("the login form expired; please try again"),
            StatusCode::FORBIDDEN,
        );
    }
    let name = form.username.trim().to_owned();
    // What was typed goes to the audit log only if it could be a user name:
    // never free text (which might be anything, a patient's name included).
    let audit_name = if super::accounts::validate_name(&name).is_ok() {
        name.clone()
    } else {
        "(not a user name)".to_owned()
    };
    let locked = state.sessions.locked(&name);
    let ledger = state.store.ledger().clone();
    let password = form.password;
    let lookup = name.clone();
    let verified = tokio::task::spawn_blocking(move || {
        let record = load_user(&ledger, &lookup).ok().flatten();
        // An unknown name costs the same hash as a known one.
        let hash = record
            .as_ref()
            .map(|r| r.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.clone());
        verify_password(&password, &hash) && record.is_some()
    })
    .await
    .unwrap_or(false);
    if locked || !verified {
        if !locked {
            state.sessions.failed(&name);
        }
        let reason = if locked {
            "locked"
        } else {
            "wrong credentials"
        };
        tracing::info!(reason, "annotator login refused");
        state
            .audit(
                &audit_name,
                "annotator.login-failed",
                "annotator",
                serde_json::json!({ "reason": reason }),
            )
            .await;
        tokio::time::sleep(FAILURE_DELAY).await;
        return login_page(&state, Some(LOGIN_REFUSED), StatusCode::UNAUTHORIZED);
    }
    state.sessions.succeeded(&name);
    let id = state.sessions.open(&name);
    state
        .audit(
            &name,
            "annotator.login",
            "annotator",
            serde_json::Value::Null,
        )
        .await;
    let mut response = Redirect::to("/annotate/").into_response();
    let headers = response.headers_mut();
    for value in [
        cookie_header(&state, SESSION_COOKIE, &id, None),
        cookie_header(&state, LOGIN_COOKIE, "", Some(0)),
    ] {
        if let Ok(value) = value.parse() {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /annotate/logout` (with the session's CSRF token).
pub async fn logout(
    State(state): State<Arc<AppState>>,
    reader: Reader,
    axum::Form(form): axum::Form<LogoutForm>,
) -> Response {
    if let Err(refused) = reader.check_csrf(Some(&form.csrf)) {
        return refused.into_response();
    }
    state.sessions.close(&reader.session);
    state
        .audit(
            &reader.name,
            "annotator.logout",
            "annotator",
            serde_json::Value::Null,
        )
        .await;
    (
        [(
            header::SET_COOKIE,
            cookie_header(&state, SESSION_COOKIE, "", Some(0)),
        )],
        Redirect::to("/annotate/login"),
    )
        .into_response()
}

/// An Argon2id hash of a random string, verified against when the user
/// name is unknown so that the answer takes as long.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    super::accounts::hash_password(&random_token()).expect("hashing a random token")
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_a_name_and_tokens_are_random() {
        let sessions = Sessions::new(Duration::from_secs(60));
        for _ in 0..4 {
            sessions.failed("ann");
        }
        assert!(!sessions.locked("ann"));
        sessions.failed("ann");
        assert!(sessions.locked("ann"));
        assert!(!sessions.locked("bob"));
        let a = random_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_token());
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &random_token()));
    }

    #[test]
    fn sessions_end_when_idle_or_closed() {
        let sessions = Sessions::new(Duration::from_millis(50));
        let id = sessions.open("ann");
        assert_eq!(sessions.touch(&id).unwrap().0, "ann");
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.touch(&id).is_none());
        let id = sessions.open("ann");
        sessions.close(&id);
        assert!(sessions.touch(&id).is_none());
    }

    #[test]
    fn the_dummy_hash_parses() {
        // A malformed dummy would make unknown names answer faster.
        assert!(!verify_password("anything at all", &DUMMY_HASH));
        assert!(DUMMY_HASH.starts_with("$argon2id$"));
    }
}
