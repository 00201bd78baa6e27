//! Every number the command line takes, checked at the boundary against a stated range, and
//! the sizes of what a command will allocate checked before it allocates.
//!
//! The parsers here are clap value parsers: a bad value fails with clap's usage error (exit
//! code 2) and a message that states the range. The numeric arguments also take hyphen values,
//! so that `--steps -1` reaches these checks instead of clap's "unexpected argument".

use std::path::Path;

use anyhow::{bail, Context, Result};
use dmad::{DetectorConfig, Modality, NetworkConfig};

/// The most training steps a fit takes.
pub const MAX_TRAIN_STEPS: usize = 10_000_000;
/// The most sampler steps of `generate`.
pub const MAX_SAMPLER_STEPS: usize = 1_000;
/// The most samples `generate` writes at once.
pub const MAX_GENERATE: usize = 100_000;
/// The largest budget factor of `demo` and `bench`.
pub const MAX_BUDGET: f64 = 100.0;
/// The most memory one command may plan to hold for its samples, in bytes (16 GiB).
pub const MAX_BYTES: u128 = 16 << 30;

/// Parses a whole number in `lo..=hi`; `what` names it in the message.
fn whole(s: &str, lo: u128, hi: u128, what: &str) -> Result<u128, String> {
    let t = s.trim();
    let range = format!("{what} must be a whole number from {lo} to {hi}");
    let v = match t.parse::<i128>() {
        Ok(v) => v,
        Err(_) => match t.parse::<f64>() {
            Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30 => f as i128,
            Ok(f) if !f.is_finite() => return Err(format!("{range}, got {t} (not finite)")),
            Ok(_) if t.parse::<f64>().is_ok_and(|f| f.abs() >= 1e30) => {
                return Err(format!("{range}, got {t}"))
            }
            _ => return Err(format!("{range}, got {t:?} (not a whole number)")),
        },
    };
    if v < lo as i128 || v > hi as i128 {
        return Err(format!("{range}, got {v}"));
    }
    Ok(v as u128)
}

/// Parses a finite number in `(lo, hi]` (`lo` excluded); `what` names it.
fn real(s: &str, lo: f64, hi: f64, lo_open: bool, what: &str) -> Result<f64, String> {
    let t = s.trim();
    let range = format!(
        "{what} must be a number in {}{lo}, {hi}]",
        if lo_open { "(" } else { "[" }
    );
    let v: f64 = t
        .parse()
        .map_err(|_| format!("{range}, got {t:?} (not a number)"))?;
    if !v.is_finite() {
        return Err(format!("{range}, got {t} (not finite)"));
    }
    if (lo_open && v <= lo) || (!lo_open && v < lo) || v > hi {
        return Err(format!("{range}, got {v}"));
    }
    Ok(v)
}

/// `fit --steps`: training steps, 1 to [`MAX_TRAIN_STEPS`].
pub fn train_steps(s: &str) -> Result<usize, String> {
    whole(s, 1, MAX_TRAIN_STEPS as u128, "training steps").map(|v| v as usize)
}

/// `generate --steps`: sampler steps, 1 to [`MAX_SAMPLER_STEPS`].
pub fn sampler_steps(s: &str) -> Result<usize, String> {
    whole(s, 1, MAX_SAMPLER_STEPS as u128, "sampler steps").map(|v| v as usize)
}

/// `generate --n`: samples, 1 to [`MAX_GENERATE`].
pub fn sample_count(s: &str) -> Result<usize, String> {
    whole(s, 1, MAX_GENERATE as u128, "the number of samples").map(|v| v as usize)
}

/// `generate --strength`: in (0, 1].
pub fn strength(s: &str) -> Result<f64, String> {
    real(s, 0.0, 1.0, true, "the strength")
}

/// `demo --budget`, `bench --budget`: a factor in (0, [`MAX_BUDGET`]].
pub fn budget(s: &str) -> Result<f64, String> {
    real(s, 0.0, MAX_BUDGET, true, "the budget factor")
}

/// `bench --minutes`: in (0, 10080] (a week).
pub fn minutes(s: &str) -> Result<f64, String> {
    real(s, 0.0, 10_080.0, true, "the time limit in minutes")
}

/// `--split-index`: 0 to 999.
pub fn split_index(s: &str) -> Result<usize, String> {
    whole(s, 0, 999, "the split index").map(|v| v as usize)
}

/// `--seed`: 0 to 2^64 - 1.
pub fn seed(s: &str) -> Result<u64, String> {
    whole(s, 0, u64::MAX as u128, "the seed").map(|v| v as u64)
}

/// The numbers of one sample of a detector's input (`C * H * W` of an image, `dims * window`
/// of a series window, `scales * frames` of a scalogram, the columns of a table row), from
/// its configuration alone.
pub fn sample_values(cfg: &DetectorConfig) -> u128 {
    let i = &cfg.input;
    match cfg.modality {
        Modality::Image => i.channels as u128 * (i.image_size as u128).pow(2),
        Modality::Audio => i.scales as u128 * i.image_size.max(1) as u128,
        Modality::Series => network_channels(cfg).unwrap_or(1) as u128 * i.window as u128,
        Modality::Table => network_channels(cfg).unwrap_or(1) as u128,
    }
}

/// The channels (U-Nets) or features (MLPs) of the data the detector's network models: a
/// U-Net's output channels (an imputation U-Net takes one more input channel, the mask).
pub fn network_channels(cfg: &DetectorConfig) -> Option<usize> {
    match &cfg.network {
        NetworkConfig::Unet2d(u) | NetworkConfig::Unet1d(u) => Some(u.out_channels),
        NetworkConfig::Mlp(m) => Some(m.in_features),
    }
}

/// Human-readable bytes.
pub fn bytes(b: u128) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Checks that `n` samples of the model `cfg` fit in [`MAX_BYTES`] (counting the sampler's
/// working copies, about 8 of each sample as f32), before anything is allocated.
///
/// # Errors
/// One that names the count, the size it needs and the largest count that fits.
pub fn check_sample_memory(cfg: &DetectorConfig, n: usize, what: &str) -> Result<()> {
    let per = sample_values(cfg).max(1) * 4 * 8;
    let need = per.saturating_mul(n as u128);
    if need > MAX_BYTES {
        bail!(
            "{what} {n} samples of {} values each needs about {} of memory, more than the {} \
             limit: ask for at most {}",
            sample_values(cfg),
            bytes(need),
            bytes(MAX_BYTES),
            MAX_BYTES / per
        );
    }
    Ok(())
}

/// Reads only the detector configuration of a saved model (`config.json`), without building
/// anything: for checks before the model is loaded.
///
/// # Errors
/// One naming the file when it is missing or is not a model's configuration.
pub fn saved_config(model: &Path) -> Result<DetectorConfig> {
    let path = model.join("config.json");
    if !model.is_dir() {
        bail!(
            "{} is not a model directory (one written by `dmad fit --out`, with config.json, \
             weights.safetensors and calibration.json)",
            model.display()
        );
    }
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {}: not a dmad model directory, or an incomplete one",
            path.display()
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let inner = value.get("detector").cloned().unwrap_or(value);
    serde_json::from_value(inner)
        .with_context(|| format!("{} is not a detector configuration", path.display()))
}

/// Checks the sizes of a detector configuration (from `--config` or a saved model) against
/// sane ranges, naming the field and the range.
///
/// # Errors
/// The first field out of its range.
pub fn check_config(cfg: &DetectorConfig, source: &str) -> Result<()> {
    let i = &cfg.input;
    let mut bad = Vec::new();
    let range = |bad: &mut Vec<String>, field: &str, v: u128, lo: u128, hi: u128| {
        if v < lo || v > hi {
            bad.push(format!("{field} is {v}, expected {lo} to {hi}"));
        }
    };
    match cfg.modality {
        Modality::Image => {
            range(&mut bad, "input.image_size", i.image_size as u128, 8, 4096);
            if i.channels != 1 && i.channels != 3 {
                bad.push(format!(
                    "input.channels is {}, expected 1 (grey) or 3 (RGB)",
                    i.channels
                ));
            }
        }
        Modality::Audio => {
            range(
                &mut bad,
                "input.image_size (frames)",
                i.image_size as u128,
                1,
                4096,
            );
            range(&mut bad, "input.scales", i.scales as u128, 1, 1024);
            range(
                &mut bad,
                "input.sample_rate",
                i.sample_rate as u128,
                1_000,
                384_000,
            );
        }
        Modality::Series => {
            range(&mut bad, "input.window", i.window as u128, 2, 100_000);
            range(
                &mut bad,
                "input.train_stride",
                i.train_stride as u128,
                1,
                100_000,
            );
            range(
                &mut bad,
                "input.test_stride",
                i.test_stride as u128,
                1,
                100_000,
            );
        }
        Modality::Table => {}
    }
    range(
        &mut bad,
        "train.steps",
        cfg.train.steps as u128,
        1,
        MAX_TRAIN_STEPS as u128,
    );
    range(
        &mut bad,
        "train.batch_size",
        cfg.train.batch_size as u128,
        1,
        1 << 20,
    );
    range(
        &mut bad,
        "scoring.steps",
        cfg.scoring.steps as u128,
        1,
        10_000,
    );
    range(
        &mut bad,
        "scoring.draws",
        cfg.scoring.draws as u128,
        1,
        1_000,
    );
    range(
        &mut bad,
        "scoring.batch_size",
        cfg.scoring.batch_size as u128,
        1,
        1 << 20,
    );
    if !(cfg.train.learning_rate.is_finite() && cfg.train.learning_rate > 0.0) {
        bad.push(format!(
            "train.learning_rate is {}, expected a positive finite number",
            cfg.train.learning_rate
        ));
    }
    if bad.is_empty() {
        Ok(())
    } else {
        bail!("{source}: {}", bad.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_outside_their_range_say_the_range() {
        assert_eq!(train_steps("20"), Ok(20));
        assert_eq!(train_steps("1e3"), Ok(1000));
        for bad in ["0", "-1", "1e300", "NaN", "inf", "2.5", "x"] {
            let e = train_steps(bad).unwrap_err();
            assert!(e.contains("from 1 to 10000000"), "{bad}: {e}");
        }
        assert!(sample_count("4000000000").unwrap_err().contains("100000"));
        assert!(budget("0").unwrap_err().contains("(0, 100]"));
        assert!(budget("NaN").unwrap_err().contains("not finite"));
        assert_eq!(budget("0.05"), Ok(0.05));
        assert!(strength("1.5").is_err() && strength("0").is_err());
        assert_eq!(seed("18446744073709551615"), Ok(u64::MAX));
        assert!(seed("-1").unwrap_err().contains("from 0"));
    }

    #[test]
    fn memory_is_checked_before_allocating() {
        let cfg = DetectorConfig::for_tables(30);
        assert!(check_sample_memory(&cfg, 1000, "generating").is_ok());
        let e = check_sample_memory(&cfg, 4_000_000_000, "generating").unwrap_err();
        assert!(e.to_string().contains("ask for at most"), "{e}");
        let mut cfg = DetectorConfig::for_images(1);
        cfg.input.image_size = 0;
        assert!(check_config(&cfg, "c.json")
            .unwrap_err()
            .to_string()
            .contains("input.image_size is 0, expected 8 to 4096"));
    }
}
