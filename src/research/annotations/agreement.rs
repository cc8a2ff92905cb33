//! Agreement between readers, and the consensus of several readers.
//!
//! Two readers agree on an image-level finding when both mark the image
//! with it or neither does: Cohen's κ per finding type over the images
//! both read. On location, one reader's regions are matched to the
//! other's (same finding, box IoU ≥ 0.5, greedily by IoU): the lesion-level
//! F1 counts matched pairs against all regions, and the mean IoU says how
//! well matched regions overlap.
//!
//! The consensus rule picks what an export or a dataset takes when readers
//! differ: `union` (any reader), `intersection` (every reader of the
//! image), `majority` (more than half of them). Regions are grouped across
//! readers the same way (IoU ≥ 0.5) and a group's box is their mean.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::record::{Annotation, FindingType};

/// Regions overlap enough to be the same lesion at this IoU.
pub const MATCH_IOU: f64 = 0.5;

/// IoU of two boxes (x, y, width, height).
pub fn iou(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64)) -> f64 {
    let x0 = a.0.max(b.0);
    let y0 = a.1.max(b.1);
    let x1 = (a.0 + a.2).min(b.0 + b.2);
    let y1 = (a.1 + a.3).min(b.1 + b.3);
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    let union = a.2 * a.3 + b.2 * b.3 - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Cohen's κ from paired yes/no ratings; `None` without any pair.
pub fn cohen_kappa(pairs: &[(bool, bool)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let agree = pairs.iter().filter(|(a, b)| a == b).count() as f64 / n;
    let a_yes = pairs.iter().filter(|(a, _)| *a).count() as f64 / n;
    let b_yes = pairs.iter().filter(|(_, b)| *b).count() as f64 / n;
    let chance = a_yes * b_yes + (1.0 - a_yes) * (1.0 - b_yes);
    if (1.0 - chance).abs() < 1e-12 {
        // Both rated every image the same way: perfect agreement by
        // convention when they also agree, else none.
        return Some(if agree == 1.0 { 1.0 } else { 0.0 });
    }
    Some((agree - chance) / (1.0 - chance))
}

/// The agreement of one pair of readers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairAgreement {
    pub reader_a: String,
    pub reader_b: String,
    /// Images both read.
    pub images: usize,
    /// κ per finding type (absent where neither reader used the type).
    pub kappa: BTreeMap<String, f64>,
    /// Regions matched between the readers, and each reader's count.
    pub matched_regions: usize,
    pub regions_a: usize,
    pub regions_b: usize,
    /// 2·matched / (regions_a + regions_b); `None` without regions.
    pub lesion_f1: Option<f64>,
    /// Mean IoU of the matched pairs.
    pub mean_iou: Option<f64>,
}

/// Agreement for every pair of readers among `annotations` (current
/// versions).
pub fn agreement(annotations: &[Annotation]) -> Vec<PairAgreement> {
    let readers: BTreeSet<&str> = annotations.iter().map(|a| a.reader.as_str()).collect();
    let readers: Vec<&str> = readers.into_iter().collect();
    let mut pairs = Vec::new();
    for (i, a) in readers.iter().enumerate() {
        for b in &readers[i + 1..] {
            pairs.push(pair(annotations, a, b));
        }
    }
    pairs
}

fn by_image<'a>(
    annotations: &'a [Annotation],
    reader: &str,
) -> BTreeMap<&'a str, Vec<&'a Annotation>> {
    let mut images: BTreeMap<&str, Vec<&Annotation>> = BTreeMap::new();
    for a in annotations.iter().filter(|a| a.reader == reader) {
        images
            .entry(a.sop_instance_uid.as_str())
            .or_default()
            .push(a);
    }
    images
}

fn pair(annotations: &[Annotation], a: &str, b: &str) -> PairAgreement {
    let of_a = by_image(annotations, a);
    let of_b = by_image(annotations, b);
    let shared: Vec<&str> = of_a
        .keys()
        .filter(|k| of_b.contains_key(*k))
        .copied()
        .collect();
    let mut kappa = BTreeMap::new();
    for finding in FindingType::ALL {
        let ratings: Vec<(bool, bool)> = shared
            .iter()
            .map(|image| {
                let has = |list: &Vec<&Annotation>| list.iter().any(|x| x.finding == finding);
                (has(&of_a[image]), has(&of_b[image]))
            })
            .collect();
        if ratings.iter().any(|(x, y)| *x || *y)
            && let Some(k) = cohen_kappa(&ratings)
        {
            kappa.insert(finding.key().to_owned(), k);
        }
    }
    let (mut matched, mut regions_a, mut regions_b, mut iou_sum) = (0, 0, 0, 0.0);
    for image in &shared {
        let boxes = |list: &Vec<&Annotation>| -> Vec<(FindingType, (f64, f64, f64, f64))> {
            list.iter()
                .filter_map(|x| Some((x.finding, x.location.as_ref()?.bounds())))
                .collect()
        };
        let left = boxes(&of_a[image]);
        let right = boxes(&of_b[image]);
        regions_a += left.len();
        regions_b += right.len();
        for (_, overlap) in match_regions(&left, &right) {
            matched += 1;
            iou_sum += overlap;
        }
    }
    let total = regions_a + regions_b;
    PairAgreement {
        reader_a: a.to_owned(),
        reader_b: b.to_owned(),
        images: shared.len(),
        kappa,
        matched_regions: matched,
        regions_a,
        regions_b,
        lesion_f1: (total > 0).then(|| 2.0 * matched as f64 / total as f64),
        mean_iou: (matched > 0).then(|| iou_sum / matched as f64),
    }
}

type Region = (FindingType, (f64, f64, f64, f64));

/// Greedy one-to-one matching by IoU (same finding, IoU ≥ MATCH_IOU):
/// ((index in left, index in right), IoU).
fn match_regions(left: &[Region], right: &[Region]) -> Vec<((usize, usize), f64)> {
    let mut candidates = Vec::new();
    for (i, (fa, ba)) in left.iter().enumerate() {
        for (j, (fb, bb)) in right.iter().enumerate() {
            let overlap = iou(*ba, *bb);
            if fa == fb && overlap >= MATCH_IOU {
                candidates.push(((i, j), overlap));
            }
        }
    }
    candidates.sort_by(|x, y| y.1.total_cmp(&x.1));
    let (mut used_left, mut used_right) = (BTreeSet::new(), BTreeSet::new());
    candidates
        .into_iter()
        .filter(|((i, j), _)| {
            let free = !used_left.contains(i) && !used_right.contains(j);
            if free {
                used_left.insert(*i);
                used_right.insert(*j);
            }
            free
        })
        .collect()
}

/// How readers' differences are settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consensus {
    Union,
    Intersection,
    Majority,
}

impl Consensus {
    pub fn parse(text: &str) -> anyhow::Result<Consensus> {
        match text {
            "union" => Ok(Consensus::Union),
            "intersection" => Ok(Consensus::Intersection),
            "majority" => Ok(Consensus::Majority),
            _ => anyhow::bail!("consensus is union, intersection or majority, not {text:?}"),
        }
    }

    fn keeps(self, votes: usize, readers: usize) -> bool {
        match self {
            Consensus::Union => votes >= 1,
            Consensus::Intersection => votes == readers,
            Consensus::Majority => 2 * votes > readers,
        }
    }
}

/// What the readers of one image settle on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ImageConsensus {
    pub readers: usize,
    /// Image-level findings kept.
    pub findings: BTreeSet<FindingType>,
    /// Regions kept: finding and mean box (x, y, width, height).
    pub regions: Vec<(FindingType, [f64; 4])>,
}

/// The consensus over one image's current annotations.
pub fn consensus(annotations: &[&Annotation], rule: Consensus) -> ImageConsensus {
    let readers: BTreeSet<&str> = annotations.iter().map(|a| a.reader.as_str()).collect();
    let n = readers.len();
    let mut findings = BTreeSet::new();
    for finding in FindingType::ALL {
        let votes = readers
            .iter()
            .filter(|r| {
                annotations
                    .iter()
                    .any(|a| a.reader == **r && a.finding == finding)
            })
            .count();
        if votes > 0 && rule.keeps(votes, n) {
            findings.insert(finding);
        }
    }
    // Group regions across readers: each region joins the first group of
    // its finding with a member it overlaps enough, from another reader.
    type Members<'a> = Vec<(&'a str, (f64, f64, f64, f64))>;
    let mut groups: Vec<(FindingType, Members)> = Vec::new();
    for a in annotations {
        let Some(location) = &a.location else {
            continue;
        };
        let bounds = location.bounds();
        let group = groups.iter_mut().find(|(f, members)| {
            *f == a.finding
                && members.iter().all(|(r, _)| *r != a.reader)
                && members.iter().any(|(_, b)| iou(*b, bounds) >= MATCH_IOU)
        });
        match group {
            Some((_, members)) => members.push((a.reader.as_str(), bounds)),
            None => groups.push((a.finding, vec![(a.reader.as_str(), bounds)])),
        }
    }
    let regions = groups
        .into_iter()
        .filter(|(_, members)| rule.keeps(members.len(), n))
        .map(|(finding, members)| {
            let k = members.len() as f64;
            let mut mean = [0.0; 4];
            for (_, b) in &members {
                mean[0] += b.0 / k;
                mean[1] += b.1 / k;
                mean[2] += b.2 / k;
                mean[3] += b.3 / k;
            }
            (finding, mean)
        })
        .collect();
    ImageConsensus {
        readers: n,
        findings,
        regions,
    }
}
