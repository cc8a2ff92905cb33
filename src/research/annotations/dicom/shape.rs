//! From a drawn graphic (an SR SCOORD or a GSPS graphic object, both in
//! image pixels from the top-left corner) to an annotation's location:
//! closed outlines become polygons, circles and ellipses their bounding
//! boxes, a point marks the image as a whole, and a line (a ruler) marks
//! no region at all.

use crate::research::annotations::Location;

/// What a graphic says about where the finding is.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Region(Location),
    /// A point: the finding is on this image, with no extent.
    Point,
    /// A line with two ends: a measurement, not a region.
    Line,
}

/// Reads a graphic of `graphic_type` (POINT, MULTIPOINT, POLYLINE,
/// POLYGON, INTERPOLATED, CIRCLE, ELLIPSE) with its points.
pub fn shape(graphic_type: &str, points: &[[f64; 2]]) -> Result<Shape, String> {
    let count = points.len();
    let needs = |n: usize| -> Result<(), String> {
        if count == n {
            Ok(())
        } else {
            Err(format!("a {graphic_type} needs {n} points, got {count}"))
        }
    };
    match graphic_type {
        "POINT" => {
            needs(1)?;
            Ok(Shape::Point)
        }
        "MULTIPOINT" => {
            let region = bounding_box(points);
            Ok(region.map_or(Shape::Point, Shape::Region))
        }
        "POLYLINE" | "POLYGON" | "INTERPOLATED" => {
            let mut outline = points.to_vec();
            if outline.len() > 1 && outline.first() == outline.last() {
                outline.pop();
            }
            match outline.len() {
                0 => Err(format!("a {graphic_type} without points")),
                1 => Ok(Shape::Point),
                2 => Ok(Shape::Line),
                _ => Ok(Shape::Region(Location::Polygon(outline))),
            }
        }
        "CIRCLE" => {
            needs(2)?;
            let [cx, cy] = points[0];
            let radius = (points[1][0] - cx).hypot(points[1][1] - cy);
            square(cx, cy, radius, radius)
        }
        "ELLIPSE" => {
            needs(4)?;
            // Major axis ends, then minor axis ends; a point of the
            // ellipse is c + u·cos t + v·sin t.
            let centre = [
                (points[0][0] + points[1][0]) / 2.0,
                (points[0][1] + points[1][1]) / 2.0,
            ];
            let u = [
                (points[1][0] - points[0][0]) / 2.0,
                (points[1][1] - points[0][1]) / 2.0,
            ];
            let v = [
                (points[3][0] - points[2][0]) / 2.0,
                (points[3][1] - points[2][1]) / 2.0,
            ];
            square(centre[0], centre[1], u[0].hypot(v[0]), u[1].hypot(v[1]))
        }
        other => Err(format!("graphic type {other:?} is not understood")),
    }
}

/// The box `cx ± half_width`, `cy ± half_height`.
fn square(cx: f64, cy: f64, half_width: f64, half_height: f64) -> Result<Shape, String> {
    if half_width > 0.0 && half_height > 0.0 {
        Ok(Shape::Region(Location::Box {
            x: cx - half_width,
            y: cy - half_height,
            width: 2.0 * half_width,
            height: 2.0 * half_height,
        }))
    } else {
        Ok(Shape::Point)
    }
}

/// The box around some points, if it has an area.
fn bounding_box(points: &[[f64; 2]]) -> Option<Location> {
    let bounds = Location::Polygon(points.to_vec()).bounds();
    let (x, y, width, height) = bounds;
    (!points.is_empty() && width > 0.0 && height > 0.0).then_some(Location::Box {
        x,
        y,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_polylines_are_polygons_and_lines_are_not_regions() {
        let square = [[1.0, 1.0], [5.0, 1.0], [5.0, 5.0], [1.0, 5.0], [1.0, 1.0]];
        assert_eq!(
            shape("POLYLINE", &square).unwrap(),
            Shape::Region(Location::Polygon(square[..4].to_vec()))
        );
        assert_eq!(
            shape("POLYLINE", &[[1.0, 1.0], [9.0, 9.0]]).unwrap(),
            Shape::Line
        );
        assert_eq!(shape("POINT", &[[3.0, 4.0]]).unwrap(), Shape::Point);
        assert!(shape("POINT", &[]).is_err());
        assert!(shape("SPLINE", &square).is_err());
    }

    #[test]
    fn circles_and_ellipses_become_their_bounding_boxes() {
        assert_eq!(
            shape("CIRCLE", &[[10.0, 20.0], [13.0, 24.0]]).unwrap(),
            Shape::Region(Location::Box {
                x: 5.0,
                y: 15.0,
                width: 10.0,
                height: 10.0
            })
        );
        // An axis-aligned ellipse, 8 wide and 4 high, centred on (10, 10).
        let ellipse = [[6.0, 10.0], [14.0, 10.0], [10.0, 8.0], [10.0, 12.0]];
        assert_eq!(
            shape("ELLIPSE", &ellipse).unwrap(),
            Shape::Region(Location::Box {
                x: 6.0,
                y: 8.0,
                width: 8.0,
                height: 4.0
            })
        );
        assert_eq!(
            shape("MULTIPOINT", &[[2.0, 2.0], [6.0, 8.0], [4.0, 3.0]]).unwrap(),
            Shape::Region(Location::Box {
                x: 2.0,
                y: 2.0,
                width: 4.0,
                height: 6.0
            })
        );
    }
}
