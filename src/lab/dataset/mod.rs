//! Labelled datasets for the lab (`synth`, `train`, `evaluate`): the one
//! owner of the dataset format (`docs/dataset-format.md`), and the rules
//! that decide which images a model may learn from, be tuned on, or be
//! judged on.
//!
//! The format has one writer and one reader, so that every source of
//! labelled images writes the same thing and every tool reads it the same
//! way:
//!
//! - `format`: the label-file types (serde), run-length masks and the
//!   image-level categories derived from findings;
//! - `vocabulary`: a finding's kind and details, as every source names
//!   them;
//! - `dicom`: how a dataset stores an image (a DX Part-10 file), for the
//!   generator and the corpus import alike;
//! - `writer`: [`DatasetWriter`], the directory layout every source writes
//!   through (`synth` for generated and inserted cases, `corpus` for real
//!   radiographs; a future annotation import or research export plugs in
//!   here);
//! - `reader`: [`read_selected`], the cases of one or more datasets that a
//!   [`Selection`] admits, read leniently, for `train` and `evaluate`
//!   alike.
//!
//! A model only means something if the images it is judged on were never
//! seen, tuned on or reserved elsewhere, and if no patient sits on both
//! sides of a split. Those rules used to be implicit (a random fraction
//! drawn inside `train`); real radiographs make them explicit, so they
//! live here, once:
//!
//! - `split`: which split (train, validation, test) a patient belongs to,
//!   drawn per source and patient from a hash, so that every image of a
//!   patient, and every lesion later inserted into it, lands on one side;
//! - `reserved`: the images reserved for independent evaluation
//!   (`shared/data/reserved-for-evaluation.txt`), refused on import;
//! - `corpus`: turns a public corpus's `labels.csv` (real radiographs with
//!   image-level labels and some boxes) into the dataset format of
//!   `docs/dataset-format.md`, with the split and provenance in every
//!   label file;
//! - `selection`: which label files of a dataset a training run or an
//!   evaluation takes (by split, source and age group): their different
//!   needs are parameters of one [`Selection`].

mod corpus;
pub(in crate::lab) mod dicom;
mod format;
mod reader;
mod reserved;
mod selection;
mod split;
mod vocabulary;
mod writer;

pub use corpus::{CorpusOptions, CorpusSummary, import_corpus};
pub use format::{
    DATASET_SCHEMA, FindingLabel, ImageLabel, LABEL_SCHEMA, RunLengthMask, categories,
    category_keys,
};
pub use reader::{Case, CaseLabel, LesionLabel, describe, read_cases, read_selected};
pub use reserved::Reserved;
pub use selection::{Provenance, Selection};
pub use split::{Split, SplitFractions, assign_split};
pub use vocabulary::{FindingDetails, FindingKind, Margin, PLEURAL_EFFUSION_KEY, Solidity};
pub use writer::DatasetWriter;

/// `source` of a label file for a generated thorax.
pub const SOURCE_SYNTHETIC: &str = "synthetic";
/// `source` of a label file whose findings were drawn into a real image.
pub const SOURCE_INSERTED: &str = "inserted";

/// Whether a label file's `source` names real, unaltered radiographs.
pub fn is_real_source(source: &str) -> bool {
    source != SOURCE_SYNTHETIC && source != SOURCE_INSERTED && !source.is_empty()
}
