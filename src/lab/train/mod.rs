//! `chestnode train`: trains a compact model (`chestnet-compact-v2`, or
//! `-v1`) on a labelled dataset directory and writes safetensors plus a
//! complete manifest, ready for `chestnode analyze --model` or `analysis.model`.
//!
//! - `dataset`: decodes every image once, up front, through the node's own
//!   imaging pipeline, and rasterises the label masks
//! - `augment`: shifts, scales, small rotations, exposure and noise (no flips)
//! - `batch`: samples → input, targets and weights on the model's grids
//! - `loss`: numerically stable binary cross-entropy with weights
//! - `optimiser`: AdamW with saved moments, warm-up + cosine schedule
//! - `init`: deterministic initial weights from the seed
//! - `checkpoint`: resume and best weights; `thresholds`: operating points
//!   on the validation split; `export`: weights + manifest
//!
//! The loss is image-level multi-label BCE plus a segmentation BCE on the
//! map of every label (stride 4 in v2, 16 in v1), so the regions
//! `findings` draws come from the model itself. Each epoch ends with a validation pass using
//! batch-norm running statistics (as the node runs the model); training
//! stops early when the validation loss has not improved for `patience`
//! epochs, and the best epoch's weights are exported.

pub mod augment;
pub mod batch;
pub mod checkpoint;
pub mod export;
pub mod init;
pub mod loss;
pub mod optimiser;
pub mod samples;
pub mod step;
pub mod thresholds;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use candle_core::{D, DType, Device};
use candle_nn::{VarBuilder, VarMap};
use fastrand::Rng;
use indicatif::{ProgressBar, ProgressStyle};

use crate::imaging::Normalisation;
use crate::lab::dataset::{Selection, Split};
use crate::model::compact::{ARCHITECTURE_V2, CompactNet, Config};
use crate::model::manifest::NormalisationSpec;
use augment::AugmentationRanges;
use checkpoint::{Checkpoint, EpochRecord, STATE_SCHEMA, TrainingState};
use optimiser::{AdamW, AdamWConfig, CosineSchedule};
use samples::Dataset;
use thresholds::ChosenThreshold;

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

/// Everything a training run is told.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Dataset directories, read together.
    pub data: Vec<PathBuf>,
    /// Which of their label files to take (never the test split).
    pub selection: Selection,
    pub out: PathBuf,
    /// Model name: the output files are `NAME.safetensors` and `NAME.toml`.
    pub name: String,
    /// `chestnet-compact-v2` (default) or `chestnet-compact-v1`.
    pub architecture: String,
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub warmup_steps: u64,
    pub input_size: usize,
    pub seed: u64,
    /// Continue from `OUT/checkpoint` instead of starting afresh.
    pub resume: bool,
    /// Start from these weights (safetensors of the same architecture)
    /// instead of the seeded initialisation.
    pub init: Option<PathBuf>,
    pub validation_fraction: f64,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    /// Operating point of the thresholds where the validation split has
    /// no real normal radiographs.
    pub min_sensitivity: f64,
    /// Where it has them: the share of real normals that any-abnormality
    /// may not call positive (0.80: at most one normal in five flagged)...
    pub normal_specificity: f64,
    /// ...and that each finding label may not.
    pub finding_specificity: f64,
    /// Weight of the segmentation loss beside the image-level loss.
    pub segmentation_weight: f64,
    pub augmentation: AugmentationRanges,
    /// `cpu` or `cuda`.
    pub device: String,
}

impl TrainOptions {
    /// Quick settings for trying things out.
    pub fn new(data: Vec<PathBuf>, out: PathBuf) -> TrainOptions {
        TrainOptions {
            data,
            selection: Selection::training(Vec::new(), false),
            out,
            name: "chestnet-compact".into(),
            architecture: ARCHITECTURE_V2.into(),
            epochs: 10,
            batch: 8,
            learning_rate: 2e-3,
            weight_decay: 1e-4,
            warmup_steps: 20,
            input_size: 256,
            seed: 1,
            resume: false,
            init: None,
            validation_fraction: 0.15,
            patience: 4,
            min_sensitivity: 0.90,
            normal_specificity: 0.80,
            finding_specificity: 0.90,
            segmentation_weight: 1.0,
            augmentation: AugmentationRanges::default(),
            device: "cpu".into(),
        }
    }

    /// Named settings. `default` is what rebuilds the embedded default
    /// model (`scripts/train_default_model.sh`, weights/README.md): a
    /// 256-pixel input (a 5 mm nodule spans about 3.5 pixels of a 360 mm
    /// field), batch 16, up to 25 epochs, peak learning rate 2e-3 after
    /// 200 warm-up steps, patience 5, seed 1; about an hour on 2 CPU cores
    /// for 2,400 images.
    pub fn preset(name: &str, data: Vec<PathBuf>, out: PathBuf) -> anyhow::Result<TrainOptions> {
        match name {
            "default" => Ok(TrainOptions {
                name: "chestnet-compact-default".into(),
                epochs: 25,
                batch: 16,
                learning_rate: 2e-3,
                warmup_steps: 200,
                input_size: 256,
                seed: 1,
                patience: 5,
                ..TrainOptions::new(data, out)
            }),
            // Real radiographs (a corpus and lesions inserted into its
            // training patients' normals): wider acquisition augmentation
            // and fewer, longer epochs; about an hour on 2 CPU cores for
            // 4,000 images at 256².
            "real" => Ok(TrainOptions {
                name: "chestnet-compact-default".into(),
                epochs: 12,
                batch: 16,
                learning_rate: 2e-3,
                warmup_steps: 150,
                input_size: 256,
                seed: 1,
                patience: 4,
                augmentation: AugmentationRanges::real_world(),
                // A finding label may call at most 5 % of real normals
                // positive: the report shows every positive finding, and
                // several labels at 10 % each add up on a normal film.
                finding_specificity: 0.95,
                ..TrainOptions::new(data, out)
            }),
            other => bail!("unknown preset {other:?} (known: default, real)"),
        }
    }
}

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
        varmap
            .load(weights)
            .with_context(|| format!("loading initial weights {}", weights.display()))?;
        eprintln!("starting from {}", weights.display());
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
    let any = labels.iter().position(|l| l == samples::ANY_ABNORMALITY);
    let real_normal: Vec<bool> = validation_indices
        .iter()
        .map(|&i| {
            let sample = &dataset.samples[i];
            sample.provenance.is_real() && any.is_some_and(|a| sample.targets[a] == Some(false))
        })
        .collect();
    let chosen: Vec<ChosenThreshold> = (0..labels.len())
        .map(|label| {
            let mut scores = Vec::new();
            let mut truth = Vec::new();
            let mut normal = Vec::new();
            for ((p, t), n) in validation
                .probabilities
                .iter()
                .zip(&validation.truth)
                .zip(&real_normal)
            {
                if let Some(t) = t[label] {
                    scores.push(p[label]);
                    truth.push(t);
                    normal.push(*n);
                }
            }
            let specificity = if labels[label] == samples::ANY_ABNORMALITY {
                options.normal_specificity
            } else {
                options.finding_specificity
            };
            thresholds::choose_for_specificity(
                &scores,
                &truth,
                &normal,
                specificity,
                options.min_sensitivity,
            )
        })
        .collect();
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

/// A validation pass's loss, probabilities and truth, per image.
struct Validation {
    loss: f64,
    probabilities: Vec<Vec<f32>>,
    truth: Vec<Vec<Option<bool>>>,
}

fn validate(
    model: &CompactNet,
    dataset: &Dataset,
    indices: &[usize],
    stride: usize,
    options: &TrainOptions,
    normalisation: Normalisation,
    device: &Device,
) -> anyhow::Result<Validation> {
    let mut weighted_loss = 0.0;
    let mut probabilities = Vec::new();
    let mut truth = Vec::new();
    for chunk in indices.chunks(options.batch) {
        let batch = batch::assemble(dataset, chunk, stride, normalisation, None, device)?;
        let output = model.forward_t(&batch.input, false)?;
        let loss = step::combined_loss(&output, &batch, options.segmentation_weight)?;
        weighted_loss += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
        let p = candle_nn::ops::sigmoid(&output.logits)?;
        debug_assert_eq!(p.dim(D::Minus1)?, dataset.labels.len());
        probabilities.extend(p.to_vec2::<f32>()?);
        truth.extend(batch.truth);
    }
    Ok(Validation {
        loss: weighted_loss / indices.len().max(1) as f64,
        probabilities,
        truth,
    })
}

/// Training and validation indices: label files that carry a split keep
/// it (a real corpus splits by patient, and lesions inserted into a
/// patient's film inherit that patient's split); the rest (generated
/// data) are split at random by [`split`].
fn split_samples(
    dataset: &Dataset,
    fraction: f64,
    seed: u64,
) -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    let mut train = Vec::new();
    let mut validation = Vec::new();
    let mut unsplit = Vec::new();
    for (index, sample) in dataset.samples.iter().enumerate() {
        match sample.provenance.split {
            Some(Split::Train) => train.push(index),
            Some(Split::Validation) => validation.push(index),
            Some(Split::Test) => bail!("{}: a test image reached training", sample.name),
            None => unsplit.push(index),
        }
    }
    if !unsplit.is_empty() {
        if unsplit.len() >= 3 {
            let (t, v) = split(unsplit.len(), fraction, seed)?;
            train.extend(t.into_iter().map(|i| unsplit[i]));
            validation.extend(v.into_iter().map(|i| unsplit[i]));
        } else {
            train.extend(unsplit);
        }
    }
    if train.is_empty() || validation.is_empty() {
        bail!(
            "training needs images in both splits ({} training, {} validation)",
            train.len(),
            validation.len()
        );
    }
    train.sort_unstable();
    validation.sort_unstable();
    Ok((train, validation))
}

/// Splits `0..count` into training and validation indices, reproducibly
/// from `seed`; both get at least one image.
pub fn split(count: usize, fraction: f64, seed: u64) -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    if count < 3 {
        bail!("a dataset needs at least 3 images to train and validate, this one has {count}");
    }
    let validation = ((count as f64 * fraction).round() as usize).clamp(1, count - 2);
    let mut order: Vec<usize> = (0..count).collect();
    Rng::with_seed(seed ^ 0x5eed_5911_u64).shuffle(&mut order);
    let mut validation_indices = order[..validation].to_vec();
    let mut train_indices = order[validation..].to_vec();
    validation_indices.sort_unstable();
    train_indices.sort_unstable();
    Ok((train_indices, validation_indices))
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
    fn split_is_reproducible_and_disjoint() {
        let (train, validation) = split(20, 0.15, 3).unwrap();
        assert_eq!(validation.len(), 3);
        assert_eq!(train.len(), 17);
        assert!(validation.iter().all(|v| !train.contains(v)));
        assert_eq!(split(20, 0.15, 3).unwrap(), (train, validation));
        assert!(split(2, 0.5, 1).is_err());
    }

    #[test]
    fn a_lone_last_image_joins_the_previous_batch() {
        let order: Vec<usize> = (0..9).collect();
        let b = batches(&order, 4);
        assert_eq!(b.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![4, 5]);
        let b = batches(&order[..6], 4);
        assert_eq!(b.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![4, 2]);
    }
}
