//! Bad input gets a clear error variant, never a panic.

use dmad_wavelets::{
    dwt, dwt2, dwt_axis, idwt, wavedec, wavedec2, waverec, Error, Mode, NdArray, Wavelet,
};

fn db2() -> Wavelet {
    Wavelet::new("db2").unwrap()
}

#[test]
fn empty_signal() {
    assert!(matches!(
        dwt(&[], &db2(), Mode::Symmetric),
        Err(Error::EmptyInput { .. })
    ));
    assert!(matches!(
        wavedec(&[], &db2(), Mode::Symmetric, None),
        Err(Error::EmptyInput { .. })
    ));
    assert!(matches!(
        waverec(&[], &db2(), Mode::Symmetric),
        Err(Error::EmptyInput { .. })
    ));
    assert!(matches!(
        idwt(None, None, &db2(), Mode::Symmetric),
        Err(Error::EmptyInput { .. })
    ));
}

#[test]
fn unknown_wavelet_and_mode() {
    match Wavelet::new("db39") {
        Err(Error::UnknownWavelet { name }) => assert_eq!(name, "db39"),
        other => panic!("expected UnknownWavelet, got {other:?}"),
    }
    assert!(matches!(
        "mirror".parse::<Mode>(),
        Err(Error::UnknownMode { .. })
    ));
}

#[test]
fn level_above_max() {
    let x = vec![0.5; 100];
    // dwt_max_level(100, 4) = floor(log2(100 / 3)) = 5
    match wavedec(&x, &db2(), Mode::Symmetric, Some(6)) {
        Err(Error::LevelTooHigh { level: 6, max: 5 }) => {}
        other => panic!("expected LevelTooHigh, got {other:?}"),
    }
    let img = NdArray::zeros(vec![16, 64]);
    assert!(matches!(
        wavedec2(&img, &db2(), Mode::Symmetric, Some(3), [0, 1]),
        Err(Error::LevelTooHigh { level: 3, max: 2 })
    ));
}

#[test]
fn nan_and_infinity() {
    let mut x = vec![1.0; 10];
    x[3] = f64::NAN;
    assert!(matches!(
        dwt(&x, &db2(), Mode::Symmetric),
        Err(Error::NonFinite { index: 3, .. })
    ));
    x[3] = f64::INFINITY;
    assert!(matches!(
        wavedec(&x, &db2(), Mode::Zero, None),
        Err(Error::NonFinite { index: 3, .. })
    ));
    let c = vec![f64::NAN; 4];
    assert!(matches!(
        idwt(Some(&c), None, &db2(), Mode::Symmetric),
        Err(Error::NonFinite { .. })
    ));
}

#[test]
fn shapes_axes_and_short_inputs() {
    assert!(matches!(
        idwt(Some(&[1.0; 4]), Some(&[1.0; 5]), &db2(), Mode::Symmetric),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        idwt(Some(&[1.0]), None, &db2(), Mode::Symmetric),
        Err(Error::TooShort { .. })
    ));
    assert!(matches!(
        dwt(&[1.0], &db2(), Mode::Reflect),
        Err(Error::TooShort { .. })
    ));
    let x = NdArray::zeros(vec![4, 4]);
    assert!(matches!(
        dwt_axis(&x, &db2(), Mode::Symmetric, 2),
        Err(Error::InvalidAxis { axis: 2, ndim: 2 })
    ));
    assert!(matches!(
        dwt2(&x, &db2(), Mode::Symmetric, [1, 1]),
        Err(Error::InvalidAxis { .. })
    ));
    assert!(matches!(
        NdArray::new(vec![2, 3], vec![0.0; 5]),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn invalid_filter_banks() {
    let ok = vec![0.5, 0.5];
    assert!(
        Wavelet::from_filter_bank("mine", [ok.clone(), ok.clone(), ok.clone(), ok.clone()]).is_ok()
    );
    for bank in [
        [vec![], vec![], vec![], vec![]],
        [vec![1.0; 3], vec![1.0; 3], vec![1.0; 3], vec![1.0; 3]],
        [ok.clone(), vec![1.0; 4], ok.clone(), ok.clone()],
        [vec![f64::NAN, 1.0], ok.clone(), ok.clone(), ok.clone()],
    ] {
        assert!(matches!(
            Wavelet::from_filter_bank("bad", bank),
            Err(Error::InvalidFilterBank { .. })
        ));
    }
}

#[test]
fn user_filter_bank_behaves_like_the_builtin_one() {
    let w = Wavelet::new("db3").unwrap();
    let mine = Wavelet::from_filter_bank(
        "my-db3",
        [
            w.dec_lo().to_vec(),
            w.dec_hi().to_vec(),
            w.rec_lo().to_vec(),
            w.rec_hi().to_vec(),
        ],
    )
    .unwrap();
    let x: Vec<f64> = (0..50).map(|i| (i as f64).sqrt()).collect();
    assert_eq!(
        dwt(&x, &w, Mode::Smooth).unwrap(),
        dwt(&x, &mine, Mode::Smooth).unwrap()
    );
}
