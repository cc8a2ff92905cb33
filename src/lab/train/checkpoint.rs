//! Checkpoints: everything needed to resume training exactly where it
//! stopped, and the best weights so far.
//!
//! `OUT/checkpoint/` holds the model's variables (`weights.safetensors`,
//! batch-norm running statistics included), AdamW's moments
//! (`optimiser.safetensors`), the weights of the best validation epoch
//! (`best.safetensors`) and `state.json`: epochs and steps done, the random
//! stream's state, the early-stopping bookkeeping and the per-epoch
//! history. Each file is written beside its final name and renamed, and
//! the state last, so an interrupted save leaves the previous checkpoint
//! usable.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use super::optimiser::AdamW;
use super::thresholds::ChosenThreshold;

pub const STATE_SCHEMA: &str = "chestnode-training-state/1";

/// One epoch's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f64,
    /// Every step's training loss, in order.
    pub step_losses: Vec<f32>,
    pub validation_loss: f64,
    /// Learning rate at the epoch's last step.
    pub learning_rate: f64,
    pub milliseconds_per_step: f64,
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    pub schema: String,
    pub input_size: usize,
    pub labels: Vec<String>,
    pub epochs_done: usize,
    pub steps_done: u64,
    /// Seed that continues the training random stream.
    pub rng_state: u64,
    pub best_validation_loss: Option<f64>,
    pub best_epoch: Option<usize>,
    pub epochs_since_best: usize,
    pub history: Vec<EpochRecord>,
    /// Set once the final model has been written.
    #[serde(default)]
    pub thresholds: Option<Vec<ChosenThreshold>>,
}

/// The checkpoint directory of a training output directory.
pub struct Checkpoint {
    dir: PathBuf,
}

impl Checkpoint {
    pub fn new(out: &Path) -> Checkpoint {
        Checkpoint {
            dir: out.join("checkpoint"),
        }
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    pub fn best_weights_path(&self) -> PathBuf {
        self.dir.join("best.safetensors")
    }

    pub fn exists(&self) -> bool {
        self.state_path().is_file()
    }

    /// Saves the current weights, moments and state; also the best weights
    /// when `is_best`.
    pub fn save(
        &self,
        varmap: &VarMap,
        optimiser: &AdamW,
        state: &TrainingState,
        is_best: bool,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let weights = self.dir.join("weights.safetensors");
        replace(&weights, |tmp| Ok(varmap.save(tmp)?))?;
        if is_best {
            std::fs::copy(&weights, self.dir.join("best.safetensors.tmp"))?;
            std::fs::rename(
                self.dir.join("best.safetensors.tmp"),
                self.best_weights_path(),
            )?;
        }
        replace(&self.dir.join("optimiser.safetensors"), |tmp| {
            Ok(optimiser.save(tmp)?)
        })?;
        self.save_state(state)
    }

    pub fn save_state(&self, state: &TrainingState) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(state)?;
        replace(&self.state_path(), |tmp| Ok(std::fs::write(tmp, &json)?))
    }

    /// Restores weights and moments into `varmap` and `optimiser` and
    /// returns the state; checks it belongs to the same model.
    pub fn restore(
        &self,
        varmap: &mut VarMap,
        optimiser: &mut AdamW,
        input_size: usize,
        labels: &[String],
        device: &candle_core::Device,
    ) -> anyhow::Result<TrainingState> {
        let text = std::fs::read_to_string(self.state_path())
            .with_context(|| format!("reading {}", self.state_path().display()))?;
        let state: TrainingState = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", self.state_path().display()))?;
        if state.schema != STATE_SCHEMA {
            bail!("unknown checkpoint schema {:?}", state.schema);
        }
        if state.input_size != input_size || state.labels != labels {
            bail!(
                "the checkpoint is for a {}px model with labels {:?}, not {input_size}px with {:?}",
                state.input_size,
                state.labels,
                labels
            );
        }
        varmap
            .load(self.dir.join("weights.safetensors"))
            .context("loading checkpoint weights")?;
        optimiser
            .load(
                &self.dir.join("optimiser.safetensors"),
                state.steps_done,
                device,
            )
            .context("loading optimiser state")?;
        Ok(state)
    }
}

/// Writes `path` through a temporary file beside it.
fn replace(path: &Path, write: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    write(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}
