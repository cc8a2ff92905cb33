//! DenseNet-121 forward latency at 224×224, batch 1, on the CPU, with the
//! deterministic seeded weights (the same ones `bench/densenet_peers.py`
//! gives PyTorch and ONNX Runtime). Prints the median and p90 of 15 runs
//! after warm-up. Run with `cargo bench --bench densenet`; compare with
//! peers through `bench/densenet.sh`.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use chestnode::model::densenet::{Config, DenseNet};
use chestnode::model::seeded::SeededBackend;

fn main() -> anyhow::Result<()> {
    chestnode::model::configure_cpu();
    let device = Device::Cpu;
    let vb = VarBuilder::from_backend(Box::new(SeededBackend), DType::F32, device.clone());
    let model = DenseNet::load(&Config::densenet121_xrv(18), vb)?;
    let input = Tensor::randn(0f32, 1.0, (1, 1, 224, 224), &device)?;
    for _ in 0..3 {
        model.forward(&input)?;
    }
    let mut times_ms = Vec::new();
    for _ in 0..15 {
        let start = Instant::now();
        let output = model.forward(&input)?;
        output.logits.to_vec2::<f32>()?;
        times_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times_ms.sort_by(f64::total_cmp);
    let threads = candle_core::utils::get_num_threads();
    println!(
        "{{\"peer\": \"candle\", \"threads\": {threads}, \"median_ms\": {:.2}, \"p90_ms\": {:.2}}}",
        times_ms[7], times_ms[13]
    );
    Ok(())
}
