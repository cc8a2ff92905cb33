//! `chestnode train`: trains a compact model (`chestnet-compact-v2`, or
//! `-v1`) on a labelled dataset directory and writes safetensors plus a
//! complete manifest, ready for `chestnode analyze --model` or `analysis.model`.
//!
//! - `samples`: decodes every case the lab's dataset reader selects once,
//!   up front, through the node's own imaging pipeline, and rasterises the
//!   label masks
//! - `augment`: shifts, scales, small rotations, exposure and noise (no flips)
//! - `batch`: samples → input, targets and weights on the model's grids
//! - `loss`: numerically stable binary cross-entropy with weights
//! - `optimiser`: AdamW with saved moments, warm-up + cosine schedule
//! - `init`: deterministic initial weights from the seed; `init_from`:
//!   fine-tuning from a trained model (`--init default|MANIFEST|WEIGHTS`)
//! - `checkpoint`: resume and best weights; `thresholds`: operating points
//!   on the validation split; `export`: weights + manifest
//! - `options`: what a run is told (flags, presets)
//! - `validation_split`: which images train and which validate
//! - `validation`: the validation pass, and the thresholds chosen from it
//!
//! The loss is image-level multi-label BCE plus a segmentation BCE on the
//! map of every label (stride 4 in v2, 16 in v1), so the regions
//! `findings` draws come from the model itself. Each epoch ends with a validation pass using
//! batch-norm running statistics (as the node runs the model); training
//! stops early when the validation loss has not improved for `patience`
//! epochs, and the best epoch's weights are exported.

mod augment;
mod batch;
mod checkpoint;
mod export;
mod init;
mod init_from;
mod loss;
mod optimiser;
mod options;
mod samples;
mod step;
mod thresholds;
mod validation;
mod validation_split;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};
use fastrand::Rng;
use indicatif::{ProgressBar, ProgressStyle};

use crate::imaging::Normalisation;
use crate::model::compact::{CompactNet, Config};
use crate::model::manifest::NormalisationSpec;
pub use batch::Batch;
pub use checkpoint::EpochRecord;
use checkpoint::{Checkpoint, STATE_SCHEMA, TrainingState};
pub use init::initialise;
pub use init_from::{DEFAULT_MODEL, load_initial};
use optimiser::CosineSchedule;
pub use optimiser::{AdamW, AdamWConfig};
pub use options::TrainOptions;
pub use step::training_step;
pub use thresholds::ChosenThreshold;
use validation::validate;
pub use validation_split::split;
use validation_split::split_samples;

/// The model's outputs: chestnode's category keys (so
/// `findings::categorise` maps them), pleural effusion, and any
/// abnormality.
pub const LABELS: [&str; 7] = [
    "nodule-mass",
    "consolidation",
    "tuberculosis",
    "mediastinal-mass",
    "emphysema",
    "pleural-effusion",
    "any-abnormality",
];

/// Grey 0..1 maps to this input range (centred for the first convolution).
pub const NORMALISATION: NormalisationSpec = NormalisationSpec {
    low: -1.0,
    high: 1.0,
};

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct TrainReport {
    pub manifest: PathBuf,
    pub history: Vec<EpochRecord>,
    pub thresholds: Vec<ChosenThreshold>,
    pub best_epoch: Option<usize>,
    pub stopped_early: bool,
}

/// Runs training to the end (or early stop) and exports the best epoch.
pub fn train(options: &TrainOptions) -> anyhow::Result<TrainReport> {
    crate::allocator::keep_freed_memory();
    if options.batch < 2 {
        bail!("--batch must be at least 2 (batch normalisation needs a batch)");
    }
    let device = crate::model::device_by_name(&options.device)?;
    let config = Config::by_architecture(&options.architecture, LABELS.len())
        .with_context(|| format!("unknown architecture {:?}", options.architecture))?;
    let stride = config.segmentation_stride();
    let labels: Vec<String> = LABELS.iter().map(|s| s.to_string()).collect();
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;

    let started = Instant::now();
    let dataset = samples::load(
        &options.data,
        &labels,
        options.input_size,
        &options.selection,
    )?;
    eprintln!(
        "decoded {} images at {}² in {:.1} s",
        dataset.samples.len(),
        options.input_size,
        started.elapsed().as_secs_f64()
    );
    let (train_indices, validation_indices) =
        split_samples(&dataset, options.validation_fraction, options.seed)?;
    eprintln!(
        "{} training and {} validation images ({} of them real)",
        train_indices.len(),
        validation_indices.len(),
        validation_indices
            .iter()
            .filter(|&&i| dataset.samples[i].provenance.is_real())
            .count()
    );

    let mut varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let model = CompactNet::load(&config, vb)?;
    init::initialise(&varmap, options.seed)?;
    if let Some(weights) = &options.init {
        // Fine-tuning: start from a trained model of the same architecture.
        let from = load_initial(&varmap, weights, &options.architecture, &LABELS, &device)
            .with_context(|| format!("--init {}", weights.display()))?;
        eprintln!("starting from {from}");
    }
    let mut optimiser = AdamW::new(
        &varmap,
        AdamWConfig {
            weight_decay: options.weight_decay,
            ..Default::default()
        },
    )?;

    let checkpoint = Checkpoint::new(&options.out);
    let mut state = if options.resume && checkpoint.exists() {
        let state = checkpoint.restore(
            &mut varmap,
            &mut optimiser,
            options.input_size,
            &labels,
            &device,
        )?;
        eprintln!(
            "resuming after epoch {} (step {})",
            state.epochs_done, state.steps_done
        );
        state
    } else {
        if options.resume {
            eprintln!(
                "no checkpoint in {}: starting afresh",
                options.out.display()
            );
        }
        TrainingState {
            schema: STATE_SCHEMA.into(),
            input_size: options.input_size,
            labels: labels.clone(),
            epochs_done: 0,
            steps_done: 0,
            rng_state: options.seed,
            best_validation_loss: None,
            best_epoch: None,
            epochs_since_best: 0,
            history: Vec::new(),
            thresholds: None,
        }
    };

    let steps_per_epoch = batches(&train_indices, options.batch).len() as u64;
    let schedule = CosineSchedule {
        peak: options.learning_rate,
        warmup: options.warmup_steps,
        total: steps_per_epoch * options.epochs as u64,
        floor: 0.02,
    };
    let normalisation = Normalisation {
        low: NORMALISATION.low,
        high: NORMALISATION.high,
    };
    let progress = progress_bar(steps_per_epoch * options.epochs as u64, state.steps_done);
    let mut rng = Rng::with_seed(state.rng_state);
    let mut stopped_early = false;

    while state.epochs_done < options.epochs {
        if state.epochs_since_best >= options.patience && state.best_epoch.is_some() {
            stopped_early = true;
            break;
        }
        let epoch = state.epochs_done + 1;
        let mut order = train_indices.clone();
        rng.shuffle(&mut order);
        let mut step_losses = Vec::new();
        let mut learning_rate = 0.0;
        let epoch_started = Instant::now();
        for indices in batches(&order, options.batch) {
            learning_rate = schedule.learning_rate(state.steps_done);
            let batch = batch::assemble(
                &dataset,
                indices,
                stride,
                normalisation,
                Some((&options.augmentation, &mut rng)),
                &device,
            )?;
            let value = step::training_step(
                &model,
                &mut optimiser,
                &batch,
                learning_rate,
                options.segmentation_weight,
            )?;
            if !value.is_finite() {
                bail!(
                    "the training loss became {value} at step {}",
                    state.steps_done + 1
                );
            }
            state.steps_done += 1;
            step_losses.push(value);
            progress.set_message(format!(
                "epoch {epoch}/{} loss {value:.4} lr {learning_rate:.2e}",
                options.epochs
            ));
            progress.inc(1);
        }
        let elapsed = epoch_started.elapsed();
        let validation = validate(
            &model,
            &dataset,
            &validation_indices,
            stride,
            options,
            normalisation,
            &device,
        )?;
        let train_loss = step_losses.iter().map(|&l| f64::from(l)).sum::<f64>()
            / step_losses.len().max(1) as f64;
        let record = EpochRecord {
            epoch,
            train_loss,
            milliseconds_per_step: elapsed.as_secs_f64() * 1000.0 / step_losses.len().max(1) as f64,
            step_losses,
            validation_loss: validation.loss,
            learning_rate,
        };
        let is_best = state
            .best_validation_loss
            .is_none_or(|best| validation.loss < best);
        if is_best {
            state.best_validation_loss = Some(validation.loss);
            state.best_epoch = Some(epoch);
            state.epochs_since_best = 0;
        } else {
            state.epochs_since_best += 1;
        }
        progress.suspend(|| {
            eprintln!(
                "epoch {epoch}/{}: train loss {:.4}, validation loss {:.4}{}, {:.0} ms/step",
                options.epochs,
                record.train_loss,
                record.validation_loss,
                if is_best { " (best)" } else { "" },
                record.milliseconds_per_step
            )
        });
        state.history.push(record);
        state.epochs_done = epoch;
        state.rng_state = rng.get_seed();
        checkpoint.save(&varmap, &optimiser, &state, is_best)?;
    }
    progress.finish_and_clear();

    // Export the best epoch, with thresholds chosen on its validation scores.
    let best = checkpoint.best_weights_path();
    if !best.is_file() {
        bail!("no epoch finished, so there is no model to write");
    }
    varmap.load(&best).context("loading the best weights")?;
    let validation = validate(
        &model,
        &dataset,
        &validation_indices,
        stride,
        options,
        normalisation,
        &device,
    )?;
    let chosen = validation.choose_thresholds(&dataset, &validation_indices, &labels, options);
    let best_epoch = state.best_epoch;
    let manifest = export::write_model(
        &options.out,
        &best,
        &export::ModelCard {
            name: &options.name,
            architecture: config.architecture(),
            version: format!(
                "seed-{}-epoch-{}",
                options.seed,
                best_epoch.unwrap_or(state.epochs_done)
            ),
            input_size: options.input_size,
            normalisation: NORMALISATION,
            labels: &labels,
            thresholds: &chosen,
            min_sensitivity: options.min_sensitivity,
            training_data: format!(
                "{}: {} training and {} validation images (split by seed {}), \
                 augmented with shifts, scales, small rotations, exposure and noise",
                dataset.description,
                train_indices.len(),
                validation_indices.len(),
                options.seed
            ),
            validation_images: validation_indices.len(),
        },
    )?;
    state.thresholds = Some(chosen.clone());
    checkpoint.save_state(&state)?;
    eprintln!(
        "wrote {} (best epoch {}) in {:.0} s",
        manifest.display(),
        best_epoch.map_or("-".into(), |e| e.to_string()),
        started.elapsed().as_secs_f64()
    );
    Ok(TrainReport {
        manifest,
        history: state.history,
        thresholds: chosen,
        best_epoch,
        stopped_early,
    })
}

/// The epoch's batches; a last batch of one image joins the one before
/// (batch normalisation cannot train on a single image).
fn batches(order: &[usize], size: usize) -> Vec<&[usize]> {
    let mut out: Vec<&[usize]> = order.chunks(size).collect();
    if out.len() > 1 && out.last().is_some_and(|b| b.len() == 1) {
        out.pop();
        let start = (out.len() - 1) * size;
        *out.last_mut().expect("two batches") = &order[start..];
    }
    out
}

fn progress_bar(total: u64, done: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} steps, ETA {eta} | {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_position(done);
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_last_image_joins_the_previous_batch() {
        let order: Vec<usize> = (0..9).collect();
        let b = batches(&order, 4);
        assert_eq!(b.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![4, 5]);
        let b = batches(&order[..6], 4);
        assert_eq!(b.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![4, 2]);
    }
}
