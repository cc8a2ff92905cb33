//! One training step of each compact model (`chestnet-compact-v1` and
//! `-v2`, 7 labels) at 256×256 (or `CHESTNODE_BENCH_SIZE`), batch 16, on
//! the CPU: forward in training mode,
//! image-level + segmentation loss, backward, AdamW — exactly
//! `chestnode::lab::train::step::training_step`, with the allocator settings
//! `chestnode train` uses. Inputs and targets are random (fixed seed): the
//! time of a step does not depend on what the pixels show. Prints the
//! median and p90 of 10 steps after 2 warm-up steps as one JSON line per
//! architecture; then inference of v2 on one image (evaluation mode, as
//! the node runs it), median and p90 of 20 after 3 warm-up passes.
//! Run with `cargo bench --bench train_step`; compare with PyTorch through
//! `bench/train_step.sh`.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use chestnode::lab::train::{AdamW, AdamWConfig, Batch, training_step};
use chestnode::model::compact::{CompactNet, Config};

const BATCH: usize = 16;
const LABELS: usize = 7;

/// Input side: 256, or `CHESTNODE_BENCH_SIZE` (a multiple of 16).
fn size() -> usize {
    std::env::var("CHESTNODE_BENCH_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

fn random_batch(config: &Config, device: &Device) -> anyhow::Result<Batch> {
    let size = size();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut uniform = |count: usize| -> Vec<f32> { (0..count).map(|_| rng.f32()).collect() };
    let input = Tensor::from_vec(uniform(BATCH * size * size), (BATCH, 1, size, size), device)?;
    let input = ((input * 2.0)? - 1.0)?;
    let targets = Tensor::from_vec(uniform(BATCH * LABELS), (BATCH, LABELS), device)?.round()?;
    let grid = size / config.segmentation_stride();
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
    inference(&Config::v2(LABELS))
}

/// One image through v2 in evaluation mode, as `analyze` and the worker
/// run it (without decoding and findings).
fn inference(config: &Config) -> anyhow::Result<()> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let model = CompactNet::load(config, vb)?;
    chestnode::lab::train::initialise(&varmap, 1)?;
    let size = size();
    let input = Tensor::rand(-1f32, 1f32, (1, 1, size, size), &device)?;
    for _ in 0..3 {
        model.forward_t(&input, false)?.logits.to_vec2::<f32>()?;
    }
    let mut times_ms = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        model.forward_t(&input, false)?.logits.to_vec2::<f32>()?;
        times_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times_ms.sort_by(f64::total_cmp);
    let threads = candle_core::utils::get_num_threads();
    println!(
        "{{\"peer\": \"candle\", \"mode\": \"inference\", \"architecture\": \"{}\", \
         \"threads\": {threads}, \"batch\": 1, \"size\": {size}, \"median_ms\": {:.2}, \
         \"p90_ms\": {:.2}}}",
        config.architecture(),
        times_ms[10],
        times_ms[18]
    );
    Ok(())
}

fn measure(config: &Config) -> anyhow::Result<()> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let model = CompactNet::load(config, vb)?;
    chestnode::lab::train::initialise(&varmap, 1)?;
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
    let size = size();
    println!(
        "{{\"peer\": \"candle\", \"architecture\": \"{}\", \"threads\": {threads}, \
         \"batch\": {BATCH}, \"size\": {size}, \"median_ms\": {:.1}, \"p90_ms\": {:.1}}}",
        config.architecture(),
        times_ms[5],
        times_ms[9]
    );
    Ok(())
}
