//! The one writer of dataset directories (`docs/dataset-format.md`):
//! `images/NAME.dcm`, `labels/NAME.json` beside it and `dataset.json`.
//!
//! Every source of labelled images writes through it: the generator
//! (`synth`, generated or inserted cases) and the real-corpus import
//! (`corpus`) today; an annotation import or a research export would plug
//! in the same way, writing its own label fields (any `Serialize`) into
//! the same layout that the reader ([`super::read_selected`]) reads back.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// A dataset directory being written. Writing a case is independent of
/// every other, so cases may be written in parallel.
#[derive(Debug, Clone)]
pub struct DatasetWriter {
    dir: PathBuf,
}

impl DatasetWriter {
    /// Creates `dir` with its `images/` and `labels/` folders.
    pub fn create(dir: &Path) -> anyhow::Result<DatasetWriter> {
        std::fs::create_dir_all(dir.join("images"))?;
        std::fs::create_dir_all(dir.join("labels"))?;
        Ok(DatasetWriter {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The image of case `name`, relative to the dataset (what its label's
    /// `image` says).
    pub fn image(name: &str) -> String {
        format!("images/{name}.dcm")
    }

    /// Where the image of case `name` goes.
    pub fn image_path(&self, name: &str) -> PathBuf {
        self.dir.join(Self::image(name))
    }

    /// Writes the label file of case `name`; returns its path relative to
    /// the dataset (what `dataset.json` lists).
    pub fn write_label(&self, name: &str, label: &impl Serialize) -> anyhow::Result<String> {
        let relative = format!("labels/{name}.json");
        self.write_json(&relative, label)?;
        Ok(relative)
    }

    /// Writes `dataset.json`, which lists the label files.
    pub fn write_manifest(&self, manifest: &impl Serialize) -> anyhow::Result<()> {
        self.write_json("dataset.json", manifest)
    }

    /// Every JSON file of the format is pretty-printed.
    fn write_json(&self, relative: &str, value: &impl Serialize) -> anyhow::Result<()> {
        let path = self.dir.join(relative);
        std::fs::write(path, serde_json::to_vec_pretty(value)?).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::dataset::{Selection, read_selected};

    #[test]
    fn what_the_writer_writes_the_reader_reads() {
        let label = serde_json::json!({
            "image": DatasetWriter::image("a"),
            "source": "annotated",
            "split": "test",
            "categories": {"normal": true},
        });
        let dir = tempfile::tempdir().unwrap();
        let writer = DatasetWriter::create(dir.path()).unwrap();
        let written = writer.write_label("a", &label).unwrap();
        writer
            .write_manifest(&serde_json::json!({"labels": [written]}))
            .unwrap();
        let cases = read_selected(&[dir.path().to_path_buf()], &Selection::default()).unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].image_path, writer.image_path("a"));
        assert!(cases[0].label.provenance.is_real());
        let training = Selection::training(Vec::new(), false);
        assert!(read_selected(&[dir.path().to_path_buf()], &training).is_err());
    }
}
