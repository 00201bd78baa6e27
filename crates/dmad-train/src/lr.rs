//! Learning-rate schedules.

/// Learning rate at optimisation step `step` (0-based) for linear warm-up followed by cosine
/// decay to zero at `total_steps`, as diffusers' `get_cosine_schedule_with_warmup`.
///
/// During warm-up the rate rises linearly from 0 (at step 0) to `base`; afterwards it follows
/// `base * 0.5 * (1 + cos(pi * progress))`, with `progress` going from 0 to 1.
pub fn cosine_with_warmup(base: f64, step: usize, warmup_steps: usize, total_steps: usize) -> f64 {
    if step < warmup_steps {
        return base * step as f64 / warmup_steps.max(1) as f64;
    }
    let span = total_steps.saturating_sub(warmup_steps).max(1) as f64;
    let progress = ((step - warmup_steps) as f64 / span).min(1.0);
    base * (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_then_cosine() {
        assert_eq!(cosine_with_warmup(1.0, 0, 10, 110), 0.0);
        assert!((cosine_with_warmup(1.0, 5, 10, 110) - 0.5).abs() < 1e-15);
        assert!((cosine_with_warmup(1.0, 10, 10, 110) - 1.0).abs() < 1e-15);
        assert!((cosine_with_warmup(1.0, 60, 10, 110) - 0.5).abs() < 1e-12);
        assert!(cosine_with_warmup(1.0, 110, 10, 110).abs() < 1e-15);
        assert!(cosine_with_warmup(1.0, 500, 10, 110).abs() < 1e-15);
        // No warm-up: starts at the base rate.
        assert_eq!(cosine_with_warmup(2.0, 0, 0, 100), 2.0);
    }
}
