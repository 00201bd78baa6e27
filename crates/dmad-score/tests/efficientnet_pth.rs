//! Reading legacy PyTorch checkpoints and converting them to safetensors, on a tiny
//! checkpoint written by `testdata/efficientnet/make_tiny_pth.py` in the format of
//! `efficientnet-lite0-57934424.pth`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use dmad_score::efficientnet::{pth, EfficientNet, EfficientNetConfig};
use dmad_score::Error;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/efficientnet")
        .join(name)
}

fn expected() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(testdata("tiny_expected.safetensors"), &Device::Cpu).unwrap()
}

fn assert_same(name: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(a.dims(), b.dims(), "{name}");
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a, b, "{name}: values differ");
}

#[test]
fn legacy_checkpoint_reads_every_tensor_exactly() {
    let tensors = pth::read_pth(testdata("tiny_legacy.pth")).unwrap();
    let want = expected();
    let mut floats = 0;
    for (name, t) in &tensors {
        if name.ends_with("num_batches_tracked") {
            assert_eq!(t.dtype(), DType::I64);
            assert_eq!(t.dims(), &[] as &[usize]);
            assert_eq!(t.to_scalar::<i64>().unwrap(), 12345);
        } else {
            // Includes `_fc.weight` (stored transposed) and `_fc.bias` (an offset view into
            // the storage of `_conv_head.weight`).
            assert_same(name, t, &want[name]);
            floats += 1;
        }
    }
    assert_eq!(floats, want.len());
    assert_eq!(floats, EfficientNetConfig::tiny().tensor_shapes().len());
}

#[test]
fn conversion_writes_a_loadable_safetensors_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.safetensors");
    let conv = pth::convert_to_safetensors(
        &EfficientNetConfig::tiny(),
        testdata("tiny_legacy.pth"),
        &out,
    )
    .unwrap();
    assert_eq!(
        conv.written,
        EfficientNetConfig::tiny().tensor_shapes().len()
    );
    assert_eq!(conv.dropped.len(), 16); // one per batch normalisation
    assert!(conv
        .dropped
        .iter()
        .all(|n| n.ends_with(".num_batches_tracked")));
    let got = candle_core::safetensors::load(&out, &Device::Cpu).unwrap();
    let want = expected();
    assert_eq!(got.len(), want.len());
    for (name, t) in &want {
        assert_same(name, &got[name], t);
    }
    let net =
        EfficientNet::from_safetensors(&EfficientNetConfig::tiny(), &out, DType::F32, &Device::Cpu)
            .unwrap();
    let x = Tensor::zeros((1, 3, 16, 16), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(net.forward(&x).unwrap().dims(), &[1, 10]);
}

#[test]
fn converting_for_the_wrong_architecture_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let pth_path = testdata("tiny_legacy.pth");
    let e = pth::convert_to_safetensors(
        &EfficientNetConfig::lite0(),
        &pth_path,
        dir.path().join("x.safetensors"),
    )
    .unwrap_err();
    match &e {
        Error::Weights {
            path,
            tensor,
            reason,
        } => {
            assert_eq!(path, &pth_path);
            assert_eq!(tensor.as_deref(), Some("_conv_stem.weight"));
            assert!(
                reason.contains("[8, 3, 3, 3]") && reason.contains("[32, 3, 3, 3]"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A network without a classifier finds `_fc.*` unexpected.
    let mut cfg = EfficientNetConfig::tiny();
    cfg.num_classes = None;
    let e =
        pth::convert_to_safetensors(&cfg, &pth_path, dir.path().join("y.safetensors")).unwrap_err();
    assert!(
        e.to_string().contains("`_fc.bias`") && e.to_string().contains("unexpected"),
        "{e}"
    );
    assert!(!dir.path().join("y.safetensors").exists());
}

#[test]
fn truncated_empty_and_malformed_checkpoints_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(testdata("tiny_legacy.pth")).unwrap();
    let cases: [(&str, &[u8]); 5] = [
        ("cut_in_data.pth", &bytes[..bytes.len() - 10]),
        ("cut_in_pickle.pth", &bytes[..2000]),
        ("empty.pth", b""),
        ("junk.pth", b"\x80\x02 certainly not a checkpoint"),
        ("fake_zip.pth", b"PK\x03\x04 not really a zip archive"),
    ];
    for (name, data) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        match pth::read_pth(&p) {
            Err(e @ Error::Weights { .. }) => {
                let Error::Weights { path, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(path, &p);
                assert!(e.to_string().contains(name), "{e}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let missing = dir.path().join("missing.pth");
    assert!(matches!(
        pth::read_pth(&missing),
        Err(Error::Core(dmad_core::Error::Io { .. }))
    ));
}
