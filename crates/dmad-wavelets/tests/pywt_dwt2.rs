//! The 2D DWT family against PyWavelets 1.8.0 (testdata/pywt/dwt2.json, a 37x50 image).

mod common;

use common::{assert_close, fixture, vec2};
use dmad_wavelets::{dwt2, idwt2, wavedec2, waverec2, Mode, NdArray, Wavelet};

fn arr(v: &serde_json::Value) -> NdArray {
    let (shape, data) = vec2(v);
    NdArray::new(shape, data).unwrap()
}

fn close(got: &NdArray, want: &serde_json::Value, what: &str) {
    let want = arr(want);
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert_close(got.data(), want.data(), 1e-10, what);
}

#[test]
fn dwt2_wavedec2_and_inverses_match_pywt() {
    let f = fixture("dwt2.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for c in cases {
        let name = c["wavelet"].as_str().unwrap();
        let mode: Mode = c["mode"].as_str().unwrap().parse().unwrap();
        let w = Wavelet::new(name).unwrap();
        let x = arr(&c["x"]);
        let what = format!("{name} {mode}");

        let (ca, [ch, cv, cd]) = dwt2(&x, &w, mode, [0, 1]).unwrap();
        let want = &c["dwt2"];
        close(&ca, &want["ca"], &format!("{what} dwt2 cA"));
        close(&ch, &want["ch"], &format!("{what} dwt2 cH"));
        close(&cv, &want["cv"], &format!("{what} dwt2 cV"));
        close(&cd, &want["cd"], &format!("{what} dwt2 cD"));
        let back = idwt2(&ca, &[ch, cv, cd], &w, mode, [0, 1]).unwrap();
        // idwt2 of an odd-sized image gives one more row: compare the common part.
        let rows = x.shape()[0];
        let cols = back.shape()[1];
        assert_eq!(cols, x.shape()[1], "{what}: idwt2 columns");
        assert_close(
            &back.data()[..rows * cols],
            x.data(),
            1e-10,
            &format!("{what} idwt2"),
        );

        let dec = wavedec2(&x, &w, mode, Some(2), [0, 1]).unwrap();
        let want = c["wavedec2_level2"].as_array().unwrap();
        assert_eq!(want.len(), 3);
        close(&dec.approx, &want[0], &format!("{what} wavedec2 cA2"));
        for (lvl, (got, exp)) in dec.details.iter().zip(&want[1..]).enumerate() {
            for (k, key) in ["ch", "cv", "cd"].iter().enumerate() {
                close(
                    &got[k],
                    &exp[*key],
                    &format!("{what} wavedec2 [{}] {key}", lvl + 1),
                );
            }
        }
        let rec = waverec2(&dec, &w, mode, [0, 1]).unwrap();
        close(&rec, &c["waverec2"], &format!("{what} waverec2"));
    }
}
