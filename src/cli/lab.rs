//! The lab's subcommands (`synth`, `corpus`, `evaluate`, `train`): their
//! flags and the thin code that turns them into calls of `chestnode::lab::synth`,
//! `dataset`, `evaluate` and `train`. Kept apart from `main.rs` so that the
//! node's own commands (serve, status, retry, analyze) read on one page.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::set;

#[derive(Args)]
pub struct EvaluateArgs {
    /// Dataset directory (docs/dataset-format.md).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Model manifest [default: the built-in model]
    #[arg(long, value_name = "MANIFEST")]
    model: Option<PathBuf>,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Only cases of this split (a corpus's held-out `test`) [default: all]
    #[arg(long, value_name = "SPLIT")]
    split: Option<String>,
    /// Leave out a source; repeatable.
    #[arg(long, value_name = "SOURCE")]
    exclude_source: Vec<String>,
    /// Also evaluate on paediatric films.
    #[arg(long)]
    include_pediatric: bool,
    /// Bootstrap resamples for the AUC intervals; 0: none.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the bootstrap resampling.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// cpu or cuda [default: cpu]
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Dataset directory (`chestnode synth` or `corpus`); repeat to train on several.
    #[arg(long, value_name = "DIR", required = true)]
    data: Vec<PathBuf>,
    /// Leave out a source (or the inserted images on its films); repeatable.
    #[arg(long, value_name = "SOURCE")]
    exclude_source: Vec<String>,
    /// Also train on paediatric films.
    #[arg(long)]
    include_pediatric: bool,
    /// Share of real normal validation films that any-abnormality must call normal [default: 0.8]
    #[arg(long, value_name = "F")]
    normal_specificity: Option<f64>,
    /// Share of real normal validation films that each finding label must call negative [default: 0.9; preset real: 0.95]
    #[arg(long, value_name = "F")]
    finding_specificity: Option<f64>,
    /// Output directory for the model, its manifest and checkpoints.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Start from named settings; other flags override them (known: default).
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Epochs [default: 10; preset default: 25]
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Images per step [default: 8; preset default: 16]
    #[arg(long, value_name = "B")]
    batch: Option<usize>,
    /// Peak learning rate [default: 0.002]
    #[arg(long, value_name = "LR")]
    lr: Option<f64>,
    /// Warm-up steps [default: 20; preset default: 200]
    #[arg(long, value_name = "N")]
    warmup: Option<u64>,
    /// Input side in pixels, a multiple of 16 [default: 256]
    #[arg(long, value_name = "PX")]
    input_size: Option<usize>,
    /// Seed for initial weights, the split, shuffling and augmentation [default: 1]
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Continue from OUT/checkpoint.
    #[arg(long)]
    resume: bool,
    /// Fine-tune: start from a trained model of the same architecture:
    /// `default` (the built-in model), a manifest (.toml) or a .safetensors.
    #[arg(long, value_name = "MODEL")]
    init: Option<PathBuf>,
    /// Stop after this many epochs without a better validation loss [default: 4; preset default: 5]
    #[arg(long, value_name = "N")]
    patience: Option<usize>,
    /// Fraction of images held out for validation [default: 0.15]
    #[arg(long, value_name = "F")]
    validation_fraction: Option<f64>,
    /// Model name: the files are NAME.safetensors and NAME.toml [default: chestnet-compact; preset default: chestnet-compact-default]
    #[arg(long)]
    name: Option<String>,
    /// cpu or cuda [default: cpu]
    #[arg(long)]
    device: Option<String>,
    /// chestnet-compact-v2 (stride-4 maps) or chestnet-compact-v1 [default: chestnet-compact-v2]
    #[arg(long, value_name = "NAME")]
    architecture: Option<String>,
}

#[derive(Args)]
pub struct SynthArgs {
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Number of images.
    #[arg(long, value_name = "N")]
    count: u64,
    /// Dataset seed.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Rows = columns of each image [default: 1024]
    #[arg(long, value_name = "PX")]
    size: Option<usize>,
    /// Fraction of images stored as MONOCHROME1.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    monochrome1_fraction: f32,
    /// Also insert findings into real radiographs: a PNG file, or a
    /// directory of them; repeat for more.
    #[arg(long, value_name = "PNG_OR_DIR")]
    insert_into: Vec<PathBuf>,
    /// With an imported corpus in --insert-into: only its normals of this
    /// split (train, validation or test) [default: all]
    #[arg(long, value_name = "SPLIT")]
    insert_split: Option<String>,
    /// Fraction of images drawn on a real radiograph when --insert-into is given.
    #[arg(long, value_name = "F", default_value_t = 0.3)]
    insert_fraction: f32,
    /// Also write 8-bit PNG previews to DIR/previews.
    #[arg(long)]
    previews: bool,
    /// Change how often findings appear, e.g. `--mix nodule=0.5,mass=0.1`
    /// (keys as in dataset.json's `config.mix`; frequencies are relative
    /// weights, second_finding and hidden_nodules chances).
    #[arg(long, value_name = "KEY=F", value_delimiter = ',')]
    mix: Vec<String>,
}

#[derive(Args)]
pub struct CorpusArgs {
    /// A corpus's labels.csv (image paths relative to its folder); repeat for more.
    #[arg(long, value_name = "FILE", required = true)]
    csv: Vec<PathBuf>,
    /// Output dataset directory (must not exist).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The list of images reserved for independent evaluation.
    #[arg(long, value_name = "FILE")]
    reserved: PathBuf,
    /// Share of patients held out for validation.
    #[arg(long, value_name = "F", default_value_t = 0.15)]
    validation_fraction: f64,
    /// Share of patients held out for testing.
    #[arg(long, value_name = "F", default_value_t = 0.15)]
    test_fraction: f64,
    /// Seed of the split.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
}

/// `chestnode synth`: a dataset directory, with a progress line on stderr.
pub fn synth(args: SynthArgs) -> anyhow::Result<()> {
    use chestnode::lab::synth::{SynthConfig, dataset};
    let mut config = SynthConfig::default();
    set(&mut config.size, args.size);
    config.monochrome1_fraction = args.monochrome1_fraction;
    config.mix = config.mix.with_overrides(&args.mix)?;
    anyhow::ensure!(
        (16..=4096).contains(&config.size),
        "--size must be 16..=4096"
    );
    let insertion = if args.insert_into.is_empty() {
        None
    } else {
        Some(dataset::Insertion::from_paths(
            &args.insert_into,
            args.insert_fraction,
            args.insert_split.as_deref(),
        )?)
    };
    let total = args.count;
    let interactive = std::io::stderr().is_terminal();
    let progress = move |done: usize| {
        if interactive || done as u64 == total {
            eprint!("\rgenerated {done}/{total}");
            if done as u64 == total {
                eprintln!();
            }
        }
    };
    let options = dataset::Options {
        previews: args.previews,
    };
    dataset::write_dataset(
        &args.out,
        &config,
        args.seed,
        args.count,
        insertion.as_ref(),
        &options,
        &progress,
    )?;
    println!("wrote {} images to {}", args.count, args.out.display());
    Ok(())
}

/// `chestnode corpus`: imports real radiographs and prints what went where.
pub fn corpus(args: CorpusArgs) -> anyhow::Result<()> {
    use chestnode::lab::dataset::{CorpusOptions, Reserved, SplitFractions, import_corpus};
    let fractions = SplitFractions {
        validation: args.validation_fraction,
        test: args.test_fraction,
    };
    anyhow::ensure!(
        fractions.validation >= 0.0
            && fractions.test >= 0.0
            && fractions.validation + fractions.test < 1.0,
        "the validation and test fractions must leave some training data"
    );
    let summary = import_corpus(&CorpusOptions {
        csv: args.csv,
        out: args.out.clone(),
        reserved: Reserved::load(&args.reserved)?,
        fractions,
        seed: args.seed,
    })?;
    println!(
        "imported {} images into {} ({} refused as reserved for evaluation, {} without a usable label)",
        summary.imported,
        args.out.display(),
        summary.reserved.len(),
        summary.unlabelled
    );
    for (source, splits) in &summary.counts {
        for (split, labels) in splits {
            let labels: Vec<String> = labels.iter().map(|(l, n)| format!("{l} {n}")).collect();
            println!("  {source:<24} {split:<10} {}", labels.join(", "));
        }
    }
    Ok(())
}

/// `chestnode evaluate`: measures a model on a dataset, with a progress
/// line on stderr.
pub fn evaluate(args: EvaluateArgs) -> anyhow::Result<()> {
    use chestnode::lab::evaluate::{self, metrics::Bootstrap};
    let device = chestnode::model::device_by_name(&args.device)?;
    let model = chestnode::model::Model::from_config(args.model.as_deref(), &device)?;
    let splits = match args.split.as_deref() {
        None => None,
        Some(name) => Some(vec![
            chestnode::lab::dataset::Split::parse(name)
                .with_context(|| format!("--split {name:?}: expected train, validation or test"))?,
        ]),
    };
    let options = evaluate::Options {
        data: args.data,
        selection: chestnode::lab::dataset::Selection::evaluation(
            splits,
            args.exclude_source,
            args.include_pediatric,
        ),
        manifest: args.model,
        bootstrap: Bootstrap {
            resamples: args.bootstrap,
            seed: args.seed,
            confidence: 0.95,
        },
    };
    let interactive = std::io::stderr().is_terminal();
    let progress = move |done: usize, total: usize| {
        if interactive || done == total {
            eprint!("\revaluated {done}/{total}");
            if done == total {
                eprintln!();
            }
        }
    };
    let report = evaluate::evaluate(model, &options, &progress)?;
    let written = evaluate::write_outputs(&report, &args.out)?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `chestnode train`: options from the preset and flags, then the run.
pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    use chestnode::lab::train::{TrainOptions, train};
    let mut options = match &args.preset {
        Some(name) => TrainOptions::preset(name, args.data, args.out)?,
        None => TrainOptions::new(args.data, args.out),
    };
    set(&mut options.epochs, args.epochs);
    set(&mut options.batch, args.batch);
    set(&mut options.learning_rate, args.lr);
    set(&mut options.warmup_steps, args.warmup);
    set(&mut options.input_size, args.input_size);
    set(&mut options.seed, args.seed);
    set(&mut options.patience, args.patience);
    set(&mut options.validation_fraction, args.validation_fraction);
    set(&mut options.name, args.name);
    set(&mut options.device, args.device);
    set(&mut options.architecture, args.architecture);
    set(&mut options.normal_specificity, args.normal_specificity);
    set(&mut options.finding_specificity, args.finding_specificity);
    options.selection =
        chestnode::lab::dataset::Selection::training(args.exclude_source, args.include_pediatric);
    options.resume = args.resume;
    options.init = args.init;
    anyhow::ensure!(
        (0.0..1.0).contains(&options.validation_fraction),
        "--validation-fraction must be in [0, 1)"
    );
    let report = train(&options)?;
    if report.stopped_early {
        println!(
            "stopped early: no better validation loss for {} epochs",
            options.patience
        );
    }
    println!("wrote {}", report.manifest.display());
    Ok(())
}
