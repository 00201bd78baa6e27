//! Checked loading of safetensors weights files.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::error::{Error, Result};

/// The names and shapes of the variables of `varmap`, sorted by name.
pub fn varmap_shapes(varmap: &VarMap) -> Vec<(String, Vec<usize>)> {
    let data = varmap.data().lock().expect("VarMap mutex poisoned");
    let mut v: Vec<(String, Vec<usize>)> = data
        .iter()
        .map(|(k, var)| (k.clone(), var.dims().to_vec()))
        .collect();
    v.sort();
    v
}

fn checkpoint(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Lists at most a few items, then how many more.
fn few(items: &[String]) -> String {
    const SHOWN: usize = 6;
    let mut s = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

/// Reads a safetensors file and checks that it holds exactly the parameters `expected`
/// (names and shapes), then returns its tensors on `device`.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read, [`Error::Checkpoint`] naming the file if it is
/// empty, truncated or malformed, or its parameters differ from `expected` (the message lists
/// the missing, unknown and differently shaped parameters with both shapes).
pub fn read_checked(
    path: &Path,
    expected: &[(String, Vec<usize>)],
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(checkpoint(path, "the file is empty"));
    }
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        checkpoint(
            path,
            format!("not a valid safetensors file (truncated or malformed): {e}"),
        )
    })?;
    let found: HashMap<String, Vec<usize>> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec()))
        .collect();
    let want: HashMap<&str, &Vec<usize>> = expected.iter().map(|(n, s)| (n.as_str(), s)).collect();
    let mut missing: Vec<String> = expected
        .iter()
        .filter(|(n, _)| !found.contains_key(n))
        .map(|(n, s)| format!("{n} {s:?}"))
        .collect();
    let mut unknown: Vec<String> = found
        .iter()
        .filter(|(n, _)| !want.contains_key(n.as_str()))
        .map(|(n, s)| format!("{n} {s:?}"))
        .collect();
    let mut reshaped: Vec<String> = expected
        .iter()
        .filter_map(|(n, s)| match found.get(n) {
            Some(f) if f != s => Some(format!("{n}: file has {f:?}, config needs {s:?}")),
            _ => None,
        })
        .collect();
    missing.sort();
    unknown.sort();
    reshaped.sort();
    if !(missing.is_empty() && unknown.is_empty() && reshaped.is_empty()) {
        let mut parts = Vec::new();
        if !reshaped.is_empty() {
            parts.push(format!(
                "{} parameters have another shape ({})",
                reshaped.len(),
                few(&reshaped)
            ));
        }
        if !missing.is_empty() {
            parts.push(format!(
                "{} parameters the config needs are missing ({})",
                missing.len(),
                few(&missing)
            ));
        }
        if !unknown.is_empty() {
            parts.push(format!(
                "{} parameters are unknown to the config ({})",
                unknown.len(),
                few(&unknown)
            ));
        }
        return Err(checkpoint(
            path,
            format!(
                "the weights were saved for another configuration: {}",
                parts.join("; ")
            ),
        ));
    }
    candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| checkpoint(path, format!("cannot read the tensors: {e}")))
}

/// Loads a safetensors file into the variables of `varmap` (for resuming training), after
/// the same checks as [`read_checked`] against the variables `varmap` already has.
///
/// # Errors
/// As [`read_checked`].
pub fn load_into_varmap(varmap: &VarMap, path: &Path) -> Result<()> {
    let expected = varmap_shapes(varmap);
    let device = {
        let data = varmap.data().lock().expect("VarMap mutex poisoned");
        match data.values().next() {
            Some(v) => v.device().clone(),
            None => Device::Cpu,
        }
    };
    let tensors = read_checked(path, &expected, &device)?;
    let data = varmap.data().lock().expect("VarMap mutex poisoned");
    for (name, var) in data.iter() {
        let t = &tensors[name];
        var.set(&t.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

/// Untracked views of the variables of `varmap`, for inference copies of a network under
/// training: `UNet2d::new(cfg, VarBuilder::from_tensors(frozen_tensors(&varmap), dtype, &dev))`.
///
/// The views share storage with the variables (they follow every optimiser step) but record
/// no autograd graph, so a forward pass frees its intermediate tensors as it goes; with
/// attention layers this makes inference markedly faster and leaner than through the
/// variables themselves.
pub fn frozen_tensors(varmap: &VarMap) -> HashMap<String, Tensor> {
    let data = varmap.data().lock().expect("VarMap mutex poisoned");
    data.iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect()
}
