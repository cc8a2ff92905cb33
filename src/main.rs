//! The `chestnode` command line: parses arguments and calls the library.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use chestnode::config::Config;

// The lab's subcommands: synth, corpus, evaluate, train.
#[path = "cli/lab.rs"]
mod lab;
use lab::{CorpusArgs, EvaluateArgs, SynthArgs, TrainArgs, corpus, evaluate, synth, train};

// The research wing's subcommands: cohorts, export, vault, audit.
#[path = "cli/research.rs"]
mod research;
use research::ResearchArgs;

// The browser annotator's accounts.
#[path = "cli/users.rs"]
mod users;
use users::UsersArgs;

/// chestnode: a DICOM node that brings AI findings on chest radiographs into PACS.
///
/// Research use only, not for diagnosis.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the DICOM Storage SCP: receive, store durably and queue every image.
    ///
    /// Stops gracefully on SIGTERM or Ctrl-C: stops accepting, lets in-flight
    /// associations finish (bounded by network.shutdown_grace_secs), then
    /// flushes the index.
    Serve(ServeArgs),
    /// Show instances received, jobs by state and the last errors.
    ///
    /// Works whether or not the server is running: a running server answers
    /// over its control socket, otherwise the index is read directly.
    Status(StatusArgs),
    /// Send dead-lettered deliveries again: move them back to pending.
    ///
    /// Works whether or not the server is running; a running server starts
    /// sending them at once. Prints how many were moved.
    Retry(RetryArgs),
    /// Analyse DICOM files without a server and print the findings.
    ///
    /// Runs the same gating, decoding, preprocessing, model and findings as
    /// the server's workers; nothing is stored or sent.
    Analyze(AnalyzeArgs),
    /// Generate synthetic chest radiographs (DICOM DX) with JSON labels.
    ///
    /// Writes images/*.dcm, labels/*.json and dataset.json to --out (format:
    /// docs/dataset-format.md). Deterministic for a given seed and settings.
    Synth(SynthArgs),
    /// Import a public corpus of real radiographs (labels.csv) as a dataset.
    ///
    /// Writes DX images and label files with provenance, patient and a
    /// train/validation/test split drawn per patient; refuses images
    /// reserved for evaluation (docs/dataset-format.md, docs/training.md).
    Corpus(CorpusArgs),
    /// Measure a model on a labelled dataset (as written by `synth`).
    ///
    /// Writes evaluation.json, evaluation.md, roc.png and froc.png to --out:
    /// per-category ROC AUC with bootstrap intervals, sensitivity and
    /// specificity at the manifest thresholds, FROC and nodule subgroups.
    Evaluate(EvaluateArgs),
    /// Train the compact model on a labelled dataset directory.
    ///
    /// Reads images/*.dcm and labels/*.json (docs/dataset-format.md), trains
    /// with AdamW, checkpoints to OUT/checkpoint (resume with --resume),
    /// stops early on the validation split, and writes OUT/NAME.safetensors
    /// with its manifest OUT/NAME.toml (docs/training.md).
    Train(TrainArgs),
    /// Research: cohorts, de-identified export under research IDs, the
    /// pseudonym vault, opt-outs and the audit log (docs/research.md).
    ///
    /// Commands that need the index go through a running server's control
    /// socket, so they never stop ingest.
    Research(ResearchArgs),
    /// The browser annotator's accounts: add, list, remove, assign cohorts
    /// (docs/annotation.md).
    ///
    /// Passwords are hashed with Argon2id before they leave the command.
    Users(UsersArgs),
}

/// Where the configuration comes from; shared by every subcommand.
#[derive(Args)]
struct ConfigArgs {
    /// TOML configuration file (see deploy/chestnode.toml). Flags override it.
    #[arg(short, long, value_name = "FILE", env = "CHESTNODE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./chestnode-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Our AE title [default: CHESTNODE]
    #[arg(long, value_name = "AE")]
    ae_title: Option<String>,
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, value_name = "ADDR")]
    bind: Option<IpAddr>,
    /// DICOM port [default: 11112]
    #[arg(short, long)]
    port: Option<u16>,
    /// Associations served at once; more are rejected as transient [default: 16]
    #[arg(long, value_name = "N")]
    max_associations: Option<usize>,
    /// Maximum PDU length we receive, in bytes [default: 131072]
    #[arg(long, value_name = "BYTES")]
    max_pdu_length: Option<u32>,
    /// Refuse instances (0xA700) when free disk space is below this [default: 1024]
    #[arg(long, value_name = "MIB")]
    min_free_mb: Option<u64>,
    /// Refuse instances (0xA700) while this many jobs wait for analysis; 0: no limit [default: 10000]
    #[arg(long, value_name = "JOBS")]
    max_queued_jobs: Option<u64>,
    /// Delete delivered instances while the disk is fuller than this percentage; 0: never [default: 90]
    #[arg(long, value_name = "PERCENT")]
    retention_max_used_percent: Option<u8>,
    /// Allow this calling AE title (AE or AE@host); repeatable. Replaces the file's list.
    #[arg(long = "allow-calling", value_name = "AE[@HOST]")]
    allowed_calling: Vec<String>,
    /// Accept any Called AE Title, not only ours.
    #[arg(long)]
    any_called_ae_title: bool,
    /// ARTIM timeout: seconds to wait for an A-ASSOCIATE-RQ [default: 30]
    #[arg(long, value_name = "SECS")]
    association_timeout: Option<u64>,
    /// Seconds to wait for the next PDU inside a message [default: 60]
    #[arg(long, value_name = "SECS")]
    dimse_timeout: Option<u64>,
    /// Seconds an association may stay idle between messages [default: 300]
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<u64>,
    /// Seconds in-flight associations get at shutdown [default: 30]
    #[arg(long, value_name = "SECS")]
    shutdown_grace: Option<u64>,
    /// Images analysed at once; 0 receives and queues only [default: 2]
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Seconds before a failed analysis is retried (×4 each time) [default: 30]
    #[arg(long, value_name = "SECS")]
    retry_delay: Option<u64>,
    /// Port of the operations HTTP endpoint (/health, /metrics, /api/jobs) [default: 8081]
    #[arg(long, value_name = "PORT")]
    http_port: Option<u16>,
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RetryArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only this destination's dead letters [default: every destination's]
    #[arg(long, value_name = "NAME")]
    destination: Option<String>,
}

#[derive(Args)]
struct AnalyzeArgs {
    /// Part-10 DICOM files to analyse.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// TOML configuration file (its [analysis] section is used).
    #[arg(short, long, value_name = "FILE", env = "CHESTNODE_CONFIG")]
    config: Option<PathBuf>,
    /// Model manifest [default: the configured or built-in model]
    #[arg(long, value_name = "MANIFEST")]
    model: Option<PathBuf>,
    /// cpu or cuda [default: cpu]
    #[arg(long)]
    device: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl ConfigArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &self.data_dir {
            config.node.data_dir = dir.clone();
        }
        Ok(config)
    }
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut config = self.config.load()?;
        let network = &mut config.network;
        set(&mut config.node.ae_title, self.ae_title);
        set(&mut config.node.bind, self.bind);
        set(&mut config.node.port, self.port);
        set(&mut network.max_associations, self.max_associations);
        set(&mut network.max_pdu_length, self.max_pdu_length);
        set(
            &mut network.association_timeout_secs,
            self.association_timeout,
        );
        set(&mut network.dimse_timeout_secs, self.dimse_timeout);
        set(&mut network.idle_timeout_secs, self.idle_timeout);
        set(&mut network.shutdown_grace_secs, self.shutdown_grace);
        set(&mut config.storage.min_free_mb, self.min_free_mb);
        set(&mut config.storage.max_queued_jobs, self.max_queued_jobs);
        set(
            &mut config.retention.max_used_percent,
            self.retention_max_used_percent,
        );
        set(&mut config.analysis.workers, self.workers);
        set(&mut config.analysis.retry_delay_secs, self.retry_delay);
        set(&mut config.http.port, self.http_port);
        if !self.allowed_calling.is_empty() {
            config.access.allowed_calling = self.allowed_calling;
        }
        if self.any_called_ae_title {
            config.access.require_called_ae_title = false;
        }
        config.validate()?;
        Ok(config)
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Still single-threaded here, as `configure_cpu` needs. Training is
    // left out: its element-wise work on whole batches gains from candle's
    // own thread pool (a training step measured ~9 % faster with it), where
    // one image at a time loses from it.
    if !matches!(cli.command, Command::Train(_)) {
        chestnode::model::configure_cpu();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // Our own lines at info; other crates' (e.g. the JPEG 2000
                // decoder's per-tile chatter) only from warn.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,chestnode=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            runtime.block_on(chestnode::node::serve(config))
        }
        Command::Analyze(args) => analyze(args),
        Command::Synth(args) => synth(args),
        Command::Corpus(args) => corpus(args),
        Command::Evaluate(args) => evaluate(args),
        Command::Train(args) => train(args),
        Command::Research(args) => research::research(args, &runtime),
        Command::Users(args) => users::users(args, &runtime),
        Command::Retry(args) => {
            let config = args.config.load()?;
            let report = runtime.block_on(chestnode::status::retry_dead_letters(
                &config.node.data_dir,
                args.destination.as_deref(),
            ))?;
            let scope = match &args.destination {
                Some(name) => format!(" for {name}"),
                None => String::new(),
            };
            println!(
                "{} dead letter(s){scope} moved back to pending{}",
                report.retried,
                if report.server_running {
                    "; the running server is sending them"
                } else {
                    "; they are sent when the server next runs"
                }
            );
            Ok(())
        }
        Command::Status(args) => {
            let config = args.config.load()?;
            let report = runtime.block_on(chestnode::status::read_status(&config.node.data_dir))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render_text());
            }
            Ok(())
        }
    }
}

/// `chestnode analyze`: one result per file; exits non-zero if any file
/// could not be analysed (gated-out images are not errors).
fn analyze(args: AnalyzeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    set(&mut config.analysis.model, args.model.map(Some));
    set(&mut config.analysis.device, args.device);
    let device = chestnode::model::device_by_name(&config.analysis.device)?;
    let model = chestnode::model::Model::from_config(config.analysis.model.as_deref(), &device)?;
    let mut failures = 0;
    let mut results = Vec::new();
    for file in &args.files {
        let outcome = chestnode::analysis::analyse_file(&model, file);
        if outcome.is_err() {
            failures += 1;
        }
        if args.json {
            results.push(match outcome {
                Ok(outcome) => serde_json::json!({ "file": file, "result": outcome }),
                Err(error) => serde_json::json!({ "file": file, "error": error.to_string() }),
            });
        } else {
            print!(
                "{}",
                chestnode::analysis::render_text(file, &model, &outcome)
            );
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    if failures > 0 {
        anyhow::bail!(
            "{failures} of {} files could not be analysed",
            args.files.len()
        );
    }
    Ok(())
}
