//! Pixel-level metrics over a set of anomaly maps with ground-truth masks: pooled pixel AUROC and
//! MVTec AD's per-region overlap (PRO) curve and its normalised area (AUPRO).

use crate::input::{count_positives, require_both_classes};
use crate::ranking::{auroc_from_counts, Counts};
use crate::{Error, Result, Score};

/// The FPR limit of AUPRO in MVTec AD's protocol.
pub const AUPRO_MAX_FPR: f64 = 0.3;

/// The per-region overlap curve of a set of anomaly maps, as MVTec AD's evaluation code computes
/// it (`pro_curve_util.compute_pro`).
///
/// Starts at `(0, 0)`, has one point per distinct score (decreasing threshold, so `fpr` and `pro`
/// increase) and ends at `(1, 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProCurve {
    /// False-positive rate on the defect-free pixels of all maps. Rounded to `f32` as MVTec's
    /// code does (it divides in single precision), then widened.
    pub fpr: Vec<f64>,
    /// Mean over all connected defect regions of the fraction of the region above the threshold.
    pub pro: Vec<f64>,
}

/// Pools the pixels of many maps and checks shapes and values.
fn pool<S: Score, M: AsRef<[S]>, K: AsRef<[bool]>>(
    maps: &[M],
    masks: &[K],
) -> Result<(Vec<f64>, Vec<bool>)> {
    if maps.is_empty() {
        return Err(Error::Empty { what: "maps" });
    }
    if masks.len() != maps.len() {
        return Err(Error::LengthMismatch {
            what: "masks",
            expected: maps.len(),
            got: masks.len(),
        });
    }
    let total: usize = maps.iter().map(|m| m.as_ref().len()).sum();
    let mut scores = Vec::with_capacity(total);
    let mut labels = Vec::with_capacity(total);
    for (i, (map, mask)) in maps.iter().zip(masks).enumerate() {
        let (map, mask) = (map.as_ref(), mask.as_ref());
        if mask.len() != map.len() {
            return Err(Error::ShapeMismatch {
                context: format!("mask {i}"),
                expected: map.len(),
                got: mask.len(),
            });
        }
        for &s in map {
            let value: f64 = s.into();
            if !value.is_finite() {
                return Err(Error::NonFiniteScore {
                    what: "maps",
                    index: scores.len(),
                    value,
                });
            }
            scores.push(value);
        }
        labels.extend_from_slice(mask);
    }
    if scores.is_empty() {
        return Err(Error::Empty { what: "maps" });
    }
    Ok((scores, labels))
}

/// Pixel AUROC: the AUROC (as [`crate::auroc`]) of all pixels of all maps pooled, a pixel being
/// anomalous where its mask is `true`.
///
/// `maps[i]` and `masks[i]` are one image's anomaly map and ground-truth mask, flattened in the
/// same order; the maps may have different sizes.
///
/// # Errors
/// [`Error::Empty`], [`Error::LengthMismatch`] (number of masks), [`Error::ShapeMismatch`] (a
/// mask's length differs from its map's), [`Error::NonFiniteScore`] (flat index into the pooled
/// pixels), [`Error::OneClass`].
pub fn pixel_auroc<S: Score, M: AsRef<[S]>, K: AsRef<[bool]>>(
    maps: &[M],
    masks: &[K],
) -> Result<f64> {
    let (scores, labels) = pool(maps, masks)?;
    require_both_classes("pixel AUROC", count_positives(&labels), labels.len())?;
    Ok(auroc_from_counts(&Counts::new(&scores, &labels)))
}

/// Pixel AUPRC: the average precision (as [`crate::auprc`]) of all pixels of all maps pooled.
///
/// # Errors
/// As [`pixel_auroc`], except that masks without any defect-free pixel are allowed.
pub fn pixel_auprc<S: Score, M: AsRef<[S]>, K: AsRef<[bool]>>(
    maps: &[M],
    masks: &[K],
) -> Result<f64> {
    let (scores, labels) = pool(maps, masks)?;
    crate::auprc(&scores, &labels)
}

/// Labels the 8-connected components of a `[height, width]` row-major mask into `tags`
/// (0 = defect-free, `first + k` = component k); returns the component sizes.
fn label_components(
    mask: &[bool],
    height: usize,
    width: usize,
    first: u32,
    tags: &mut [u32],
) -> Vec<u32> {
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || tags[start] != 0 {
            continue;
        }
        let tag = first + sizes.len() as u32;
        let mut size = 0u32;
        tags[start] = tag;
        stack.push(start);
        while let Some(p) = stack.pop() {
            size += 1;
            let (r, c) = (p / width, p % width);
            for dr in [-1isize, 0, 1] {
                for dc in [-1isize, 0, 1] {
                    let (rr, cc) = (r as isize + dr, c as isize + dc);
                    if rr < 0 || cc < 0 || rr >= height as isize || cc >= width as isize {
                        continue;
                    }
                    let q = rr as usize * width + cc as usize;
                    if mask[q] && tags[q] == 0 {
                        tags[q] = tag;
                        stack.push(q);
                    }
                }
            }
        }
        sizes.push(size);
    }
    sizes
}

/// Pixels sorted by decreasing score with their region tag, and the normalisers.
struct Regions {
    /// `(score, tag)`, decreasing score; tag 0 = defect-free pixel, tag `k >= 1` = region `k`.
    pairs: Vec<(f64, u32)>,
    /// `1 / size` of each region, indexed by tag (entry 0 unused).
    inverse_size: Vec<f64>,
    ok_pixels: u64,
    regions: u64,
}

fn regions<S: Score, M: AsRef<[S]>, K: AsRef<[bool]>>(
    maps: &[M],
    masks: &[K],
    height: usize,
    width: usize,
) -> Result<Regions> {
    if height == 0 || width == 0 {
        return Err(Error::InvalidParameter {
            name: if height == 0 { "height" } else { "width" },
            value: 0.0,
            reason: "the maps must have at least one row and one column",
        });
    }
    let per_map = height.checked_mul(width).ok_or(Error::InvalidParameter {
        name: "width",
        value: width as f64,
        reason: "height * width overflows",
    })?;
    if maps.is_empty() {
        return Err(Error::Empty { what: "maps" });
    }
    if masks.len() != maps.len() {
        return Err(Error::LengthMismatch {
            what: "masks",
            expected: maps.len(),
            got: masks.len(),
        });
    }
    for (i, (map, mask)) in maps.iter().zip(masks).enumerate() {
        for (context, len) in [("map", map.as_ref().len()), ("mask", mask.as_ref().len())] {
            if len != per_map {
                return Err(Error::ShapeMismatch {
                    context: format!("{context} {i}"),
                    expected: per_map,
                    got: len,
                });
            }
        }
    }
    let total = maps.len() as u128 * per_map as u128;
    if total >= u32::MAX as u128 {
        return Err(Error::InvalidParameter {
            name: "maps",
            value: total as f64,
            reason: "AUPRO supports fewer than 2^32 - 1 pixels in all",
        });
    }
    // One pass: label each mask's regions into a per-map scratch buffer and emit the
    // (score, tag) pairs directly, so that the peak memory is the pairs alone.
    let mut pairs: Vec<(f64, u32)> = Vec::with_capacity(total as usize);
    let mut scratch = vec![0u32; per_map];
    let mut inverse_size = vec![0.0];
    let mut ok_pixels = 0u64;
    for (map, mask) in maps.iter().zip(masks) {
        scratch.fill(0);
        let first = inverse_size.len() as u32;
        let sizes = label_components(mask.as_ref(), height, width, first, &mut scratch);
        inverse_size.extend(sizes.iter().map(|&s| 1.0 / s as f64));
        for (&s, &tag) in map.as_ref().iter().zip(&scratch) {
            let value: f64 = s.into();
            if !value.is_finite() {
                return Err(Error::NonFiniteScore {
                    what: "maps",
                    index: pairs.len(),
                    value,
                });
            }
            ok_pixels += u64::from(tag == 0);
            pairs.push((value, tag));
        }
    }
    let regions = (inverse_size.len() - 1) as u64;
    if regions == 0 {
        return Err(Error::OneClass {
            metric: "AUPRO",
            missing: "anomalous",
        });
    }
    if ok_pixels == 0 {
        return Err(Error::OneClass {
            metric: "AUPRO",
            missing: "normal",
        });
    }
    pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    Ok(Regions {
        pairs,
        inverse_size,
        ok_pixels,
        regions,
    })
}

impl Regions {
    /// Calls `f(fpr, pro)` for each point of the PRO curve after `(0, 0)` and before the closing
    /// `(1, 1)`, until `f` returns `false`.
    fn for_each_point(&self, mut f: impl FnMut(f64, f64) -> bool) {
        let ok = self.ok_pixels as f32;
        let regions = self.regions as f64;
        let (mut fp, mut overlap) = (0u64, 0.0f64);
        let n = self.pairs.len();
        for (i, &(s, tag)) in self.pairs.iter().enumerate() {
            if tag == 0 {
                fp += 1;
            } else {
                overlap += self.inverse_size[tag as usize];
            }
            if i + 1 == n || self.pairs[i + 1].0 != s {
                // MVTec's code casts the false-positive counts to float32 and divides in float32.
                let fpr = ((fp as f32) / ok) as f64;
                if !f(fpr.min(1.0), (overlap / regions).min(1.0)) {
                    return;
                }
            }
        }
    }
}

/// The PRO curve of `maps` against `masks` (see [`ProCurve`]).
///
/// `maps[i]` and `masks[i]` are `[height, width]` row-major arrays of the same image; a mask is
/// `true` on defect pixels (a defect-free image has an all-`false` mask). Each 8-connected defect
/// region of each mask counts equally.
///
/// # Errors
/// As [`aupro`], without the `max_fpr` check.
pub fn pro_curve<S: Score, M: AsRef<[S]>, K: AsRef<[bool]>>(
    maps: &[M],
    masks: &[K],
    height: usize,
    width: usize,
) -> Result<ProCurve> {
    let r = regions(maps, masks, height, width)?;
    let mut fpr = vec![0.0];
    let mut pro = vec![0.0];
    r.for_each_point(|x, y| {
        fpr.push(x);
        pro.push(y);
        true
    });
    fpr.push(1.0);
    pro.push(1.0);
    Ok(ProCurve { fpr, pro })
}

/// Area under the PRO curve from FPR 0 to `max_fpr`, divided by `max_fpr`: MVTec AD's AUPRO
/// (Bergmann et al., "The MVTec Anomaly Detection Dataset", IJCV 2021), computed exactly as its
/// evaluation code (`compute_pro` then `trapezoid(fprs, pros, x_max=max_fpr) / max_fpr`).
///
/// For each distinct score threshold (decreasing): the PRO is the mean, over every 8-connected
/// defect region of every mask, of the fraction of the region's pixels with `score >= threshold`;
/// the FPR is the fraction of all defect-free pixels with `score >= threshold`. The curve is
/// integrated by the trapezoid rule, its value at `max_fpr` linearly interpolated. Use
/// [`AUPRO_MAX_FPR`] (0.3) for the protocol's number.
///
/// The pixels are sorted once (`O(n log n)`); the curve is streamed, not stored. Like MVTec's
/// code, the FPR is computed in `f32` (exact as long as there are fewer than 2^24 defect-free
/// pixels).
///
/// # Errors
/// [`Error::Empty`] (no maps, or only empty ones), [`Error::LengthMismatch`] (number of masks),
/// [`Error::ShapeMismatch`] (a map or mask is not `height * width` long),
/// [`Error::NonFiniteScore`], [`Error::OneClass`] (no defect pixel, or no defect-free pixel),
/// [`Error::InvalidParameter`] (`height` or `width` 0, or `max_fpr` outside `(0, 1]`).
///
/// # Example
/// ```
/// use dmad_metrics::{aupro, AUPRO_MAX_FPR};
/// // One 2x3 image whose defect (the last column) scores highest: a perfect map.
/// let map = [0.1f32, 0.2, 0.9, 0.0, 0.3, 0.8];
/// let mask = [false, false, true, false, false, true];
/// let score = aupro(&[map], &[mask], 2, 3, AUPRO_MAX_FPR)?;
/// assert!((score - 1.0).abs() < 1e-6);
/// # Ok::<(), dmad_metrics::Error>(())
/// ```
pub fn aupro<S: Score, M: AsRef<[S]>, K: AsRef<[bool]>>(
    maps: &[M],
    masks: &[K],
    height: usize,
    width: usize,
    max_fpr: f64,
) -> Result<f64> {
    if !(max_fpr > 0.0 && max_fpr <= 1.0) {
        return Err(Error::InvalidParameter {
            name: "max_fpr",
            value: max_fpr,
            reason: "must lie in (0, 1]",
        });
    }
    let r = regions(maps, masks, height, width)?;
    // MVTec's `trapezoid(x, y, x_max)`: the trapezoid rule over the points with x <= x_max, plus,
    // when x_max is not itself a point, the slice from the last such point to x_max with y
    // interpolated linearly towards the next point.
    let mut area = 0.0;
    let mut prev = (0.0f64, 0.0f64);
    let mut hit = false;
    let mut next_after: Option<(f64, f64)> = None;
    r.for_each_point(|x, y| {
        if x <= max_fpr {
            hit |= x == max_fpr;
            area += 0.5 * (y + prev.1) * (x - prev.0);
            prev = (x, y);
            true
        } else {
            next_after = Some((x, y));
            false
        }
    });
    let (x, y) = match next_after {
        Some(p) => p,
        None => {
            // The closing point (1, 1).
            if 1.0 <= max_fpr {
                hit |= max_fpr == 1.0;
                area += 0.5 * (1.0 + prev.1) * (1.0 - prev.0);
                prev = (1.0, 1.0);
            }
            (1.0, 1.0)
        }
    };
    let mut correction = 0.0;
    if !hit && x > max_fpr {
        let (px, py) = prev;
        let y_at = py + (y - py) * (max_fpr - px) / (x - px);
        correction = 0.5 * (y_at + py) * (max_fpr - px);
    }
    Ok((area + correction) / max_fpr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_eight_connected() {
        // Two diagonal pixels touch (one region); the far pixel is another.
        #[rustfmt::skip]
        let mask = [
            true, false, false, false,
            false, true, false, true,
            false, false, false, false,
        ];
        let mut tags = [0u32; 12];
        let sizes = label_components(&mask, 3, 4, 1, &mut tags);
        assert_eq!(sizes, vec![2, 1]);
        assert_eq!(tags[0], tags[5]);
        assert_ne!(tags[0], tags[7]);
    }

    #[test]
    fn components_do_not_wrap_around_rows() {
        // The end of row 0 and the start of row 1 are adjacent in memory, not in the image.
        let mask = [false, false, true, true, false, false];
        let mut tags = [0u32; 6];
        assert_eq!(label_components(&mask, 2, 3, 1, &mut tags), vec![1, 1]);
    }

    /// Slow oracle in plain f64: evaluate the PRO and FPR at every distinct threshold directly.
    fn aupro_oracle(maps: &[Vec<f64>], masks: &[Vec<bool>], h: usize, w: usize, lim: f64) -> f64 {
        let mut regions: Vec<Vec<f64>> = Vec::new();
        let mut ok = Vec::new();
        for (map, mask) in maps.iter().zip(masks) {
            let mut tags = vec![0u32; h * w];
            let sizes = label_components(mask, h, w, 1, &mut tags);
            for k in 0..sizes.len() {
                regions.push(
                    (0..h * w)
                        .filter(|&p| tags[p] == k as u32 + 1)
                        .map(|p| map[p])
                        .collect(),
                );
            }
            ok.extend((0..h * w).filter(|&p| tags[p] == 0).map(|p| map[p]));
        }
        let mut th: Vec<f64> = maps.iter().flatten().copied().collect();
        th.sort_by(|a, b| b.total_cmp(a));
        th.dedup();
        let mut pts = vec![(0.0, 0.0)];
        for &t in &th {
            let fpr = ok.iter().filter(|&&s| s >= t).count() as f64 / ok.len() as f64;
            let pro = regions
                .iter()
                .map(|r| r.iter().filter(|&&s| s >= t).count() as f64 / r.len() as f64)
                .sum::<f64>()
                / regions.len() as f64;
            pts.push((fpr, pro));
        }
        pts.push((1.0, 1.0));
        let mut area = 0.0;
        for win in pts.windows(2) {
            let ((x0, y0), (x1, y1)) = (win[0], win[1]);
            if x1 <= lim {
                area += 0.5 * (y0 + y1) * (x1 - x0);
            } else if x0 < lim {
                let y = y0 + (y1 - y0) * (lim - x0) / (x1 - x0);
                area += 0.5 * (y0 + y) * (lim - x0);
            }
        }
        area / lim
    }

    #[test]
    fn aupro_matches_slow_oracle_with_ties() {
        let (h, w) = (9, 7);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut maps = Vec::new();
        let mut masks = Vec::new();
        for img in 0..5 {
            let mask: Vec<bool> = (0..h * w)
                .map(|_| img % 2 == 1 && next() % 4 == 0)
                .collect();
            let map: Vec<f64> = mask
                .iter()
                .map(|&m| (next() % 6) as f64 + if m { 2.0 } else { 0.0 })
                .collect();
            maps.push(map);
            masks.push(mask);
        }
        for lim in [0.05, 0.3, 0.5, 1.0] {
            let got = aupro(&maps, &masks, h, w, lim).unwrap();
            let want = aupro_oracle(&maps, &masks, h, w, lim);
            // The fast path rounds the FPR to f32 as MVTec's code does.
            assert!((got - want).abs() < 1e-6, "lim {lim}: {got} vs {want}");
        }
    }
}
