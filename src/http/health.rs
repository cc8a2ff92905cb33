//! `GET /health`: liveness and readiness.
//!
//! Answering at all means the process is alive (`"live": true`). Ready
//! means the node can take and process images now: the sled index answers
//! a read, free disk space is above `storage.min_free_mb` (below it every
//! C-STORE is refused with 0xA700), the model is loaded, and the DICOM
//! port is open. Ready answers HTTP 200, not ready 503, so a load balancer
//! or orchestrator can act on the status code alone; the JSON body says
//! which check failed.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::HttpState;
use crate::ledger::IndexCheck;

/// What the node has finished starting; set by `node::serve` as it goes.
#[derive(Debug, Default)]
pub struct Readiness {
    model: OnceLock<LoadedModel>,
    dicom_listening: AtomicBool,
}

/// The model in use, as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadedModel {
    pub name: String,
    pub version: String,
    /// The untrained placeholder (no `analysis.model` configured).
    pub placeholder: bool,
}

impl Readiness {
    pub fn model_loaded(&self, model: LoadedModel) {
        let _ = self.model.set(model);
    }

    pub fn dicom_listening(&self) {
        self.dicom_listening.store(true, Ordering::SeqCst);
    }
}

/// The `/health` answer.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub live: bool,
    pub ready: bool,
    pub checks: Checks,
}

#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    pub index: IndexCheck,
    pub disk: DiskCheck,
    pub model: ModelCheck,
    pub dicom: DicomCheck,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskCheck {
    pub ok: bool,
    /// `None` when the file system could not be asked.
    pub free_bytes: Option<u64>,
    pub min_free_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelCheck {
    pub ok: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub model: Option<LoadedModel>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DicomCheck {
    /// The DICOM port is open.
    pub ok: bool,
}

/// Runs every check.
pub async fn health(State(state): State<HttpState>) -> (StatusCode, Json<Health>) {
    let store = state.store.clone();
    let min_free_bytes = state.min_free_bytes;
    let (index, disk) = tokio::task::spawn_blocking(move || {
        let index = store.ledger().check_index();
        let free_bytes = store.free_bytes().ok();
        let disk = DiskCheck {
            ok: free_bytes.is_some_and(|free| free >= min_free_bytes),
            free_bytes,
            min_free_bytes,
        };
        (index, disk)
    })
    .await
    .unwrap_or_else(|error| {
        let failed = IndexCheck {
            ok: false,
            error: Some(format!("check task failed: {error}")),
        };
        let unknown = DiskCheck {
            ok: false,
            free_bytes: None,
            min_free_bytes,
        };
        (failed, unknown)
    });
    let model = state.readiness.model.get().cloned();
    let checks = Checks {
        index,
        disk,
        model: ModelCheck {
            ok: model.is_some(),
            model,
        },
        dicom: DicomCheck {
            ok: state.readiness.dicom_listening.load(Ordering::SeqCst),
        },
    };
    let ready = checks.index.ok && checks.disk.ok && checks.model.ok && checks.dicom.ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            live: true,
            ready,
            checks,
        }),
    )
}
