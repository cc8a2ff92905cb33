//! Unit tests of `lut`.

use super::*;

fn pipeline(modality: ModalityLut, voi: Voi) -> GreyscalePipeline {
    GreyscalePipeline {
        modality,
        voi,
        invert: false,
        padding: None,
    }
}

fn assert_close(actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() < 1e-6, "{actual:?} vs {expected:?}");
    }
}

#[test]
fn rescale_slope_and_intercept() {
    let ct = ModalityLut::Rescale {
        slope: 1.0,
        intercept: -1024.0,
    };
    assert_eq!(ct.apply(0), -1024.0);
    assert_eq!(ct.apply(1024), 0.0);
    let half = ModalityLut::Rescale {
        slope: 0.5,
        intercept: 10.0,
    };
    assert_eq!(half.apply(-4), 8.0);
    assert_eq!(ModalityLut::IDENTITY.apply(-7), -7.0);
}

#[test]
fn modality_lut_table_clamps_outside_its_range() {
    let table = ModalityLut::Table(LookupTable {
        first_input: 10,
        entries: vec![100, 200, 300],
        bits_per_entry: 16,
    });
    assert_eq!(table.apply(9), 100.0);
    assert_eq!(table.apply(10), 100.0);
    assert_eq!(table.apply(11), 200.0);
    assert_eq!(table.apply(12), 300.0);
    assert_eq!(table.apply(1000), 300.0);
}

#[test]
fn linear_window_at_and_around_its_edges() {
    // c = 100, w = 11: the ramp runs over (94.5, 104.5], that is
    // x <= 100 - 0.5 - 5 = 94.5 is 0 and x > 100 - 0.5 + 5 = 104.5 is 1;
    // between, y = (x - 99.5) / 10 + 0.5.
    let window = Window::new(100.0, 11.0, VoiFunction::Linear).unwrap();
    assert_eq!(window.apply(94.0), 0.0);
    assert_eq!(window.apply(94.5), 0.0);
    assert!((window.apply(95.0) - 0.05).abs() < 1e-12);
    assert!((window.apply(99.5) - 0.5).abs() < 1e-12);
    assert!((window.apply(100.0) - 0.55).abs() < 1e-12);
    assert!((window.apply(104.0) - 0.95).abs() < 1e-12);
    assert!((window.apply(104.5) - 1.0).abs() < 1e-12);
    assert_eq!(window.apply(104.6), 1.0);
    assert_eq!(window.apply(105.0), 1.0);
}

#[test]
fn linear_window_of_width_one_is_a_threshold() {
    // x <= c - 0.5 is black, anything above white.
    let window = Window::new(10.0, 1.0, VoiFunction::Linear).unwrap();
    assert_eq!(window.apply(9.0), 0.0);
    assert_eq!(window.apply(9.5), 0.0);
    assert_eq!(window.apply(10.0), 1.0);
}

#[test]
fn linear_exact_window() {
    // c = 100, w = 10: 0 up to 95, 1 above 105, (x - 100) / 10 + 0.5
    // between.
    let window = Window::new(100.0, 10.0, VoiFunction::LinearExact).unwrap();
    assert_eq!(window.apply(95.0), 0.0);
    assert!((window.apply(96.0) - 0.1).abs() < 1e-12);
    assert!((window.apply(100.0) - 0.5).abs() < 1e-12);
    assert!((window.apply(105.0) - 1.0).abs() < 1e-12);
    assert_eq!(window.apply(105.5), 1.0);
}

#[test]
fn sigmoid_window() {
    // y = 1 / (1 + exp(-4 (x - c) / w)), c = 0, w = 4:
    // x = 0 gives 1/2; x = 1 gives 1 / (1 + e^-1) = 0.7310585786.
    let window = Window::new(0.0, 4.0, VoiFunction::Sigmoid).unwrap();
    assert!((window.apply(0.0) - 0.5).abs() < 1e-12);
    assert!((window.apply(1.0) - 0.731_058_578_6).abs() < 1e-9);
    assert!((window.apply(-1.0) - 0.268_941_421_4).abs() < 1e-9);
}

#[test]
fn invalid_widths_are_refused() {
    assert!(Window::new(0.0, 0.5, VoiFunction::Linear).is_none());
    assert!(Window::new(0.0, 0.5, VoiFunction::LinearExact).is_some());
    assert!(Window::new(0.0, 0.0, VoiFunction::Sigmoid).is_none());
    assert!(Window::new(f64::NAN, 10.0, VoiFunction::Linear).is_none());
}

#[test]
fn voi_lut_table_output_is_scaled_by_its_bit_depth() {
    // 8-bit entries: 255 is white. Input 0 is the first entry.
    let voi = Voi::Table(LookupTable {
        first_input: 0,
        entries: vec![0, 51, 255],
        bits_per_entry: 8,
    });
    let grey = pipeline(ModalityLut::IDENTITY, voi).apply(&[-5, 0, 1, 2, 3]);
    assert_close(&grey, &[0.0, 0.0, 0.2, 1.0, 1.0]);
}

#[test]
fn voi_lut_table_after_rescale_rounds_to_the_nearest_entry() {
    let voi = Voi::Table(LookupTable {
        first_input: -1,
        entries: vec![0, 1000, 2000, 4095],
        bits_per_entry: 12,
    });
    let modality = ModalityLut::Rescale {
        slope: 0.5,
        intercept: -1.0,
    };
    // Stored 1 -> -0.5 -> rounds to -1 (away from zero) -> entry 0;
    // stored 3 -> 0.5 -> 1 -> entry 2; stored 4 -> 1.0 -> entry 2.
    let grey = pipeline(modality, voi).apply(&[1, 3, 4]);
    assert_close(&grey, &[0.0, 2000.0 / 4095.0, 2000.0 / 4095.0]);
}

#[test]
fn full_range_uses_the_modality_values() {
    // Negative slope: stored 0 is the largest modality value.
    let modality = ModalityLut::Rescale {
        slope: -2.0,
        intercept: 0.0,
    };
    let grey = pipeline(modality, Voi::FullRange).apply(&[0, 1, 4]);
    assert_close(&grey, &[1.0, 0.75, 0.0]);
}

#[test]
fn a_flat_image_is_mid_grey() {
    let grey = pipeline(ModalityLut::IDENTITY, Voi::FullRange).apply(&[7, 7]);
    assert_close(&grey, &[0.5, 0.5]);
}

#[test]
fn monochrome1_is_inverted() {
    let window = Window::new(50.0, 101.0, VoiFunction::LinearExact).unwrap();
    let mut monochrome1 = pipeline(ModalityLut::IDENTITY, Voi::Window(window));
    monochrome1.invert = true;
    // LINEAR_EXACT c = 50, w = 101: 0 -> 0.004950..., 100 -> 0.995049...
    let grey = monochrome1.apply(&[-1000, 0, 50, 100, 1000]);
    assert_close(&grey, &[1.0, 1.0 - 1.0 / 202.0, 0.5, 1.0 / 202.0, 0.0]);
}

#[test]
fn signed_values_through_rescale_and_window() {
    // A CT: stored -1024 .. 3071, HU = stored - 1024, lung window
    // c = -600, w = 1500 (LINEAR): black at or below
    // -600 - 0.5 - 749.5 = -1350 HU, white above -600 - 0.5 + 749.5 = 149.
    let modality = ModalityLut::Rescale {
        slope: 1.0,
        intercept: -1024.0,
    };
    let window = Window::new(-600.0, 1500.0, VoiFunction::Linear).unwrap();
    let grey = pipeline(modality, Voi::Window(window)).apply(&[-1024, 424, 1174]);
    // -2048 HU -> 0; -600 HU -> (-600 + 600.5) / 1499 + 0.5; 150 HU -> 1.
    assert_close(&grey, &[0.0, (0.5 / 1499.0 + 0.5) as f32, 1.0]);
}

#[test]
fn padding_is_black_and_left_out_of_the_full_range() {
    // Without the padding value -2000 the range would be -2000..100.
    let mut ct = pipeline(ModalityLut::IDENTITY, Voi::FullRange);
    ct.padding = Some(PixelPadding::between(-2000, -2000));
    let grey = ct.apply(&[-2000, 0, 50, 100]);
    assert_close(&grey, &[0.0, 0.0, 0.5, 1.0]);
    // Black also after MONOCHROME1 inversion.
    ct.invert = true;
    let grey = ct.apply(&[-2000, 0, 50, 100]);
    assert_close(&grey, &[0.0, 1.0, 0.5, 0.0]);
}

#[test]
fn padding_range_is_inclusive_in_either_order() {
    let padding = PixelPadding::between(4095, 4000);
    assert!(!padding.contains(3999));
    assert!(padding.contains(4000));
    assert!(padding.contains(4095));
    assert!(!padding.contains(4096));
    let mut plate = pipeline(ModalityLut::IDENTITY, Voi::FullRange);
    plate.padding = Some(padding);
    let grey = plate.apply(&[10, 4050, 20, 4095]);
    assert_close(&grey, &[0.0, 0.0, 1.0, 0.0]);
}
