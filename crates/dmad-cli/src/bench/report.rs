//! The benchmark's report: `docs/RESULTS.md` written from the records, the classical peers
//! and the hand-written notes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use dmad::Modality;
use serde_json::Value;

use super::*;

/// The report's mark for an empty cell: `n/a` where dmad's variant `method` does not exist
/// for `modality`, `-` where it is not measured yet.
pub(super) fn missing(method: &str, modality: Option<Modality>) -> &'static str {
    let applies = Variant::ALL
        .iter()
        .find(|v| v.label() == method)
        .zip(modality)
        .is_none_or(|(v, m)| v.applies(m));
    if applies {
        " - |"
    } else {
        " n/a |"
    }
}

/// The modality of a report group.
pub(super) fn group_modality(group: &str) -> Option<Modality> {
    match group {
        "tables" => Some(Modality::Table),
        "series" => Some(Modality::Series),
        "images" => Some(Modality::Image),
        "audio" => Some(Modality::Audio),
        _ => None,
    }
}

/// A cell of the report: one method's metrics on one dataset.
#[derive(Debug, Clone, Default)]
struct Cell {
    auroc: f64,
    auprc: f64,
    extra: BTreeMap<&'static str, f64>,
    wall_s: f64,
}

/// Cells keyed by (dataset id, method).
type Cells = BTreeMap<(String, String), Cell>;

fn classical_cells(path: &Path) -> Result<(Cells, Option<Value>)> {
    let mut out = BTreeMap::new();
    if !path.is_file() {
        return Ok((out, None));
    }
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{} is not valid JSON", path.display()))?;
    for r in v["records"].as_array().into_iter().flatten() {
        let (Some(ds), Some(method)) = (r["dataset"].as_str(), r["method"].as_str()) else {
            continue;
        };
        let m = &r["metrics"];
        let mut cell = Cell {
            auroc: m["auroc"].as_f64().unwrap_or(f64::NAN),
            auprc: m["auprc"].as_f64().unwrap_or(f64::NAN),
            wall_s: r["wall_s"].as_f64().unwrap_or(f64::NAN),
            ..Cell::default()
        };
        for (key, name) in [
            ("vus_pr", "VUS-PR"),
            ("top1_hit", "top-1"),
            ("pauc_0.1", "pAUC"),
            ("f1_max", "F1-max"),
        ] {
            if let Some(x) = m[key].as_f64() {
                cell.extra.insert(name, x);
            }
        }
        out.insert((ds.to_string(), method.to_string()), cell);
    }
    Ok((out, Some(v)))
}

pub(super) fn fmt2(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "-".into()
    }
}

/// Rebuilds the Markdown report from every record and the classical peers.
pub(super) fn write_report(args: &BenchArgs, all: &[Dataset]) -> Result<()> {
    let (mut cells, classical) = classical_cells(&args.classical)?;
    let peers = ["IForest", "KNN", "LOF"];
    let mut records = Vec::new();
    if args.results.is_dir() {
        for p in sorted_entries(&args.results)? {
            if p.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()))?;
                let r: Record = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a benchmark record", p.display()))?;
                records.push(r);
            }
        }
    }
    for r in records.iter().filter(|r| r.metrics.fidelity.is_none()) {
        let m = &r.metrics;
        let mut extra = BTreeMap::new();
        extra.insert("F1-max", m.f1_max);
        for (name, v) in [
            ("VUS-PR", m.vus_pr),
            ("top-1", m.ucr_top1_hit),
            ("pAUC", m.pauc_01),
            ("px-AUROC", m.pixel_auroc),
            ("AUPRO", m.aupro_03),
            ("F1@thr", m.f1_at_threshold),
        ] {
            if let Some(v) = v {
                extra.insert(name, v);
            }
        }
        cells.insert(
            (r.dataset.clone(), r.method.clone()),
            Cell {
                auroc: m.auroc,
                auprc: m.auprc,
                extra,
                wall_s: r.wall_s,
            },
        );
    }
    let methods: Vec<&str> = peers
        .iter()
        .copied()
        .chain(
            Variant::ALL
                .iter()
                .filter(|v| v.detects())
                .map(|v| v.label()),
        )
        .collect();

    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Results\n\n\
         Every figure here is measured on the splits and with the metrics of \
         `data/PROTOCOL.md` (the benchmark data lives outside the repository; see \
         `data/README.md`). dmad's figures come from `dmad bench` (one JSON record per \
         dataset and variant in `docs/results/dmad/`, with the exact configuration, wall time \
         and command); the classical peers from `benches/peers/classical.py` \
         (`docs/results/classical.json`). Regenerate everything with\n\n\
         ```bash\n\
         DMAD_DATA=../shared/data cargo run --release -p dmad-cli -- bench\n\
         DMAD_DATA=../shared/data benches/peers/run_classical.sh\n\
         ```\n\n\
         `-` marks a cell not measured yet (the benchmark is cached per cell and can be run \
         in pieces with `--only`, `--variants` and `--minutes`); `n/a` a variant that does \
         not exist for the modality (tables have no U-Net modules to remove; the perceptual \
         term needs images or scalograms).\n"
    );
    let budget_note: Vec<String> = {
        let mut b: Vec<String> = records
            .iter()
            .map(|r| format!("{} (budget {})", r.command, r.budget))
            .collect();
        b.sort();
        b.dedup();
        b
    };
    if !budget_note.is_empty() {
        let _ = writeln!(md, "dmad commands behind the figures below:\n");
        for b in &budget_note {
            let _ = writeln!(md, "- `{b}`");
        }
        let _ = writeln!(md);
    }

    // Summary: mean AUROC per group (UCR classification sets count once, as their mean).
    let _ = writeln!(
        md,
        "## Mean AUROC per modality\n\n\
         The UCR classification sets count as one entry (their mean), as MNIST's ten digits \
         do, so that each modality's mean weighs its data sources alike. A mean is given only \
         where the method has every dataset of the modality; otherwise the count of datasets \
         measured is shown.\n"
    );
    let groups = ["tables", "series", "images", "audio"];
    let _ = writeln!(md, "| modality | {} |", methods.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(methods.len()));
    for g in groups {
        let entries = group_entries(all, g);
        if entries.is_empty() {
            continue;
        }
        let mut row = format!("| {g} ({} entries) |", entries.len());
        for m in &methods {
            let vals: Vec<f64> = entries
                .iter()
                .filter_map(|ids| {
                    let v: Vec<f64> = ids
                        .iter()
                        .filter_map(|id| cells.get(&(id.clone(), m.to_string())).map(|c| c.auroc))
                        .collect();
                    (v.len() == ids.len()).then(|| v.iter().sum::<f64>() / v.len() as f64)
                })
                .collect();
            if vals.len() == entries.len() {
                let _ = write!(
                    row,
                    " {} |",
                    fmt2(vals.iter().sum::<f64>() / vals.len() as f64)
                );
            } else if vals.is_empty() {
                row.push_str(missing(m, group_modality(g)));
            } else {
                let _ = write!(row, " {}/{} |", vals.len(), entries.len());
            }
        }
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(md);

    let audio_peers = args.classical.with_file_name("audio_dcase.json");
    feature_space::write_section(&mut md, &records, &audio_peers);
    pixel::write_section(&mut md, &records);
    let series_peers = args.classical.with_file_name("series_peers.json");
    series_peers::write_section(&mut md, &args.classical, &series_peers);

    // Hand-written reading of the figures, kept beside the records.
    let notes = args.results.parent().map(|p| p.join("notes.md"));
    if let Some(text) = notes.and_then(|p| std::fs::read_to_string(p).ok()) {
        let _ = writeln!(md, "{}\n", text.trim_end());
    }

    // Issue #10: the default settings against those calibrated on generated anomalies.
    let by_key: BTreeMap<(&str, &str), &Record> = records
        .iter()
        .map(|r| ((r.dataset.as_str(), r.variant.as_str()), r))
        .collect();
    let calibrated: Vec<&Record> = records
        .iter()
        .filter(|r| r.variant == "calibrated" || r.variant == "combined-calibrated")
        .collect();
    if !calibrated.is_empty() {
        let _ = writeln!(
            md,
            "## Calibration on generated anomalies\n\n\
             `full` scores from strength {STRENGTH} (tables 0.2) with the threshold at the 0.99 quantile of \
             held-out normal scores; `calibrated` is the same model fitted on 4/5 of the normal \
             training samples (an image held out with its flips), whose start strength (from {CAL:?}) and F1-optimal threshold are \
             chosen on anomalies that `dmad::generate` made from the held-out fifth (strength \
             {GEN}, every kind of the modality mixed). No real anomaly is used. F1@thr is the F1 \
             of the calibrated decision on the real test set; flagged is the share of the test \
             set it flags, and F1 flag-all the F1 of flagging everything (where recorded): an F1 \
             near the latter comes from a threshold that flags nearly everything. Rows marked \
             `(combined)` compare the `combined` variant (the method's score, lambda {LAMBDA} \
             set by hand) with `combined-calibrated`, which also chooses lambda, the weight \
             of the reconstruction term, on the generated anomalies.\n",
            STRENGTH = 0.1,
            CAL = CALIBRATION_STRENGTHS,
            GEN = GENERATED_STRENGTH,
            LAMBDA = COMBINED_LAMBDA,
        );
        let _ = writeln!(
            md,
            "| dataset | full AUROC | full F1@thr | calibrated AUROC | calibrated F1@thr | \
             chosen strength | chosen lambda | AUROC on generated | flagged (full / calibrated) | \
             F1 flag-all |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        for r in calibrated {
            let combined = r.variant == "combined-calibrated";
            let base = if combined { "combined" } else { "full" };
            let full = by_key.get(&(r.dataset.as_str(), base));
            let opt = |x: Option<f64>| x.map_or("-".to_string(), fmt2);
            let _ = writeln!(
                md,
                "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
                short_id(&r.dataset),
                if combined { " (combined)" } else { "" },
                full.map_or("-".into(), |f| fmt2(f.metrics.auroc)),
                opt(full.and_then(|f| f.metrics.f1_at_threshold)),
                fmt2(r.metrics.auroc),
                opt(r.metrics.f1_at_threshold),
                opt(r.metrics.calibrated_strength),
                opt(r.metrics.calibrated_lambda),
                opt(r.metrics.generated_auroc),
                opt(full.and_then(|f| f.metrics.flagged)),
                opt(r.metrics.flagged),
                opt(r
                    .metrics
                    .f1_flag_all
                    .or(full.and_then(|f| f.metrics.f1_flag_all))),
            );
        }
        let _ = writeln!(md);
    }
    write_fidelity(&mut md, &records);

    for g in groups {
        let ids: Vec<&Dataset> = all.iter().filter(|d| d.group == g).collect();
        if ids.is_empty() {
            continue;
        }
        let _ = writeln!(md, "## {g}: AUROC / AUPRC\n");
        let _ = writeln!(md, "| dataset | {} |", methods.join(" | "));
        let _ = writeln!(md, "|---|{}", "---|".repeat(methods.len()));
        for d in &ids {
            let mut row = format!("| {} |", short_id(&d.id));
            for m in &methods {
                match cells.get(&(d.id.clone(), m.to_string())) {
                    Some(c) => {
                        let _ = write!(row, " {} / {} |", fmt2(c.auroc), fmt2(c.auprc));
                    }
                    None => row.push_str(missing(m, Some(d.modality()))),
                }
            }
            let _ = writeln!(md, "{row}");
        }
        let _ = writeln!(md);
        let extras: &[&str] = match g {
            "series" => &["VUS-PR", "top-1", "F1-max"],
            "images" => &["px-AUROC", "AUPRO", "F1-max"],
            "audio" => &["pAUC", "F1-max"],
            _ => &["F1-max"],
        };
        let _ = writeln!(md, "{g}: {} (where measured)\n", extras.join(" / "));
        let _ = writeln!(md, "| dataset | {} |", methods.join(" | "));
        let _ = writeln!(md, "|---|{}", "---|".repeat(methods.len()));
        for d in &ids {
            let mut row = format!("| {} |", short_id(&d.id));
            for m in &methods {
                match cells.get(&(d.id.clone(), m.to_string())) {
                    Some(c) if extras.iter().any(|e| c.extra.contains_key(e)) => {
                        let v: Vec<String> = extras
                            .iter()
                            .map(|e| c.extra.get(e).map_or("-".into(), |x| fmt2(*x)))
                            .collect();
                        let _ = write!(row, " {} |", v.join(" / "));
                    }
                    _ => row.push_str(missing(m, Some(d.modality()))),
                }
            }
            let _ = writeln!(md, "{row}");
        }
        let _ = writeln!(md);
    }

    // Per-kind AUROC (audio kinds, texture defects) of dmad's records.
    let kinds: Vec<&Record> = records
        .iter()
        .filter(|r| !r.metrics.auroc_per_kind.is_empty())
        .collect();
    if !kinds.is_empty() {
        let _ = writeln!(
            md,
            "## AUROC per anomaly kind (dmad)\n\n\
             Normal test samples against the samples of one kind (audio: the kinds of \
             `labels.csv`; textures: the defect folders). For analysis only: no method reads \
             the kinds.\n"
        );
        let _ = writeln!(md, "| dataset | variant | AUROC per kind |\n|---|---|---|");
        for r in kinds {
            let v: Vec<String> = r
                .metrics
                .auroc_per_kind
                .iter()
                .map(|(k, x)| format!("{k} {}", fmt2(*x)))
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                short_id(&r.dataset),
                r.method,
                v.join(", ")
            );
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(
        md,
        "## Wall time (s, fit + score, summed over seeds or digits)\n"
    );
    let _ = writeln!(md, "| dataset | {} |", methods.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(methods.len()));
    for d in all {
        let mut row = format!("| {} |", short_id(&d.id));
        let mut any = false;
        for m in &methods {
            match cells.get(&(d.id.clone(), m.to_string())) {
                Some(c) if c.wall_s.is_finite() => {
                    any = true;
                    let _ = write!(row, " {:.1} |", c.wall_s);
                }
                _ => row.push_str(" - |"),
            }
        }
        if any {
            let _ = writeln!(md, "{row}");
        }
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "## How dmad is configured here\n\n\
         Small models that train in minutes on 2 CPU cores (see `base_config` in \
         `crates/dmad-cli/src/bench.rs`; each record holds its full configuration):\n\n\
         - tables: the residual MLP (width 128, depth 3), 1000 steps x budget, batch 64; \
         scored by reconstruction from strength 0.2 with 20-step DDIM; the four U-Net \
         modules do not apply, so only dmad full, DDPM (the same MLP) and DTE are run;\n\
         - series: a 1D U-Net [16, 32, 32] with the four modules, windows of 64 (train and test \
         stride 4, DTE stride 1 as the peers; a point's score is the mean over the windows \
         covering it, as for the peers), \
         300 steps x budget, batch 32; UCR classification rows are resampled to 64 points \
         and z-normalised each;\n\
         - images: a 2D U-Net [16, 32, 32] at 32x32 grey, 200 steps x budget, batch 8, flips \
         as augmentation (not for MNIST); anomaly maps are upsampled to 256x256 and smoothed \
         (Gaussian, sigma {PIXEL_SIGMA} px) for the pixel metrics;\n\
         - audio: the same U-Net on log-power CWT scalograms of the 1 s clips (32 scales of \
         the narrow-band `cmor10-1.0` Morlet, 4 frames of 0.25 s, each clip's maximum at the \
         top; see `benches/peers/audio_representation.py`), 200 steps x budget, batch 8;\n\
         - scoring: partial diffusion to strength 0.1 (images, series, audio) with 20-step \
         DDIM, squared reconstruction error; DTE: the non-parametric estimator (k = 5) on the \
         flattened samples, with no network;\n\
         - the ablations remove one module from the full model (Table III of the method).\n"
    );
    if let Some(v) = classical {
        let _ = writeln!(
            md,
            "## Classical peers\n\n\
             Command: `{}` ({}; generated {}). Features: see \
             `benches/peers/README-classical.md`.\n",
            v["command"].as_str().unwrap_or("?"),
            v["versions"]
                .as_object()
                .map(|o| o
                    .iter()
                    .map(|(k, x)| format!("{k} {}", x.as_str().unwrap_or("?")))
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
            v["generated"].as_str().unwrap_or("?"),
        );
    }
    if let Some(dir) = args.report.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let tmp = args.report.with_extension("md.tmp");
    std::fs::write(&tmp, md).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.report)
        .with_context(|| format!("writing {}", args.report.display()))?;
    Ok(())
}

/// The report's fidelity section: one row per `fidelity` record.
pub(super) fn write_fidelity(md: &mut String, records: &[Record]) {
    let rows: Vec<(&Record, &Fidelity)> = records
        .iter()
        .filter_map(|r| r.metrics.fidelity.as_ref().map(|f| (r, f)))
        .collect();
    let Some((_, first)) = rows.first() else {
        return;
    };
    let _ = writeln!(
        md,
        "## Fidelity of generated normal samples\n\n\
         The `full` model of each dataset (fitted as its `full` cell; tables: split seed 0, \
         MNIST: digit 0) generates up to {FIDELITY_SAMPLES} normal samples ({} DDIM steps, \
         seeded), compared with as many evenly spaced training samples. Two-sample accuracy \
         (C2ST, Lopez-Paz & Oquab): held-out accuracy of a logistic regression / 5-NN told to \
         separate the two sets, on the samples as the detector sees them (standardised rows, \
         normalised windows, images and scalograms in [-1, 1]); 0.5 means not told apart, 1 \
         always told apart. FD: Frechet distance on pooled EfficientNet-Lite0 features (images \
         and scalograms, where `{EFFICIENTNET_ENV}` names the weights). Each figure has its \
         reference: the real normal test samples (windows of the test part with no anomalous \
         point) against the training samples, which the model never saw either. On raw pixels \
         the 5-NN often calls every sample real (generated samples lie far from everything in \
         1024 dimensions); the logistic and feature tests are the informative ones there.\n",
        first.steps
    );
    let _ = writeln!(
        md,
        "| dataset | n gen / ref | C2ST generated vs train | C2ST normal test vs train | \
         FD generated | FD normal test | C2ST on features, generated | budget |\n\
         |---|---|---|---|---|---|---|---|"
    );
    let pair = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{} / {}", fmt2(a), fmt2(b)),
        _ => "-".to_string(),
    };
    let opt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
    for (r, f) in rows {
        let _ = writeln!(
            md,
            "| {} | {} / {} | {} | {} | {} | {} | {} | {} |",
            short_id(&r.dataset),
            f.generated,
            f.reference,
            pair(Some(f.c2st_logistic), Some(f.c2st_knn)),
            pair(f.reference_c2st_logistic, f.reference_c2st_knn),
            opt(f.fd_generated),
            opt(f.fd_reference),
            pair(f.feature_c2st_logistic, f.feature_c2st_knn),
            r.budget,
        );
    }
    let _ = writeln!(md);
}

/// The entries of a group's mean: each dataset alone, except the UCR classification sets,
/// which form one entry.
fn group_entries(all: &[Dataset], group: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut ucr = Vec::new();
    for d in all.iter().filter(|d| d.group == group) {
        if matches!(d.source, Source::UcrClass(_)) {
            ucr.push(d.id.clone());
        } else {
            out.push(vec![d.id.clone()]);
        }
    }
    if !ucr.is_empty() {
        out.push(ucr);
    }
    out
}

pub(super) fn short_id(id: &str) -> String {
    let s = id
        .strip_prefix("timeseries/")
        .or_else(|| id.strip_prefix("tabular/"))
        .or_else(|| id.strip_prefix("images/"))
        .or_else(|| id.strip_prefix("audio/"))
        .unwrap_or(id);
    // UCR anomaly names are long: keep the number and the name.
    match s.strip_prefix("ucr-anomaly/") {
        Some(rest) => {
            let parts: Vec<&str> = rest.split('_').collect();
            if parts.len() > 3 {
                format!("UCR {} {}", parts[0], parts[3])
            } else {
                rest.to_string()
            }
        }
        None => s.to_string(),
    }
}
