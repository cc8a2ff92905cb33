//! Operating thresholds, chosen per label on the validation split.
//!
//! The manifest promises one threshold per label and must say how it was
//! chosen. The operating point here is a minimum sensitivity (0.90 by
//! default, as a screening aid would want): the highest threshold at which
//! at least that fraction of the validation positives is called positive,
//! which gives the best specificity that sensitivity allows. A label whose
//! validation split has no positives or no negatives cannot be placed
//! that way; it falls back to 0.5 and says so. The validation ROC AUC
//! (Mann–Whitney, ties counted half) is reported beside it.

use serde::{Deserialize, Serialize};

/// How one label's threshold was chosen, and what it achieves on the
/// validation split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChosenThreshold {
    pub threshold: f32,
    /// False when the split could not place it (fallback 0.5).
    pub from_validation: bool,
    pub positives: usize,
    pub negatives: usize,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
    pub auc: Option<f64>,
    /// How it was chosen, in words, for the manifest.
    #[serde(default)]
    pub rule: String,
}

/// The threshold used when the validation split cannot place one.
pub const FALLBACK_THRESHOLD: f32 = 0.5;

/// Chooses the highest threshold on `scores` (probabilities) that calls at
/// least `min_sensitivity` of the positives positive. `truth[i]` says
/// whether case `i` is positive.
pub fn choose_for_sensitivity(
    scores: &[f32],
    truth: &[bool],
    min_sensitivity: f64,
) -> ChosenThreshold {
    assert_eq!(scores.len(), truth.len());
    let mut positive_scores: Vec<f32> = scores
        .iter()
        .zip(truth)
        .filter(|(_, t)| **t)
        .map(|(s, _)| *s)
        .collect();
    let positives = positive_scores.len();
    let negatives = truth.len() - positives;
    if positives == 0 || negatives == 0 {
        return ChosenThreshold {
            threshold: FALLBACK_THRESHOLD,
            from_validation: false,
            positives,
            negatives,
            sensitivity: None,
            specificity: None,
            auc: None,
            rule: "no positives or no negatives in validation: default".into(),
        };
    }
    positive_scores.sort_by(|a, b| b.total_cmp(a));
    let needed = ((min_sensitivity * positives as f64).ceil() as usize).clamp(1, positives);
    let threshold = positive_scores[needed - 1];
    let (sensitivity, specificity) = sensitivity_specificity(scores, truth, threshold);
    ChosenThreshold {
        threshold,
        from_validation: true,
        positives,
        negatives,
        sensitivity: Some(sensitivity),
        specificity: Some(specificity),
        auc: roc_auc(scores, truth),
        rule: format!("sensitivity >= {min_sensitivity:.2} on validation"),
    }
}

/// Chooses the lowest threshold that calls at most `1 - min_specificity`
/// of the real normal radiographs (`real_normal[i]`) positive: on real
/// images a model that flags most normals is ignored, so where real
/// normals exist this operating point comes first, and the sensitivity it
/// leaves is reported beside it. Falls back to
/// [`choose_for_sensitivity`] when the split has no real normals.
pub fn choose_for_specificity(
    scores: &[f32],
    truth: &[bool],
    real_normal: &[bool],
    min_specificity: f64,
    fallback_sensitivity: f64,
) -> ChosenThreshold {
    assert_eq!(scores.len(), truth.len());
    assert_eq!(scores.len(), real_normal.len());
    let mut normals: Vec<f32> = scores
        .iter()
        .zip(real_normal)
        .filter(|(_, n)| **n)
        .map(|(s, _)| *s)
        .collect();
    if normals.is_empty() {
        return choose_for_sensitivity(scores, truth, fallback_sensitivity);
    }
    normals.sort_by(|a, b| b.total_cmp(a));
    let allowed = ((1.0 - min_specificity) * normals.len() as f64 + 1e-9).floor() as usize;
    let threshold = if allowed >= normals.len() {
        0.0
    } else {
        normals[allowed].next_up()
    };
    let positives = truth.iter().filter(|&&t| t).count();
    let negatives = truth.len() - positives;
    let (sensitivity, specificity) = sensitivity_specificity(scores, truth, threshold);
    let called_normals = normals.iter().filter(|&&s| s >= threshold).count();
    ChosenThreshold {
        threshold,
        from_validation: true,
        positives,
        negatives,
        sensitivity: (positives > 0).then_some(sensitivity),
        specificity: (negatives > 0).then_some(specificity),
        auc: roc_auc(scores, truth),
        rule: format!(
            "at most {:.0}% of the {} real normal validation radiographs called positive ({} are)",
            (1.0 - min_specificity) * 100.0,
            normals.len(),
            called_normals
        ),
    }
}

/// Sensitivity and specificity when `score >= threshold` is called positive.
pub fn sensitivity_specificity(scores: &[f32], truth: &[bool], threshold: f32) -> (f64, f64) {
    let (mut tp, mut p, mut tn, mut n) = (0usize, 0usize, 0usize, 0usize);
    for (&score, &positive) in scores.iter().zip(truth) {
        let called = score >= threshold;
        if positive {
            p += 1;
            tp += usize::from(called);
        } else {
            n += 1;
            tn += usize::from(!called);
        }
    }
    (tp as f64 / p.max(1) as f64, tn as f64 / n.max(1) as f64)
}

/// ROC AUC: the probability that a random positive scores above a random
/// negative, ties counting half. `None` without both classes.
pub fn roc_auc(scores: &[f32], truth: &[bool]) -> Option<f64> {
    let positives: Vec<f32> = scores
        .iter()
        .zip(truth)
        .filter(|(_, t)| **t)
        .map(|(s, _)| *s)
        .collect();
    let negatives: Vec<f32> = scores
        .iter()
        .zip(truth)
        .filter(|(_, t)| !**t)
        .map(|(s, _)| *s)
        .collect();
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for p in &positives {
        for n in &negatives {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (positives.len() * negatives.len()) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_highest_threshold_that_keeps_the_sensitivity() {
        // Ten positives scored 0.1..1.0; negatives at 0.05, 0.15, 0.35.
        let mut scores: Vec<f32> = (1..=10).map(|i| i as f32 / 10.0).collect();
        let mut truth = vec![true; 10];
        scores.extend([0.05, 0.15, 0.35]);
        truth.extend([false; 3]);
        let chosen = choose_for_sensitivity(&scores, &truth, 0.9);
        // Nine of ten positives are >= 0.2.
        assert!(chosen.from_validation);
        assert!((chosen.threshold - 0.2).abs() < 1e-6, "{chosen:?}");
        assert_eq!(chosen.sensitivity, Some(0.9));
        // 0.05 and 0.15 are below 0.2, 0.35 is not.
        assert!((chosen.specificity.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        // Positives beat 0.05 ten times, 0.15 nine times, 0.35 seven times.
        assert!(
            (chosen.auc.unwrap() - 26.0 / 30.0).abs() < 1e-9,
            "{chosen:?}"
        );

        let all = choose_for_sensitivity(&scores, &truth, 1.0);
        assert!((all.threshold - 0.1).abs() < 1e-6);
        assert_eq!(all.sensitivity, Some(1.0));
    }

    #[test]
    fn perfect_separation_and_ties() {
        let scores = [0.9, 0.8, 0.3, 0.3];
        let truth = [true, true, false, false];
        assert_eq!(roc_auc(&scores, &truth), Some(1.0));
        let chosen = choose_for_sensitivity(&scores, &truth, 0.9);
        assert_eq!(chosen.threshold, 0.8);
        assert_eq!(chosen.specificity, Some(1.0));
        assert_eq!(roc_auc(&[0.5, 0.5], &[true, false]), Some(0.5));
    }

    #[test]
    fn specificity_on_real_normals_sets_the_threshold() {
        // Ten real normals scored 0.0..0.9, two synthetic negatives at 0.95
        // (not real: they do not count), positives at 0.5 and 0.99.
        let mut scores: Vec<f32> = (0..10).map(|i| i as f32 / 10.0).collect();
        let mut truth = vec![false; 10];
        let mut real = vec![true; 10];
        scores.extend([0.95, 0.95, 0.5, 0.99]);
        truth.extend([false, false, true, true]);
        real.extend([false; 4]);
        let chosen = choose_for_specificity(&scores, &truth, &real, 0.8, 0.9);
        // 20% of 10 = 2 may be called: 0.9 and 0.8; 0.7 must not be.
        assert!(
            chosen.threshold > 0.7 && chosen.threshold < 0.71,
            "{chosen:?}"
        );
        assert_eq!(chosen.sensitivity, Some(0.5));
        assert!(chosen.rule.contains("(2 are)"), "{}", chosen.rule);
        // No real normals: the sensitivity rule.
        let fallback = choose_for_specificity(&scores, &truth, &[false; 14], 0.8, 0.9);
        assert!(fallback.rule.starts_with("sensitivity"));
    }

    #[test]
    fn a_split_without_both_classes_falls_back_and_says_so() {
        let chosen = choose_for_sensitivity(&[0.2, 0.7], &[false, false], 0.9);
        assert!(!chosen.from_validation);
        assert_eq!(chosen.threshold, FALLBACK_THRESHOLD);
        assert_eq!((chosen.positives, chosen.negatives), (0, 2));
        assert_eq!(chosen.auc, None);
    }
}
