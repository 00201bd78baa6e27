//! A small reader of NumPy's `.npy` arrays and `.npz` archives (stored or deflated).

use std::path::Path;

use crate::error::{read_file, Error, Result};

/// An array read from an `.npy` file, converted to `f64`, in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// The values in C order; `len() == shape.iter().product()`.
    pub data: Vec<f64>,
    /// The file's dtype descriptor, for example `"|u1"` or `"<f8"`.
    pub descr: String,
}

impl NpyArray {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Reads an `.npy` file.
///
/// Supported dtypes: bool, (u)int 8/16/32/64 and float 16/32/64, either byte order, C or
/// Fortran order (converted to C order). Object and structured arrays are rejected.
///
/// # Errors
/// [`Error::EmptyFile`], or [`Error::InvalidInput`] naming the file and the header field for a
/// bad magic string, a malformed header or a data section shorter than the shape needs.
pub fn read_npy(path: impl AsRef<Path>) -> Result<NpyArray> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    parse_npy(&bytes, path)
}

/// Parses `.npy` bytes; `path` is only used in error messages.
///
/// # Errors
/// As [`read_npy`].
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    if bytes.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let bad = |field: &str, reason: String| Error::invalid(path, None, Some(field), reason);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad(
            "magic",
            "not an .npy file (no \\x93NUMPY magic)".into(),
        ));
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("header", "truncated header length".into()));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(bad("version", format!("unsupported .npy version {v}"))),
    };
    let end = start + header_len;
    if bytes.len() < end {
        return Err(bad("header", "truncated header".into()));
    }
    let header = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| bad("header", "header is not text".into()))?;
    let descr = header_value(header, "descr")
        .and_then(parse_quoted)
        .ok_or_else(|| bad("descr", format!("no dtype in header {header:?}")))?;
    let fortran = match header_value(header, "fortran_order").map(|v| v.trim_start()) {
        Some(v) if v.starts_with("True") => true,
        Some(v) if v.starts_with("False") => false,
        _ => {
            return Err(bad(
                "fortran_order",
                format!("missing or malformed in {header:?}"),
            ))
        }
    };
    let shape = header_value(header, "shape")
        .and_then(parse_shape)
        .ok_or_else(|| bad("shape", format!("missing or malformed in {header:?}")))?;
    let (conv, size) =
        dtype(&descr).ok_or_else(|| bad("descr", format!("unsupported dtype {descr:?}")))?;
    // Checked: a header may claim any shape; the data must be there before anything is
    // allocated for it.
    let need = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_mul(size).map(|b| (n, b)));
    let body = &bytes[end..];
    let Some((_, need)) = need.filter(|&(_, b)| b <= body.len()) else {
        return Err(bad(
            "data",
            format!(
                "truncated: shape {shape:?} needs {} bytes, file has {}",
                need.map_or("more than 2^64".to_string(), |(_, b)| b.to_string()),
                body.len()
            ),
        ));
    };
    let mut data: Vec<f64> = body[..need].chunks_exact(size).map(conv).collect();
    if fortran && shape.len() > 1 {
        data = fortran_to_c(&data, &shape);
    }
    Ok(NpyArray { shape, data, descr })
}

/// Reads every array of an `.npz` archive, in archive order, as `(name without .npy, array)`.
///
/// Handles the archives of `np.savez` (stored) and `np.savez_compressed` (deflate), with ZIP64
/// records as NumPy writes them; checks each member's CRC-32.
///
/// # Errors
/// [`Error::EmptyFile`], [`Error::InvalidInput`] naming the archive (and member) for a
/// malformed or truncated archive, or as [`read_npy`] for a bad member.
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, NpyArray)>> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    if bytes.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let members = zip_members(&bytes, path)?;
    let mut out = Vec::with_capacity(members.len());
    for (name, data) in members {
        let member_path = path.join(&name);
        let arr = parse_npy(&data, &member_path)?;
        out.push((name.strip_suffix(".npy").unwrap_or(&name).to_string(), arr));
    }
    Ok(out)
}

/// Finds `key: value` in a Python dict literal and returns the text after the colon.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    for quote in ['\'', '"'] {
        let pat = format!("{quote}{key}{quote}");
        if let Some(i) = header.find(&pat) {
            let rest = header[i + pat.len()..].trim_start();
            return rest.strip_prefix(':');
        }
    }
    None
}

fn parse_quoted(v: &str) -> Option<String> {
    let v = v.trim_start();
    let q = v.chars().next()?;
    if q != '\'' && q != '"' {
        return None;
    }
    let rest = &v[1..];
    let end = rest.find(q)?;
    Some(rest[..end].to_string())
}

fn parse_shape(v: &str) -> Option<Vec<usize>> {
    let v = v.trim_start().strip_prefix('(')?;
    let end = v.find(')')?;
    v[..end]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse().ok())
        .collect()
}

type Conv = fn(&[u8]) -> f64;

fn dtype(descr: &str) -> Option<(Conv, usize)> {
    macro_rules! le_be {
        ($t:ty, $n:expr, $big:expr) => {
            if $big {
                (
                    (|b: &[u8]| <$t>::from_be_bytes(b.try_into().unwrap()) as f64) as Conv,
                    $n,
                )
            } else {
                (
                    (|b: &[u8]| <$t>::from_le_bytes(b.try_into().unwrap()) as f64) as Conv,
                    $n,
                )
            }
        };
    }
    let (order, code) = descr.split_at(1);
    let big = match order {
        "<" | "|" | "=" => cfg!(target_endian = "big") && order == "=",
        ">" => true,
        _ => return None,
    };
    Some(match code {
        "b1" | "u1" => ((|b: &[u8]| b[0] as f64) as Conv, 1),
        "i1" => ((|b: &[u8]| b[0] as i8 as f64) as Conv, 1),
        "u2" => le_be!(u16, 2, big),
        "i2" => le_be!(i16, 2, big),
        "u4" => le_be!(u32, 4, big),
        "i4" => le_be!(i32, 4, big),
        "u8" => le_be!(u64, 8, big),
        "i8" => le_be!(i64, 8, big),
        "f4" => le_be!(f32, 4, big),
        "f8" => le_be!(f64, 8, big),
        "f2" => {
            if big {
                (
                    (|b: &[u8]| f16_to_f64(u16::from_be_bytes([b[0], b[1]]))) as Conv,
                    2,
                )
            } else {
                (
                    (|b: &[u8]| f16_to_f64(u16::from_le_bytes([b[0], b[1]]))) as Conv,
                    2,
                )
            }
        }
        _ => return None,
    })
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

fn fortran_to_c(data: &[f64], shape: &[usize]) -> Vec<f64> {
    let nd = shape.len();
    // Fortran strides: stride[0] = 1, stride[k] = stride[k-1] * shape[k-1].
    let mut fstride = vec![1usize; nd];
    for k in 1..nd {
        fstride[k] = fstride[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; nd];
    for _ in 0..data.len() {
        let off: usize = idx.iter().zip(&fstride).map(|(i, s)| i * s).sum();
        out.push(data[off]);
        for k in (0..nd).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(i..i.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(i..i.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(i..i.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Reads the members of a ZIP archive from its central directory.
fn zip_members(bytes: &[u8], path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let bad =
        |field: &str, reason: &str| Error::invalid(path, None, Some(field), reason.to_string());
    // End of central directory: signature 0x06054b50 within the last 65557 bytes.
    let lo = bytes.len().saturating_sub(22 + 65535);
    let eocd = (lo..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&i| u32_at(bytes, i) == Some(0x0605_4b50))
        .ok_or_else(|| {
            bad(
                "zip",
                "no end-of-central-directory record (not a ZIP/NPZ file, or truncated)",
            )
        })?;
    let mut count = u16_at(bytes, eocd + 10).unwrap_or(0) as u64;
    let mut cd_off = u32_at(bytes, eocd + 16).unwrap_or(0) as u64;
    if (count == 0xffff || cd_off == 0xffff_ffff) && eocd >= 20 {
        // ZIP64 end-of-central-directory locator just before the EOCD.
        if u32_at(bytes, eocd - 20) == Some(0x0706_4b50) {
            let z64 =
                u64_at(bytes, eocd - 12).ok_or_else(|| bad("zip64", "truncated locator"))? as usize;
            if u32_at(bytes, z64) != Some(0x0606_4b50) {
                return Err(bad("zip64", "bad ZIP64 end record"));
            }
            count =
                u64_at(bytes, z64.saturating_add(32)).ok_or_else(|| bad("zip64", "truncated"))?;
            cd_off =
                u64_at(bytes, z64.saturating_add(48)).ok_or_else(|| bad("zip64", "truncated"))?;
        }
    }
    let mut pos = cd_off as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        let trunc = || bad("central directory", "truncated central directory");
        if u32_at(bytes, pos) != Some(0x0201_4b50) {
            return Err(bad(
                "central directory",
                "bad central directory entry signature",
            ));
        }
        let method = u16_at(bytes, pos + 10).ok_or_else(trunc)?;
        let crc = u32_at(bytes, pos + 16).ok_or_else(trunc)?;
        let mut csize = u32_at(bytes, pos + 20).ok_or_else(trunc)? as u64;
        let mut usize_ = u32_at(bytes, pos + 24).ok_or_else(trunc)? as u64;
        let name_len = u16_at(bytes, pos + 28).ok_or_else(trunc)? as usize;
        let extra_len = u16_at(bytes, pos + 30).ok_or_else(trunc)? as usize;
        let comment_len = u16_at(bytes, pos + 32).ok_or_else(trunc)? as usize;
        let mut local = u32_at(bytes, pos + 42).ok_or_else(trunc)? as u64;
        let name_bytes = bytes.get(pos + 46..pos + 46 + name_len).ok_or_else(trunc)?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let extra = bytes
            .get(pos + 46 + name_len..pos + 46 + name_len + extra_len)
            .ok_or_else(trunc)?;
        // ZIP64 extended information: the fields that are 0xffffffff, in order.
        let mut e = 0;
        while e + 4 <= extra.len() {
            let id = u16_at(extra, e).unwrap_or(0);
            let len = u16_at(extra, e + 2).unwrap_or(0) as usize;
            if id == 1 {
                let mut f = e + 4;
                for v in [&mut usize_, &mut csize, &mut local] {
                    if *v == 0xffff_ffff {
                        *v = u64_at(extra, f)
                            .ok_or_else(|| bad("zip64", "truncated extra field"))?;
                        f += 8;
                    }
                }
            }
            e += 4 + len;
        }
        pos += 46 + name_len + extra_len + comment_len;

        let lp = local as usize;
        if u32_at(bytes, lp) != Some(0x0403_4b50) {
            return Err(bad(&name, "bad local header signature"));
        }
        let lname = u16_at(bytes, lp.saturating_add(26))
            .ok_or_else(|| bad(&name, "truncated local header"))? as usize;
        let lextra = u16_at(bytes, lp.saturating_add(28))
            .ok_or_else(|| bad(&name, "truncated local header"))? as usize;
        let start = lp.saturating_add(30 + lname + lextra);
        let raw = bytes
            .get(start..start.saturating_add(csize as usize))
            .ok_or_else(|| bad(&name, "truncated member data"))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => miniz_oxide::inflate::decompress_to_vec_with_limit(raw, usize_ as usize)
                .map_err(|e| bad(&name, &format!("deflate error: {e:?}")))?,
            _ => {
                return Err(bad(
                    &name,
                    "unsupported ZIP compression method (only stored and deflate)",
                ))
            }
        };
        if data.len() as u64 != usize_ {
            return Err(bad(&name, "member size differs from the central directory"));
        }
        if crc32(&data) != crc {
            return Err(bad(&name, "CRC-32 mismatch"));
        }
        out.push((name, data));
    }
    Ok(out)
}

/// CRC-32 (IEEE, as ZIP and gzip use it).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c = table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    c ^ 0xffff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy_bytes(descr: &str, fortran: bool, shape: &str, body: &[u8]) -> Vec<u8> {
        let mut h = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn parses_dtypes_and_orders() {
        let p = Path::new("x.npy");
        let a = parse_npy(&npy_bytes("|u1", false, "(2, 3)", &[0, 1, 2, 3, 4, 5]), p).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        // Fortran order: memory holds columns.
        let f = parse_npy(&npy_bytes("|u1", true, "(2, 3)", &[0, 3, 1, 4, 2, 5]), p).unwrap();
        assert_eq!(f.data, a.data);
        let body: Vec<u8> = [1.5f64, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let b = parse_npy(&npy_bytes(">f8", false, "(2,)", &body), p).unwrap();
        assert_eq!(b.data, vec![1.5, -2.0]);
        let body: Vec<u8> = [-7i16, 300].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            parse_npy(&npy_bytes("<i2", false, "(2,)", &body), p)
                .unwrap()
                .data,
            vec![-7.0, 300.0]
        );
        let h = parse_npy(
            &npy_bytes("<f2", false, "(1,)", &0x3c00u16.to_le_bytes()),
            p,
        )
        .unwrap();
        assert_eq!(h.data, vec![1.0]);
        let s = parse_npy(&npy_bytes("<f4", false, "()", &2.5f32.to_le_bytes()), p).unwrap();
        assert_eq!((s.shape.len(), s.data.clone()), (0, vec![2.5]));
    }

    #[test]
    fn bad_npy_inputs_name_the_file() {
        let p = Path::new("bad.npy");
        assert!(matches!(parse_npy(b"", p), Err(Error::EmptyFile { .. })));
        let e = parse_npy(b"PK\x03\x04 not numpy", p).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidInput { field: Some(f), .. } if f == "magic"),
            "{e}"
        );
        assert!(e.to_string().contains("bad.npy"));
        let e = parse_npy(&npy_bytes("|u1", false, "(2, 3)", &[0, 1, 2]), p).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidInput { field: Some(f), .. } if f == "data"),
            "{e}"
        );
        let e = parse_npy(&npy_bytes("|O", false, "(2,)", &[0; 16]), p).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidInput { field: Some(f), .. } if f == "descr"),
            "{e}"
        );
        let e = parse_npy(&npy_bytes("|u1", false, "(2, x)", &[0; 16]), p).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidInput { field: Some(f), .. } if f == "shape"),
            "{e}"
        );
        let full = npy_bytes("|u1", false, "(2,)", &[1, 2]);
        let e = parse_npy(&full[..20], p).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidInput { field: Some(f), .. } if f == "header"),
            "{e}"
        );
    }
}
