//! Checkpoint directories, written so that a crash never leaves a damaged "latest" checkpoint.
//!
//! Layout of a run's checkpoint directory:
//!
//! ```text
//! <dir>/latest                       name of the newest complete checkpoint (written last)
//! <dir>/step-00000500/weights.safetensors    model weights, by their VarBuilder names
//! <dir>/step-00000500/ema.safetensors        EMA of the weights (when the EMA is on)
//! <dir>/step-00000500/optimizer.safetensors  AdamW moments `m.<name>`, `v.<name>`
//! <dir>/step-00000500/state.json             format version, step, RNG, configs
//! ```
//!
//! Every file is written to a temporary name, synced and renamed into place; `latest` is
//! replaced only after the whole step directory is complete.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::error::io_err;
use crate::{Error, Result};

/// The checkpoint format version written by this crate.
pub const FORMAT_VERSION: u32 = 1;

/// Name of the file that points to the newest complete checkpoint.
pub const LATEST: &str = "latest";

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced, then
/// renamed over `path`.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

/// Writes the directory `dir` atomically: `fill` writes the contents into a fresh, empty
/// directory beside it (`.{name}.{tag}-{pid}` in `dir`'s parent, created with the parents),
/// which then takes `dir`'s place (an existing `dir` is moved aside first and removed after).
/// So `dir` is always either the old directory or the whole new one: a model directory a user
/// had is never left half-written. When `fill` fails the temporary directory is removed and
/// `dir` is untouched.
///
/// # Errors
/// `fill`'s error, or [`Error::Io`] naming the path.
pub fn write_dir_atomic<E: From<Error>>(
    dir: &Path,
    tag: &str,
    fill: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dir".into());
    let pid = std::process::id();
    let tmp = parent.join(format!(".{name}.{tag}-{pid}"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    if let Err(e) = fill(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = parent.join(format!(".{name}.{tag}-old-{pid}"));
    if dir.exists() {
        fs::rename(dir, &old).map_err(io_err(dir))?;
    }
    if let Err(e) = fs::rename(&tmp, dir) {
        // Put the old directory back rather than leave nothing at `dir`.
        if old.exists() {
            let _ = fs::rename(&old, dir);
        }
        return Err(io_err(dir)(e).into());
    }
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    Ok(())
}

/// Serialises named tensors to safetensors bytes and writes them atomically.
///
/// # Errors
/// [`Error::Io`] or a candle error.
pub fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let mut sorted: Vec<(&String, &Tensor)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let cpu: Vec<(String, Tensor)> = sorted
        .into_iter()
        .map(|(k, t)| Ok((k.clone(), t.to_device(&Device::Cpu)?)))
        .collect::<candle_core::Result<_>>()?;
    let bytes = safetensors::tensor::serialize(cpu.iter().map(|(k, t)| (k.as_str(), t)), None)
        .map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            reason: format!("cannot serialise tensors: {e}"),
        })?;
    write_atomic(path, &bytes)
}

/// Reads a safetensors file onto `device`, naming the file in any error (a truncated or
/// damaged file gives [`Error::Checkpoint`]).
///
/// # Errors
/// [`Error::Io`] if the file is missing, [`Error::Checkpoint`] if it cannot be parsed.
pub fn load_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        reason: format!("not a valid safetensors file (truncated or damaged?): {e}"),
    })?;
    let mut out = HashMap::with_capacity(st.len());
    for (name, view) in st.tensors() {
        let t =
            candle_core::safetensors::Load::load(&view, device).map_err(|e| Error::Checkpoint {
                path: path.to_path_buf(),
                reason: format!("tensor `{name}`: {e}"),
            })?;
        out.insert(name, t);
    }
    Ok(out)
}

/// The directory name of the checkpoint at `step`.
pub fn step_dir_name(step: usize) -> String {
    format!("step-{step:08}")
}

/// The newest complete checkpoint under `dir`, if any.
///
/// # Errors
/// [`Error::Checkpoint`] if `latest` names a directory that does not exist.
pub fn latest(dir: &Path) -> Result<Option<PathBuf>> {
    let pointer = dir.join(LATEST);
    let name = match fs::read_to_string(&pointer) {
        Ok(s) => s.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Io {
                path: pointer,
                source: e,
            })
        }
    };
    let path = dir.join(&name);
    if name.is_empty() || name.contains('/') || !path.is_dir() {
        return Err(Error::Checkpoint {
            path: pointer,
            reason: format!("points to {name:?}, which is not a checkpoint directory"),
        });
    }
    Ok(Some(path))
}

/// Points `latest` at `step_dir` and removes older step directories beyond `keep`.
pub(crate) fn commit(dir: &Path, step_dir: &Path, keep: usize) -> Result<()> {
    let name = step_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    write_atomic(&dir.join(LATEST), name.as_bytes())?;
    let mut steps: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("step-"))
        })
        .collect();
    steps.sort();
    let excess = steps.len().saturating_sub(keep);
    for old in steps.into_iter().take(excess) {
        if old != step_dir {
            let _ = fs::remove_dir_all(&old);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_round_trip_and_truncation_is_named() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("w.safetensors");
        let mut m = HashMap::new();
        m.insert(
            "a.b".to_string(),
            Tensor::arange(0f32, 6.0, &Device::Cpu)?.reshape((2, 3))?,
        );
        save_tensors(&path, &m)?;
        let back = load_tensors(&path, &Device::Cpu)?;
        assert_eq!(back["a.b"].to_vec2::<f32>()?, m["a.b"].to_vec2::<f32>()?);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);

        let bytes = fs::read(&path)?;
        fs::write(&path, &bytes[..bytes.len() - 5])?;
        match load_tensors(&path, &Device::Cpu) {
            Err(Error::Checkpoint { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(reason.contains("safetensors"), "{reason}");
            }
            other => panic!("expected a checkpoint error, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn latest_pointer() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        assert!(latest(dir.path())?.is_none());
        for step in [10, 20, 30] {
            let s = dir.path().join(step_dir_name(step));
            fs::create_dir(&s)?;
            commit(dir.path(), &s, 2)?;
        }
        assert_eq!(
            latest(dir.path())?.unwrap(),
            dir.path().join("step-00000030")
        );
        assert!(!dir.path().join("step-00000010").exists());
        assert!(dir.path().join("step-00000020").exists());
        fs::write(dir.path().join(LATEST), "step-99999999")?;
        assert!(matches!(latest(dir.path()), Err(Error::Checkpoint { .. })));
        Ok(())
    }

    #[test]
    fn a_directory_is_replaced_whole_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("model");
        write_dir_atomic::<Error>(&dir, "t", |d| write_atomic(&d.join("a"), b"one")).unwrap();
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"one");
        // A failing fill leaves the old directory as it was and no temporary behind.
        let err = write_dir_atomic::<Error>(&dir, "t", |d| {
            write_atomic(&d.join("a"), b"two")?;
            Err(Error::Io {
                path: d.to_path_buf(),
                source: std::io::Error::other("disk full"),
            })
        });
        assert!(err.is_err());
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"one");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
        // A complete fill replaces every file (the old ones are not merged in).
        write_dir_atomic::<Error>(&dir, "t", |d| write_atomic(&d.join("b"), b"three")).unwrap();
        assert!(!dir.join("a").exists());
        assert_eq!(fs::read(dir.join("b")).unwrap(), b"three");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
