use std::path::{Path, PathBuf};

/// The error of every dmad-data loader.
///
/// Each variant that comes from a file names that file, and where it is known, the 1-based line
/// and the field (column name or header key).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file or listing a folder failed (it does not exist, no permission, ...).
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The file's content is malformed: the place in it and what is wrong.
    #[error("invalid input in {}{}{}: {reason}", path.display(), line.map(|l| format!(" at line {l}")).unwrap_or_default(), field.as_ref().map(|f| format!(", field `{f}`")).unwrap_or_default())]
    InvalidInput {
        /// The file.
        path: PathBuf,
        /// The 1-based line, if known.
        line: Option<usize>,
        /// The column, header key or chunk, if known.
        field: Option<String>,
        /// What is wrong.
        reason: String,
    },

    /// A value of the data is NaN or infinite (see [`crate::NonFinite`] for the policies that
    /// drop or impute such values instead).
    #[error("non-finite value {value} in {} at row {row}{}, column `{column}`: fix the file, or drop or impute such values", path.display(), line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The 1-based data row (table row, or series point).
        row: usize,
        /// The 1-based line of the row in a text file, if known.
        line: Option<usize>,
        /// The column (its name in a table; `value <k>` for channel k of a series).
        column: String,
        /// The value.
        value: f64,
    },

    /// The file is empty (or holds only a header), where data was expected.
    #[error("empty file: {}", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },

    /// A column the configuration names is missing from the file's header.
    #[error("missing column `{column}` in {}", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column that was asked for.
        column: String,
    },

    /// A column holds non-numeric values and the configuration rejects categorical columns.
    #[error("categorical column `{column}` in {} (value {value:?} at line {line}); enable one-hot encoding or remove the column", path.display())]
    Categorical {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The first non-numeric value.
        value: String,
        /// The 1-based line of that value.
        line: usize,
    },

    /// A file name does not follow the pattern the format requires.
    #[error("file name {} does not match {pattern}", path.display())]
    BadFileName {
        /// The file.
        path: PathBuf,
        /// The expected pattern, in words.
        pattern: &'static str,
    },

    /// An image or mask could not be decoded.
    #[error("cannot decode image {}: {source}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },

    /// An image does not have the size the configuration (or its image) requires.
    #[error("wrong image size in {}: expected {expected:?} (width, height), got {got:?}", path.display())]
    ImageSize {
        /// The file.
        path: PathBuf,
        /// The expected `(width, height)`.
        expected: (u32, u32),
        /// The file's `(width, height)`.
        got: (u32, u32),
    },

    /// A WAV file could not be decoded (bad RIFF chunk, unsupported format, truncated data).
    #[error("cannot decode WAV {}: {source}", path.display())]
    Wav {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: hound::Error,
    },

    /// An array does not have the shape an operation needs.
    #[error("shape mismatch in {context}: expected {expected}, got {got:?}")]
    ShapeMismatch {
        /// The operation or file that was checked.
        context: String,
        /// The expected shape, in words.
        expected: String,
        /// The shape that was given.
        got: Vec<usize>,
    },

    /// A configuration value is out of its valid range. The caller must change `field`.
    #[error("invalid config: `{field}`: {reason}")]
    InvalidConfig {
        /// The configuration field.
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// An index (of a sample, a row or a window) is out of range.
    #[error("index {index} out of range for length {len}{}", context.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    IndexOutOfRange {
        /// The index.
        index: usize,
        /// The valid length.
        len: usize,
        /// Where the index came from (for example a split file), if any.
        context: Option<String>,
    },

    /// The operation or format is not supported.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),

    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// An error from the wavelet transforms (unknown wavelet, non-finite samples, ...).
    #[error(transparent)]
    Wavelets(#[from] dmad_wavelets::Error),

    /// An error from dmad-core.
    #[error(transparent)]
    Core(#[from] dmad_core::Error),
}

/// `Result` with dmad-data's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The file the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. }
            | Error::InvalidInput { path, .. }
            | Error::NonFinite { path, .. }
            | Error::EmptyFile { path }
            | Error::MissingColumn { path, .. }
            | Error::Categorical { path, .. }
            | Error::BadFileName { path, .. }
            | Error::Image { path, .. }
            | Error::ImageSize { path, .. }
            | Error::Wav { path, .. } => Some(path),
            _ => None,
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn invalid(
        path: &Path,
        line: Option<usize>,
        field: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidInput {
            path: path.to_path_buf(),
            line,
            field: field.map(str::to_string),
            reason: reason.into(),
        }
    }
}

/// Reads a whole file, mapping the error to [`Error::Io`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Reads a whole text file (gunzipped when its name ends in `.gz`), mapping a non-UTF-8 file
/// to [`Error::InvalidInput`].
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let mut bytes = read_file(path)?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
        && !bytes.is_empty()
    {
        bytes = gunzip(&bytes, path)?;
    }
    String::from_utf8(bytes)
        .map_err(|e| Error::invalid(path, None, None, format!("not UTF-8: {e}")))
}

/// Lists the files (not folders) directly in `dir`, sorted by name, whose names pass `keep`.
pub(crate) fn list_files(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if keep(name) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Decompresses a (single-member) gzip file, checking its CRC-32 and size.
pub(crate) fn gunzip(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let bad = |r: &str| Error::invalid(path, None, Some("gzip"), r.to_string());
    if bytes.len() < 18 || bytes[0] != 0x1f || bytes[1] != 0x8b || bytes[2] != 8 {
        return Err(bad("not a gzip file (or truncated)"));
    }
    let flags = bytes[3];
    let mut pos = 10;
    if flags & 4 != 0 {
        let xlen = u16::from_le_bytes([bytes[pos], bytes[pos + 1]]) as usize;
        pos += 2 + xlen;
    }
    for flag in [8u8, 16] {
        if flags & flag != 0 {
            let end = bytes
                .get(pos..)
                .and_then(|b| b.iter().position(|&c| c == 0))
                .ok_or_else(|| bad("truncated header"))?;
            pos += end + 1;
        }
    }
    if flags & 2 != 0 {
        pos += 2;
    }
    if pos + 8 > bytes.len() {
        return Err(bad("truncated header"));
    }
    let trailer = &bytes[bytes.len() - 8..];
    let crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
    let size = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
    let out = miniz_oxide::inflate::decompress_to_vec(&bytes[pos..bytes.len() - 8])
        .map_err(|e| bad(&format!("deflate error (truncated or corrupt): {e:?}")))?;
    if out.len() as u32 != size || crate::npy::crc32(&out) != crc {
        return Err(bad("CRC-32 or size mismatch (truncated or corrupt)"));
    }
    Ok(out)
}
