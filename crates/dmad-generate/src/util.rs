//! Helpers shared by the injectors: seeded generators, strength checks and the rule that makes
//! masks exact.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

/// The generator of sample `index` of a batch injected with `seed`: independent streams per
/// sample, so a sample's anomaly does not depend on the batch size.
pub(crate) fn sample_rng(seed: u64, index: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Checks a strength in `(0, 1]`.
pub(crate) fn check_strength(strength: f64) -> Result<()> {
    if !(strength > 0.0 && strength <= 1.0) {
        return Err(Error::config(
            "strength",
            format!("must be in (0, 1], got {strength}"),
        ));
    }
    Ok(())
}

/// Makes the change of `new` against `orig` exact on `region`: outside the region `new` is
/// reset to `orig`; inside it, an element that moved by less than `min_change` is moved to
/// `orig +- min_change`, away from whichever bound of `[lo, hi]` is nearer. Afterwards the
/// changed elements are exactly those of the region.
pub(crate) fn enforce_change(
    orig: &[f32],
    new: &mut [f32],
    region: impl Fn(usize) -> bool,
    min_change: f32,
    lo: f32,
    hi: f32,
) {
    for (i, (o, n)) in orig.iter().zip(new.iter_mut()).enumerate() {
        if !region(i) {
            *n = *o;
            continue;
        }
        if !n.is_finite() {
            *n = *o;
        }
        *n = n.clamp(lo, hi);
        if (*n - *o).abs() < min_change {
            let up = *o + min_change;
            *n = if up <= hi && (hi - *o) >= (*o - lo) {
                up
            } else {
                *o - min_change
            };
            // f32 rounding can land just short of the step: widen it once.
            if (*n - *o).abs() < min_change {
                *n = if *n > *o {
                    *o + 2.0 * min_change
                } else {
                    *o - 2.0 * min_change
                };
            }
        }
    }
}

/// Linear interpolation of `x` at the fractional index `pos`, clamped to the ends.
pub(crate) fn interp(x: &[f32], pos: f64) -> f32 {
    let n = x.len();
    if pos <= 0.0 {
        return x[0];
    }
    if pos >= (n - 1) as f64 {
        return x[n - 1];
    }
    let i = pos.floor() as usize;
    let w = (pos - i as f64) as f32;
    x[i] * (1.0 - w) + x[i + 1] * w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforce_change_is_exact() {
        let orig = [0.0f32, 1.0, -1.0, 0.5, 0.2];
        let mut new = [0.0f32, 1.0, -1.0, 0.9, 0.7];
        enforce_change(&orig, &mut new, |i| i < 4, 0.01, -1.0, 1.0);
        for i in 0..4 {
            assert!(
                (new[i] - orig[i]).abs() >= 0.01,
                "{i}: {} vs {}",
                new[i],
                orig[i]
            );
            assert!((-1.0..=1.0).contains(&new[i]));
        }
        assert_eq!(new[4], orig[4]);
        assert!(check_strength(0.0).is_err() && check_strength(1.5).is_err());
        assert!(check_strength(f64::NAN).is_err() && check_strength(1.0).is_ok());
    }
}
