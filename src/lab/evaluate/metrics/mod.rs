//! The numbers an evaluation reports, as pure functions of scores and
//! ground truth: ROC curve and AUC, a seeded bootstrap confidence interval
//! for the AUC, sensitivity and specificity of a set of calls, and the FROC
//! curve of localised marks.
//!
//! Conventions, so results can be checked by hand:
//! - A case is called positive when its score is at or above a threshold
//!   (as `findings::categorise` calls a label).
//! - AUC is the Mann–Whitney statistic: the probability that a random
//!   positive scores above a random negative, ties counting one half. It
//!   equals the trapezoidal area under the ROC curve when tied scores move
//!   the curve diagonally, which is how [`roc_curve`] draws them.
//! - The bootstrap resamples positives and negatives separately (stratified),
//!   so every resample has both classes, and takes percentile limits.
//! - FROC: a mark hitting a lesion found by a higher-scoring mark of the same
//!   image is a duplicate, counted neither as a detection nor as a false
//!   positive; a mark that hits no lesion is a false positive.

use serde::{Deserialize, Serialize};

/// One operating point of an ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// Cases scoring at or above this are called positive; `None` above
    /// every score (the curve's origin).
    pub threshold: Option<f64>,
    pub false_positive_rate: f64,
    pub true_positive_rate: f64,
}

/// The ROC curve from (0, 0) to (1, 1), one point per distinct score,
/// highest first. Empty when either class is missing.
pub fn roc_curve(scores: &[f64], truth: &[bool]) -> Vec<RocPoint> {
    assert_eq!(scores.len(), truth.len(), "one truth per score");
    let positives = truth.iter().filter(|&&t| t).count();
    let negatives = truth.len() - positives;
    if positives == 0 || negatives == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut points = vec![RocPoint {
        threshold: None,
        false_positive_rate: 0.0,
        true_positive_rate: 0.0,
    }];
    let (mut true_positives, mut false_positives) = (0usize, 0usize);
    for (k, &i) in order.iter().enumerate() {
        if truth[i] {
            true_positives += 1;
        } else {
            false_positives += 1;
        }
        let last_of_tie = order
            .get(k + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if last_of_tie {
            points.push(RocPoint {
                threshold: Some(scores[i]),
                false_positive_rate: false_positives as f64 / negatives as f64,
                true_positive_rate: true_positives as f64 / positives as f64,
            });
        }
    }
    points
}

/// Trapezoidal area under an ROC curve.
pub fn area_under(curve: &[RocPoint]) -> f64 {
    curve
        .windows(2)
        .map(|pair| {
            let width = pair[1].false_positive_rate - pair[0].false_positive_rate;
            width * (pair[0].true_positive_rate + pair[1].true_positive_rate) / 2.0
        })
        .sum()
}

/// ROC AUC by the Mann–Whitney U statistic with mid-ranks for ties; `None`
/// when either class is missing.
pub fn auc(scores: &[f64], truth: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), truth.len(), "one truth per score");
    let positives = truth.iter().filter(|&&t| t).count();
    let negatives = truth.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let ranks = mid_ranks(scores);
    let positive_rank_sum: f64 = ranks
        .iter()
        .zip(truth)
        .filter(|(_, t)| **t)
        .map(|(r, _)| r)
        .sum();
    let (p, n) = (positives as f64, negatives as f64);
    Some((positive_rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Ranks 1..=n in ascending score order; tied scores share their mean rank.
fn mid_ranks(scores: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1..=end; their mean:
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// How a bootstrap confidence interval is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// Number of resamples; 0 disables the interval.
    pub resamples: usize,
    pub seed: u64,
    /// Two-sided coverage, e.g. 0.95.
    pub confidence: f64,
}

/// Percentile bootstrap interval `[low, high]` of the AUC, resampling
/// positives and negatives separately with a generator seeded by
/// `bootstrap.seed` (the same inputs and seed give the same interval).
/// `None` when either class is missing or no resamples are asked for.
pub fn bootstrap_auc_interval(
    scores: &[f64],
    truth: &[bool],
    bootstrap: &Bootstrap,
) -> Option<[f64; 2]> {
    let positive: Vec<f64> = select(scores, truth, true);
    let negative: Vec<f64> = select(scores, truth, false);
    if positive.is_empty() || negative.is_empty() || bootstrap.resamples == 0 {
        return None;
    }
    let mut rng = fastrand::Rng::with_seed(bootstrap.seed);
    let mut resample_scores = Vec::with_capacity(scores.len());
    let mut resample_truth = Vec::with_capacity(scores.len());
    let mut aucs = Vec::with_capacity(bootstrap.resamples);
    for _ in 0..bootstrap.resamples {
        resample_scores.clear();
        resample_truth.clear();
        for (class, members) in [(true, &positive), (false, &negative)] {
            for _ in 0..members.len() {
                resample_scores.push(members[rng.usize(..members.len())]);
                resample_truth.push(class);
            }
        }
        aucs.push(auc(&resample_scores, &resample_truth).expect("both classes present"));
    }
    aucs.sort_by(f64::total_cmp);
    let tail = (1.0 - bootstrap.confidence) / 2.0;
    Some([quantile(&aucs, tail), quantile(&aucs, 1.0 - tail)])
}

fn select(scores: &[f64], truth: &[bool], class: bool) -> Vec<f64> {
    scores
        .iter()
        .zip(truth)
        .filter(|(_, t)| **t == class)
        .map(|(s, _)| *s)
        .collect()
}

/// Quantile `q` of sorted values, interpolating linearly between ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

/// A 2×2 table of calls against the truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub true_positives: usize,
    pub false_positives: usize,
    pub true_negatives: usize,
    pub false_negatives: usize,
}

impl Confusion {
    /// Tallies calls (true: called positive) against the truth.
    pub fn tally(calls: &[bool], truth: &[bool]) -> Confusion {
        assert_eq!(calls.len(), truth.len(), "one truth per call");
        let mut table = Confusion::default();
        for (&call, &actual) in calls.iter().zip(truth) {
            match (call, actual) {
                (true, true) => table.true_positives += 1,
                (true, false) => table.false_positives += 1,
                (false, false) => table.true_negatives += 1,
                (false, true) => table.false_negatives += 1,
            }
        }
        table
    }

    /// TP / (TP + FN); `None` without positives.
    pub fn sensitivity(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// TN / (TN + FP); `None` without negatives.
    pub fn specificity(&self) -> Option<f64> {
        ratio(
            self.true_negatives,
            self.true_negatives + self.false_positives,
        )
    }
}

/// `part / whole`, or `None` when `whole` is 0.
pub fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The Wilson score 95 % interval of a proportion `part / whole`: unlike
/// the normal approximation it stays inside [0, 1] and is not empty at 0
/// or 1, which matters for subgroups of a few lesions. `None` when
/// `whole` is 0.
pub fn wilson_interval(part: usize, whole: usize) -> Option<[f64; 2]> {
    if whole == 0 {
        return None;
    }
    const Z: f64 = 1.959_963_984_540_054;
    let n = whole as f64;
    let p = part as f64 / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Some([(centre - half).max(0.0), (centre + half).min(1.0)])
}

/// One mark a model placed on an image, and which of the image's lesions it
/// hits (index into that image's lesions), if any.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mark {
    pub score: f64,
    pub lesion: Option<usize>,
}

/// One image's part in a FROC analysis.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FrocImage {
    /// Number of localised ground-truth lesions.
    pub lesions: usize,
    pub marks: Vec<Mark>,
}

/// One operating point of a FROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrocPoint {
    /// Marks scoring at or above this count; `None` above every score.
    pub threshold: Option<f64>,
    pub false_positives_per_image: f64,
    /// Fraction of all lesions hit by a counted mark.
    pub sensitivity: f64,
}

/// The FROC curve, one point per distinct mark score, highest first, from
/// (0 FP/image, sensitivity 0). Empty when there are no lesions or images.
pub fn froc_curve(images: &[FrocImage]) -> Vec<FrocPoint> {
    let lesions: usize = images.iter().map(|image| image.lesions).sum();
    if lesions == 0 {
        return Vec::new();
    }
    let mut marks: Vec<(usize, Mark)> = images
        .iter()
        .enumerate()
        .flat_map(|(i, image)| image.marks.iter().map(move |&mark| (i, mark)))
        .collect();
    marks.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
    let mut found: Vec<Vec<bool>> = images
        .iter()
        .map(|image| vec![false; image.lesions])
        .collect();
    let per_image = |false_positives: usize| false_positives as f64 / images.len() as f64;
    let mut points = vec![FrocPoint {
        threshold: None,
        false_positives_per_image: 0.0,
        sensitivity: 0.0,
    }];
    let (mut detected, mut false_positives) = (0usize, 0usize);
    for (k, &(image, mark)) in marks.iter().enumerate() {
        match mark.lesion {
            Some(lesion) if !found[image][lesion] => {
                found[image][lesion] = true;
                detected += 1;
            }
            Some(_) => {} // a duplicate
            None => false_positives += 1,
        }
        let last_of_tie = marks
            .get(k + 1)
            .is_none_or(|next| next.1.score != mark.score);
        if last_of_tie {
            points.push(FrocPoint {
                threshold: Some(mark.score),
                false_positives_per_image: per_image(false_positives),
                sensitivity: detected as f64 / lesions as f64,
            });
        }
    }
    points
}

/// The best operating point with at most `rate` false positives per image:
/// the highest sensitivity among them, at the highest threshold that gives
/// it (the curve's origin if no other point fits).
pub fn froc_point_at(curve: &[FrocPoint], rate: f64) -> Option<FrocPoint> {
    let mut best: Option<FrocPoint> = None;
    // Points run from the highest threshold down, so a later point replaces
    // the best only when it is strictly more sensitive.
    for point in curve {
        if point.false_positives_per_image > rate + 1e-12 {
            continue;
        }
        if best.is_none_or(|b| point.sensitivity > b.sensitivity) {
            best = Some(*point);
        }
    }
    best
}

#[cfg(test)]
mod tests;
