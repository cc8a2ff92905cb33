//! Writing a generated dataset directory through the lab's dataset
//! writer: `images/case-NNNNNN.dcm`, `labels/case-NNNNNN.json` and
//! `dataset.json` (seed, count, the whole configuration), as documented in
//! `docs/dataset-format.md`.
//!
//! Cases are independent (each is a function of seed and index), so they
//! are generated in parallel without affecting the output.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::insert::Background;
use super::{SynthConfig, generate, insert};
use crate::lab::dataset::{DATASET_SCHEMA, DatasetWriter, Split, read_cases};

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
    pub backgrounds: Vec<Background>,
    pub fraction: f32,
}

impl Insertion {
    /// The PNG or JPEG files given, every such file directly in each
    /// directory given, and the adult normals of each corpus directory
    /// given (one written by `chestnode corpus`), sorted and without
    /// repeats. With `split`, only a corpus's normals of that split are
    /// taken, so lesions for training are drawn only into training
    /// patients and those for testing only into test patients. Naming
    /// files lets a run keep some real radiographs for training and others
    /// held out for evaluation.
    pub fn from_paths(
        paths: &[PathBuf],
        fraction: f32,
        split: Option<&str>,
    ) -> anyhow::Result<Insertion> {
        let is_image = |p: &Path| {
            p.extension().is_some_and(|e| {
                ["png", "jpg", "jpeg"]
                    .iter()
                    .any(|known| e.eq_ignore_ascii_case(known))
            })
        };
        let mut backgrounds = Vec::new();
        for path in paths {
            if path.join("dataset.json").is_file() {
                backgrounds.extend(corpus_normals(path, split)?);
            } else if path.is_dir() {
                let entries = std::fs::read_dir(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                backgrounds.extend(
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| is_image(p))
                        .map(|p| Background::file(&p)),
                );
            } else {
                anyhow::ensure!(
                    is_image(path) && path.is_file(),
                    "{} is neither a PNG or JPEG file nor a directory",
                    path.display()
                );
                backgrounds.push(Background::file(path));
            }
        }
        backgrounds.sort();
        backgrounds.dedup();
        anyhow::ensure!(
            !backgrounds.is_empty(),
            "no background images in the --insert-into paths"
        );
        Ok(Insertion {
            backgrounds,
            fraction,
        })
    }
}

/// The adult normal radiographs of an imported corpus (of one split).
fn corpus_normals(dir: &Path, split: Option<&str>) -> anyhow::Result<Vec<Background>> {
    let mut out = Vec::new();
    for case in read_cases(dir)? {
        let normal = case.label.categories.get("normal") == Some(&true);
        let p = case.label.provenance;
        let in_split = split.is_none_or(|s| p.split.map(Split::key) == Some(s));
        if normal && !p.is_pediatric() && in_split {
            out.push(Background {
                path: case.image_path,
                source: Some(p.source),
                split: p.split.map(|s| s.key().to_string()),
                patient: p.patient,
            });
        }
    }
    Ok(out)
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
    let writer = DatasetWriter::create(out)?;
    if options.previews {
        std::fs::create_dir_all(out.join("previews"))?;
    }
    let done = AtomicUsize::new(0);
    let labels: Vec<String> = (0..count)
        .into_par_iter()
        .map(|index| -> anyhow::Result<String> {
            let case = match insertion {
                Some(ins) if insert::chooses_real(seed, index, ins.fraction) => {
                    let background = &ins.backgrounds[(index as usize) % ins.backgrounds.len()];
                    insert::insert_case(config, seed, index, background)?
                }
                _ => generate(config, seed, index),
            };
            let name = format!("case-{index:06}");
            let image = DatasetWriter::image(&name);
            case.dx().write(&writer.image_path(&name))?;
            let label = writer.write_label(&name, &case.label(&image))?;
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
            .map(|i| i.backgrounds.iter().map(Background::name).collect())
            .unwrap_or_default(),
        insert_fraction: insertion.map_or(0.0, |i| i.fraction),
        labels,
    };
    writer.write_manifest(&manifest)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insertion_takes_image_files_and_directories_without_repeats() {
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
            None,
        )
        .unwrap();
        assert_eq!(
            insertion
                .backgrounds
                .iter()
                .map(|b| b.path.clone())
                .collect::<Vec<_>>(),
            vec![backgrounds.join("a.PNG"), backgrounds.join("b.png"), single]
        );
        assert!(Insertion::from_paths(&[backgrounds.join("notes.txt")], 0.5, None).is_err());
        assert!(Insertion::from_paths(&[], 0.5, None).is_err());
    }
}
