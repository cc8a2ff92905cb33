//! Fitting a radiograph to a square model input, and mapping model
//! coordinates back onto the original image.
//!
//! Chest models take a small square (224 or 512 pixels a side) while
//! radiographs are large and rarely square. We crop the central square
//! (side = the shorter dimension; the lungs are in the middle, and when the
//! dimensions differ by an odd number the extra pixel goes on the right or
//! bottom). The crop is a view, not a copy, and it is a real boundary: the
//! filter sees nothing outside it, just as if the square had been cut out
//! first. We then downscale with a Lanczos3 convolution whose kernel
//! widens with the scale factor: every source pixel contributes, so fine
//! periodic detail
//! (grid lines, noise) averages out instead of aliasing into patterns a
//! model could mistake for structure. Lanczos overshoots slightly at sharp
//! edges; the result is clamped to [0, 1] before normalisation so the
//! input range is exactly what the model was promised.
//!
//! [`InputGeometry`] maps positions in the model input back to the
//! original pixel grid, where findings (boxes, contours) must be reported.
//! Positions are continuous: (0, 0) is the top-left corner of the top-left
//! pixel, so pixel (column i, row j) has its centre at (i + 0.5, j + 0.5),
//! in the model input and in the original alike.

use fast_image_resize::images::{TypedCroppedImage, TypedImage, TypedImageRef};
use fast_image_resize::pixels::F32;
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};

use super::ImagingError;
use super::radiograph::Radiograph;

/// The model's input range: grey 0 becomes `low`, grey 1 becomes `high`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalisation {
    pub low: f32,
    pub high: f32,
}

impl Normalisation {
    /// Grey levels unchanged, in [0, 1].
    pub const UNIT: Normalisation = Normalisation {
        low: 0.0,
        high: 1.0,
    };

    #[inline]
    fn apply(self, grey: f32) -> f32 {
        grey * (self.high - self.low) + self.low
    }
}

/// Where a model input came from in the original image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputGeometry {
    /// Top-left corner of the crop in original pixels (x = column, y = row).
    crop_left: u32,
    crop_top: u32,
    /// Side of the square crop in original pixels.
    crop_side: u32,
    /// Side of the model input in pixels.
    size: u32,
}

impl InputGeometry {
    /// The central square of a `rows` x `columns` image, to become `size`
    /// pixels a side.
    pub fn centre_crop(rows: u32, columns: u32, size: u32) -> InputGeometry {
        let crop_side = rows.min(columns);
        InputGeometry {
            crop_left: (columns - crop_side) / 2,
            crop_top: (rows - crop_side) / 2,
            crop_side,
            size,
        }
    }

    /// Side of the model input in pixels.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Side of the crop in original pixels.
    pub fn crop_side(&self) -> u32 {
        self.crop_side
    }

    /// Top-left corner of the crop, (x, y) in original pixels.
    pub fn crop_origin(&self) -> (u32, u32) {
        (self.crop_left, self.crop_top)
    }

    /// Original pixels per model-input pixel.
    pub fn scale(&self) -> f32 {
        (f64::from(self.crop_side) / f64::from(self.size)) as f32
    }

    /// A model-input position (x, y) in original pixel coordinates.
    pub fn to_original(&self, x: f32, y: f32) -> (f32, f32) {
        let scale = f64::from(self.crop_side) / f64::from(self.size);
        (
            (f64::from(self.crop_left) + f64::from(x) * scale) as f32,
            (f64::from(self.crop_top) + f64::from(y) * scale) as f32,
        )
    }

    /// An original position (x, y) in model-input coordinates; outside
    /// [0, size] when it lies outside the crop.
    pub fn to_input(&self, x: f32, y: f32) -> (f32, f32) {
        let scale = f64::from(self.size) / f64::from(self.crop_side);
        (
            ((f64::from(x) - f64::from(self.crop_left)) * scale) as f32,
            ((f64::from(y) - f64::from(self.crop_top)) * scale) as f32,
        )
    }
}

/// The model input for a radiograph: `size` x `size` values, row-major,
/// in [low, high], with the geometry that maps it back.
pub fn model_input(
    radiograph: &Radiograph,
    size: u32,
    normalisation: Normalisation,
) -> Result<(Vec<f32>, InputGeometry), ImagingError> {
    let Radiograph {
        rows,
        columns,
        ref grey,
        ..
    } = *radiograph;
    let invalid = |reason: String| ImagingError::InvalidModelInput(reason);
    if rows == 0 || columns == 0 || size == 0 {
        return Err(invalid(format!(
            "{rows}x{columns} radiograph to {size}x{size} input"
        )));
    }
    if grey.len() != rows as usize * columns as usize {
        return Err(invalid(format!(
            "{} grey levels for {rows}x{columns} pixels",
            grey.len()
        )));
    }

    let geometry = InputGeometry::centre_crop(rows, columns, size);
    let whole = TypedImageRef::<F32>::from_buffer(columns, rows, bytemuck::cast_slice(grey))
        .map_err(|e| invalid(format!("source image: {e}")))?;
    let side = geometry.crop_side;
    let square = TypedCroppedImage::new(whole, geometry.crop_left, geometry.crop_top, side, side)
        .map_err(|e| invalid(format!("crop: {e}")))?;
    let mut input = vec![0f32; size as usize * size as usize];
    let mut destination =
        TypedImage::<F32>::from_buffer(size, size, bytemuck::cast_slice_mut(&mut input))
            .map_err(|e| invalid(format!("destination image: {e}")))?;
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize_typed(&square, &mut destination, &options)
        .map_err(|e| invalid(format!("resize: {e}")))?;
    drop(destination);

    for value in &mut input {
        *value = normalisation.apply(value.clamp(0.0, 1.0));
    }
    Ok((input, geometry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn radiograph(rows: u32, columns: u32, grey: impl Fn(u32, u32) -> f32) -> Radiograph {
        let grey = (0..rows)
            .flat_map(|row| (0..columns).map(move |column| (row, column)))
            .map(|(row, column)| grey(row, column))
            .collect();
        Radiograph {
            rows,
            columns,
            grey,
            pixel_spacing_mm: None,
        }
    }

    #[test]
    fn a_one_pixel_checkerboard_averages_to_mid_grey() {
        // Nearest-neighbour or point sampling would give all 0 or all 1
        // (or a coarse checkerboard); an anti-aliased filter averages.
        let board = radiograph(512, 512, |row, column| ((row + column) % 2) as f32);
        let (input, _) = model_input(&board, 64, Normalisation::UNIT).unwrap();
        assert_eq!(input.len(), 64 * 64);
        let worst = input.iter().map(|v| (v - 0.5).abs()).fold(0f32, f32::max);
        assert!(worst < 0.01, "largest deviation from 0.5: {worst}");
    }

    #[test]
    fn normalisation_maps_black_and_white_to_low_and_high() {
        // Left half black, right half white: a hard edge, where Lanczos
        // overshoots, which must not leave the range.
        let edge = radiograph(300, 300, |_, column| if column < 150 { 0.0 } else { 1.0 });
        let imagenet_like = Normalisation {
            low: -1024.0,
            high: 1024.0,
        };
        let (input, _) = model_input(&edge, 32, imagenet_like).unwrap();
        let (min, max) = input
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert_eq!((min, max), (-1024.0, 1024.0));
        // Far from the edge, the values are exactly black and white.
        assert_eq!(input[0], -1024.0);
        assert_eq!(input[31], 1024.0);
    }

    #[test]
    fn only_the_central_square_is_used() {
        // 10 rows x 30 columns: the crop is columns 10..20, which are white;
        // everything outside is black and must not leak in.
        let wide = radiograph(
            10,
            30,
            |_, column| {
                if (10..20).contains(&column) { 1.0 } else { 0.0 }
            },
        );
        let (input, geometry) = model_input(&wide, 5, Normalisation::UNIT).unwrap();
        assert_eq!(geometry.crop_origin(), (10, 0));
        assert_eq!(geometry.crop_side(), 10);
        let worst = input.iter().map(|v| (v - 1.0).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-6, "{input:?}");
    }

    #[test]
    fn geometry_of_a_tall_image_round_trips() {
        // 1000 rows x 800 columns: the crop is 800 a side, 100 rows down,
        // 3.125 original pixels per input pixel.
        let geometry = InputGeometry::centre_crop(1000, 800, 256);
        assert_eq!(geometry.crop_origin(), (0, 100));
        assert_eq!(geometry.scale(), 3.125);
        // Centre to centre.
        assert_eq!(geometry.to_original(128.0, 128.0), (400.0, 500.0));
        // Corners to the crop's corners.
        assert_eq!(geometry.to_original(0.0, 0.0), (0.0, 100.0));
        assert_eq!(geometry.to_original(256.0, 0.0), (800.0, 100.0));
        assert_eq!(geometry.to_original(0.0, 256.0), (0.0, 900.0));
        assert_eq!(geometry.to_original(256.0, 256.0), (800.0, 900.0));
        // The centre of the first input pixel covers 3.125 original pixels.
        assert_eq!(geometry.to_original(0.5, 0.5), (1.5625, 101.5625));
        // And back.
        for (x, y) in [(0.0, 0.0), (17.25, 200.5), (256.0, 256.0)] {
            let (ox, oy) = geometry.to_original(x, y);
            assert_eq!(geometry.to_input(ox, oy), (x, y));
        }
    }

    #[test]
    fn an_odd_difference_leaves_the_extra_pixel_on_the_right() {
        // 10 rows x 13 columns: 3 columns go, 1 on the left and 2 on the
        // right; the crop's centre is half a pixel left of the image's.
        let geometry = InputGeometry::centre_crop(10, 13, 5);
        assert_eq!(geometry.crop_origin(), (1, 0));
        assert_eq!(geometry.to_original(2.5, 2.5), (6.0, 5.0));
    }

    #[test]
    fn inconsistent_radiographs_are_refused() {
        let mut broken = radiograph(4, 4, |_, _| 0.0);
        broken.grey.pop();
        assert!(model_input(&broken, 2, Normalisation::UNIT).is_err());
        let fine = radiograph(4, 4, |_, _| 0.0);
        assert!(model_input(&fine, 0, Normalisation::UNIT).is_err());
    }
}
