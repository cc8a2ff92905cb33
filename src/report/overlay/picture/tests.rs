//! Unit tests of `picture`.

use super::*;
use crate::findings::{CategoryCall, ModelIdentity, Region};

/// A horizontal gradient, dark on the left, bright on the right.
fn radiograph(columns: u32, rows: u32) -> Radiograph {
    let grey = (0..rows)
        .flat_map(|_| (0..columns).map(move |x| x as f32 / (columns - 1) as f32))
        .collect();
    Radiograph {
        rows,
        columns,
        grey,
        pixel_spacing_mm: Some([0.2, 0.2]),
    }
}

/// A nodule outlined by a square with corners on pixel centres.
fn findings([x0, y0, x1, y1]: [f32; 4]) -> Findings {
    Findings {
        model: ModelIdentity {
            name: "test-model".into(),
            version: "2".into(),
            research_use_only: true,
            intended_use: "Testing.".into(),
        },
        categories: Category::ALL
            .iter()
            .map(|&category| CategoryCall {
                category,
                assessed: true,
                probability: 0.7,
                positive: category == Category::NoduleMass,
                label_index: None,
            })
            .collect(),
        localised: vec![LocalisedFinding {
            category: Category::NoduleMass,
            label: "Nodule".into(),
            probability: 0.7,
            region: Region {
                bounding_box: [x0, y0, x1, y1],
                outline: vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
                size_mm: None,
            },
        }],
    }
}

fn banner() -> Banner {
    Banner {
        warning: Some("RESEARCH USE ONLY".into()),
        model: "test-model 2".into(),
        intended_use: "Testing.".into(),
    }
}

fn pixel(picture: &Picture, x: u32, y: u32) -> Rgb {
    let i = ((y * picture.columns + x) * 3) as usize;
    Rgb(picture.rgb[i], picture.rgb[i + 1], picture.rgb[i + 2])
}

const SQUARE: [f32; 4] = [100.5, 150.5, 200.5, 250.5];

#[test]
fn the_same_inputs_give_the_same_pixels() {
    let image = radiograph(600, 520);
    let first = render(&image, &findings(SQUARE), &banner()).unwrap();
    let second = render(&image, &findings(SQUARE), &banner()).unwrap();
    assert!(first == second);
}

#[test]
fn the_image_keeps_its_size_between_banner_and_legend() {
    let image = radiograph(600, 520);
    let picture = render(&image, &findings(SQUARE), &banner()).unwrap();
    assert_eq!(picture.columns, 600);
    assert_eq!(picture.scale, 1.0);
    assert!(
        picture.image_top > 30,
        "banner of {} rows",
        picture.image_top
    );
    let legend = picture.rows - picture.image_top - 520;
    assert!(legend > 60, "legend of {legend} rows");
    assert_eq!(picture.rgb.len(), (600 * picture.rows * 3) as usize);
    // Away from the finding, the image is the radiograph's grey.
    for x in [0, 300, 599] {
        let grey = (x as f32 / 599.0 * 255.0).round() as u8;
        assert_eq!(
            pixel(&picture, x, picture.image_top + 510),
            Rgb(grey, grey, grey)
        );
    }
}

#[test]
fn outlines_are_drawn_in_the_category_colour_where_the_finding_is() {
    let image = radiograph(600, 520);
    let picture = render(&image, &findings(SQUARE), &banner()).unwrap();
    let top = picture.image_top;
    let colour = category_colour(Category::NoduleMass);
    // The four sides of the outline…
    for (x, y) in [(150, 150), (150, 250), (100, 200), (200, 200)] {
        assert_eq!(pixel(&picture, x, top + y), colour, "at ({x}, {y})");
    }
    // …but not its inside, which still shows the image.
    let grey = (150.0f32 / 599.0 * 255.0).round() as u8;
    assert_eq!(pixel(&picture, 150, top + 200), Rgb(grey, grey, grey));
}

#[test]
fn the_banner_carries_text_and_the_warning() {
    let image = radiograph(600, 520);
    let picture = render(&image, &findings(SQUARE), &banner()).unwrap();
    let banner: Vec<&[u8]> = picture.rgb[..(picture.image_top * 600 * 3) as usize]
        .chunks_exact(3)
        .collect();
    let count = |colour: [u8; 3]| banner.iter().filter(|p| **p == colour).count();
    assert!(count([140, 0, 0]) > 1000, "no warning band");
    assert!(count([255, 220, 0]) > 100, "no warning text");
    assert!(count([255, 255, 255]) > 100, "no model line");
    let plain = render(&image, &findings(SQUARE), &banner_with(None)).unwrap();
    assert!(plain.image_top < picture.image_top);
    let plain_banner = &plain.rgb[..(plain.image_top * 600 * 3) as usize];
    assert!(!plain_banner.chunks_exact(3).any(|p| p == [140, 0, 0]));
}

fn banner_with(warning: Option<&str>) -> Banner {
    Banner {
        warning: warning.map(str::to_owned),
        ..banner()
    }
}

#[test]
fn small_images_are_enlarged_with_their_findings() {
    let image = radiograph(100, 80);
    let picture = render(&image, &findings([20.5, 30.5, 60.5, 50.5]), &banner()).unwrap();
    assert_eq!(picture.scale, 7.0);
    assert_eq!(picture.columns, 700);
    let colour = category_colour(Category::NoduleMass);
    // The top side at y = 30.5 lies at 213.5 on the canvas.
    assert_eq!(pixel(&picture, 280, picture.image_top + 213), colour);
}

#[test]
fn very_large_images_are_reduced() {
    let image = radiograph(5000, 600);
    let picture = render(&image, &findings(SQUARE), &banner()).unwrap();
    assert_eq!(picture.columns, 4096);
    assert!((picture.scale - 4096.0 / 5000.0).abs() < 1e-6);
}

#[test]
fn grey_levels_must_match_the_size() {
    let mut image = radiograph(100, 80);
    image.grey.pop();
    assert!(render(&image, &findings(SQUARE), &banner()).is_err());
}

#[test]
fn every_category_has_a_distinct_colour() {
    let colours: std::collections::HashSet<_> =
        Category::ALL.iter().map(|&c| category_colour(c)).collect();
    assert_eq!(colours.len(), Category::ALL.len());
}
