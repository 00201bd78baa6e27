//! The datasets of `data/PROTOCOL.md` that `dmad bench` runs: where each is read from and how
//! many evaluation units it has.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dmad::prepare::SeriesSource;
use dmad::Modality;

/// How a dataset is read.
#[derive(Debug, Clone)]
pub(super) enum Source {
    Table { csv: PathBuf, split: PathBuf },
    Series(SeriesSource),
    UcrClass(PathBuf),
    Mvtec(PathBuf),
    Mnist { images: PathBuf, labels: PathBuf },
    Audio(PathBuf),
}

/// One dataset of the protocol.
#[derive(Debug, Clone)]
pub(super) struct Dataset {
    /// As `benches/peers/classical.py` names it.
    pub(super) id: String,
    /// The report's group: tables, series, images, audio.
    pub(super) group: &'static str,
    pub(super) source: Source,
}

impl Dataset {
    pub(super) fn modality(&self) -> Modality {
        match self.source {
            Source::Table { .. } => Modality::Table,
            Source::Series(_) | Source::UcrClass(_) => Modality::Series,
            Source::Mvtec(_) | Source::Mnist { .. } => Modality::Image,
            Source::Audio(_) => Modality::Audio,
        }
    }

    /// Evaluation units whose metrics are averaged: split seeds of a table, MNIST's digits.
    pub(super) fn units(&self) -> usize {
        match self.source {
            Source::Table { .. } => 5,
            Source::Mnist { .. } => 10,
            _ => 1,
        }
    }
}

pub(super) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Finds every dataset of PROTOCOL.md under `data`.
pub(super) fn datasets(data: &Path) -> Result<Vec<Dataset>> {
    let mut out = Vec::new();
    let tab = data.join("tabular");
    if tab.is_dir() {
        for p in sorted_entries(&tab)? {
            if p.extension().is_some_and(|e| e == "csv") {
                let name = stem(&p);
                let split = tab.join("splits").join(format!("{name}.json"));
                if split.is_file() {
                    out.push(Dataset {
                        id: format!("tabular/{name}"),
                        group: "tables",
                        source: Source::Table { csv: p, split },
                    });
                }
            }
        }
    }
    let ts = data.join("timeseries");
    let ucr_a = ts.join("ucr-anomaly");
    if ucr_a.is_dir() {
        for p in sorted_entries(&ucr_a)? {
            if p.extension().is_some_and(|e| e == "txt") {
                out.push(Dataset {
                    id: format!("timeseries/ucr-anomaly/{}", stem(&p)),
                    group: "series",
                    source: Source::Series(SeriesSource::UcrAnomaly(p)),
                });
            }
        }
    }
    let nab = ts.join("nab");
    if nab.join("data").is_dir() {
        for cat in sorted_entries(&nab.join("data"))? {
            if !cat.is_dir() {
                continue;
            }
            for p in sorted_entries(&cat)? {
                if p.extension().is_some_and(|e| e == "csv") {
                    let key = format!(
                        "{}/{}",
                        cat.file_name().unwrap_or_default().to_string_lossy(),
                        p.file_name().unwrap_or_default().to_string_lossy()
                    );
                    out.push(Dataset {
                        id: format!("timeseries/nab/{key}"),
                        group: "series",
                        source: Source::Series(SeriesSource::Nab(nab.clone(), key)),
                    });
                }
            }
        }
    }
    let lc = ts.join("labelled-csv");
    if lc.is_dir() {
        for p in sorted_entries(&lc)? {
            if p.extension().is_some_and(|e| e == "csv") {
                out.push(Dataset {
                    id: format!("timeseries/{}", stem(&p)),
                    group: "series",
                    source: Source::Series(SeriesSource::LabelledCsv(p)),
                });
            }
        }
    }
    let gt = ts.join("gutentag");
    if gt.is_dir() {
        for p in sorted_entries(&gt)? {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if let Some(base) = name.strip_suffix("_TEST.csv") {
                out.push(Dataset {
                    id: format!("timeseries/gutentag/{base}"),
                    group: "series",
                    source: Source::Series(SeriesSource::Gutentag(gt.clone(), base.to_string())),
                });
            }
        }
    }
    let ucr = ts.join("ucr");
    if ucr.is_dir() {
        for p in sorted_entries(&ucr)? {
            if p.is_dir() {
                out.push(Dataset {
                    id: format!(
                        "timeseries/ucr/{}",
                        p.file_name().unwrap_or_default().to_string_lossy()
                    ),
                    group: "series",
                    source: Source::UcrClass(p),
                });
            }
        }
    }
    let img = data.join("images");
    if img.join("elpv-mono").is_dir() {
        out.push(Dataset {
            id: "images/elpv-mono".into(),
            group: "images",
            source: Source::Mvtec(img.join("elpv-mono")),
        });
    }
    let mnist = img.join("mnist");
    if mnist.is_dir() {
        out.push(Dataset {
            id: "images/mnist".into(),
            group: "images",
            source: Source::Mnist {
                images: mnist.join("images_u8_N28x28.npy"),
                labels: mnist.join("labels_u8.npy"),
            },
        });
    }
    let tex = img.join("textures-ad");
    if tex.is_dir() {
        for p in sorted_entries(&tex)? {
            if p.join("train").is_dir() {
                out.push(Dataset {
                    id: format!(
                        "images/textures-ad/{}",
                        p.file_name().unwrap_or_default().to_string_lossy()
                    ),
                    group: "images",
                    source: Source::Mvtec(p),
                });
            }
        }
    }
    let audio = data.join("audio");
    if audio.is_dir() {
        for p in sorted_entries(&audio)? {
            if p.join("train").is_dir() && p.join("test").is_dir() {
                out.push(Dataset {
                    id: format!(
                        "audio/{}",
                        p.file_name().unwrap_or_default().to_string_lossy()
                    ),
                    group: "audio",
                    source: Source::Audio(p),
                });
            }
        }
    }
    Ok(out)
}
