//! The annotator's JSON and image API, under `/annotate/api/images/{sop}/`:
//!
//! - `png` — the image as 8-bit greyscale PNG (audited as an image view);
//! - `findings` — the node's own localised findings for the overlay;
//! - `annotations` — `GET` lists the stored annotations, `POST` saves one
//!   (CSRF token in `X-CSRF-Token`; audited).
//!
//! Every call validates the SOP Instance UID with the store's rules, then
//! checks that the reader may see the image (`access`), before anything
//! else is read. Answers are never cached by the browser.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use super::access::image_cohort;
use super::auth::Reader;
use super::backend::{AnnotationInput, SaveError};
use crate::analysis::AnalysisResult;
use crate::ledger::{InstanceRecord, Ledger};
use crate::store::ValidUid;

/// The largest annotation body accepted.
pub const MAX_BODY: usize = 256 * 1024;

fn refused(status: StatusCode, text: &str) -> Response {
    (status, text.to_owned()).into_response()
}

/// Validates the UID and finds the image through a cohort the reader sees:
/// 400 for a malformed UID, 404 for an image that is not there for them.
pub async fn authorised_image(
    state: &AppState,
    reader: &Reader,
    raw: &str,
) -> Result<(InstanceRecord, String), Response> {
    let sop = ValidUid::parse(raw).map_err(|_| refused(StatusCode::BAD_REQUEST, "bad UID"))?;
    let ledger = state.store.ledger().clone();
    let reader = reader.clone();
    let found = tokio::task::spawn_blocking(move || image_cohort(&ledger, &reader, &sop))
        .await
        .map_err(|_| refused(StatusCode::INTERNAL_SERVER_ERROR, "lookup failed"))?
        .map_err(|error| {
            tracing::warn!(%error, "annotator: image lookup failed");
            refused(StatusCode::INTERNAL_SERVER_ERROR, "lookup failed")
        })?;
    found.ok_or_else(|| refused(StatusCode::NOT_FOUND, "no such image"))
}

/// `GET /annotate/api/images/{sop}/png`.
pub async fn png(
    State(state): State<Arc<AppState>>,
    reader: Reader,
    Path(sop): Path<String>,
) -> Response {
    let (instance, cohort) = match authorised_image(&state, &reader, &sop).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let data_dir = state.store.data_dir().to_path_buf();
    let uid = instance.sop_instance_uid.clone();
    let rendered =
        tokio::task::spawn_blocking(move || super::image::png(&data_dir, &instance)).await;
    match rendered {
        Ok(Ok((bytes, size))) => {
            state
                .audit(
                    &reader.name,
                    "annotator.image-view",
                    &format!("{cohort}/{uid}"),
                    serde_json::json!({ "columns": size[0], "rows": size[1] }),
                )
                .await;
            ([(header::CONTENT_TYPE, "image/png")], bytes).into_response()
        }
        Ok(Err(error)) => {
            tracing::info!(%error, "annotator: image not rendered");
            refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the image cannot be shown",
            )
        }
        Err(_) => refused(StatusCode::INTERNAL_SERVER_ERROR, "rendering failed"),
    }
}

/// One of the node's findings, for the overlay.
#[derive(Debug, Serialize)]
struct OverlayFinding {
    category: String,
    label: String,
    probability: f32,
    /// `[x_min, y_min, x_max, y_max]` in image pixels.
    bounding_box: [f32; 4],
    outline: Vec<[f32; 2]>,
}

/// The analysis result of an instance's job, if it was analysed.
fn analysis_of(ledger: &Ledger, instance: &InstanceRecord) -> Option<AnalysisResult> {
    let bytes = ledger.queue().result(instance.job_id).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// `GET /annotate/api/images/{sop}/findings`.
pub async fn findings(
    State(state): State<Arc<AppState>>,
    reader: Reader,
    Path(sop): Path<String>,
) -> Response {
    let (instance, _) = match authorised_image(&state, &reader, &sop).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let ledger = state.store.ledger().clone();
    let result = tokio::task::spawn_blocking(move || analysis_of(&ledger, &instance))
        .await
        .ok()
        .flatten();
    let overlay: Vec<OverlayFinding> = result
        .map(|r| {
            r.findings
                .localised
                .into_iter()
                .map(|f| OverlayFinding {
                    category: f.category.key().to_owned(),
                    label: f.label,
                    probability: f.probability,
                    bounding_box: f.region.bounding_box,
                    outline: f.region.outline,
                })
                .collect()
        })
        .unwrap_or_default();
    Json(overlay).into_response()
}

/// `GET /annotate/api/images/{sop}/annotations`.
pub async fn list_annotations(
    State(state): State<Arc<AppState>>,
    reader: Reader,
    Path(sop): Path<String>,
) -> Response {
    let (instance, _) = match authorised_image(&state, &reader, &sop).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let backend = state.backend.clone();
    let listed =
        tokio::task::spawn_blocking(move || backend.list(&instance.sop_instance_uid)).await;
    match listed {
        Ok(Ok(records)) => Json(records).into_response(),
        _ => refused(StatusCode::INTERNAL_SERVER_ERROR, "listing failed"),
    }
}

/// `POST /annotate/api/images/{sop}/annotations`: CSRF first, then the
/// image, then the body.
pub async fn save_annotation(
    State(state): State<Arc<AppState>>,
    reader: Reader,
    Path(sop): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = reader.check_csrf_header(&headers) {
        return refused.into_response();
    }
    let (instance, cohort) = match authorised_image(&state, &reader, &sop).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let input: AnnotationInput = match serde_json::from_slice(&body) {
        Ok(input) => input,
        Err(error) => return refused(StatusCode::BAD_REQUEST, &format!("bad annotation: {error}")),
    };
    if let Some(text) = &input.finding_text
        && text.chars().count() > 500
    {
        return refused(
            StatusCode::BAD_REQUEST,
            "finding_text is longer than 500 characters",
        );
    }
    let backend = state.backend.clone();
    let reader_name = reader.name.clone();
    let saved = tokio::task::spawn_blocking(move || {
        backend
            .save(&instance.sop_instance_uid, &reader_name, input)
            .map_err(|e| match e {
                SaveError::Invalid(why) => (StatusCode::BAD_REQUEST, why),
                SaveError::Failed(error) => {
                    tracing::warn!("annotator: saving an annotation failed: {error:#}");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "saving failed".to_owned(),
                    )
                }
            })
    })
    .await;
    match saved {
        Ok(Ok(record)) => {
            state
                .audit(
                    &reader.name,
                    "annotator.annotation-save",
                    &format!("{cohort}/{}", record.sop_instance_uid),
                    serde_json::json!({ "id": record.id, "finding": record.finding }),
                )
                .await;
            (StatusCode::CREATED, Json(record)).into_response()
        }
        Ok(Err((status, error))) => refused(status, &error),
        Err(_) => refused(StatusCode::INTERNAL_SERVER_ERROR, "saving failed"),
    }
}
