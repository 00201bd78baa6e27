//! Where the data is and in which layout: an MVTec AD or DCASE folder, a plain folder of
//! images or WAV files, one file, a pattern (`shots/*.png`), a series file or a table. Errors
//! say which layouts were expected and what was found; a model is checked against the data
//! (modality, columns, channels, sample rate) before anything is loaded.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use dmad::{DetectorConfig, Modality};

/// What a command does with the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Fit: the normal training data.
    Fit,
    /// Score or evaluate: the test data.
    Score,
}

/// The data of one command, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An MVTec AD folder (images) or a DCASE folder (audio), labelled by its layout.
    Structured(PathBuf),
    /// Loose files (images or WAV files): a plain folder's, one file or a pattern's matches,
    /// sorted; unlabelled.
    Files(Vec<PathBuf>),
    /// One file: a series or a table.
    File(PathBuf),
}

const IMAGE_EXT: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff"];
const TABLE_EXPECTED: &str =
    "expected one CSV file (optionally .csv.gz; a `label` column is optional), an NPY file of \
     (rows, features) or an NPZ file with arrays X and y";
const SERIES_EXPECTED: &str = "expected one series file: numbers, one time step a line and \
     one column per channel (a header line is optional), or a UCR Anomaly Archive file named \
     NNN_UCR_Anomaly_<name>_<trainEnd>_<begin>_<end>.txt (labelled by its name)";

fn ext(p: &Path) -> String {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name).to_string();
    name.rsplit_once('.')
        .map(|(_, e)| e.to_string())
        .unwrap_or_default()
}

fn is_image(p: &Path) -> bool {
    IMAGE_EXT.contains(&ext(p).as_str())
}

fn is_wav(p: &Path) -> bool {
    ext(p) == "wav"
}

fn is_table(p: &Path) -> bool {
    matches!(ext(p).as_str(), "csv" | "npy" | "npz")
}

/// The kind of data a file holds, by its extension, in words.
fn file_kind(p: &Path) -> &'static str {
    match ext(p).as_str() {
        e if IMAGE_EXT.contains(&e) => "an image file",
        "wav" => "a WAV file",
        "csv" => "a CSV file",
        "npy" => "an NPY file",
        "npz" => "an NPZ file",
        "txt" => "a text file",
        "json" => "a JSON file",
        _ => "a file",
    }
}

/// The files (not folders) directly in `dir` that pass `keep`, sorted.
fn files_in(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && keep(p))
        .collect();
    out.sort();
    out
}

/// What is at `path`, in words, for error messages.
pub fn describe(path: &Path) -> String {
    if !path.exists() {
        return format!("{} does not exist", path.display());
    }
    if path.is_file() {
        return format!("{} is {}", path.display(), file_kind(path));
    }
    let rd: Vec<PathBuf> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    let mut dirs: Vec<String> = rd
        .iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    dirs.sort();
    let files: Vec<&PathBuf> = rd.iter().filter(|p| p.is_file()).collect();
    let count = |f: fn(&Path) -> bool| files.iter().filter(|p| f(p)).count();
    let mut parts = Vec::new();
    for (n, what) in [
        (count(is_image), "image files"),
        (count(is_wav), "WAV files"),
        (count(|p| ext(p) == "csv"), "CSV files"),
        (
            count(|p| matches!(ext(p).as_str(), "npy" | "npz")),
            "NPY/NPZ files",
        ),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let known: usize = files
        .iter()
        .filter(|p| is_image(p) || is_wav(p) || is_table(p))
        .count();
    if files.len() > known {
        parts.push(format!("{} other files", files.len() - known));
    }
    if !dirs.is_empty() {
        let shown: Vec<&str> = dirs.iter().take(6).map(String::as_str).collect();
        parts.push(format!(
            "folders {}{}",
            shown.join(", "),
            if dirs.len() > 6 { ", ..." } else { "" }
        ));
    }
    if parts.is_empty() {
        format!("{} is an empty folder", path.display())
    } else {
        format!("{} holds {}", path.display(), parts.join(", "))
    }
}

/// The matches of a pattern in the last component of `path` (`*` any run of characters, `?`
/// one character), sorted; `None` when `path` has no pattern.
fn glob(path: &Path) -> Option<Vec<PathBuf>> {
    let name = path.file_name()?.to_str()?;
    if !name.contains(['*', '?']) {
        return None;
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let pat: Vec<char> = name.chars().collect();
    Some(files_in(dir, |p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| matches(&pat, &n.chars().collect::<Vec<_>>()))
    }))
}

fn matches(pat: &[char], s: &[char]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some('*'), _) => matches(&pat[1..], s) || (!s.is_empty() && matches(pat, &s[1..])),
        (Some('?'), Some(_)) => matches(&pat[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => matches(&pat[1..], &s[1..]),
        _ => false,
    }
}

fn expected(modality: Modality, purpose: Purpose) -> &'static str {
    match (modality, purpose) {
        (Modality::Image, Purpose::Fit) => {
            "expected PNG, JPEG, BMP or TIFF files, or an MVTec folder with train/good"
        }
        (Modality::Image, Purpose::Score) => {
            "expected PNG, JPEG, BMP or TIFF files, or an MVTec folder with test/"
        }
        (Modality::Audio, Purpose::Fit) => {
            "expected WAV files, or a DCASE folder with train/normal_*.wav"
        }
        (Modality::Audio, Purpose::Score) => "expected WAV files, or a DCASE folder with test/",
        (Modality::Table, _) => TABLE_EXPECTED,
        (Modality::Series, _) => SERIES_EXPECTED,
    }
}

/// Resolves the data at `path` for a `modality` model.
///
/// # Errors
/// One that names the layout expected and what was found at `path`.
pub fn resolve(modality: Modality, path: &Path, purpose: Purpose) -> Result<Source> {
    let want = expected(modality, purpose);
    let loose = |p: &Path| match modality {
        Modality::Image => is_image(p),
        Modality::Audio => is_wav(p),
        _ => false,
    };
    if let Some(found) = glob(path) {
        let files: Vec<PathBuf> = found.into_iter().filter(|p| loose(p)).collect();
        if files.is_empty() || !matches!(modality, Modality::Image | Modality::Audio) {
            bail!("no {modality} data matches {}: {want}", path.display());
        }
        return Ok(Source::Files(files));
    }
    if !path.exists() {
        bail!("{} does not exist: {want}", path.display());
    }
    match modality {
        Modality::Image | Modality::Audio => {
            if path.is_file() {
                if loose(path) {
                    return Ok(Source::Files(vec![path.to_path_buf()]));
                }
                bail!(
                    "{} is {}, not {modality} data: {want}",
                    path.display(),
                    file_kind(path)
                );
            }
            let part = match (modality, purpose) {
                (Modality::Image, Purpose::Fit) => path.join("train").join("good"),
                (_, Purpose::Fit) => path.join("train"),
                (_, Purpose::Score) => path.join("test"),
            };
            if part.is_dir() {
                return Ok(Source::Structured(path.to_path_buf()));
            }
            let files = files_in(path, loose);
            if !files.is_empty() {
                return Ok(Source::Files(files));
            }
            let noun = if modality == Modality::Image {
                "images"
            } else {
                "WAV files"
            };
            bail!(
                "no {noun} found in {}: {want}; {}",
                path.display(),
                describe(path)
            )
        }
        Modality::Table => {
            if path.is_file() && is_table(path) {
                return Ok(Source::File(path.to_path_buf()));
            }
            bail!("{}: {want}", describe(path))
        }
        Modality::Series => {
            if path.is_file() {
                return Ok(Source::File(path.to_path_buf()));
            }
            bail!("{}: {want}", describe(path))
        }
    }
}

/// A model in words: "an image model (64x64 grey images)".
pub fn model_words(cfg: &DetectorConfig) -> String {
    let i = &cfg.input;
    match cfg.modality {
        Modality::Image => format!(
            "an image model ({0}x{0} {1} images)",
            i.image_size,
            if i.channels == 3 { "RGB" } else { "grey" }
        ),
        Modality::Audio => format!("an audio model ({} Hz clips)", i.sample_rate),
        Modality::Series => format!("a series model (windows of {} points)", i.window),
        Modality::Table => format!(
            "a table model ({} columns)",
            crate::validate::network_channels(cfg).unwrap_or(0)
        ),
    }
}

/// The modality the data at `path` looks like, if it is clear from the files.
fn data_modality(path: &Path) -> Option<Modality> {
    let target = glob(path)
        .and_then(|m| m.into_iter().next())
        .unwrap_or_else(|| path.to_path_buf());
    if target.is_file() {
        let e = ext(&target);
        return match e.as_str() {
            _ if is_image(&target) => Some(Modality::Image),
            "wav" => Some(Modality::Audio),
            "csv" | "npy" | "npz" => Some(Modality::Table),
            _ => None,
        };
    }
    if !target.is_dir() {
        return None;
    }
    let probe = [
        target.clone(),
        target.join("train").join("good"),
        target.join("train"),
        target.join("test"),
    ];
    for dir in probe {
        if !files_in(&dir, is_image).is_empty() {
            return Some(Modality::Image);
        }
        if !files_in(&dir, is_wav).is_empty() {
            return Some(Modality::Audio);
        }
    }
    None
}

/// Checks that the data at `path` can be what the model `cfg` (saved at `model`) was trained
/// on: its modality, and for tables the number of columns, from the configuration alone and
/// before any tensor is built.
///
/// # Errors
/// One that names the model, what it was trained on and what the data is.
pub fn check_model_data(cfg: &DetectorConfig, model: &Path, path: &Path) -> Result<()> {
    // A CSV file is a table or a series (one time step a line): either fits those models.
    let found = data_modality(path).filter(|&m| {
        !(m == Modality::Table && cfg.modality == Modality::Series && ext(path) == "csv")
    });
    if let Some(m) = found.filter(|&m| m != cfg.modality) {
        let what = if path.is_dir() {
            describe(path)
        } else {
            format!("{} is {}", path.display(), file_kind(path))
        };
        let an = if matches!(m, Modality::Image | Modality::Audio) {
            "an"
        } else {
            "a"
        };
        bail!(
            "model/data mismatch: {} is {}, but {what}, which is {m} data: score it with {an} \
             {m} model (dmad fit --modality {m} --data {})",
            model.display(),
            model_words(cfg),
            path.display()
        );
    }
    if cfg.modality == Modality::Table && path.is_file() {
        let want = crate::validate::network_channels(cfg).unwrap_or(0);
        if let Some(cols) = table_columns(path) {
            if cols != want && cfg.feature_space.is_none() {
                bail!(
                    "model/data mismatch: the model {} was trained on {want} columns, the file \
                     {} has {cols}",
                    model.display(),
                    path.display()
                );
            }
        }
    }
    if cfg.modality == Modality::Series
        && path.is_file()
        && matches!(cfg.network, dmad::NetworkConfig::Unet1d(_))
    {
        let dims = crate::validate::network_channels(cfg).unwrap_or(1);
        let found = if crate::tasks::is_ucr(path) {
            Some(1)
        } else {
            dmad::data::read_plain_series(path).ok().map(|s| s.dims)
        };
        if let Some(found) = found.filter(|&f| f != dims) {
            bail!(
                "model/data mismatch: the model {} was trained on series of {dims} channels, \
                 {} has {found}",
                model.display(),
                path.display()
            );
        }
    }
    Ok(())
}

/// The channels of an image file (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA) from its header.
pub fn image_channels(path: &Path) -> Option<u8> {
    use image::ImageDecoder;
    let decoder = image::ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?
        .into_decoder()
        .ok()?;
    Some(decoder.color_type().channel_count())
}

/// A warning when the model's channels and the images' differ: the loader converts them
/// (colour to grey by luma, grey replicated to RGB), which is rarely what was meant.
pub fn channel_warning(cfg: &DetectorConfig, files: &[PathBuf]) -> Option<String> {
    let model = cfg.input.channels;
    let first = files.first()?;
    let colour = image_channels(first)? >= 3;
    match (model, colour) {
        (1, true) => Some(format!(
            "warning: the model was trained on grey images; {} is in colour and is converted \
             to grey",
            first.display()
        )),
        (3, false) => Some(format!(
            "warning: the model was trained on RGB images; {} is grey and is replicated to \
             three channels",
            first.display()
        )),
        _ => None,
    }
}

/// The number of feature columns of a table file, from its header (CSV) or shape (NPY/NPZ),
/// when it can be read.
pub fn table_columns(path: &Path) -> Option<usize> {
    match ext(path).as_str() {
        "npy" => dmad::data::npy::read_npy(path)
            .ok()
            .and_then(|a| (a.shape.len() == 2).then(|| a.shape[1])),
        "npz" => dmad::data::npy::read_npz(path).ok().and_then(|arrays| {
            arrays
                .into_iter()
                .find(|(n, _)| n == "X")
                .and_then(|(_, a)| (a.shape.len() == 2).then(|| a.shape[1]))
        }),
        _ => {
            let cfg = dmad::data::TableConfig {
                non_finite: dmad::data::NonFinite::Impute,
                ..dmad::data::TableConfig::default()
            };
            dmad::data::read_csv_features(path, &cfg)
                .ok()
                .map(|t| t.cols())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_a_shell() {
        let p = |s: &str| s.chars().collect::<Vec<_>>();
        assert!(matches(&p("*.png"), &p("a.png")));
        assert!(matches(&p("img_??.png"), &p("img_01.png")));
        assert!(!matches(&p("*.png"), &p("a.pngx")));
        assert!(matches(&p("*"), &p("")));
    }

    #[test]
    fn layouts_and_what_was_found() {
        let d = tempfile::tempdir().unwrap();
        let e = resolve(Modality::Image, d.path(), Purpose::Fit).unwrap_err();
        assert!(e.to_string().contains("no images found in"), "{e}");
        assert!(e.to_string().contains("empty folder"), "{e}");
        std::fs::write(d.path().join("a.csv"), "x,y\n1,2\n").unwrap();
        let e = resolve(Modality::Image, d.path(), Purpose::Fit).unwrap_err();
        assert!(e.to_string().contains("1 CSV files"), "{e}");
        assert_eq!(table_columns(&d.path().join("a.csv")), Some(2));
        std::fs::write(d.path().join("b.png"), b"x").unwrap();
        assert_eq!(
            resolve(Modality::Image, d.path(), Purpose::Score).unwrap(),
            Source::Files(vec![d.path().join("b.png")])
        );
        let e = resolve(Modality::Table, d.path(), Purpose::Fit).unwrap_err();
        assert!(e.to_string().contains("expected one CSV file"), "{e}");
    }
}
