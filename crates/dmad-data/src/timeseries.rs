//! Time series: the UCR Anomaly Archive, NAB, labelled CSV, GutenTAG and the UCR/UEA
//! classification archives (used one-class), with sliding windows and normalisation.

use std::ops::Range;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::error::{read_text, Error, Result};

/// A (multivariate) series with point labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The values, `[len, dims]` row-major (time-major).
    pub values: Vec<f32>,
    /// The number of channels.
    pub dims: usize,
    /// One label per time step: 0 normal, 1 anomalous.
    pub labels: Vec<u8>,
}

impl Series {
    /// The number of time steps.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the series has no time steps.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The time steps `range` as a new series.
    ///
    /// # Panics
    /// If `range` is out of bounds.
    pub fn slice(&self, range: Range<usize>) -> Series {
        Series {
            values: self.values[range.start * self.dims..range.end * self.dims].to_vec(),
            dims: self.dims,
            labels: self.labels[range].to_vec(),
        }
    }

    /// Channel `d` as a vector.
    pub fn channel(&self, d: usize) -> Vec<f32> {
        self.values
            .iter()
            .skip(d)
            .step_by(self.dims)
            .copied()
            .collect()
    }

    /// The series as a tensor `[dims, len]` (channel-major, the layout of a window batch).
    ///
    /// # Errors
    /// A candle error.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        let t = Tensor::from_slice(&self.values, (self.len(), self.dims), device)?;
        Ok(t.t()?.contiguous()?)
    }
}

/// A series split into its train and test parts.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSplit {
    /// The series name (file stem or NAB key).
    pub name: String,
    /// The train part.
    pub train: Series,
    /// The test part.
    pub test: Series,
    /// The index, in the original file, of the test part's first point (0 when the test part is
    /// a file of its own).
    pub test_offset: usize,
}

impl SeriesSplit {
    /// Fits a [`Normaliser`] on the train part and applies it to both parts.
    pub fn normalise(&mut self) -> Normaliser {
        let n = Normaliser::fit(&self.train);
        n.apply(&mut self.train);
        n.apply(&mut self.test);
        n
    }
}

/// Per-channel standardisation `(x - mean) / std`, fitted on a train series.
///
/// NaN values are ignored when fitting and stay NaN. A channel with zero deviation is only
/// centred (its std is taken as 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Normaliser {
    /// The mean of each channel.
    pub mean: Vec<f64>,
    /// The (population) standard deviation of each channel, 1 where it is zero.
    pub std: Vec<f64>,
}

impl Normaliser {
    /// Fits the statistics of `series`.
    pub fn fit(series: &Series) -> Self {
        let d = series.dims;
        let mut sum = vec![0f64; d];
        let mut cnt = vec![0usize; d];
        for (i, &v) in series.values.iter().enumerate() {
            if !v.is_nan() {
                sum[i % d] += v as f64;
                cnt[i % d] += 1;
            }
        }
        let mean: Vec<f64> = sum
            .iter()
            .zip(&cnt)
            .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
            .collect();
        let mut ss = vec![0f64; d];
        for (i, &v) in series.values.iter().enumerate() {
            if !v.is_nan() {
                ss[i % d] += (v as f64 - mean[i % d]).powi(2);
            }
        }
        let std = ss
            .iter()
            .zip(&cnt)
            .map(|(s, &c)| {
                let sd = if c > 0 { (s / c as f64).sqrt() } else { 0.0 };
                if sd > 0.0 {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Self { mean, std }
    }

    /// Standardises `series` in place.
    ///
    /// # Panics
    /// If `series.dims` differs from the fitted number of channels.
    pub fn apply(&self, series: &mut Series) {
        assert_eq!(
            series.dims,
            self.mean.len(),
            "normaliser fitted on another number of channels"
        );
        let d = series.dims;
        for (i, v) in series.values.iter_mut().enumerate() {
            *v = ((*v as f64 - self.mean[i % d]) / self.std[i % d]) as f32;
        }
    }
}

/// Parses numbers separated by whitespace (one or many a line).
fn parse_values(text: &str, path: &Path) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        for tok in line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
        {
            out.push(parse_f32(tok).ok_or_else(|| {
                Error::invalid(path, Some(ln + 1), None, format!("not a number: {tok:?}"))
            })?);
        }
    }
    if out.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

fn parse_f32(tok: &str) -> Option<f32> {
    let t = tok.trim();
    match t {
        "NaN" | "nan" | "?" => Some(f32::NAN),
        _ => t.parse::<f64>().ok().map(|v| v as f32),
    }
}

/// The fields of a UCR Anomaly Archive file name,
/// `NNN_UCR_Anomaly_<name>_<trainEnd>_<begin>_<end>.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UcrAnomalyName {
    /// The archive number `NNN`.
    pub number: u32,
    /// The series name.
    pub name: String,
    /// The end of the train part (exclusive).
    pub train_end: usize,
    /// The first anomalous point.
    pub begin: usize,
    /// The end of the anomaly (exclusive, as PROTOCOL.md reads it).
    pub end: usize,
}

impl UcrAnomalyName {
    const PATTERN: &'static str = "NNN_UCR_Anomaly_<name>_<trainEnd>_<begin>_<end>.txt";

    /// Parses the file name of `path`.
    ///
    /// # Errors
    /// [`Error::BadFileName`] if the name does not match the pattern or the numbers are not
    /// ordered `trainEnd <= begin < end`.
    pub fn parse(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bad = || Error::BadFileName {
            path: path.to_path_buf(),
            pattern: Self::PATTERN,
        };
        let fname = path.file_name().and_then(|n| n.to_str()).ok_or_else(bad)?;
        let stem = fname.strip_suffix(".txt").ok_or_else(bad)?;
        let (num, rest) = stem.split_once("_UCR_Anomaly_").ok_or_else(bad)?;
        let number = num.parse().map_err(|_| bad())?;
        let parts: Vec<&str> = rest.rsplitn(4, '_').collect();
        if parts.len() != 4 || parts[3].is_empty() {
            return Err(bad());
        }
        let n = |s: &str| s.parse::<usize>().map_err(|_| bad());
        let (end, begin, train_end) = (n(parts[0])?, n(parts[1])?, n(parts[2])?);
        if train_end == 0 || begin >= end {
            return Err(bad());
        }
        Ok(Self {
            number,
            name: parts[3].to_string(),
            train_end,
            begin,
            end,
        })
    }
}

/// Loads a UCR Anomaly Archive series: train `[0, trainEnd)`, test `[trainEnd, len)`, the
/// anomaly `[begin, end)` (labels in both parts; `test_offset = trainEnd`).
///
/// # Errors
/// [`Error::BadFileName`], [`Error::EmptyFile`], [`Error::InvalidInput`] (with the line) for a
/// non-numeric value, or when the series is shorter than the name's indices.
pub fn load_ucr_anomaly(path: impl AsRef<Path>) -> Result<(SeriesSplit, UcrAnomalyName)> {
    let path = path.as_ref();
    let meta = UcrAnomalyName::parse(path)?;
    let values = parse_values(&read_text(path)?, path)?;
    let n = values.len();
    if meta.end > n || meta.train_end >= n {
        return Err(Error::invalid(
            path,
            None,
            None,
            format!(
                "series has {n} points but the name says trainEnd {}, anomaly [{}, {})",
                meta.train_end, meta.begin, meta.end
            ),
        ));
    }
    let labels = (0..n)
        .map(|i| u8::from(i >= meta.begin && i < meta.end))
        .collect();
    let full = Series {
        values,
        dims: 1,
        labels,
    };
    let split = SeriesSplit {
        name: path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        train: full.slice(0..meta.train_end),
        test: full.slice(meta.train_end..n),
        test_offset: meta.train_end,
    };
    Ok((split, meta))
}

/// Splits a full series at `floor(train_fraction * len)`.
fn split_fraction(name: String, full: Series, train_fraction: f64) -> SeriesSplit {
    let n = full.len();
    let cut = ((train_fraction * n as f64).floor() as usize).min(n);
    SeriesSplit {
        name,
        train: full.slice(0..cut),
        test: full.slice(cut..n),
        test_offset: cut,
    }
}

/// The share of points NAB's probationary period (and PROTOCOL.md's train part) takes.
pub const NAB_TRAIN_FRACTION: f64 = 0.15;
/// The share of points PROTOCOL.md's Yahoo protocol trains on.
pub const YAHOO_TRAIN_FRACTION: f64 = 0.30;

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]` (or with `T`) to microseconds since 1970.
fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next()?.parse().ok()?;
    let ss: i64 = t.next().unwrap_or("0").parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let us: i64 = if frac.is_empty() {
        0
    } else {
        let f: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
        f.parse().ok()?
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + us)
}

/// Loads one NAB series `root/data/<key>` (for example `realKnownCause/nyc_taxi.csv`) with
/// its windows from `root/labels/combined_windows.json`: a point is anomalous when its
/// timestamp lies in a window (inclusive). The first `floor(0.15 n)` points are the train part.
///
/// # Errors
/// [`Error::Io`], [`Error::EmptyFile`], [`Error::MissingColumn`] (`timestamp`/`value`),
/// [`Error::InvalidInput`] with the line and field for a bad timestamp or value, or naming the
/// JSON file when it is malformed or lacks `key`.
pub fn load_nab(root: impl AsRef<Path>, key: &str) -> Result<SeriesSplit> {
    let root = root.as_ref();
    let labels_path = root.join("labels").join("combined_windows.json");
    let windows = read_nab_windows(&labels_path)?;
    let w = windows
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, w)| w.clone())
        .ok_or_else(|| {
            Error::invalid(&labels_path, None, Some(key), "no windows for this series")
        })?;
    let path = root.join("data").join(key);
    let text = read_text(&path)?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header = rdr.headers().map_err(|e| csv_error(&path, e))?.clone();
    if header.is_empty() && text.trim().is_empty() {
        return Err(Error::EmptyFile { path });
    }
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| Error::MissingColumn {
                path: path.clone(),
                column: name.into(),
            })
    };
    let (ti, vi) = (col("timestamp")?, col("value")?);
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_error(&path, e))?;
        let line = rec.position().map(|p| p.line() as usize);
        let ts_s = rec.get(ti).unwrap_or("");
        let ts = parse_timestamp(ts_s).ok_or_else(|| {
            Error::invalid(
                &path,
                line,
                Some("timestamp"),
                format!("bad timestamp {ts_s:?}"),
            )
        })?;
        let v_s = rec.get(vi).unwrap_or("");
        let v = parse_f32(v_s).ok_or_else(|| {
            Error::invalid(&path, line, Some("value"), format!("not a number: {v_s:?}"))
        })?;
        values.push(v);
        labels.push(u8::from(w.iter().any(|&(a, b)| ts >= a && ts <= b)));
    }
    if values.is_empty() {
        return Err(Error::EmptyFile { path });
    }
    let full = Series {
        values,
        dims: 1,
        labels,
    };
    Ok(split_fraction(
        key.trim_end_matches(".csv").to_string(),
        full,
        NAB_TRAIN_FRACTION,
    ))
}

/// Loads every series that `root/labels/combined_windows.json` lists, in the JSON's key order.
///
/// # Errors
/// As [`load_nab`], for the first series that fails.
pub fn load_nab_all(root: impl AsRef<Path>) -> Result<Vec<SeriesSplit>> {
    let root = root.as_ref();
    let windows = read_nab_windows(&root.join("labels").join("combined_windows.json"))?;
    windows.iter().map(|(k, _)| load_nab(root, k)).collect()
}

type NabWindows = Vec<(String, Vec<(i64, i64)>)>;

fn read_nab_windows(path: &Path) -> Result<NabWindows> {
    let text = read_text(path)?;
    if text.trim().is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::invalid(path, Some(e.line()), None, format!("malformed JSON: {e}")))?;
    let obj = json
        .as_object()
        .ok_or_else(|| Error::invalid(path, None, None, "expected an object of series keys"))?;
    let mut out = Vec::new();
    for (k, v) in obj {
        let bad = |r: &str| Error::invalid(path, None, Some(k), r.to_string());
        let arr = v
            .as_array()
            .ok_or_else(|| bad("expected a list of windows"))?;
        let mut w = Vec::new();
        for pair in arr {
            let p = pair
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| bad("window is not a [start, end] pair"))?;
            let ts = |x: &serde_json::Value| x.as_str().and_then(parse_timestamp);
            match (ts(&p[0]), ts(&p[1])) {
                (Some(a), Some(b)) => w.push((a, b)),
                _ => return Err(bad("bad window timestamp")),
            }
        }
        out.push((k.clone(), w));
    }
    Ok(out)
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line() as usize);
    Error::invalid(path, line, None, format!("malformed CSV: {e}"))
}

/// How a labelled CSV series is read.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvSeriesConfig {
    /// The label column (0 normal, anything else anomalous). Default `"label"`.
    pub label_column: String,
    /// The value columns; `None` takes every column except the label and `ignore_columns`.
    /// Default `None`.
    pub value_columns: Option<Vec<String>>,
    /// Columns that are neither values nor labels. Default `["timestamp"]`.
    pub ignore_columns: Vec<String>,
    /// The share of points (from the start) that is the train part. Default 0.3 (Yahoo).
    pub train_fraction: f64,
}

impl Default for CsvSeriesConfig {
    fn default() -> Self {
        Self {
            label_column: "label".into(),
            value_columns: None,
            ignore_columns: vec!["timestamp".into()],
            train_fraction: YAHOO_TRAIN_FRACTION,
        }
    }
}

/// Reads a labelled CSV series (header line, value columns, a label column) as one series.
///
/// # Errors
/// [`Error::EmptyFile`], [`Error::MissingColumn`], [`Error::InvalidInput`] with the line and
/// the column for a non-numeric field or a row of the wrong length.
pub fn read_csv_series(path: impl AsRef<Path>, cfg: &CsvSeriesConfig) -> Result<Series> {
    let path = path.as_ref();
    let text = read_text(path)?;
    if text.trim().is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let find = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_string(),
            })
    };
    let li = find(&cfg.label_column)?;
    let vcols: Vec<usize> = match &cfg.value_columns {
        Some(cols) => cols.iter().map(|c| find(c)).collect::<Result<_>>()?,
        None => (0..header.len())
            .filter(|&i| i != li && !cfg.ignore_columns.contains(&header[i]))
            .collect(),
    };
    if vcols.is_empty() {
        return Err(Error::invalid(path, Some(1), None, "no value columns"));
    }
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_error(path, e))?;
        let line = rec.position().map(|p| p.line() as usize);
        for &c in &vcols {
            let s = rec.get(c).unwrap_or("");
            values.push(parse_f32(s).ok_or_else(|| {
                Error::invalid(path, line, Some(&header[c]), format!("not a number: {s:?}"))
            })?);
        }
        let s = rec.get(li).unwrap_or("");
        let l = s.trim().parse::<f64>().map_err(|_| {
            Error::invalid(
                path,
                line,
                Some(&cfg.label_column),
                format!("not a label: {s:?}"),
            )
        })?;
        labels.push(u8::from(l != 0.0));
    }
    if labels.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(Series {
        values,
        dims: vcols.len(),
        labels,
    })
}

/// Loads a labelled CSV series and splits it at `cfg.train_fraction` (Yahoo: 30%).
///
/// # Errors
/// As [`read_csv_series`]; [`Error::InvalidConfig`] for a fraction outside `[0, 1]`.
pub fn load_labelled_csv(path: impl AsRef<Path>, cfg: &CsvSeriesConfig) -> Result<SeriesSplit> {
    if !(0.0..=1.0).contains(&cfg.train_fraction) {
        return Err(Error::InvalidConfig {
            field: "train_fraction",
            reason: format!("must lie in [0, 1], got {}", cfg.train_fraction),
        });
    }
    let path = path.as_ref();
    let full = read_csv_series(path, cfg)?;
    let name = path
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    Ok(split_fraction(name, full, cfg.train_fraction))
}

/// Loads a GutenTAG pair: `<name>_TRAIN_NA.csv` (train) and `<name>_TEST.csv` (test) in `dir`,
/// columns `timestamp, value-*, is_anomaly`.
///
/// # Errors
/// As [`read_csv_series`]; [`Error::InvalidInput`] if the two files have different channels.
pub fn load_gutentag(dir: impl AsRef<Path>, name: &str) -> Result<SeriesSplit> {
    let dir = dir.as_ref();
    let cfg = CsvSeriesConfig {
        label_column: "is_anomaly".into(),
        ..CsvSeriesConfig::default()
    };
    let train = read_csv_series(dir.join(format!("{name}_TRAIN_NA.csv")), &cfg)?;
    let test_path = dir.join(format!("{name}_TEST.csv"));
    let test = read_csv_series(&test_path, &cfg)?;
    if test.dims != train.dims {
        return Err(Error::invalid(
            &test_path,
            None,
            None,
            format!("{} channels, train has {}", test.dims, train.dims),
        ));
    }
    Ok(SeriesSplit {
        name: name.to_string(),
        train,
        test,
        test_offset: 0,
    })
}

/// One labelled series of a classification archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSeries {
    /// The class label as written in the file.
    pub class: String,
    /// One vector per channel (missing values are NaN).
    pub channels: Vec<Vec<f32>>,
}

/// Reads a UCR 2018 `.tsv` file: one series a line, the class first, tab-separated
/// (`NaN` for missing values).
///
/// # Errors
/// [`Error::EmptyFile`], [`Error::InvalidInput`] with the line and field index for a
/// non-numeric value or a line without values.
pub fn read_ucr_tsv(path: impl AsRef<Path>) -> Result<Vec<ClassSeries>> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split(['\t', ',']).map(str::trim);
        let class = fields.next().unwrap_or("").to_string();
        if class.parse::<f64>().is_err() {
            return Err(Error::invalid(
                path,
                Some(ln + 1),
                Some("class"),
                format!("not a class label: {class:?}"),
            ));
        }
        let mut v = Vec::new();
        for (i, f) in fields.enumerate() {
            v.push(parse_f32(f).ok_or_else(|| {
                Error::invalid(
                    path,
                    Some(ln + 1),
                    Some(&format!("column {}", i + 2)),
                    format!("not a number: {f:?}"),
                )
            })?);
        }
        if v.is_empty() {
            return Err(Error::invalid(
                path,
                Some(ln + 1),
                None,
                "no values after the class",
            ));
        }
        out.push(ClassSeries {
            class,
            channels: vec![v],
        });
    }
    if out.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// Reads a UEA/UCR `.ts` file (sktime format): `@` header lines ending with `@data`, then one
/// case a line, channels separated by `:`, values by `,`, the class label last (`?` = missing).
/// Only `@timeStamps false` files with `@classLabel true` are supported.
///
/// # Errors
/// [`Error::EmptyFile`]; [`Error::InvalidInput`] with the line for a missing `@data`, a bad
/// header, a non-numeric value, a wrong channel count or an unknown class label.
pub fn read_ts(path: impl AsRef<Path>) -> Result<Vec<ClassSeries>> {
    let path = path.as_ref();
    let text = read_text(path)?;
    if text.trim().is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let mut in_data = false;
    let mut classes: Option<Vec<String>> = None;
    let mut dims: Option<usize> = None;
    let mut out = Vec::new();
    for (ln, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let lno = Some(ln + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !in_data {
            let lower = line.to_ascii_lowercase();
            if !lower.starts_with('@') {
                return Err(Error::invalid(
                    path,
                    lno,
                    None,
                    "expected an @ header line before @data",
                ));
            }
            let mut parts = line.split_whitespace();
            let key = parts.next().unwrap_or("").to_ascii_lowercase();
            let rest: Vec<&str> = parts.collect();
            match key.as_str() {
                "@data" => in_data = true,
                "@timestamps"
                    if rest.first().map(|s| s.eq_ignore_ascii_case("true")) == Some(true) =>
                {
                    return Err(Error::Unsupported(".ts files with @timeStamps true"));
                }
                "@classlabel" => {
                    if rest.first().map(|s| s.eq_ignore_ascii_case("true")) != Some(true) {
                        return Err(Error::invalid(
                            path,
                            lno,
                            Some("@classLabel"),
                            "one-class use needs class labels",
                        ));
                    }
                    classes = Some(rest[1..].iter().map(|s| s.to_string()).collect());
                }
                "@dimensions" => {
                    dims = Some(rest.first().and_then(|s| s.parse().ok()).ok_or_else(|| {
                        Error::invalid(path, lno, Some("@dimensions"), "not a number")
                    })?);
                }
                _ => {}
            }
            continue;
        }
        let classes = classes.as_ref().ok_or_else(|| {
            Error::invalid(path, lno, Some("@classLabel"), "missing @classLabel header")
        })?;
        let mut chans: Vec<&str> = line.split(':').collect();
        let class = chans.pop().unwrap_or("").trim().to_string();
        if !classes.is_empty() && !classes.contains(&class) {
            return Err(Error::invalid(
                path,
                lno,
                Some("class"),
                format!("class {class:?} not in @classLabel"),
            ));
        }
        if chans.is_empty() || dims.is_some_and(|d| d != chans.len()) {
            return Err(Error::invalid(
                path,
                lno,
                None,
                format!("{} channels, header says {:?}", chans.len(), dims),
            ));
        }
        let mut channels = Vec::with_capacity(chans.len());
        for (ci, c) in chans.iter().enumerate() {
            let mut v = Vec::new();
            for tok in c.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                v.push(parse_f32(tok).ok_or_else(|| {
                    Error::invalid(
                        path,
                        lno,
                        Some(&format!("channel {ci}")),
                        format!("not a number: {tok:?}"),
                    )
                })?);
            }
            channels.push(v);
        }
        out.push(ClassSeries { class, channels });
    }
    if !in_data {
        return Err(Error::invalid(path, None, Some("@data"), "no @data line"));
    }
    if out.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// A classification archive used one-class (PROTOCOL.md).
#[derive(Debug, Clone, PartialEq)]
pub struct OneClassSeries {
    /// The normal class: the smallest class label value of the train file.
    pub normal_class: String,
    /// The train rows of the normal class.
    pub train: Vec<ClassSeries>,
    /// Every test row.
    pub test: Vec<ClassSeries>,
    /// Per test row: 1 where its class is not the normal class.
    pub test_labels: Vec<u8>,
}

/// Applies the one-class protocol: the normal class is the smallest class label value (compared
/// as numbers when every label is a number, else as text); train on the TRAIN rows of that
/// class; test on every TEST row, anomalous where its class differs.
///
/// # Errors
/// [`Error::InvalidInput`] naming `train_path` if `train` is empty.
pub fn one_class(
    train: Vec<ClassSeries>,
    test: Vec<ClassSeries>,
    train_path: &Path,
) -> Result<OneClassSeries> {
    let numeric = train
        .iter()
        .chain(&test)
        .all(|s| s.class.parse::<f64>().is_ok());
    let key = |c: &str| {
        if numeric {
            c.parse::<f64>().unwrap_or(f64::NAN)
        } else {
            0.0
        }
    };
    let normal = train
        .iter()
        .map(|s| s.class.as_str())
        .min_by(|a, b| {
            if numeric {
                key(a).total_cmp(&key(b))
            } else {
                a.cmp(b)
            }
        })
        .ok_or_else(|| Error::invalid(train_path, None, None, "no train rows"))?
        .to_string();
    let same = |c: &str| {
        if numeric {
            key(c) == key(&normal)
        } else {
            c == normal
        }
    };
    let train: Vec<ClassSeries> = train.into_iter().filter(|s| same(&s.class)).collect();
    let test_labels = test.iter().map(|s| u8::from(!same(&s.class))).collect();
    Ok(OneClassSeries {
        normal_class: normal,
        train,
        test,
        test_labels,
    })
}

/// Loads a UCR 2018 set `dir/<Name>_TRAIN.tsv` + `dir/<Name>_TEST.tsv` (`Name` = the folder
/// name) one-class.
///
/// # Errors
/// As [`read_ucr_tsv`] and [`one_class`].
pub fn load_ucr_one_class(dir: impl AsRef<Path>) -> Result<OneClassSeries> {
    let dir = dir.as_ref();
    let name = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let tp: PathBuf = dir.join(format!("{name}_TRAIN.tsv"));
    let train = read_ucr_tsv(&tp)?;
    let test = read_ucr_tsv(dir.join(format!("{name}_TEST.tsv")))?;
    one_class(train, test, &tp)
}

/// The start of each sliding window of `length` points, every `stride` points, over a series
/// of `n` points. A last window ending at `n` is added when the stride does not reach it, so
/// every point is covered.
///
/// # Errors
/// [`Error::InvalidConfig`] if `length` or `stride` is 0 or `n < length`.
pub fn window_starts(n: usize, length: usize, stride: usize) -> Result<Vec<usize>> {
    if length == 0 || stride == 0 {
        return Err(Error::InvalidConfig {
            field: "window length/stride",
            reason: format!("must be positive, got length {length}, stride {stride}"),
        });
    }
    if n < length {
        return Err(Error::InvalidConfig {
            field: "window length",
            reason: format!("{length} is longer than the series ({n} points)"),
        });
    }
    let mut starts: Vec<usize> = (0..=n - length).step_by(stride).collect();
    if *starts.last().expect("at least one start") != n - length {
        starts.push(n - length);
    }
    Ok(starts)
}

/// Cuts `series` into windows `[N, dims, length]` (f32) and returns them with their starts
/// (see [`window_starts`]).
///
/// # Errors
/// As [`window_starts`], or a candle error.
pub fn windows(
    series: &Series,
    length: usize,
    stride: usize,
    device: &Device,
) -> Result<(Tensor, Vec<usize>)> {
    let starts = window_starts(series.len(), length, stride)?;
    let d = series.dims;
    let mut buf = Vec::with_capacity(starts.len() * d * length);
    for &s in &starts {
        for c in 0..d {
            buf.extend((s..s + length).map(|t| series.values[t * d + c]));
        }
    }
    let t = Tensor::from_vec(buf, (starts.len(), d, length), device)?;
    Ok((t, starts))
}

/// How the scores of the windows that cover a point are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// The mean over the covering windows.
    Mean,
    /// The maximum over the covering windows.
    Max,
    /// The mean over the covering windows, as [`Reduce::Mean`], where a point is covered by as
    /// many windows as the most covered point; where fewer windows cover it (near the ends of
    /// the series) weighted by where the point lies in each: a trapezoid over the window's
    /// steps, rising linearly over its first eighth and falling over its last
    /// (`min(1, (k + 1/2) / r, (length - k - 1/2) / r)` at step `k`, `r = length / 8`). A step
    /// at a window's edge has context on one side only; in the interior it is one of many, at
    /// the ends of a series it would be half or all of what a point gets.
    TaperedMean,
}

impl Reduce {
    /// The taper's weight of step `k` of a `length`-step window.
    fn weight(self, k: usize, length: usize) -> f64 {
        match self {
            Reduce::Mean | Reduce::Max => 1.0,
            Reduce::TaperedMean => {
                let r = (length as f64 / 8.0).max(1.0);
                let k = k as f64 + 0.5;
                (k / r).min((length as f64 - k) / r).min(1.0)
            }
        }
    }
}

/// Maps one score per window back to one score per point of an `n`-point series: each point
/// gets the mean or max of the windows (starting at `starts`, `length` long) that cover it.
///
/// # Errors
/// [`Error::ShapeMismatch`] if `scores` and `starts` differ in length; [`Error::InvalidConfig`]
/// if a window runs past `n` or a point is not covered.
pub fn window_to_points(
    scores: &[f32],
    starts: &[usize],
    length: usize,
    n: usize,
    reduce: Reduce,
) -> Result<Vec<f32>> {
    if scores.len() != starts.len() {
        return Err(Error::ShapeMismatch {
            context: "window_to_points".into(),
            expected: format!("{} window scores (one per start)", starts.len()),
            got: vec![scores.len()],
        });
    }
    accumulate(n, starts, length, reduce, |w, _| scores[w])
}

/// Maps per-step window scores `[N, length]` (row-major, for example a reconstruction error
/// per time step) back to one score per point: the mean or max over the windows covering it.
///
/// # Errors
/// As [`window_to_points`], with `scores.len() == starts.len() * length`.
pub fn steps_to_points(
    scores: &[f32],
    starts: &[usize],
    length: usize,
    n: usize,
    reduce: Reduce,
) -> Result<Vec<f32>> {
    if scores.len() != starts.len() * length {
        return Err(Error::ShapeMismatch {
            context: "steps_to_points".into(),
            expected: format!("[{}, {length}] step scores", starts.len()),
            got: vec![scores.len()],
        });
    }
    accumulate(n, starts, length, reduce, |w, k| scores[w * length + k])
}

fn accumulate(
    n: usize,
    starts: &[usize],
    length: usize,
    reduce: Reduce,
    score: impl Fn(usize, usize) -> f32,
) -> Result<Vec<f32>> {
    let mut acc = vec![
        match reduce {
            Reduce::Mean | Reduce::TaperedMean => 0f64,
            Reduce::Max => f64::NEG_INFINITY,
        };
        n
    ];
    let mut cnt = vec![0usize; n];
    for &s in starts {
        if s + length > n {
            return Err(Error::InvalidConfig {
                field: "window starts",
                reason: format!("window at {s} of length {length} runs past {n} points"),
            });
        }
        cnt[s..s + length].iter_mut().for_each(|c| *c += 1);
    }
    if let Some(p) = cnt.iter().position(|&c| c == 0) {
        return Err(Error::InvalidConfig {
            field: "window starts",
            reason: format!("point {p} is covered by no window"),
        });
    }
    let full = cnt.iter().copied().max().unwrap_or(0);
    let tapered: Vec<f64> = (0..length)
        .map(|k| Reduce::TaperedMean.weight(k, length))
        .collect();
    let mut weight = vec![0f64; n];
    for (w, &s) in starts.iter().enumerate() {
        for (k, &taper) in tapered.iter().enumerate() {
            let v = score(w, k) as f64;
            let p = s + k;
            let a = &mut acc[p];
            match reduce {
                Reduce::Mean => *a += v,
                Reduce::TaperedMean => {
                    let wk = if cnt[p] == full { 1.0 } else { taper };
                    *a += wk * v;
                    weight[p] += wk;
                    continue;
                }
                Reduce::Max => *a = a.max(v),
            }
            weight[p] += 1.0;
        }
    }
    Ok(acc
        .iter()
        .zip(&weight)
        .map(|(&a, &c)| match reduce {
            Reduce::Mean | Reduce::TaperedMean => (a / c) as f32,
            Reduce::Max => a as f32,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_microseconds() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_timestamp("1970-01-02 00:00:01.5"),
            Some(86_401_500_000)
        );
        assert_eq!(
            parse_timestamp("2000-03-01T00:00:00"),
            Some(951_868_800_000_000)
        );
        assert_eq!(parse_timestamp("2014-13-01 00:00:00"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn window_starts_cover_the_end() {
        assert_eq!(window_starts(10, 4, 3).unwrap(), vec![0, 3, 6]);
        assert_eq!(window_starts(11, 4, 3).unwrap(), vec![0, 3, 6, 7]);
        assert_eq!(window_starts(4, 4, 1).unwrap(), vec![0]);
        assert!(window_starts(3, 4, 1).is_err());
        assert!(window_starts(10, 0, 1).is_err());
        assert!(window_starts(10, 2, 0).is_err());
    }

    #[test]
    fn window_scores_map_back_to_points() {
        let starts = window_starts(6, 3, 2).unwrap(); // [0, 2, 3]
        let s = [1.0, 2.0, 4.0];
        let mean = window_to_points(&s, &starts, 3, 6, Reduce::Mean).unwrap();
        let max = window_to_points(&s, &starts, 3, 6, Reduce::Max).unwrap();
        // point:   0    1    2              3         4         5
        // windows: w0   w0   w0,w1          w1,w2     w1,w2     w2
        let want_mean = [1.0, 1.0, 1.5, 3.0, 3.0, 4.0];
        let want_max = [1.0, 1.0, 2.0, 4.0, 4.0, 4.0];
        for i in 0..6 {
            assert!((mean[i] - want_mean[i]).abs() <= 1e-6);
            assert!((max[i] - want_max[i]).abs() <= 1e-6);
        }
        let steps: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let p = steps_to_points(&steps, &starts, 3, 6, Reduce::Mean).unwrap();
        // point 2: w0 step 2 (2), w1 step 0 (3) -> 2.5; point 3: w1 step1 (4), w2 step0 (6) -> 5
        assert!(
            (p[2] - 2.5).abs() <= 1e-6 && (p[3] - 5.0).abs() <= 1e-6 && (p[5] - 8.0).abs() <= 1e-6
        );
        assert!(window_to_points(&s[..2], &starts, 3, 6, Reduce::Mean).is_err());
        assert!(window_to_points(&s, &[0, 2, 4], 3, 6, Reduce::Mean).is_err());
        assert!(window_to_points(&[1.0], &[0], 3, 6, Reduce::Mean).is_err());
    }

    #[test]
    fn a_tapered_mean_weighs_edge_steps_less_where_few_windows_cover_a_point() {
        // Windows of 16 at 0, 4 and 8 over 24 points: the interior (8..16) is covered three
        // times, the ends fewer. Trapezoid weights rise over 2 steps (1/4, 3/4, 1, ...).
        let w = |k: usize| {
            ((k as f64 + 0.5) / 2.0)
                .min((16.0 - k as f64 - 0.5) / 2.0)
                .min(1.0)
        };
        assert_eq!((w(0), w(1), w(2), w(15)), (0.25, 0.75, 1.0, 0.25));
        let starts = [0, 4, 8];
        let steps: Vec<f32> = (0..48).map(|v| v as f32).collect();
        let at = |win: usize, k: usize| steps[win * 16 + k] as f64;
        let p = steps_to_points(&steps, &starts, 16, 24, Reduce::TaperedMean).unwrap();
        let plain = steps_to_points(&steps, &starts, 16, 24, Reduce::Mean).unwrap();
        // Point 5, covered twice: step 5 of window 0 and step 1 of window 1, tapered.
        let want5 = (w(5) * at(0, 5) + w(1) * at(1, 1)) / (w(5) + w(1));
        assert!((p[5] as f64 - want5).abs() <= 1e-5, "{p:?}");
        assert!((p[5] - plain[5]).abs() > 0.1);
        // The interior, covered as often as any point: the plain mean, edge steps included.
        for i in 8..16 {
            assert!((p[i] - plain[i]).abs() <= 1e-5, "{i}: {p:?} {plain:?}");
        }
        // A point covered once takes its one value, however small its weight.
        assert!((p[0] - 0.0).abs() <= 1e-6 && (p[23] - 47.0).abs() <= 1e-6);
        // Scores that do not depend on the window: the plain mean.
        let flat = window_to_points(&[2.0; 3], &starts, 16, 24, Reduce::TaperedMean).unwrap();
        assert!(flat.iter().all(|&v| (v - 2.0).abs() <= 1e-6));
        assert!(steps_to_points(&steps, &[0, 4, 9], 16, 24, Reduce::TaperedMean).is_err());
    }

    #[test]
    fn windows_are_channel_major() {
        let series = Series {
            values: (0..12).map(|v| v as f32).collect(), // 6 steps x 2 channels
            dims: 2,
            labels: vec![0; 6],
        };
        let (w, starts) = windows(&series, 4, 2, &Device::Cpu).unwrap();
        assert_eq!(starts, vec![0, 2]);
        assert_eq!(w.dims(), &[2, 2, 4]);
        let v = w.to_vec3::<f32>().unwrap();
        assert_eq!(v[1][0], vec![4.0, 6.0, 8.0, 10.0]);
        assert_eq!(v[1][1], vec![5.0, 7.0, 9.0, 11.0]);
        assert_eq!(series.to_tensor(&Device::Cpu).unwrap().dims(), &[2, 6]);
    }

    #[test]
    fn normaliser_uses_train_statistics() {
        let mut split = SeriesSplit {
            name: "x".into(),
            train: Series {
                values: vec![1.0, 5.0, 3.0, 5.0],
                dims: 2,
                labels: vec![0, 0],
            },
            test: Series {
                values: vec![4.0, 6.0],
                dims: 2,
                labels: vec![1],
            },
            test_offset: 2,
        };
        let n = split.normalise();
        assert_eq!(n.mean, vec![2.0, 5.0]);
        assert_eq!(n.std, vec![1.0, 1.0]); // channel 1 has zero deviation -> std 1
        assert_eq!(split.train.values, vec![-1.0, 0.0, 1.0, 0.0]);
        assert_eq!(split.test.values, vec![2.0, 1.0]);
    }

    #[test]
    fn one_class_picks_smallest_numeric_label() {
        let s = |c: &str| ClassSeries {
            class: c.into(),
            channels: vec![vec![0.0]],
        };
        let oc = one_class(
            vec![s("2"), s("10"), s("2.0")],
            vec![s("10"), s("2"), s("3")],
            Path::new("t"),
        )
        .unwrap();
        assert_eq!(oc.normal_class, "2");
        assert_eq!(oc.train.len(), 2);
        assert_eq!(oc.test_labels, vec![1, 0, 1]);
        let oc = one_class(vec![s("b"), s("a")], vec![s("a"), s("c")], Path::new("t")).unwrap();
        assert_eq!(
            (oc.normal_class.as_str(), oc.test_labels),
            ("a", vec![0, 1])
        );
        assert!(one_class(vec![], vec![s("1")], Path::new("t")).is_err());
    }

    #[test]
    fn ucr_names_parse() {
        let n = UcrAnomalyName::parse("x/135_UCR_Anomaly_InternalBleeding16_1200_4187_4199.txt")
            .unwrap();
        assert_eq!(
            n,
            UcrAnomalyName {
                number: 135,
                name: "InternalBleeding16".into(),
                train_end: 1200,
                begin: 4187,
                end: 4199
            }
        );
        let n = UcrAnomalyName::parse("001_UCR_Anomaly_a_b_10_20_30.txt").unwrap();
        assert_eq!(n.name, "a_b");
        for bad in [
            "135_UCR_Anomaly_InternalBleeding16_1200_4187.txt",
            "135_UCR_Anomaly_X_1200_4187_4199.csv",
            "x_UCR_Anomaly_X_1200_4187_4199.txt",
            "135_UCR_Anomaly_X_1200_4199_4187.txt",
            "135_Anomaly_X_1_2_3.txt",
            "135_UCR_Anomaly__1_2_3.txt",
        ] {
            assert!(
                matches!(UcrAnomalyName::parse(bad), Err(Error::BadFileName { .. })),
                "{bad}"
            );
        }
    }
}
