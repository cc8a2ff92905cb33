//! `GET /api/jobs`: the most recent analysis jobs as JSON, read-only.
//!
//! The same [`JobSummary`] records as `chestnode status` (identifiers,
//! state, findings, result objects — never patient data), newest first.
//! `?state=analysed` keeps only jobs in that state (the labels `status`
//! shows; an unknown one matches nothing), `?limit=N` caps the list
//! (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::HttpState;
use crate::status::{JobSummary, recent_jobs};

/// Jobs listed when no `limit` is given.
pub const DEFAULT_LIMIT: usize = 50;
/// The most jobs one request lists.
pub const MAX_LIMIT: usize = 1000;

/// The query string.
#[derive(Debug, Deserialize)]
pub struct JobsQuery {
    pub state: Option<String>,
    pub limit: Option<usize>,
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct JobList {
    pub jobs: Vec<JobSummary>,
}

pub async fn jobs(
    State(state): State<HttpState>,
    Query(query): Query<JobsQuery>,
) -> Result<Json<JobList>, (StatusCode, String)> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let store = state.store.clone();
    let wanted = query.state.filter(|s| !s.is_empty());
    let listed =
        tokio::task::spawn_blocking(move || recent_jobs(store.ledger(), limit, wanted.as_deref()))
            .await;
    match listed {
        Ok(Ok(jobs)) => Ok(Json(JobList { jobs })),
        Ok(Err(error)) => Err(internal(&error.to_string())),
        Err(error) => Err(internal(&error.to_string())),
    }
}

fn internal(error: &str) -> (StatusCode, String) {
    tracing::warn!(%error, "/api/jobs: cannot read the index");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("cannot read the index: {error}"),
    )
}
