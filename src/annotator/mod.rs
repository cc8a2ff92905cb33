//! The browser annotator: a web front, on its own listener
//! (`[annotator]`), where doctors log in, open the images of the cohorts
//! assigned to them, and draw and save annotations (docs/annotation.md).
//!
//! It is apart from the operations endpoint (`http`) on purpose: that one
//! is unauthenticated and read-only, this one shows patient images, so it
//! needs logins, CSRF protection and optionally TLS, and writes every view
//! and save to the research audit log. Everything it serves is embedded
//! in the binary (`assets/`); nothing is fetched from elsewhere.
//!
//! | module | role |
//! |---|---|
//! | `accounts` | users, roles, Argon2id hashes; `chestnode users` requests |
//! | `auth` | login, lockout, sessions, CSRF |
//! | `access` | which cohorts and images a reader sees |
//! | `pages` | the HTML pages |
//! | `api` | PNG, the node's findings, annotations (JSON) |
//! | `image` | decoding a stored instance to PNG |
//! | `backend` | the annotation records behind the API (the research wing's, in the ledger) |
//! | `listener` | plain or TLS connections, bounded and timed out |

mod access;
mod accounts;
mod api;
mod auth;
mod backend;
mod image;
mod listener;
mod pages;

pub use accounts::{MIN_PASSWORD_LEN, Role, UserSummary, UsersReply, UsersRequest, hash_password};
pub use backend::AnnotationStore;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::AnnotatorConfig;
use crate::ledger::Ledger;
use crate::research::{AuditLog, AuditRecord};
use crate::store::Store;

/// Runs a `chestnode users` request against an open index.
pub fn execute_users(
    ledger: &Ledger,
    data_dir: &std::path::Path,
    request: UsersRequest,
) -> UsersReply {
    accounts::execute(ledger, data_dir, request)
}

/// What every handler reads.
pub struct AppState {
    store: Arc<Store>,
    sessions: auth::Sessions,
    backend: AnnotationStore,
    /// Whether the listener speaks TLS (cookies are then `Secure`).
    tls: bool,
}

impl AppState {
    /// Appends to the research audit log; a failure is logged, not shown
    /// (the act has happened by then).
    async fn audit(&self, operator: &str, action: &str, subject: &str, details: serde_json::Value) {
        let data_dir = self.store.data_dir().to_path_buf();
        let record = AuditRecord {
            operator: operator.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            details,
            ..AuditRecord::default()
        };
        let written =
            tokio::task::spawn_blocking(move || AuditLog::open(&data_dir)?.append(record)).await;
        if !matches!(written, Ok(Ok(_))) {
            tracing::error!(action, "annotator: the audit entry could not be written");
        }
    }
}

/// The routes, all under `/annotate`.
pub fn router(
    store: Arc<Store>,
    backend: AnnotationStore,
    session_idle: Duration,
    tls: bool,
) -> Router {
    let state = Arc::new(AppState {
        store,
        sessions: auth::Sessions::new(session_idle),
        backend,
        tls,
    });
    Router::new()
        .route("/annotate", get(|| async { Redirect::to("/annotate/") }))
        .route("/annotate/", get(pages::index))
        .route("/annotate/login", get(auth::login_form).post(auth::login))
        .route("/annotate/logout", post(auth::logout))
        .route("/annotate/cohorts/{name}", get(pages::cohort))
        .route("/annotate/images/{sop}", get(pages::viewer))
        .route("/annotate/api/images/{sop}/png", get(api::png))
        .route("/annotate/api/images/{sop}/findings", get(api::findings))
        .route(
            "/annotate/api/images/{sop}/annotations",
            get(api::list_annotations).post(api::save_annotation),
        )
        .route("/annotate/assets/viewer.js", get(viewer_js))
        .route("/annotate/assets/style.css", get(style_css))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .layer(DefaultBodyLimit::max(api::MAX_BODY))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Headers on every answer: no caching of patient data, no framing, no
/// script or style from anywhere but here.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'; form-action 'self'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn viewer_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/viewer.js"),
    )
}

async fn style_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/style.css"),
    )
}

/// The running annotator.
pub struct AnnotatorServer {
    task: JoinHandle<()>,
}

impl AnnotatorServer {
    /// Binds the configured address (TLS when a certificate is set) and
    /// serves until `shutdown`.
    pub async fn start(
        config: &AnnotatorConfig,
        store: Arc<Store>,
        backend: AnnotationStore,
        shutdown: CancellationToken,
    ) -> anyhow::Result<AnnotatorServer> {
        let tls = match (&config.tls_certificate, &config.tls_key) {
            (Some(certificate), Some(key)) => {
                Some(crate::tls::https_server_config(certificate, key)?)
            }
            _ => None,
        };
        let app = router(
            store,
            backend,
            Duration::from_secs(config.session_idle_secs),
            tls.is_some(),
        );
        let task = listener::serve(config.listen_addr(), tls, app, shutdown).await?;
        Ok(AnnotatorServer { task })
    }

    /// Waits, at most `limit`, for the accept loop to end.
    pub async fn stopped(self, limit: Duration) {
        let abort = self.task.abort_handle();
        if tokio::time::timeout(limit, self.task).await.is_err() {
            abort.abort();
        }
    }
}
