//! The dominant period of a series, to choose window lengths from training data alone.

/// The fallback of [`find_length`] when the series shows no usable period (TSB-AD's).
pub const DEFAULT_LENGTH: usize = 125;

/// Estimates a series' dominant period as TSB-AD's `find_length_rank` (rank 1) does: the
/// autocorrelation (statsmodels' `acf`, biased, up to lag 400) of at most the first 20 000
/// points, its strict local maxima from lag 3 on, and the lag of the highest one. A peak less
/// than 3 lags past lag 3 or more than 300 past it, a series too short for any peak, or a
/// constant one gives [`DEFAULT_LENGTH`]. Non-finite points are skipped (the mean and
/// products use the finite ones).
///
/// Use it on the train part only, so the window never depends on test labels.
///
/// ```
/// let x: Vec<f32> = (0..2000).map(|i| (i as f32 * std::f32::consts::TAU / 50.0).sin()).collect();
/// assert_eq!(dmad_data::find_length(&x), 50);
/// ```
pub fn find_length(x: &[f32]) -> usize {
    const BASE: usize = 3;
    const MAX_LAG: usize = 400;
    let x = &x[..x.len().min(20_000)];
    let finite: Vec<f64> = x
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| v as f64)
        .collect();
    if finite.len() < 2 * BASE {
        return DEFAULT_LENGTH;
    }
    let mean = finite.iter().sum::<f64>() / finite.len() as f64;
    let c: Vec<f64> = x
        .iter()
        .map(|&v| if v.is_finite() { v as f64 - mean } else { 0.0 })
        .collect();
    let var: f64 = c.iter().map(|v| v * v).sum();
    if var <= 0.0 {
        return DEFAULT_LENGTH;
    }
    let lags = MAX_LAG.min(c.len() - 1);
    let acf: Vec<f64> = (BASE..=lags)
        .map(|k| {
            c[..c.len() - k]
                .iter()
                .zip(&c[k..])
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / var
        })
        .collect();
    let best = (1..acf.len().saturating_sub(1))
        .filter(|&i| acf[i] > acf[i - 1] && acf[i] > acf[i + 1])
        .max_by(|&a, &b| acf[a].total_cmp(&acf[b]));
    match best {
        Some(i) if (3..=300).contains(&i) => i + BASE,
        _ => DEFAULT_LENGTH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_of_a_noisy_sine_is_found() {
        let mut state = 7u64;
        let mut noise = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let x: Vec<f32> = (0..3000)
            .map(|i| (i as f32 * std::f32::consts::TAU / 37.0).sin() + 0.2 * noise())
            .collect();
        assert_eq!(find_length(&x), 37);
    }

    #[test]
    fn no_period_gives_the_default() {
        assert_eq!(find_length(&[1.0; 500]), DEFAULT_LENGTH);
        assert_eq!(find_length(&[1.0, 2.0]), DEFAULT_LENGTH);
        let ramp: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        assert_eq!(find_length(&ramp), DEFAULT_LENGTH);
        // A period longer than 303 steps is out of range.
        let slow: Vec<f32> = (0..5000)
            .map(|i| (i as f32 * std::f32::consts::TAU / 350.0).sin())
            .collect();
        assert_eq!(find_length(&slow), DEFAULT_LENGTH);
    }
}
