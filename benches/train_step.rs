//! One training step of each compact model (`chestnet-compact-v1` and
//! `-v2`, 7 labels) at 256×256, batch 16, on the CPU: forward in training mode,
//! image-level + segmentation loss, backward, AdamW — exactly
//! `chestnode::train::step::training_step`, with the allocator settings
//! `chestnode train` uses. Inputs and targets are random (fixed seed): the
//! time of a step does not depend on what the pixels show. Prints the
//! median and p90 of 10 steps after 2 warm-up steps as one JSON line per
//! architecture.
//! Run with `cargo bench --bench train_step`; compare with PyTorch through
//! `bench/train_step.sh`.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use chestnode::model::compact::{CompactNet, Config};
use chestnode::train::batch::Batch;
use chestnode::train::optimiser::{AdamW, AdamWConfig};
use chestnode::train::step::training_step;

const BATCH: usize = 16;
const SIZE: usize = 256;
const LABELS: usize = 7;

fn random_batch(config: &Config, device: &Device) -> anyhow::Result<Batch> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut uniform = |count: usize| -> Vec<f32> { (0..count).map(|_| rng.f32()).collect() };
    let input = Tensor::from_vec(uniform(BATCH * SIZE * SIZE), (BATCH, 1, SIZE, SIZE), device)?;
    let input = ((input * 2.0)? - 1.0)?;
    let targets = Tensor::from_vec(uniform(BATCH * LABELS), (BATCH, LABELS), device)?.round()?;
    let grid = SIZE / config.segmentation_stride();
    let mask_shape = (BATCH, LABELS, grid, grid);
    let masks = Tensor::from_vec(uniform(BATCH * LABELS * grid * grid), mask_shape, device)?
        .ge(0.9)?
        .to_dtype(DType::F32)?;
    Ok(Batch {
        input,
        target_weights: targets.ones_like()?,
        targets,
        mask_weights: masks.ones_like()?,
        masks,
        truth: Vec::new(),
    })
}

fn main() -> anyhow::Result<()> {
    chestnode::allocator::keep_freed_memory();
    for config in [Config::v1(LABELS), Config::v2(LABELS)] {
        measure(&config)?;
    }
    Ok(())
}

fn measure(config: &Config) -> anyhow::Result<()> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let model = CompactNet::load(config, vb)?;
    chestnode::train::init::initialise(&varmap, 1)?;
    let mut optimiser = AdamW::new(&varmap, AdamWConfig::default())?;
    let batch = random_batch(config, &device)?;
    for _ in 0..2 {
        training_step(&model, &mut optimiser, &batch, 1e-3, 1.0)?;
    }
    let mut times_ms = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let loss = training_step(&model, &mut optimiser, &batch, 1e-3, 1.0)?;
        anyhow::ensure!(loss.is_finite(), "loss {loss}");
        times_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times_ms.sort_by(f64::total_cmp);
    let threads = candle_core::utils::get_num_threads();
    println!(
        "{{\"peer\": \"candle\", \"architecture\": \"{}\", \"threads\": {threads}, \
         \"batch\": {BATCH}, \"size\": {SIZE}, \"median_ms\": {:.1}, \"p90_ms\": {:.1}}}",
        config.architecture(),
        times_ms[5],
        times_ms[9]
    );
    Ok(())
}
