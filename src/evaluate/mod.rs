//! `chestnode evaluate`: runs a model over a labelled dataset and measures it.
pub mod dataset;
pub mod hits;
pub mod metrics;
pub mod subgroups;
