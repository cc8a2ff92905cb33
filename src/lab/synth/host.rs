//! What a finding is drawn into: the pixel grid, where the lungs are, and
//! the anatomy masks it is placed against and tagged with.
//!
//! The same findings are drawn into a synthetic thorax (whose anatomy is
//! known exactly) and into real radiographs (where only an estimated lung
//! mask exists), so findings see their background through this one view.

use super::canvas::{Grid, Mask};
use super::rng::Rng;

/// Anatomical structures a finding may overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Structure {
    Heart,
    Diaphragm,
    Hilum,
    Rib,
    Clavicle,
    Mediastinum,
}

impl Structure {
    pub const ALL: [Structure; 6] = [
        Structure::Heart,
        Structure::Diaphragm,
        Structure::Hilum,
        Structure::Rib,
        Structure::Clavicle,
        Structure::Mediastinum,
    ];

    /// The subgroup tag for a finding that overlaps this structure.
    pub fn overlap_tag(self) -> &'static str {
        match self {
            Structure::Heart => "overlaps_heart",
            Structure::Diaphragm => "overlaps_diaphragm",
            Structure::Hilum => "overlaps_hilum",
            Structure::Rib => "overlaps_rib",
            Structure::Clavicle => "overlaps_clavicle",
            Structure::Mediastinum => "overlaps_mediastinum",
        }
    }
}

/// A radiograph, synthetic or real, seen by the findings drawn into it.
pub struct Host<'a> {
    pub grid: Grid,
    pub lung: &'a Mask,
    /// Lung thickness along the beam, mm (estimated for real images).
    pub lung_thickness: &'a [f32],
    /// Fraction of lung volume that is air.
    pub air_fraction: f32,
    /// Known structure masks (none for a real radiograph).
    pub structures: Vec<(Structure, &'a Mask)>,
    /// Lung pixel indices, for sampling positions.
    lung_pixels: Vec<usize>,
}

impl<'a> Host<'a> {
    pub fn new(
        grid: Grid,
        lung: &'a Mask,
        lung_thickness: &'a [f32],
        air_fraction: f32,
        structures: Vec<(Structure, &'a Mask)>,
    ) -> Host<'a> {
        let lung_pixels = (0..lung.bits.len()).filter(|&i| lung.bits[i]).collect();
        Host {
            grid,
            lung,
            lung_thickness,
            air_fraction,
            structures,
            lung_pixels,
        }
    }

    pub fn structure(&self, which: Structure) -> Option<&Mask> {
        self.structures
            .iter()
            .find(|(s, _)| *s == which)
            .map(|(_, m)| *m)
    }

    /// A random point (anatomy mm) inside the lungs.
    pub fn random_lung_point(&self, rng: &mut Rng) -> Option<(f32, f32)> {
        if self.lung_pixels.is_empty() {
            return None;
        }
        let i = self.lung_pixels[rng.below(self.lung_pixels.len())];
        Some(self.grid.anatomy_mm(i % self.grid.size, i / self.grid.size))
    }

    /// Whether the pixel under an anatomy point is set in `mask`.
    pub fn at(&self, mask: &Mask, x: f32, y: f32) -> bool {
        let (c, r) = self.grid.pixel_of(x, y);
        let (c, r) = (c.round(), r.round());
        let n = self.grid.size as f32;
        c >= 0.0
            && r >= 0.0
            && c < n
            && r < n
            && mask.bits[r as usize * self.grid.size + c as usize]
    }

    /// Subgroup tags: one per structure that holds at least `min_fraction`
    /// of the finding's mask, and `free_lung` when it overlaps none of the
    /// heart, diaphragm, hila and mediastinum (ribs and clavicles cross
    /// almost every lung region, so they do not count against it).
    pub fn overlap_tags(&self, mask: &Mask, min_fraction: f32) -> Vec<String> {
        let area = mask.area().max(1) as f32;
        let mut tags = Vec::new();
        let mut central = false;
        for (structure, structure_mask) in &self.structures {
            if mask.overlap(structure_mask) as f32 / area >= min_fraction {
                tags.push(structure.overlap_tag().to_string());
                central |= !matches!(structure, Structure::Rib | Structure::Clavicle);
            }
        }
        if !self.structures.is_empty() && !central {
            tags.push("free_lung".to_string());
        }
        tags
    }
}
