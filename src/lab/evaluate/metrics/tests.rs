//! Hand-made cases with answers worked out on paper, for `metrics`.

use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn perfect_separation_has_auc_one_and_reversed_zero() {
    let scores = [0.9, 0.8, 0.3, 0.1];
    let truth = [true, true, false, false];
    assert_eq!(auc(&scores, &truth), Some(1.0));
    let reversed = [false, false, true, true];
    assert_eq!(auc(&scores, &reversed), Some(0.0));
    assert!(close(area_under(&roc_curve(&scores, &truth)), 1.0));
    assert!(close(area_under(&roc_curve(&scores, &reversed)), 0.0));
}

#[test]
fn all_ties_give_one_half() {
    let scores = [0.5; 5];
    let truth = [true, false, true, false, false];
    assert_eq!(auc(&scores, &truth), Some(0.5));
    let curve = roc_curve(&scores, &truth);
    assert_eq!(curve.len(), 2, "one tie group: origin then (1, 1)");
    assert!(close(area_under(&curve), 0.5));
}

#[test]
fn three_by_three_worked_by_hand() {
    // Positives 0.8, 0.6, 0.3; negatives 0.7, 0.2, 0.6.
    // Pairs won by the positive: 0.8 beats all three (3); 0.6 beats 0.2 and
    // ties 0.6 (1.5); 0.3 beats 0.2 (1). U = 5.5 of 9 pairs.
    let scores = [0.8, 0.7, 0.6, 0.6, 0.3, 0.2];
    let truth = [true, false, true, false, true, false];
    let expected = 5.5 / 9.0;
    assert!(close(auc(&scores, &truth).unwrap(), expected));

    // Descending: 0.8 P, 0.7 N, 0.6 P+N (diagonal step), 0.3 P, 0.2 N.
    let curve = roc_curve(&scores, &truth);
    let points: Vec<(f64, f64)> = curve
        .iter()
        .map(|p| (p.false_positive_rate, p.true_positive_rate))
        .collect();
    let third = 1.0 / 3.0;
    let want = [
        (0.0, 0.0),
        (0.0, third),
        (third, third),
        (2.0 * third, 2.0 * third),
        (2.0 * third, 1.0),
        (1.0, 1.0),
    ];
    assert_eq!(points.len(), want.len());
    for (got, want) in points.iter().zip(want) {
        assert!(close(got.0, want.0) && close(got.1, want.1), "{points:?}");
    }
    assert_eq!(curve[0].threshold, None);
    assert_eq!(curve[3].threshold, Some(0.6));
    assert!(close(area_under(&curve), expected));
}

#[test]
fn one_class_only_has_no_auc_and_no_curve() {
    assert_eq!(auc(&[0.1, 0.9], &[true, true]), None);
    assert_eq!(auc(&[0.1, 0.9], &[false, false]), None);
    assert!(roc_curve(&[0.1, 0.9], &[false, false]).is_empty());
    let bootstrap = Bootstrap {
        resamples: 100,
        seed: 1,
        confidence: 0.95,
    };
    assert_eq!(
        bootstrap_auc_interval(&[0.1, 0.9], &[true, true], &bootstrap),
        None
    );
}

#[test]
fn bootstrap_interval_holds_the_estimate_and_repeats_for_a_seed() {
    let scores: Vec<f64> = (0..40).map(|i| ((i * 37) % 40) as f64 / 40.0).collect();
    // Every fourth case has its class flipped: 22 positives, 18 negatives,
    // AUC 0.75 (checked by counting pairs).
    let truth: Vec<bool> = (0..40)
        .map(|i| ((i * 37) % 40 > 15) != (i % 4 == 0))
        .collect();
    let estimate = auc(&scores, &truth).unwrap();
    assert!(close(estimate, 0.75), "{estimate}");
    let bootstrap = Bootstrap {
        resamples: 1000,
        seed: 7,
        confidence: 0.95,
    };
    let [low, high] = bootstrap_auc_interval(&scores, &truth, &bootstrap).unwrap();
    assert!(
        low <= estimate && estimate <= high,
        "{low} {estimate} {high}"
    );
    assert!(
        low < estimate && estimate < high && high < 1.0,
        "{low} {high}"
    );
    assert_eq!(
        bootstrap_auc_interval(&scores, &truth, &bootstrap),
        Some([low, high]),
        "deterministic for a seed"
    );
    let other = Bootstrap {
        seed: 8,
        ..bootstrap
    };
    assert_ne!(
        bootstrap_auc_interval(&scores, &truth, &other),
        Some([low, high])
    );
}

#[test]
fn bootstrap_of_perfect_separation_is_one() {
    let bootstrap = Bootstrap {
        resamples: 200,
        seed: 1,
        confidence: 0.95,
    };
    let interval = bootstrap_auc_interval(
        &[0.9, 0.8, 0.2, 0.1],
        &[true, true, false, false],
        &bootstrap,
    );
    assert_eq!(interval, Some([1.0, 1.0]));
}

#[test]
fn quantiles_interpolate_between_ranks() {
    let sorted = [0.0, 1.0, 2.0, 3.0, 4.0];
    assert!(close(quantile(&sorted, 0.0), 0.0));
    assert!(close(quantile(&sorted, 0.5), 2.0));
    assert!(close(quantile(&sorted, 0.125), 0.5));
    assert!(close(quantile(&sorted, 1.0), 4.0));
}

#[test]
fn sensitivity_and_specificity_of_calls() {
    let calls = [true, true, false, false, true, false];
    let truth = [true, false, true, false, true, false];
    let table = Confusion::tally(&calls, &truth);
    assert_eq!(
        table,
        Confusion {
            true_positives: 2,
            false_positives: 1,
            true_negatives: 2,
            false_negatives: 1,
        }
    );
    assert!(close(table.sensitivity().unwrap(), 2.0 / 3.0));
    assert!(close(table.specificity().unwrap(), 2.0 / 3.0));
    let no_negatives = Confusion::tally(&[true], &[true]);
    assert_eq!(no_negatives.specificity(), None);
    assert_eq!(no_negatives.sensitivity(), Some(1.0));
}

/// Three images, three lesions:
/// - A: lesions 0 and 1; marks 0.9 on lesion 0, 0.8 on lesion 0 again
///   (a duplicate), 0.5 on nothing;
/// - B: lesion 0; marks 0.7 on nothing, 0.3 on lesion 0;
/// - C: no lesion; marks 0.6 and 0.2 on nothing.
fn three_images() -> Vec<FrocImage> {
    let mark = |score, lesion| Mark { score, lesion };
    vec![
        FrocImage {
            lesions: 2,
            marks: vec![mark(0.9, Some(0)), mark(0.8, Some(0)), mark(0.5, None)],
        },
        FrocImage {
            lesions: 1,
            marks: vec![mark(0.7, None), mark(0.3, Some(0))],
        },
        FrocImage {
            lesions: 0,
            marks: vec![mark(0.6, None), mark(0.2, None)],
        },
    ]
}

#[test]
fn froc_curve_worked_by_hand() {
    let curve = froc_curve(&three_images());
    let points: Vec<(Option<f64>, f64, f64)> = curve
        .iter()
        .map(|p| (p.threshold, p.false_positives_per_image, p.sensitivity))
        .collect();
    let third = 1.0 / 3.0;
    // Going down the scores: 0.9 finds A0; 0.8 is a duplicate; 0.7, 0.6 and
    // 0.5 are false positives; 0.3 finds B0; 0.2 is a false positive. A1 is
    // never found. FP/image = FPs / 3 images.
    let want = [
        (None, 0.0, 0.0),
        (Some(0.9), 0.0, third),
        (Some(0.8), 0.0, third),
        (Some(0.7), third, third),
        (Some(0.6), 2.0 * third, third),
        (Some(0.5), 1.0, third),
        (Some(0.3), 1.0, 2.0 * third),
        (Some(0.2), 4.0 * third, 2.0 * third),
    ];
    assert_eq!(points.len(), want.len(), "{points:?}");
    for (got, want) in points.iter().zip(want) {
        assert_eq!(got.0, want.0);
        assert!(close(got.1, want.1) && close(got.2, want.2), "{points:?}");
    }
}

#[test]
fn froc_sensitivity_at_the_standard_rates() {
    let curve = froc_curve(&three_images());
    let third = 1.0 / 3.0;
    for (rate, sensitivity, threshold) in [
        (0.125, third, 0.9),
        (0.25, third, 0.9),
        (0.5, third, 0.9),
        (1.0, 2.0 * third, 0.3),
        (2.0, 2.0 * third, 0.3),
        (4.0, 2.0 * third, 0.3),
    ] {
        let point = froc_point_at(&curve, rate).unwrap();
        assert!(close(point.sensitivity, sensitivity), "{rate}: {point:?}");
        assert_eq!(point.threshold, Some(threshold), "{rate}: {point:?}");
    }
}

#[test]
fn froc_with_tied_scores_moves_in_one_step() {
    let images = vec![
        FrocImage {
            lesions: 1,
            marks: vec![Mark {
                score: 0.5,
                lesion: Some(0),
            }],
        },
        FrocImage {
            lesions: 0,
            marks: vec![Mark {
                score: 0.5,
                lesion: None,
            }],
        },
    ];
    let curve = froc_curve(&images);
    assert_eq!(curve.len(), 2);
    assert!(close(curve[1].sensitivity, 1.0) && close(curve[1].false_positives_per_image, 0.5));
    // At 0.25 FP/image the tied pair cannot be split: only the origin fits.
    let point = froc_point_at(&curve, 0.25).unwrap();
    assert_eq!((point.threshold, point.sensitivity), (None, 0.0));
}

#[test]
fn froc_without_lesions_is_empty() {
    let images = vec![FrocImage {
        lesions: 0,
        marks: vec![Mark {
            score: 0.4,
            lesion: None,
        }],
    }];
    assert!(froc_curve(&images).is_empty());
    assert_eq!(froc_point_at(&[], 1.0), None);
}

#[test]
fn wilson_intervals_match_hand_computed_values() {
    // 0 of 10: [0, 0.2775]; 10 of 10 mirrors it; 2 of 4: [0.150, 0.850].
    let [low, high] = wilson_interval(0, 10).unwrap();
    assert!(
        low.abs() < 1e-9 && (high - 0.2775).abs() < 1e-4,
        "{low} {high}"
    );
    let [low, high] = wilson_interval(10, 10).unwrap();
    assert!(
        (low - 0.7225).abs() < 1e-4 && (high - 1.0).abs() < 1e-9,
        "{low} {high}"
    );
    let [low, high] = wilson_interval(2, 4).unwrap();
    assert!((low - 0.1500).abs() < 1e-3 && (high - 0.8500).abs() < 1e-3);
    assert!(wilson_interval(0, 0).is_none());
}
