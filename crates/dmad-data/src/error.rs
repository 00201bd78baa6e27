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

/// Reads a whole text file, mapping a non-UTF-8 file to [`Error::InvalidInput`].
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let bytes = read_file(path)?;
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
