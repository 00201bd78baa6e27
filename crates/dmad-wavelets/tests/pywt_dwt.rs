//! The 1D DWT family against PyWavelets 1.8.0 (testdata/pywt, see its README).

mod common;

use common::{assert_close, fixture, vec1};
use dmad_wavelets::{dwt, idwt, wavedec, waverec, Mode, Wavelet};

#[test]
fn filters_match_pywt_bit_for_bit() {
    let f = fixture("filters.json");
    let all = f["wavelets"].as_object().unwrap();
    assert_eq!(all.len(), 75);
    for (name, bank) in all {
        let w = Wavelet::new(name).unwrap();
        for (key, got) in [
            ("dec_lo", w.dec_lo()),
            ("dec_hi", w.dec_hi()),
            ("rec_lo", w.rec_lo()),
            ("rec_hi", w.rec_hi()),
        ] {
            assert_eq!(got, &vec1(&bank[key])[..], "{name} {key}");
        }
    }
}

#[test]
fn dwt_and_idwt_match_pywt() {
    let f = fixture("dwt.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 490);
    for c in cases {
        let name = c["wavelet"].as_str().unwrap();
        let mode: Mode = c["mode"].as_str().unwrap().parse().unwrap();
        let w = Wavelet::new(name).unwrap();
        let x = vec1(&c["x"]);
        let what = format!("{name} {mode} n={}", x.len());
        let (ca, cd) = dwt(&x, &w, mode).unwrap();
        assert_close(&ca, &vec1(&c["ca"]), 1e-10, &format!("{what} cA"));
        assert_close(&cd, &vec1(&c["cd"]), 1e-10, &format!("{what} cD"));
        let y = idwt(Some(&ca), Some(&cd), &w, mode).unwrap();
        assert_close(&y, &vec1(&c["idwt"]), 1e-10, &format!("{what} idwt"));
    }
}

#[test]
fn wavedec_and_waverec_match_pywt() {
    let f = fixture("wavedec.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 16);
    for c in cases {
        let name = c["wavelet"].as_str().unwrap();
        let mode: Mode = c["mode"].as_str().unwrap().parse().unwrap();
        let level = c["level"].as_u64().unwrap() as usize;
        let w = Wavelet::new(name).unwrap();
        let x = vec1(&c["x"]);
        let what = format!("{name} {mode} n={} level={level}", x.len());
        let coeffs = wavedec(&x, &w, mode, Some(level)).unwrap();
        let want = c["coeffs"].as_array().unwrap();
        assert_eq!(coeffs.len(), want.len(), "{what}");
        for (k, (g, e)) in coeffs.iter().zip(want).enumerate() {
            assert_close(g, &vec1(e), 1e-10, &format!("{what} coeffs[{k}]"));
        }
        // Default level is the maximum level.
        assert_eq!(wavedec(&x, &w, mode, None).unwrap().len(), level + 1);
        let y = waverec(&coeffs, &w, mode).unwrap();
        assert_close(&y, &vec1(&c["waverec"]), 1e-10, &format!("{what} waverec"));
    }
}
