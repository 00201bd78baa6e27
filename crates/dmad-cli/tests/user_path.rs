//! A new user's path through the built `dmad` binary: any folder of data, unlabelled scoring,
//! every number checked, errors that say what to do. Each case asserts the exit code and a
//! fragment of the message. Models are tiny (DTE, or a few training steps) to keep this fast.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

fn dmad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmad"))
        .args(args)
        .arg("--quiet")
        .output()
        .expect("the dmad binary runs")
}

/// Runs `dmad args` and checks its exit code and that stdout or stderr holds each fragment.
#[track_caller]
fn expect(args: &[&str], code: i32, fragments: &[&str]) -> String {
    let out = dmad(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "dmad {args:?} exited with {:?}:\n{text}",
        out.status.code()
    );
    for f in fragments {
        assert!(text.contains(f), "dmad {args:?}: no {f:?} in:\n{text}");
    }
    text
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// A small grey PNG: a smooth pattern with a phase, plus a bright square when `defect`.
fn png(path: &Path, phase: u32, defect: bool) {
    let img = image::GrayImage::from_fn(32, 32, |x, y| {
        let v = ((x * 7 + y * 3 + phase * 5) % 64) as u8 + 96;
        let d = defect && (10..18).contains(&x) && (10..18).contains(&y);
        image::Luma([if d { 255 } else { v }])
    });
    img.save(path).expect("writes a PNG");
}

fn folder_of_pngs(dir: &Path, n: u32, defect: bool) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        png(&dir.join(format!("img_{i:02}.png")), i, defect);
    }
    dir.to_path_buf()
}

/// A CSV of `rows` normal rows with columns a, b, c (and `label` when `labelled`).
fn csv(path: &Path, rows: usize, labelled: bool) -> PathBuf {
    let mut text = String::from(if labelled { "a,b,c,label\n" } else { "a,b,c\n" });
    for r in 0..rows {
        let x = r as f64 / rows as f64;
        let label = if labelled {
            if r % 5 == 4 {
                ",1"
            } else {
                ",0"
            }
        } else {
            ""
        };
        let shift = if labelled && r % 5 == 4 { 5.0 } else { 0.0 };
        text.push_str(&format!(
            "{:.4},{:.4},{:.4}{label}\n",
            x + shift,
            1.0 - x,
            (x * 6.0).sin()
        ));
    }
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// An NPY file of f64 `(rows, cols)`.
fn npy(path: &Path, rows: usize, cols: usize) -> PathBuf {
    let mut h = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    for r in 0..rows {
        for c in 0..cols {
            b.extend_from_slice(&(((r * cols + c) % 7) as f64 * 0.3).to_le_bytes());
        }
    }
    std::fs::write(path, b).unwrap();
    path.to_path_buf()
}

fn fit_table(data: &Path, out: &Path) -> String {
    expect(
        &[
            "fit",
            "--modality",
            "table",
            "--scorer",
            "dte",
            "--data",
            s(data),
            "--out",
            s(out),
        ],
        0,
        &["saved"],
    )
}

#[test]
fn non_finite_table_values_name_the_file_row_and_column() {
    let d = TempDir::new().unwrap();
    let p = d.path().join("nan.csv");
    let mut text = String::from("a,b,label\n1,2,0\n3,NaN,0\n");
    for r in 0..40 {
        text.push_str(&format!("{},{},{}\n", r % 7, r % 5, u8::from(r % 9 == 0)));
    }
    text.push_str("2,inf,0\n");
    std::fs::write(&p, text).unwrap();
    let out = d.path().join("m");
    let args = [
        "fit",
        "--modality",
        "table",
        "--scorer",
        "dte",
        "--data",
        s(&p),
        "--out",
        s(&out),
    ];
    expect(
        &args,
        1,
        &[
            "non-finite value NaN",
            "nan.csv",
            "row 2 (line 3)",
            "column `b`",
            "--nan",
        ],
    );
    assert!(!out.exists(), "no model is written from bad data");
    let mut impute = args.to_vec();
    impute.extend(["--nan", "impute"]);
    expect(&impute, 0, &["saved"]);
    let mut drop = args.to_vec();
    drop.extend(["--nan", "drop", "--force"]);
    expect(&drop, 0, &["saved"]);
    let info = std::fs::read_to_string(out.join("data.json")).unwrap();
    assert!(info.contains("\"non_finite\": \"drop\""), "{info}");
}

#[test]
fn non_finite_series_points_are_named() {
    let d = TempDir::new().unwrap();
    let p = d.path().join("001_UCR_Anomaly_toy_100_150_160.txt");
    let mut text = String::new();
    for i in 0..200 {
        if i == 42 {
            text.push_str("NaN\n");
        } else {
            text.push_str(&format!("{}\n", (i as f64 * 0.3).sin()));
        }
    }
    std::fs::write(&p, text).unwrap();
    expect(
        &[
            "fit",
            "--modality",
            "series",
            "--scorer",
            "dte",
            "--data",
            s(&p),
            "--out",
            s(&d.path().join("m")),
        ],
        1,
        &["non-finite value NaN", "row 43", "001_UCR_Anomaly_toy"],
    );
}

#[test]
fn numbers_out_of_range_state_the_range() {
    let d = TempDir::new().unwrap();
    let data = csv(&d.path().join("t.csv"), 20, false);
    let out = d.path().join("m");
    let fit = |steps: &str| {
        vec![
            "fit".to_string(),
            "--modality".into(),
            "table".into(),
            "--data".into(),
            s(&data).into(),
            "--out".into(),
            s(&out).into(),
            "--steps".into(),
            steps.into(),
        ]
    };
    for bad in ["-1", "0", "1e300", "NaN", "2.5"] {
        let args = fit(bad);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        expect(
            &args,
            2,
            &["training steps must be a whole number from 1 to 10000000"],
        );
    }
    expect(
        &["demo", "--budget", "0"],
        2,
        &["the budget factor must be a number in (0, 100]"],
    );
    expect(&["demo", "--budget", "NaN"], 2, &["not finite"]);
    expect(&["demo", "--budget", "-1"], 2, &["(0, 100]"]);
    expect(&["demo", "--budget", "1e300"], 2, &["(0, 100]"]);
    expect(&["bench", "--minutes", "-5"], 2, &["(0, 10080]"]);
    expect(
        &[
            "fit",
            "--seed",
            "-1",
            "--modality",
            "table",
            "--data",
            "x",
            "--out",
            "y",
        ],
        2,
        &["the seed must be a whole number from 0"],
    );
    let model = d.path().join("none.model");
    let m = s(&model);
    expect(
        &["generate", "--model", m, "--n", "4000000000"],
        2,
        &["the number of samples must be a whole number from 1 to 100000"],
    );
    expect(
        &["generate", "--model", m, "--n", "-3"],
        2,
        &["from 1 to 100000"],
    );
    expect(
        &["generate", "--model", m, "--strength", "1.5"],
        2,
        &["(0, 1]"],
    );
    expect(
        &["generate", "--model", m, "--steps", "0"],
        2,
        &["from 1 to 1000"],
    );
    // A count in range on a path that is not a model: named, before anything is allocated.
    expect(
        &["generate", "--model", m, "--n", "10"],
        1,
        &["is not a model directory"],
    );
}

#[test]
fn a_plain_folder_fits_and_unlabelled_data_scores_without_metrics() {
    let d = TempDir::new().unwrap();
    let train = folder_of_pngs(&d.path().join("normal"), 6, false);
    let new = folder_of_pngs(&d.path().join("new"), 3, true);
    let model = d.path().join("plain.model");
    let fit = [
        "fit",
        "--modality",
        "image",
        "--scorer",
        "dte",
        "--data",
        s(&train),
        "--out",
        s(&model),
    ];
    let text = expect(&fit, 0, &["saved", "held-out normal samples"]);
    assert!(
        text.contains("fewer than 20"),
        "a threshold from few samples warns:\n{text}"
    );
    let info = std::fs::read_to_string(model.join("data.json")).unwrap();
    assert!(info.contains("\"layout\": \"files\""), "{info}");
    assert!(
        info.contains("quantile"),
        "the saved data says how the threshold was set: {info}"
    );

    // Refuses to replace a model without --force; replaces it with.
    expect(&fit, 1, &["already holds a model", "--force"]);
    let mut forced = fit.to_vec();
    forced.push("--force");
    expect(&forced, 0, &["saved"]);

    // Score a plain folder, one file and a pattern: scores.csv with an empty label column.
    let scores = d.path().join("scores");
    let one = new.join("img_00.png");
    let pattern = new.join("img_0?.png");
    for (data, n) in [(s(&new), 3), (s(&one), 1), (s(&pattern), 3)] {
        expect(
            &[
                "score",
                "--model",
                s(&model),
                "--data",
                data,
                "--out",
                s(&scores),
            ],
            0,
            &["samples scored", "unlabelled data"],
        );
        let csv = std::fs::read_to_string(scores.join("scores.csv")).unwrap();
        let rows: Vec<&str> = csv.lines().skip(1).collect();
        assert_eq!(rows.len(), n, "{csv}");
        assert!(
            rows.iter().all(|r| r.split(',').nth(3) == Some("")),
            "{csv}"
        );
    }
    expect(
        &["eval", "--model", s(&model), "--data", s(&new)],
        1,
        &["has no labels", "dmad score"],
    );
    let report = d.path().join("report.html");
    expect(
        &[
            "score",
            "--model",
            s(&model),
            "--data",
            s(&new),
            "--out",
            s(&scores),
            "--report",
            s(&report),
        ],
        0,
        &["report:"],
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("img_00.png") && html.contains("Unlabelled data"),
        "{html}"
    );
}

#[test]
fn layouts_that_hold_no_data_say_what_was_expected_and_found() {
    let d = TempDir::new().unwrap();
    let empty = d.path().join("empty");
    std::fs::create_dir_all(empty.join("train").join("good")).unwrap();
    let out = d.path().join("m");
    expect(
        &[
            "fit",
            "--modality",
            "image",
            "--data",
            s(&empty),
            "--out",
            s(&out),
        ],
        1,
        &["no images", "train/good"],
    );
    let other = d.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "hello").unwrap();
    expect(
        &[
            "fit",
            "--modality",
            "image",
            "--data",
            s(&other),
            "--out",
            s(&out),
        ],
        1,
        &[
            "no images found in",
            "expected PNG, JPEG, BMP or TIFF files, or an MVTec folder with train/good",
            "1 other files",
        ],
    );
    expect(
        &[
            "fit",
            "--modality",
            "audio",
            "--data",
            s(&other),
            "--out",
            s(&out),
        ],
        1,
        &["no WAV files found in", "DCASE"],
    );
    expect(
        &[
            "fit",
            "--modality",
            "table",
            "--data",
            s(&other),
            "--out",
            s(&out),
        ],
        1,
        &["expected one CSV file"],
    );
    expect(
        &[
            "fit",
            "--modality",
            "image",
            "--data",
            s(&d.path().join("missing")),
            "--out",
            s(&out),
        ],
        1,
        &["does not exist"],
    );
}

#[test]
fn the_wrong_model_for_the_data_is_named() {
    let d = TempDir::new().unwrap();
    let table = csv(&d.path().join("t.csv"), 40, false);
    let table_model = d.path().join("table.model");
    fit_table(&table, &table_model);
    let images = folder_of_pngs(&d.path().join("imgs"), 4, false);
    let scores = d.path().join("scores");
    expect(
        &[
            "score",
            "--model",
            s(&table_model),
            "--data",
            s(&images),
            "--out",
            s(&scores),
        ],
        1,
        &[
            "model/data mismatch",
            "a table model (3 columns)",
            "image data",
        ],
    );
    // Another number of columns.
    let narrow = d.path().join("narrow.csv");
    std::fs::write(&narrow, "a,b\n1,2\n3,4\n").unwrap();
    expect(
        &[
            "score",
            "--model",
            s(&table_model),
            "--data",
            s(&narrow),
            "--out",
            s(&scores),
        ],
        1,
        &["trained on 3 columns", "has 2"],
    );
    // An image model on a CSV.
    let image_model = d.path().join("image.model");
    expect(
        &[
            "fit",
            "--modality",
            "image",
            "--scorer",
            "dte",
            "--data",
            s(&images),
            "--out",
            s(&image_model),
        ],
        0,
        &["saved"],
    );
    expect(
        &["eval", "--model", s(&image_model), "--data", s(&table)],
        1,
        &["model/data mismatch", "an image model", "table data"],
    );
    // Not a model at all.
    expect(
        &["score", "--model", s(&images), "--data", s(&images)],
        1,
        &["not a dmad model directory"],
    );
}

#[test]
fn tables_in_npy_and_without_labels_fit_and_score() {
    let d = TempDir::new().unwrap();
    let x = npy(&d.path().join("x.npy"), 30, 4);
    let model = d.path().join("npy.model");
    fit_table(&x, &model);
    let scores = d.path().join("scores");
    expect(
        &[
            "score",
            "--model",
            s(&model),
            "--data",
            s(&x),
            "--out",
            s(&scores),
        ],
        0,
        &["30 samples scored"],
    );
    let plain = csv(&d.path().join("plain.csv"), 30, false);
    expect(
        &[
            "score",
            "--model",
            s(&model),
            "--data",
            s(&plain),
            "--out",
            s(&scores),
        ],
        1,
        &["trained on 4 columns", "has 3"],
    );
    // A labelled CSV evaluates, with a warning for its small test set.
    let labelled = csv(&d.path().join("labelled.csv"), 40, true);
    let lm = d.path().join("labelled.model");
    fit_table(&labelled, &lm);
    let report = d.path().join("eval.html");
    expect(
        &[
            "eval",
            "--model",
            s(&lm),
            "--data",
            s(&labelled),
            "--report",
            s(&report),
        ],
        0,
        &["AUROC", "small test set"],
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg") && html.contains("AUROC"), "{html}");
}

#[test]
fn a_resumed_fit_says_so() {
    let d = TempDir::new().unwrap();
    let data = csv(&d.path().join("t.csv"), 40, false);
    let ck = d.path().join("ck");
    let out = d.path().join("m");
    let args = [
        "fit",
        "--modality",
        "table",
        "--steps",
        "3",
        "--checkpoints",
        s(&ck),
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--force",
    ];
    expect(&args, 0, &["saved"]);
    expect(&args, 0, &["resuming from the checkpoint"]);
}

#[test]
fn a_fit_without_checkpoints_resumes_from_its_own_folder() {
    let d = TempDir::new().unwrap();
    let data = csv(&d.path().join("t.csv"), 40, false);
    let out = d.path().join("m");
    let own = d.path().join(".m.checkpoints");
    let args = [
        "fit",
        "--modality",
        "table",
        "--steps",
        "3",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--force",
    ];
    // A completed fit leaves no checkpoint folder behind.
    expect(&args, 0, &["saved"]);
    assert!(out.join("config.json").is_file());
    assert!(!own.exists(), "{} was left behind", own.display());
    // An interrupted fit leaves its checkpoints there: the next run resumes from them.
    let other = d.path().join("other");
    let ck_args = [
        "fit",
        "--modality",
        "table",
        "--steps",
        "3",
        "--checkpoints",
        s(&own),
        "--data",
        s(&data),
        "--out",
        s(&other),
    ];
    expect(&ck_args, 0, &["saved"]);
    assert!(own.is_dir());
    expect(&args, 0, &["resuming from the checkpoint", "saved"]);
    assert!(!own.exists());
}

/// A mono 16-bit PCM WAV of `seconds` of a tone at `rate` Hz.
fn wav(path: &Path, rate: u32, freq: f32, seconds: f32) {
    let n = (rate as f32 * seconds) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(2 * rate).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(2 * n).to_le_bytes());
    for i in 0..n {
        let v = (std::f32::consts::TAU * freq * i as f32 / rate as f32).sin() * 8000.0;
        b.extend_from_slice(&(v as i16).to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_folder_of_wav_files_fits_and_another_sample_rate_is_named() {
    let d = TempDir::new().unwrap();
    let train = d.path().join("hum");
    std::fs::create_dir_all(&train).unwrap();
    for i in 0..6 {
        wav(
            &train.join(format!("take{i}.wav")),
            8_000,
            200.0 + i as f32,
            1.0,
        );
    }
    let model = d.path().join("hum.model");
    expect(
        &[
            "fit",
            "--modality",
            "audio",
            "--scorer",
            "dte",
            "--data",
            s(&train),
            "--out",
            s(&model),
        ],
        0,
        &["saved"],
    );
    let scores = d.path().join("scores");
    expect(
        &[
            "score",
            "--model",
            s(&model),
            "--data",
            s(&train.join("take0.wav")),
            "--out",
            s(&scores),
        ],
        0,
        &["1 samples scored"],
    );
    let other = d.path().join("other.wav");
    wav(&other, 16_000, 200.0, 1.0);
    expect(
        &[
            "score",
            "--model",
            s(&model),
            "--data",
            s(&other),
            "--out",
            s(&scores),
        ],
        1,
        &["model/data mismatch", "8000 Hz", "is 16000 Hz"],
    );
}

#[test]
fn one_class_test_sets_and_corrupt_weights_are_errors() {
    let d = TempDir::new().unwrap();
    // Labelled, but every row normal: nothing to evaluate against.
    let p = d.path().join("normal.csv");
    let mut text = String::from("a,b,label\n");
    for r in 0..40 {
        text.push_str(&format!("{},{},0\n", r % 7, r % 3));
    }
    std::fs::write(&p, text).unwrap();
    let model = d.path().join("m");
    expect(
        &[
            "fit",
            "--modality",
            "table",
            "--steps",
            "2",
            "--data",
            s(&p),
            "--out",
            s(&model),
        ],
        0,
        &["saved"],
    );
    expect(
        &["eval", "--model", s(&model), "--data", s(&p)],
        1,
        &["one class only", "all normal"],
    );
    // Weights overwritten with NaN: named as a corrupt model, not as a score error.
    let w = model.join("weights.safetensors");
    let mut tensors = candle_core::safetensors::load(&w, &candle_core::Device::Cpu).unwrap();
    let (name, t) = tensors
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    let nan = (t.ones_like().unwrap() * f64::NAN).unwrap();
    tensors.insert(name, nan);
    candle_core::safetensors::save(&tensors, &w).unwrap();
    expect(
        &[
            "score",
            "--model",
            s(&model),
            "--data",
            s(&p),
            "--out",
            s(&d.path().join("sc")),
        ],
        1,
        &["is corrupt", "weights.safetensors", "NaN or infinite"],
    );
}

#[test]
fn generate_checks_its_memory_before_allocating() {
    let d = TempDir::new().unwrap();
    let model = d.path().join("big.model");
    std::fs::create_dir_all(&model).unwrap();
    let mut cfg = dmad::DetectorConfig::for_images(3);
    cfg.input.image_size = 4096;
    let saved = serde_json::json!({ "format_version": 1, "detector": cfg });
    std::fs::write(model.join("config.json"), saved.to_string()).unwrap();
    expect(
        &["generate", "--model", s(&model), "--n", "1000"],
        1,
        &["generating 1000 samples", "ask for at most"],
    );
}

#[test]
fn colour_images_for_a_grey_model_are_a_warning() {
    let d = TempDir::new().unwrap();
    let train = folder_of_pngs(&d.path().join("grey"), 6, false);
    let model = d.path().join("grey.model");
    let fit = [
        "fit",
        "--modality",
        "image",
        "--scorer",
        "dte",
        "--data",
        s(&train),
        "--out",
        s(&model),
    ];
    expect(&fit, 0, &["saved"]);
    let colour = d.path().join("colour.png");
    image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 90]))
        .save(&colour)
        .unwrap();
    expect(
        &[
            "score",
            "--model",
            s(&model),
            "--data",
            s(&colour),
            "--out",
            s(&d.path().join("sc")),
        ],
        0,
        &["trained on grey images", "converted to grey"],
    );
}

#[test]
fn a_plain_series_file_fits_and_scores_without_labels() {
    let d = TempDir::new().unwrap();
    let two = d.path().join("two.csv");
    let mut text = String::from("x,y\n");
    for i in 0..300 {
        let t = i as f64 * 0.2;
        text.push_str(&format!("{:.4},{:.4}\n", t.sin(), t.cos()));
    }
    std::fs::write(&two, text).unwrap();
    let model = d.path().join("series.model");
    expect(
        &[
            "fit",
            "--modality",
            "series",
            "--scorer",
            "dte",
            "--data",
            s(&two),
            "--out",
            s(&model),
        ],
        0,
        &["saved"],
    );
    let scores = d.path().join("scores");
    expect(
        &[
            "score",
            "--model",
            s(&model),
            "--data",
            s(&two),
            "--out",
            s(&scores),
        ],
        0,
        &["300 points scored", "unlabelled data"],
    );
    expect(
        &["eval", "--model", s(&model), "--data", s(&two)],
        1,
        &["has no labels"],
    );
    let one = d.path().join("one.txt");
    std::fs::write(&one, "1\n2\n3\n".repeat(40)).unwrap();
    expect(
        &[
            "score",
            "--model",
            s(&model),
            "--data",
            s(&one),
            "--out",
            s(&scores),
        ],
        1,
        &["trained on series of 2 channels", "has 1"],
    );
    let bad = d.path().join("bad.txt");
    std::fs::write(&bad, "1,2\n3,x\n").unwrap();
    expect(
        &[
            "score",
            "--model",
            s(&model),
            "--data",
            s(&bad),
            "--out",
            s(&scores),
        ],
        1,
        &["bad.txt at line 2", "not a number"],
    );
}

#[test]
fn a_multivariate_series_fits_and_scores_with_imputation_diffusion() {
    let d = TempDir::new().unwrap();
    // Three channels of period 30 with a flat stretch (a discord) at points 450..465.
    let multi = d.path().join("multi.csv");
    let mut text = String::from("a,b,c\n");
    for i in 0..600 {
        let t = 2.0 * std::f64::consts::PI * i as f64 / 30.0;
        let v = if (450..465).contains(&i) {
            [0.0; 3]
        } else {
            [t.sin(), t.cos(), (2.0 * t).sin()]
        };
        text.push_str(&format!("{:.4},{:.4},{:.4}\n", v[0], v[1], v[2]));
    }
    std::fs::write(&multi, text).unwrap();
    let model = d.path().join("multi.model");
    let fit = |data: &Path, out: &Path| -> Vec<String> {
        [
            "fit",
            "--modality",
            "series",
            "--scorer",
            "imputation",
            "--steps",
            "10",
            "--data",
            s(data),
            "--out",
            s(out),
        ]
        .map(String::from)
        .to_vec()
    };
    let args = fit(&multi, &model);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    expect(&args, 0, &["saved"]);
    let config = std::fs::read_to_string(model.join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    // Two periods of the training series, from its autocorrelation.
    assert_eq!(config["detector"]["input"]["window"], 64);
    assert_eq!(config["detector"]["network"]["in_channels"], 4);
    let scores = d.path().join("scores");
    expect(
        &[
            "score",
            "--model",
            s(&model),
            "--data",
            s(&multi),
            "--out",
            s(&scores),
        ],
        0,
        &["600 points scored"],
    );
    // The model takes three channels, not the mask's fourth.
    let one = d.path().join("one.txt");
    std::fs::write(&one, "1\n2\n3\n".repeat(40)).unwrap();
    expect(
        &[
            "score",
            "--model",
            s(&model),
            "--data",
            s(&one),
            "--out",
            s(&scores),
        ],
        1,
        &["trained on series of 3 channels", "has 1"],
    );
    // Too short for any period: the default window (256 points) does not fit 20 points.
    let short = d.path().join("short.txt");
    std::fs::write(&short, "1\n2\n".repeat(10)).unwrap();
    let args = fit(&short, &d.path().join("short.model"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    expect(&args, 1, &["short.txt", "window"]);
    // A constant series: no period (the default window), every window centred, finite scores.
    let flat = d.path().join("flat.txt");
    std::fs::write(&flat, "1.0\n".repeat(400)).unwrap();
    let flat_model = d.path().join("flat.model");
    let args = fit(&flat, &flat_model);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    expect(&args, 0, &["saved"]);
    expect(
        &[
            "score",
            "--model",
            s(&flat_model),
            "--data",
            s(&flat),
            "--out",
            s(&scores),
        ],
        0,
        &["400 points scored"],
    );
}

/// A tiny pixel-space image config (no attention, 16x16, a few steps): fast enough for a test.
fn tiny_image_config(dir: &Path) -> PathBuf {
    let cfg = serde_json::json!({
        "modality": "image",
        "input": {"image_size": 16, "flip_augment": false},
        "network": {
            "kind": "unet2d", "in_channels": 1, "out_channels": 1,
            "down_block_types": ["DownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "UpBlock2D"],
            "block_out_channels": [8, 8], "layers_per_block": 1, "norm_num_groups": 4,
            "modules": {"wavelet_pyramid": false, "multi_head_attention": false,
                        "input_adapter": false, "hybrid_time_embedding": false}
        },
        "schedule": {},
        "scoring": {"steps": 10, "smoothing_sigma": 1.0, "map_score": "Max", "condition": 1.0},
        "scorer": {"kind": "reconstruction"},
        "train": {"steps": 3, "batch_size": 4, "lr_warmup_steps": 0},
        "threshold": {"kind": "quantile", "q": 0.99},
        "calibration_fraction": 0.2
    });
    let path = dir.join("tiny_image.json");
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    path
}

#[test]
fn a_labelled_validation_set_chooses_the_start_and_the_threshold() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("parts");
    folder_of_pngs(&root.join("train/good"), 8, false);
    folder_of_pngs(&root.join("test/good"), 4, false);
    folder_of_pngs(&root.join("test/square"), 4, true);
    let cfg = tiny_image_config(tmp.path());
    let out = tmp.path().join("m");
    let text = expect(
        &[
            "fit",
            "--modality",
            "image",
            "--data",
            s(&root),
            "--out",
            s(&out),
            "--config",
            s(&cfg),
            "--validation",
            s(&root),
        ],
        0,
        &["saved", "F1-optimal threshold on 4 normal samples"],
    );
    let saved = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(saved.contains("\"condition\": 1.0"), "{text}\n{saved}");
    // A folder without labelled images is named.
    let empty = tmp.path().join("empty");
    folder_of_pngs(&empty.join("test/good"), 3, false);
    expect(
        &[
            "fit",
            "--modality",
            "image",
            "--data",
            s(&root),
            "--out",
            s(&out),
            "--force",
            "--config",
            s(&cfg),
            "--validation",
            s(&empty),
        ],
        1,
        &["has no anomalous image", "empty"],
    );
}

#[test]
fn choose_picks_log_mel_settings_on_generated_anomalies_and_names_what_it_cannot() {
    let d = TempDir::new().unwrap();
    let root = d.path().join("machine");
    std::fs::create_dir_all(root.join("train")).unwrap();
    std::fs::create_dir_all(root.join("test")).unwrap();
    for i in 0..12 {
        wav(
            &root.join(format!("train/normal_{i:04}.wav")),
            16_000,
            440.0 + i as f32,
            1.0,
        );
    }
    wav(&root.join("test/normal_0000.wav"), 16_000, 445.0, 1.0);
    wav(
        &root.join("test/anomaly_0000_hum.wav"),
        16_000,
        3_000.0,
        1.0,
    );
    let model = d.path().join("m.model");
    let fit = |extra: &[&str]| {
        let mut args = vec![
            "fit",
            "--modality",
            "audio",
            "--steps",
            "100",
            "--data",
            s(&root),
            "--out",
            s(&model),
            "--force",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let args = fit(&["--scorer", "log-mel-dte", "--choose"]);
    let out = expect(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        0,
        &[
            "chosen on audio anomalies",
            "12 training clips",
            "bins",
            "saved",
        ],
    );
    assert!(
        out.contains("frame-difference") || out.contains("mean and deviation"),
        "{out}"
    );
    // Only log-mel DTE has these settings to choose.
    let args = fit(&["--scorer", "dte", "--choose"]);
    expect(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        1,
        &["--choose", "log-mel-dte"],
    );
}

#[test]
fn log_mel_unet_fits_the_pixel_u_net_on_log_mel_images_of_audio_only() {
    let d = TempDir::new().unwrap();
    let root = d.path().join("machine");
    std::fs::create_dir_all(root.join("train")).unwrap();
    std::fs::create_dir_all(root.join("test")).unwrap();
    for i in 0..4 {
        wav(
            &root.join(format!("train/normal_{i:04}.wav")),
            16_000,
            440.0 + i as f32,
            1.0,
        );
    }
    wav(&root.join("test/normal_0000.wav"), 16_000, 445.0, 1.0);
    wav(
        &root.join("test/anomaly_0000_hum.wav"),
        16_000,
        3_000.0,
        1.0,
    );
    let model = d.path().join("m.model");
    #[rustfmt::skip]
    let fit = ["fit", "--modality", "audio", "--scorer", "log-mel-unet", "--steps", "2",
               "--data", s(&root), "--out", s(&model)];
    expect(&fit, 0, &["saved"]);
    let config = std::fs::read_to_string(model.join("config.json")).unwrap();
    assert!(config.contains("\"log_mel_image\""), "{config}");
    assert!(config.contains("\"mean_reconstruction\": true"), "{config}");
    expect(
        &["eval", "--model", s(&model), "--data", s(&root)],
        0,
        &["AUROC"],
    );
    // Images have no log-mel spectrogram.
    let images = folder_of_pngs(&d.path().join("pngs"), 3, false);
    let image_model = d.path().join("i.model");
    #[rustfmt::skip]
    let fit = ["fit", "--modality", "image", "--scorer", "log-mel-unet", "--data", s(&images),
               "--out", s(&image_model)];
    expect(&fit, 1, &["log-mel-unet", "audio"]);
}

#[test]
fn positions_and_patch_norm_shape_a_feature_space_model_and_are_refused_elsewhere() {
    let d = TempDir::new().unwrap();
    let train = folder_of_pngs(&d.path().join("normal"), 6, false);
    // A seeded random EfficientNet-Lite0: the flag's plumbing, not detection, is under test.
    let weights = d.path().join("lite0.safetensors");
    let mut net = dmad::score::efficientnet::EfficientNetConfig::lite0();
    net.num_classes = None;
    let w = dmad::score::efficientnet::random_weights(&net, 3).unwrap();
    candle_core::safetensors::save(&w, &weights).unwrap();
    let model = d.path().join("aligned.model");
    expect(
        &[
            "fit",
            "--modality",
            "image",
            "--scorer",
            "feature-dte",
            "--positions",
            "--patch-norm",
            "isotropic",
            "--efficientnet",
            s(&weights),
            "--steps",
            "2",
            "--data",
            s(&train),
            "--out",
            s(&model),
        ],
        0,
        &["saved"],
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        cfg["detector"]["feature_space"]["positional"], true,
        "{cfg}"
    );
    // Lite0's 152 patch features and the row and column.
    assert_eq!(cfg["detector"]["network"]["in_features"], 154, "{cfg}");
    assert_eq!(
        cfg["detector"]["feature_space"]["normalisation"], "isotropic",
        "{cfg}"
    );
    // A pixel-space or table model has no patches to place.
    let table = csv(&d.path().join("t.csv"), 30, false);
    expect(
        &[
            "fit",
            "--modality",
            "table",
            "--positions",
            "--data",
            s(&table),
            "--out",
            s(&d.path().join("t.model")),
        ],
        1,
        &["--positions", "feature-dte", "feature_space"],
    );
    expect(
        &[
            "fit",
            "--modality",
            "table",
            "--patch-norm",
            "isotropic",
            "--data",
            s(&table),
            "--out",
            s(&d.path().join("t.model")),
        ],
        1,
        &["--patch-norm", "feature-dte", "feature_space"],
    );
}
