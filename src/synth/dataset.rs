//! Writing a dataset directory: `images/case-NNNNNN.dcm`,
//! `labels/case-NNNNNN.json` and `dataset.json` (seed, count, the whole
//! configuration), as documented in `docs/dataset-format.md`.
//!
//! Cases are independent (each is a function of seed and index), so they
//! are generated in parallel without affecting the output.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{SynthConfig, generate, insert};

pub const DATASET_SCHEMA: &str = "chestnode-dataset/1";

/// `dataset.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetManifest {
    pub schema: String,
    pub generator: String,
    pub seed: u64,
    pub count: u64,
    pub config: SynthConfig,
    /// Real radiographs findings were inserted into (file names), if any.
    pub backgrounds: Vec<String>,
    /// Fraction of cases drawn on a real radiograph.
    pub insert_fraction: f32,
    /// Label files, relative to the dataset directory, in index order.
    pub labels: Vec<String>,
}

/// Where real radiographs come from and how many cases use them.
pub struct Insertion {
    pub pngs: Vec<PathBuf>,
    pub fraction: f32,
}

impl Insertion {
    /// The PNG files given, and every PNG directly in each directory given,
    /// sorted and without repeats. Naming files lets a run keep some real
    /// radiographs for training and others held out for evaluation.
    pub fn from_paths(paths: &[PathBuf], fraction: f32) -> anyhow::Result<Insertion> {
        let is_png = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
        let mut pngs = Vec::new();
        for path in paths {
            if path.is_dir() {
                let entries = std::fs::read_dir(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                pngs.extend(
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| is_png(p)),
                );
            } else {
                anyhow::ensure!(
                    is_png(path) && path.is_file(),
                    "{} is neither a PNG file nor a directory",
                    path.display()
                );
                pngs.push(path.clone());
            }
        }
        pngs.sort();
        pngs.dedup();
        anyhow::ensure!(!pngs.is_empty(), "no PNG files in the --insert-into paths");
        Ok(Insertion { pngs, fraction })
    }
}

/// Extras beside the dataset itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Write `previews/case-NNNNNN.png` (8-bit, windowed, findings outlined).
    pub previews: bool,
}

/// Generates `count` cases into `out`; `progress` is called after each case.
pub fn write_dataset(
    out: &Path,
    config: &SynthConfig,
    seed: u64,
    count: u64,
    insertion: Option<&Insertion>,
    options: &Options,
    progress: &(dyn Fn(usize) + Sync),
) -> anyhow::Result<DatasetManifest> {
    std::fs::create_dir_all(out.join("images"))?;
    std::fs::create_dir_all(out.join("labels"))?;
    if options.previews {
        std::fs::create_dir_all(out.join("previews"))?;
    }
    let done = AtomicUsize::new(0);
    let labels: Vec<String> = (0..count)
        .into_par_iter()
        .map(|index| -> anyhow::Result<String> {
            let case = match insertion {
                Some(ins) if insert::chooses_real(seed, index, ins.fraction) => {
                    let png = &ins.pngs[(index as usize) % ins.pngs.len()];
                    insert::insert_case(config, seed, index, png)?
                }
                _ => generate(config, seed, index),
            };
            let name = format!("case-{index:06}");
            let image = format!("images/{name}.dcm");
            let label = format!("labels/{name}.json");
            case.dx().write(&out.join(&image))?;
            let json = serde_json::to_vec_pretty(&case.label(&image))?;
            std::fs::write(out.join(&label), json)?;
            if options.previews {
                case.preview(&out.join(format!("previews/{name}.png")))?;
            }
            progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            Ok(label)
        })
        .collect::<anyhow::Result<_>>()?;
    let manifest = DatasetManifest {
        schema: DATASET_SCHEMA.into(),
        generator: format!("chestnode {}", env!("CARGO_PKG_VERSION")),
        seed,
        count,
        config: config.clone(),
        backgrounds: insertion
            .map(|i| {
                i.pngs
                    .iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        insert_fraction: insertion.map_or(0.0, |i| i.fraction),
        labels,
    };
    std::fs::write(
        out.join("dataset.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insertion_takes_png_files_and_directories_without_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let backgrounds = dir.path().join("backgrounds");
        std::fs::create_dir(&backgrounds).unwrap();
        for name in ["b.png", "a.PNG", "notes.txt"] {
            std::fs::write(backgrounds.join(name), b"").unwrap();
        }
        let single = dir.path().join("single.png");
        std::fs::write(&single, b"").unwrap();
        let insertion = Insertion::from_paths(
            &[
                backgrounds.clone(),
                single.clone(),
                backgrounds.join("b.png"),
            ],
            0.5,
        )
        .unwrap();
        assert_eq!(
            insertion.pngs,
            vec![backgrounds.join("a.PNG"), backgrounds.join("b.png"), single]
        );
        assert!(Insertion::from_paths(&[backgrounds.join("notes.txt")], 0.5).is_err());
        assert!(Insertion::from_paths(&[], 0.5).is_err());
    }
}
