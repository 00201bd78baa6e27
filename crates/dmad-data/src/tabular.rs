//! Tables: CSV and NPY/NPZ, train-row standardisation and the ADBench/DTE split files.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::error::{read_text, Error, Result};
use crate::finite::NonFinite;
use crate::npy::{read_npy, read_npz, NpyArray};

/// What to do with a CSV column that holds non-numeric values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Categorical {
    /// Fail with [`Error::Categorical`] naming the column, the value and the line.
    Reject,
    /// Replace the column by one 0/1 column per distinct value (sorted), named
    /// `<column>=<value>`.
    OneHot,
}

/// How a CSV table is read.
#[derive(Debug, Clone, PartialEq)]
pub struct TableConfig {
    /// The label column (0 normal, any other number anomalous). Default `"label"`.
    pub label_column: String,
    /// Non-numeric columns. Default [`Categorical::Reject`].
    pub categorical: Categorical,
    /// Whether the first line is a header. Without one, the columns are named by their
    /// 0-based index (`"0"`, `"1"`, ...), so the label column is given as its index. Default
    /// `true`.
    pub has_header: bool,
    /// NaN and infinite feature values. Default [`NonFinite::Reject`] (an
    /// [`Error::NonFinite`] naming the file, row, line and column).
    pub non_finite: NonFinite,
}

impl Default for TableConfig {
    fn default() -> Self {
        Self {
            label_column: "label".into(),
            categorical: Categorical::Reject,
            has_header: true,
            non_finite: NonFinite::Reject,
        }
    }
}

/// A table of numeric features with one label per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The feature values, `[rows, features]` row-major.
    pub features: Vec<f64>,
    /// The feature names (after one-hot encoding).
    pub names: Vec<String>,
    /// One label per row: 0 normal, 1 anomalous (the label column is not 0).
    pub labels: Vec<u8>,
    /// The label column's values as numbers (class labels, for multi-class files).
    pub classes: Vec<f64>,
    /// The file the table came from.
    pub path: PathBuf,
    /// The 1-based line of each row in a text file (empty for NPY/NPZ arrays), for errors.
    pub lines: Vec<usize>,
}

impl Table {
    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// The number of feature columns.
    pub fn cols(&self) -> usize {
        self.names.len()
    }

    /// Row `r`.
    ///
    /// # Panics
    /// If `r >= rows()`.
    pub fn row(&self, r: usize) -> &[f64] {
        &self.features[r * self.cols()..(r + 1) * self.cols()]
    }

    /// The train/test split `split`, standardised with the train rows' mean and (population)
    /// standard deviation; a feature with zero deviation becomes 0 (PROTOCOL.md).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if a row index of the split is out of range;
    /// [`Error::InvalidInput`] if the split has no train rows.
    pub fn split(&self, split: &Split) -> Result<TableSplit> {
        for &i in split.train.iter().chain(&split.test) {
            if i >= self.rows() {
                return Err(Error::IndexOutOfRange {
                    index: i,
                    len: self.rows(),
                    context: Some(format!(
                        "split seed {} of {}",
                        split.seed,
                        self.path.display()
                    )),
                });
            }
        }
        let st = Standardiser::fit(self, &split.train)?;
        Ok(TableSplit {
            train: st.apply(self, &split.train),
            test: st.apply(self, &split.test),
            train_labels: split.train.iter().map(|&i| self.labels[i]).collect(),
            test_labels: split.test.iter().map(|&i| self.labels[i]).collect(),
            cols: self.cols(),
            standardiser: st,
        })
    }
}

/// Per-feature standardisation fitted on some rows of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardiser {
    /// The mean of each feature.
    pub mean: Vec<f64>,
    /// The population standard deviation of each feature (0 where the feature is constant).
    pub std: Vec<f64>,
}

impl Standardiser {
    /// Fits the statistics of `rows` of `table`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the table's file if `rows` is empty.
    pub fn fit(table: &Table, rows: &[usize]) -> Result<Self> {
        if rows.is_empty() {
            return Err(Error::invalid(
                &table.path,
                None,
                None,
                "no train rows to standardise with",
            ));
        }
        let d = table.cols();
        let n = rows.len() as f64;
        let mut mean = vec![0f64; d];
        for &r in rows {
            for (m, v) in mean.iter_mut().zip(table.row(r)) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0f64; d];
        for &r in rows {
            for ((s, v), m) in var.iter_mut().zip(table.row(r)).zip(&mean) {
                *s += (v - m).powi(2);
            }
        }
        let std = var.iter().map(|s| (s / n).sqrt()).collect();
        Ok(Self { mean, std })
    }

    /// Standardises `rows` of `table`, `[rows.len(), cols]` row-major f32.
    pub fn apply(&self, table: &Table, rows: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * table.cols());
        for &r in rows {
            for ((v, m), s) in table.row(r).iter().zip(&self.mean).zip(&self.std) {
                out.push(if *s > 0.0 { ((v - m) / s) as f32 } else { 0.0 });
            }
        }
        out
    }
}

/// A standardised train/test split of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSplit {
    /// Train rows `[n_train, cols]` row-major.
    pub train: Vec<f32>,
    /// Test rows `[n_test, cols]` row-major.
    pub test: Vec<f32>,
    /// Labels of the train rows.
    pub train_labels: Vec<u8>,
    /// Labels of the test rows.
    pub test_labels: Vec<u8>,
    /// The number of features.
    pub cols: usize,
    /// The fitted statistics.
    pub standardiser: Standardiser,
}

impl TableSplit {
    /// The train rows as a tensor `[n_train, cols]`.
    ///
    /// # Errors
    /// A candle error.
    pub fn train_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &self.train,
            (self.train_labels.len(), self.cols),
            device,
        )?)
    }

    /// The test rows as a tensor `[n_test, cols]`.
    ///
    /// # Errors
    /// A candle error.
    pub fn test_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &self.test,
            (self.test_labels.len(), self.cols),
            device,
        )?)
    }
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok()
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line() as usize);
    Error::invalid(path, line, None, format!("malformed CSV: {e}"))
}

/// Reads a CSV table (gunzipped first when the name ends in `.gz`).
///
/// # Errors
/// [`Error::EmptyFile`] (no header or no rows); [`Error::MissingColumn`] for the label column;
/// [`Error::InvalidInput`] with line and field for a row of the wrong length, an empty cell or
/// a non-numeric label; [`Error::Categorical`] for a non-numeric feature when
/// `cfg.categorical` is [`Categorical::Reject`].
pub fn read_csv_table(path: impl AsRef<Path>, cfg: &TableConfig) -> Result<Table> {
    read_csv(path.as_ref(), cfg, true)
}

/// Reads a CSV table whose label column may be missing: then every column is a feature and
/// every row is labelled 0 (unlabelled data: normal rows to fit on, or rows to score).
///
/// # Errors
/// As [`read_csv_table`], without [`Error::MissingColumn`].
pub fn read_csv_features(path: impl AsRef<Path>, cfg: &TableConfig) -> Result<Table> {
    read_csv(path.as_ref(), cfg, false)
}

/// Whether the CSV file at `path` has a column `column` (per `cfg.has_header`).
///
/// # Errors
/// As [`read_csv_table`] for a file that cannot be read.
pub fn csv_has_column(path: impl AsRef<Path>, column: &str, has_header: bool) -> Result<bool> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(has_header)
        .from_reader(text.as_bytes());
    let header = rdr.headers().map_err(|e| csv_error(path, e))?;
    Ok(if has_header {
        header.iter().any(|h| h.trim() == column)
    } else {
        column.parse::<usize>().is_ok_and(|i| i < header.len())
    })
}

fn read_csv(path: &Path, cfg: &TableConfig, label_required: bool) -> Result<Table> {
    let text = read_text(path)?;
    if text.trim().is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(cfg.has_header)
        .from_reader(text.as_bytes());
    let first: Vec<String> = rdr
        .headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let header: Vec<String> = if cfg.has_header {
        first
    } else {
        (0..first.len()).map(|i| i.to_string()).collect()
    };
    let li = header.iter().position(|h| *h == cfg.label_column);
    if li.is_none() && label_required {
        return Err(Error::MissingColumn {
            path: path.to_path_buf(),
            column: cfg.label_column.clone(),
        });
    }
    let mut cells: Vec<Vec<String>> = Vec::new();
    let mut lines = Vec::new();
    let mut labels = Vec::new();
    let mut classes = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_error(path, e))?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let l = match li {
            Some(li) => {
                let s = rec.get(li).unwrap_or("");
                parse_number(s).filter(|l| l.is_finite()).ok_or_else(|| {
                    Error::invalid(
                        path,
                        Some(line),
                        Some(&cfg.label_column),
                        format!("not a label: {s:?}"),
                    )
                })?
            }
            None => 0.0,
        };
        labels.push(u8::from(l != 0.0));
        classes.push(l);
        cells.push(rec.iter().map(str::to_string).collect());
        lines.push(line);
    }
    if labels.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let mut names = Vec::new();
    let mut columns: Vec<Vec<f64>> = Vec::new();
    for (c, name) in header.iter().enumerate() {
        if Some(c) == li {
            continue;
        }
        let mut col = Vec::with_capacity(cells.len());
        let mut first_bad = None;
        for (r, row) in cells.iter().enumerate() {
            let s = row[c].trim();
            if s.is_empty() {
                return Err(Error::invalid(
                    path,
                    Some(lines[r]),
                    Some(name),
                    "empty cell",
                ));
            }
            match parse_number(s) {
                Some(v) => col.push(v),
                None => {
                    first_bad.get_or_insert((s.to_string(), lines[r]));
                    col.push(f64::NAN);
                }
            }
        }
        match (first_bad, cfg.categorical) {
            (None, _) => {
                names.push(name.clone());
                columns.push(col);
            }
            (Some((value, line)), Categorical::Reject) => {
                return Err(Error::Categorical {
                    path: path.to_path_buf(),
                    column: name.clone(),
                    value,
                    line,
                });
            }
            (Some(_), Categorical::OneHot) => {
                let mut values: Vec<&str> = cells.iter().map(|row| row[c].trim()).collect();
                values.sort_unstable();
                values.dedup();
                for v in values {
                    names.push(format!("{name}={v}"));
                    columns.push(
                        cells
                            .iter()
                            .map(|row| f64::from(u8::from(row[c].trim() == v)))
                            .collect(),
                    );
                }
            }
        }
    }
    let rows = labels.len();
    let mut features = Vec::with_capacity(rows * columns.len());
    for r in 0..rows {
        features.extend(columns.iter().map(|c| c[r]));
    }
    let mut table = Table {
        features,
        names,
        labels,
        classes,
        path: path.to_path_buf(),
        lines,
    };
    table.resolve_non_finite(cfg.non_finite)?;
    Ok(table)
}

fn table_from_arrays(x: NpyArray, y: NpyArray, path: &Path) -> Result<Table> {
    if x.shape.len() != 2 {
        return Err(Error::ShapeMismatch {
            context: format!("{} features", path.display()),
            expected: "(rows, features)".into(),
            got: x.shape,
        });
    }
    if y.shape != [x.shape[0]] && y.shape != [x.shape[0], 1] {
        return Err(Error::ShapeMismatch {
            context: format!("{} labels", path.display()),
            expected: format!("({},) labels", x.shape[0]),
            got: y.shape,
        });
    }
    if x.data.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(Table {
        names: (0..x.shape[1]).map(|i| format!("x{i}")).collect(),
        features: x.data,
        labels: y.data.iter().map(|&v| u8::from(v != 0.0)).collect(),
        classes: y.data,
        path: path.to_path_buf(),
        lines: vec![],
    })
}

/// Reads the features of an unlabelled table from one NPY file `(rows, features)`; every row
/// is labelled 0.
///
/// # Errors
/// As [`read_npy`]; [`Error::ShapeMismatch`] for an array that is not 2-D.
pub fn read_npy_features(path: impl AsRef<Path>) -> Result<Table> {
    let path = path.as_ref();
    let x = read_npy(path)?;
    let rows = x.shape.first().copied().unwrap_or(0);
    let y = NpyArray {
        shape: vec![rows],
        data: vec![0.0; rows],
        descr: "<f8".into(),
    };
    table_from_arrays(x, y, path)
}

/// Reads a table from two NPY files: features `(rows, features)` and labels `(rows,)`.
///
/// # Errors
/// As [`read_npy`]; [`Error::ShapeMismatch`] for arrays of the wrong shape.
pub fn read_npy_table(features: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Table> {
    let x = read_npy(features.as_ref())?;
    let y = read_npy(labels.as_ref())?;
    table_from_arrays(x, y, features.as_ref())
}

/// Reads a table from an NPZ archive with arrays `x_key` and `y_key` (ADBench uses `X`, `y`).
///
/// # Errors
/// As [`read_npz`]; [`Error::InvalidInput`] naming the archive and the key if an array is
/// missing; [`Error::ShapeMismatch`] for arrays of the wrong shape.
pub fn read_npz_table(path: impl AsRef<Path>, x_key: &str, y_key: &str) -> Result<Table> {
    let path = path.as_ref();
    let mut arrays = read_npz(path)?;
    let mut take = |k: &str| {
        arrays
            .iter()
            .position(|(n, _)| n == k)
            .map(|i| arrays.swap_remove(i).1)
            .ok_or_else(|| Error::invalid(path, None, Some(k), "no such array in the archive"))
    };
    let x = take(x_key)?;
    let y = take(y_key)?;
    table_from_arrays(x, y, path)
}

/// One seed's split of a split file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Split {
    /// The seed.
    pub seed: u64,
    /// The train row indices (half of the normal rows).
    pub train: Vec<usize>,
    /// The test row indices (the other normal rows and every anomaly).
    pub test: Vec<usize>,
}

/// A split file `tabular/splits/<name>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SplitFile {
    /// The table name.
    pub dataset: String,
    /// The number of rows of the table.
    pub rows: usize,
    /// The number of anomalous rows.
    pub anomalies: usize,
    /// One split per seed.
    pub splits: Vec<Split>,
}

/// Reads a split file.
///
/// # Errors
/// [`Error::EmptyFile`]; [`Error::InvalidInput`] with the line for malformed JSON or missing
/// fields.
pub fn read_split_file(path: impl AsRef<Path>) -> Result<SplitFile> {
    let path = path.as_ref();
    let text = read_text(path)?;
    if text.trim().is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            path,
            Some(e.line()),
            None,
            format!("malformed split file: {e}"),
        )
    })
}

/// Loads `dir/<name>.csv` and `dir/splits/<name>.json` (the layout of `tabular/`), checking
/// that the table has the split file's row and anomaly counts.
///
/// # Errors
/// As [`read_csv_table`] and [`read_split_file`]; [`Error::InvalidInput`] naming the split file
/// if the counts differ.
pub fn load_table_with_splits(
    dir: impl AsRef<Path>,
    name: &str,
    cfg: &TableConfig,
) -> Result<(Table, SplitFile)> {
    let dir = dir.as_ref();
    let table = read_csv_table(dir.join(format!("{name}.csv")), cfg)?;
    let sp = dir.join("splits").join(format!("{name}.json"));
    let splits = read_split_file(&sp)?;
    let anomalies = table.labels.iter().filter(|&&l| l == 1).count();
    if splits.rows != table.rows() || splits.anomalies != anomalies {
        return Err(Error::invalid(
            &sp,
            None,
            Some("rows/anomalies"),
            format!(
                "split file says {} rows, {} anomalies; the table has {}, {}",
                splits.rows,
                splits.anomalies,
                table.rows(),
                anomalies
            ),
        ));
    }
    Ok((table, splits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(features: Vec<f64>, cols: usize) -> Table {
        let rows = features.len() / cols;
        Table {
            features,
            names: (0..cols).map(|i| format!("x{i}")).collect(),
            labels: vec![0; rows],
            classes: vec![0.0; rows],
            path: "t.csv".into(),
            lines: vec![],
        }
    }

    #[test]
    fn standardises_with_train_rows_and_zeroes_constant_features() {
        let t = table(vec![1.0, 7.0, 3.0, 7.0, 100.0, 8.0], 2);
        let s = t
            .split(&Split {
                seed: 0,
                train: vec![0, 1],
                test: vec![2],
            })
            .unwrap();
        assert_eq!(s.standardiser.mean, vec![2.0, 7.0]);
        assert_eq!(s.standardiser.std, vec![1.0, 0.0]);
        assert_eq!(s.train, vec![-1.0, 0.0, 1.0, 0.0]);
        assert_eq!(s.test, vec![98.0, 0.0]);
        assert_eq!(s.train_tensor(&Device::Cpu).unwrap().dims(), &[2, 2]);
        let bad = t.split(&Split {
            seed: 3,
            train: vec![0],
            test: vec![5],
        });
        assert!(matches!(
            bad,
            Err(Error::IndexOutOfRange {
                index: 5,
                len: 3,
                ..
            })
        ));
        assert!(t
            .split(&Split {
                seed: 0,
                train: vec![],
                test: vec![0]
            })
            .is_err());
    }
}
