//! From an evidence map to a region: where a finding is, its outline and
//! its bounding box, on the original image's pixel grid.
//!
//! The map (a class activation map or a segmentation output) is coarse, so
//! it is first upsampled bilinearly. A region is a connected component of
//! the cells where evidence is at least half the map's peak: the one around
//! the peak first, then any separate blob (a second nodule), strongest
//! first. Each outline is traced along the component's boundary (Moore neighbour
//! tracing) and mapped back through the same crop and scale that made the
//! model input.

use serde::{Deserialize, Serialize};

use crate::model::EvidenceMap;

/// Evidence at or above this fraction of the peak belongs to the region.
const REGION_FRACTION: f32 = 0.5;
/// Upsampling factor from the evidence map to the tracing grid.
const UPSAMPLE: usize = 8;
/// At most this many regions per map (per finding category and image).
pub const MAX_REGIONS: usize = 4;

/// A region on the original image: a closed outline and its bounding box,
/// in pixel coordinates (x = column, y = row, pixel centres at .5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// `[x_min, y_min, x_max, y_max]`.
    pub bounding_box: [f32; 4],
    /// Closed polygon (first point not repeated).
    pub outline: Vec<[f32; 2]>,
    /// Bounding box width and height in mm, when the pixel spacing is known.
    pub size_mm: Option<[f64; 2]>,
}

/// A region and how strong its evidence is against the map's peak.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceRegion {
    pub region: Region,
    /// The region's highest evidence over the map's, in (0, 1]: 1 for the
    /// region around the peak.
    pub strength: f32,
}

/// Finds the regions of a map covering an input square of side
/// `input_size`: every separate blob where evidence is at least half the
/// map's peak, strongest first, at most `MAX_REGIONS`. `to_original`
/// maps input coordinates to the original image; `pixel_spacing_mm` is
/// (row, column) spacing. Empty if the map holds no evidence.
pub fn regions_from_evidence(
    map: &EvidenceMap,
    input_size: u32,
    to_original: impl Fn(f32, f32) -> (f32, f32),
    pixel_spacing_mm: Option<[f64; 2]>,
) -> Vec<EvidenceRegion> {
    let grid = map.side * UPSAMPLE;
    let values = upsample_bilinear(map, grid);
    let Some(peak) = values.iter().copied().max_by(f32::total_cmp) else {
        return Vec::new();
    };
    if peak.is_nan() || peak <= 0.0 {
        return Vec::new();
    }
    let inside: Vec<bool> = values
        .iter()
        .map(|&v| v >= peak * REGION_FRACTION)
        .collect();
    // Seeds strongest first; each blob is taken from its own maximum.
    let mut seeds: Vec<usize> = (0..values.len()).filter(|&i| inside[i]).collect();
    seeds.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let mut claimed = vec![false; values.len()];
    let mut regions = Vec::new();
    for seed in seeds {
        if regions.len() == MAX_REGIONS {
            break;
        }
        if claimed[seed] {
            continue;
        }
        let component = connected_component(&inside, grid, seed);
        for (claim, &member) in claimed.iter_mut().zip(&component) {
            *claim |= member;
        }
        regions.push(EvidenceRegion {
            region: region_of_component(
                &component,
                grid,
                input_size,
                &to_original,
                pixel_spacing_mm,
            ),
            strength: values[seed] / peak,
        });
    }
    regions
}

/// Outline, box and size of one component of the tracing grid.
fn region_of_component(
    component: &[bool],
    grid: usize,
    input_size: u32,
    to_original: impl Fn(f32, f32) -> (f32, f32),
    pixel_spacing_mm: Option<[f64; 2]>,
) -> Region {
    let boundary = trace_boundary(component, grid);
    let scale = input_size as f32 / grid as f32;
    let outline: Vec<[f32; 2]> = boundary
        .iter()
        .map(|&(x, y)| {
            let (ox, oy) = to_original((x as f32 + 0.5) * scale, (y as f32 + 0.5) * scale);
            [ox, oy]
        })
        .collect();
    let bounding_box = outline.iter().fold(
        [f32::MAX, f32::MAX, f32::MIN, f32::MIN],
        |[x0, y0, x1, y1], &[x, y]| [x0.min(x), y0.min(y), x1.max(x), y1.max(y)],
    );
    let size_mm = pixel_spacing_mm.map(|[row, column]| {
        [
            f64::from(bounding_box[2] - bounding_box[0]) * column,
            f64::from(bounding_box[3] - bounding_box[1]) * row,
        ]
    });
    Region {
        bounding_box,
        outline,
        size_mm,
    }
}

/// Bilinear upsampling of a square map to `grid`×`grid`, sampling at cell
/// centres.
fn upsample_bilinear(map: &EvidenceMap, grid: usize) -> Vec<f32> {
    let side = map.side;
    let at = |x: usize, y: usize| map.values[y * side + x];
    let mut out = Vec::with_capacity(grid * grid);
    for gy in 0..grid {
        let sy =
            ((gy as f32 + 0.5) * side as f32 / grid as f32 - 0.5).clamp(0.0, (side - 1) as f32);
        let (y0, fy) = (sy.floor() as usize, sy.fract());
        let y1 = (y0 + 1).min(side - 1);
        for gx in 0..grid {
            let sx =
                ((gx as f32 + 0.5) * side as f32 / grid as f32 - 0.5).clamp(0.0, (side - 1) as f32);
            let (x0, fx) = (sx.floor() as usize, sx.fract());
            let x1 = (x0 + 1).min(side - 1);
            let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
            let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// The 4-connected component of `inside` containing `seed`.
fn connected_component(inside: &[bool], grid: usize, seed: usize) -> Vec<bool> {
    let mut member = vec![false; inside.len()];
    let mut stack = vec![seed];
    member[seed] = true;
    while let Some(index) = stack.pop() {
        let (x, y) = (index % grid, index / grid);
        let neighbours = [
            (x > 0).then(|| index - 1),
            (x + 1 < grid).then(|| index + 1),
            (y > 0).then(|| index - grid),
            (y + 1 < grid).then(|| index + grid),
        ];
        for next in neighbours.into_iter().flatten() {
            if inside[next] && !member[next] {
                member[next] = true;
                stack.push(next);
            }
        }
    }
    member
}

/// Outer boundary of a component, clockwise, by Moore neighbour tracing.
fn trace_boundary(member: &[bool], grid: usize) -> Vec<(usize, usize)> {
    let is_member = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && (x as usize) < grid
            && (y as usize) < grid
            && member[y as usize * grid + x as usize]
    };
    // Start at the top-most, then left-most, member.
    let start_index = member
        .iter()
        .position(|&m| m)
        .expect("the seed is a member");
    let start = ((start_index % grid) as i64, (start_index / grid) as i64);
    // Neighbours clockwise starting west.
    const DIRECTIONS: [(i64, i64); 8] = [
        (-1, 0),
        (-1, -1),
        (0, -1),
        (1, -1),
        (1, 0),
        (1, 1),
        (0, 1),
        (-1, 1),
    ];
    let mut boundary = vec![(start.0 as usize, start.1 as usize)];
    let mut current = start;
    // We entered the start from the west (nothing above or left of it).
    let mut search_from = 0usize;
    for _ in 0..4 * grid * grid {
        let mut found = None;
        for step in 0..8 {
            let direction = (search_from + step) % 8;
            let (dx, dy) = DIRECTIONS[direction];
            if is_member(current.0 + dx, current.1 + dy) {
                found = Some(direction);
                break;
            }
        }
        let Some(direction) = found else {
            break; // a single isolated cell
        };
        let (dx, dy) = DIRECTIONS[direction];
        current = (current.0 + dx, current.1 + dy);
        if current == start {
            break;
        }
        boundary.push((current.0 as usize, current.1 as usize));
        // Continue the search from the neighbour after the one we came from.
        search_from = (direction + 5) % 8;
    }
    boundary
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The region around the map's peak alone.
    fn region_from_evidence(
        map: &EvidenceMap,
        input_size: u32,
        to_original: impl Fn(f32, f32) -> (f32, f32),
        pixel_spacing_mm: Option<[f64; 2]>,
    ) -> Option<Region> {
        regions_from_evidence(map, input_size, to_original, pixel_spacing_mm)
            .into_iter()
            .next()
            .map(|found| found.region)
    }

    fn map_with_blob(side: usize, cells: &[(usize, usize)]) -> EvidenceMap {
        let mut values = vec![0.0; side * side];
        for &(x, y) in cells {
            values[y * side + x] = 1.0;
        }
        EvidenceMap { side, values }
    }

    #[test]
    fn a_blob_gives_a_box_around_it_on_the_original_grid() {
        // Evidence in cells (2,3) and (3,3) of an 8×8 map over a 256 input.
        let map = map_with_blob(8, &[(2, 3), (3, 3)]);
        let identity = |x: f32, y: f32| (x, y);
        let region = region_from_evidence(&map, 256, identity, Some([0.2, 0.1])).unwrap();
        let [x0, y0, x1, y1] = region.bounding_box;
        // Cells are 32 input pixels wide: the blob spans x 64..128, y 96..128.
        assert!(
            (56.0..=80.0).contains(&x0) && (112.0..=136.0).contains(&x1),
            "{x0} {x1}"
        );
        assert!(
            (88.0..=104.0).contains(&y0) && (120.0..=136.0).contains(&y1),
            "{y0} {y1}"
        );
        let [w, h] = region.size_mm.unwrap();
        assert!(
            (w - f64::from(x1 - x0) * 0.1).abs() < 1e-6
                && (h - f64::from(y1 - y0) * 0.2).abs() < 1e-6
        );
        assert!(region.outline.len() >= 4);
    }

    #[test]
    fn the_region_follows_the_mapping_to_the_original_image() {
        let map = map_with_blob(4, &[(1, 1)]);
        let shifted = |x: f32, y: f32| (x * 2.0 + 100.0, y * 2.0 + 50.0);
        let region = region_from_evidence(&map, 64, shifted, None).unwrap();
        assert!(region.bounding_box[0] > 100.0 && region.bounding_box[1] > 50.0);
        assert!(region.size_mm.is_none());
    }

    #[test]
    fn separate_blobs_are_separate_regions_strongest_first() {
        // A strong blob at (1,1) and a weaker one at (6,6) of an 8×8 map;
        // a third below half the peak is not a region.
        let mut map = map_with_blob(8, &[(1, 1)]);
        map.values[6 * 8 + 6] = 0.7;
        map.values[8 + 6] = 0.3; // (6, 1)
        let regions = regions_from_evidence(&map, 256, |x, y| (x, y), None);
        assert_eq!(regions.len(), 2, "{regions:?}");
        assert_eq!(regions[0].strength, 1.0);
        assert!((regions[1].strength - 0.7).abs() < 1e-6);
        let centre = |r: &Region| {
            (
                (r.bounding_box[0] + r.bounding_box[2]) / 2.0,
                (r.bounding_box[1] + r.bounding_box[3]) / 2.0,
            )
        };
        let (x, y) = centre(&regions[0].region);
        assert!((40.0..=56.0).contains(&x) && (40.0..=56.0).contains(&y));
        let (x, y) = centre(&regions[1].region);
        assert!((200.0..=216.0).contains(&x) && (200.0..=216.0).contains(&y));
    }

    #[test]
    fn an_empty_map_has_no_region() {
        assert!(region_from_evidence(&map_with_blob(4, &[]), 64, |x, y| (x, y), None).is_none());
    }

    #[test]
    fn boundary_tracing_walks_around_a_square() {
        let grid = 5;
        let mut member = vec![false; grid * grid];
        for y in 1..4 {
            for x in 1..4 {
                member[y * grid + x] = true;
            }
        }
        let boundary = trace_boundary(&member, grid);
        assert_eq!(boundary.len(), 8, "{boundary:?}");
        assert!(
            !boundary.contains(&(2, 2)),
            "the inside is not on the boundary"
        );
    }
}
