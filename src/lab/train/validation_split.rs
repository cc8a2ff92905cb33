//! Which images train and which validate: a label file's own split wins
//! (a real corpus splits by patient, and lesions inserted into a
//! patient's film inherit it); generated data without one is split at
//! random, reproducibly from the seed.

use anyhow::bail;
use fastrand::Rng;

use super::samples::Dataset;
use crate::lab::dataset::Split;

/// Training and validation indices: label files that carry a split keep
/// it (a real corpus splits by patient, and lesions inserted into a
/// patient's film inherit that patient's split); the rest (generated
/// data) are split at random by [`split`].
pub(super) fn split_samples(
    dataset: &Dataset,
    fraction: f64,
    seed: u64,
) -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    let mut train = Vec::new();
    let mut validation = Vec::new();
    let mut unsplit = Vec::new();
    for (index, sample) in dataset.samples.iter().enumerate() {
        match sample.provenance.split {
            Some(Split::Train) => train.push(index),
            Some(Split::Validation) => validation.push(index),
            Some(Split::Test) => bail!("{}: a test image reached training", sample.name),
            None => unsplit.push(index),
        }
    }
    if !unsplit.is_empty() {
        if unsplit.len() >= 3 {
            let (t, v) = split(unsplit.len(), fraction, seed)?;
            train.extend(t.into_iter().map(|i| unsplit[i]));
            validation.extend(v.into_iter().map(|i| unsplit[i]));
        } else {
            train.extend(unsplit);
        }
    }
    if train.is_empty() || validation.is_empty() {
        bail!(
            "training needs images in both splits ({} training, {} validation)",
            train.len(),
            validation.len()
        );
    }
    train.sort_unstable();
    validation.sort_unstable();
    Ok((train, validation))
}

/// Splits `0..count` into training and validation indices, reproducibly
/// from `seed`; both get at least one image.
pub fn split(count: usize, fraction: f64, seed: u64) -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    if count < 3 {
        bail!("a dataset needs at least 3 images to train and validate, this one has {count}");
    }
    let validation = ((count as f64 * fraction).round() as usize).clamp(1, count - 2);
    let mut order: Vec<usize> = (0..count).collect();
    Rng::with_seed(seed ^ 0x5eed_5911_u64).shuffle(&mut order);
    let mut validation_indices = order[..validation].to_vec();
    let mut train_indices = order[validation..].to_vec();
    validation_indices.sort_unstable();
    train_indices.sort_unstable();
    Ok((train_indices, validation_indices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_reproducible_and_disjoint() {
        let (train, validation) = split(20, 0.15, 3).unwrap();
        assert_eq!(validation.len(), 3);
        assert_eq!(train.len(), 17);
        assert!(validation.iter().all(|v| !train.contains(v)));
        assert_eq!(split(20, 0.15, 3).unwrap(), (train, validation));
        assert!(split(2, 0.5, 1).is_err());
    }
}
