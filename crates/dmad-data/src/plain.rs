//! A plain series file: numbers, one time step a line, one column per channel, separated by
//! commas, semicolons, tabs or spaces, with an optional header line. No labels: the data a
//! user has before anyone has marked anomalies in it.

use std::path::Path;

use crate::error::{read_text, Error, Result};
use crate::timeseries::Series;

/// Reads a plain series file (gunzipped first when its name ends in `.gz`). A first line with
/// no number is a header and is skipped; `NaN` (any case) reads as NaN, for the caller's
/// [`crate::NonFinite`] policy. Labels are all 0.
///
/// # Errors
/// [`Error::EmptyFile`] for a file with no data line; [`Error::InvalidInput`] naming the line
/// (and the column) for a value that is not a number or a line with another number of
/// columns than the first.
pub fn read_plain_series(path: impl AsRef<Path>) -> Result<Series> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let mut values = Vec::new();
    let mut dims = 0usize;
    let mut rows = 0usize;
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let cells: Vec<&str> = line
            .split([',', ';', '\t', ' '])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        if cells.is_empty() {
            continue;
        }
        let parsed: Vec<Option<f32>> = cells.iter().map(|c| number(c)).collect();
        if rows == 0 && dims == 0 && parsed.iter().all(Option::is_none) {
            continue; // the header
        }
        if dims == 0 {
            dims = cells.len();
        } else if cells.len() != dims {
            return Err(Error::invalid(
                path,
                Some(ln),
                None,
                format!(
                    "{} columns, the first data line has {dims}: every line is one time step \
                     with one value per channel",
                    cells.len()
                ),
            ));
        }
        for (c, (v, cell)) in parsed.iter().zip(&cells).enumerate() {
            let v = v.ok_or_else(|| {
                Error::invalid(
                    path,
                    Some(ln),
                    Some(&format!("column {}", c + 1)),
                    format!("not a number: {cell:?}"),
                )
            })?;
            values.push(v);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(Series {
        values,
        dims,
        labels: vec![0; rows],
    })
}

fn number(s: &str) -> Option<f32> {
    if s.eq_ignore_ascii_case("nan") {
        return Some(f32::NAN);
    }
    s.parse::<f64>().ok().map(|v| v as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_series_with_and_without_a_header() {
        let d = tempfile::TempDir::new().unwrap();
        let p = d.path().join("s.csv");
        std::fs::write(&p, "a,b\n1,2\n3,4\n\n5,NaN\n").unwrap();
        let s = read_plain_series(&p).unwrap();
        assert_eq!((s.dims, s.len()), (2, 3));
        assert!(s.values[5].is_nan());
        let p = d.path().join("s.txt");
        std::fs::write(&p, "1.5\n2.5\n").unwrap();
        assert_eq!(read_plain_series(&p).unwrap().values, vec![1.5, 2.5]);
        std::fs::write(&p, "1\n2 3\n").unwrap();
        let e = read_plain_series(&p).unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput { line: Some(2), .. }),
            "{e}"
        );
        std::fs::write(&p, "1\nx\n").unwrap();
        let e = read_plain_series(&p).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        std::fs::write(&p, "value\n").unwrap();
        assert!(matches!(
            read_plain_series(&p),
            Err(Error::EmptyFile { .. })
        ));
    }
}
