//! `dmad generate`: normal or anomalous samples from a saved model, written as PNG (images,
//! scalograms, series plots), WAV (audio) or CSV (series windows, table rows), each anomaly
//! with its mask, and an `index.html` that shows them in a grid.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use dmad::generate::{io, AnomalyKind, GenerateConfig, Generator};
use dmad::{Detector, Modality};
use image::{Rgb, RgbImage};

/// What to generate.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Samples of the normal data, drawn from the model.
    Normal,
    /// Generated normal samples with anomalies of every kind of the modality.
    Anomalous,
}

/// The arguments of `dmad generate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The saved model.
    #[arg(long)]
    model: PathBuf,
    /// normal or anomalous.
    #[arg(long, value_enum, default_value = "normal")]
    kind: Kind,
    /// How many samples.
    #[arg(long, default_value_t = 8)]
    n: usize,
    /// Output directory.
    #[arg(long, default_value = "dmad-generated")]
    out: PathBuf,
    /// How far from normal the anomalies are, in (0, 1].
    #[arg(long, default_value_t = 0.7)]
    strength: f64,
    /// Sampler steps of the normal samples and of harmonisation.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Tables: the CSV the model was fitted on (label column `label`), so that rows are written
    /// in its original columns, and its normal rows give the anomalies' column statistics.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Tables: the split file used when fitting (default: every other normal row trained).
    #[arg(long)]
    split: Option<PathBuf>,
    /// Tables: which split of the split file.
    #[arg(long, default_value_t = 0)]
    split_index: usize,
}

/// One cell of the HTML grid.
struct Cell {
    title: String,
    /// Files shown as images.
    images: Vec<String>,
    /// Other files, linked.
    links: Vec<String>,
}

/// Runs `dmad generate`.
pub fn run(args: &Args, seed: u64, dev: &Device) -> Result<()> {
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    let det = Detector::load(&args.model, dev)
        .with_context(|| format!("loading the model {}", args.model.display()))?;
    let gen = Generator::new(
        &det,
        GenerateConfig {
            steps: args.steps,
            ..GenerateConfig::default()
        },
    )?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let modality = det.config().modality;
    let cells = match modality {
        Modality::Image => images(&gen, args, seed)?,
        Modality::Series => series(&gen, args, seed)?,
        Modality::Audio => audio(&gen, args, seed)?,
        Modality::Table => table(&gen, args, seed, dev)?,
    };
    let title = format!(
        "dmad generate: {} {modality} samples from {}",
        args.n,
        args.model.display()
    );
    let page = args.out.join("index.html");
    std::fs::write(&page, html(&title, args, &cells))
        .with_context(|| format!("writing {}", page.display()))?;
    println!(
        "wrote {} {} {modality} samples and {}",
        args.n,
        match args.kind {
            Kind::Normal => "normal",
            Kind::Anomalous => "anomalous",
        },
        page.display()
    );
    Ok(())
}

/// Normal samples, and the anomalies made from them when asked.
fn samples(
    gen: &Generator,
    args: &Args,
    seed: u64,
    reference: Option<&Tensor>,
) -> Result<Generated> {
    let normal = gen.normal(args.n, seed)?;
    Ok(match args.kind {
        Kind::Normal => Generated {
            x: normal.clone(),
            normal,
            masks: None,
            kinds: vec!["normal".into(); args.n],
        },
        Kind::Anomalous => {
            let a = gen.mixed_anomalies(&normal, args.strength, seed.wrapping_add(1), reference)?;
            Generated {
                x: a.x,
                normal,
                masks: Some(a.masks),
                kinds: a.kinds,
            }
        }
    })
}

struct Generated {
    x: Tensor,
    normal: Tensor,
    masks: Option<Vec<Tensor>>,
    kinds: Vec<String>,
}

fn name(i: usize, kind: &str) -> String {
    format!("{i:03}_{kind}")
}

fn images(gen: &Generator, args: &Args, seed: u64) -> Result<Vec<Cell>> {
    let g = samples(gen, args, seed, None)?;
    let mut cells = Vec::new();
    for i in 0..args.n {
        let base = name(i, &g.kinds[i]);
        let file = format!("{base}.png");
        io::write_png(args.out.join(&file), &g.x.get(i)?)?;
        let mut cell = Cell {
            title: g.kinds[i].clone(),
            images: vec![file],
            links: vec![],
        };
        if let Some(masks) = &g.masks {
            let m = format!("{base}_mask.png");
            io::write_mask_png(args.out.join(&m), &masks[i].get(0)?)?;
            let src = format!("{base}_normal.png");
            io::write_png(args.out.join(&src), &g.normal.get(i)?)?;
            cell.images.extend([m, src]);
        }
        cells.push(cell);
    }
    Ok(cells)
}

fn series(gen: &Generator, args: &Args, seed: u64) -> Result<Vec<Cell>> {
    let g = samples(gen, args, seed, None)?;
    let mut cells = Vec::new();
    for i in 0..args.n {
        let base = name(i, &g.kinds[i]);
        let x = g.x.get(i)?.to_vec2::<f32>()?; // [dims, window]
        let normal = g.normal.get(i)?.to_vec2::<f32>()?;
        let mask: Vec<f32> = match &g.masks {
            Some(m) => m[i].flatten_all()?.to_vec1::<f32>()?,
            None => vec![0.0; x[0].len()],
        };
        let mut csv = String::from("t");
        for d in 0..x.len() {
            write!(csv, ",x{d}")?;
        }
        csv.push_str(",mask\n");
        for t in 0..x[0].len() {
            write!(csv, "{t}")?;
            for row in &x {
                write!(csv, ",{}", row[t])?;
            }
            writeln!(csv, ",{}", mask[t] as u8)?;
        }
        let file = format!("{base}.csv");
        std::fs::write(args.out.join(&file), csv)?;
        let plot = format!("{base}.png");
        let path = args.out.join(&plot);
        let reference = (args.kind == Kind::Anomalous).then_some(normal[0].as_slice());
        line_plot(&x[0], reference, &mask, 480, 160)
            .save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        cells.push(Cell {
            title: g.kinds[i].clone(),
            images: vec![plot],
            links: vec![file],
        });
    }
    Ok(cells)
}

fn audio(gen: &Generator, args: &Args, seed: u64) -> Result<Vec<Cell>> {
    let rate = gen.detector().config().input.sample_rate;
    let (scalograms, waves) = gen.normal_audio(args.n, seed)?;
    let (x, waves, masks, kinds) = match args.kind {
        Kind::Normal => (scalograms, waves, None, vec!["normal".to_string(); args.n]),
        Kind::Anomalous => {
            let kinds = AnomalyKind::all(Modality::Audio);
            let (mut xs, mut ws, mut ms, mut names) = (vec![], vec![], vec![], vec![]);
            for i in 0..args.n {
                let AnomalyKind::Audio(k) = kinds[i % kinds.len()] else {
                    unreachable!("audio kinds")
                };
                let a = gen.anomalous_audio(
                    &waves.narrow(0, i, 1)?,
                    k,
                    args.strength,
                    seed.wrapping_add(1 + i as u64),
                )?;
                xs.push(a.scalograms);
                ws.push(a.injected.x);
                ms.push(a.frame_mask);
                names.push(k.name().to_string());
            }
            (
                Tensor::cat(&xs, 0)?,
                Tensor::cat(&ws, 0)?,
                Some(Tensor::cat(&ms, 0)?),
                names,
            )
        }
    };
    let mut cells = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let base = name(i, kind);
        let wav = format!("{base}.wav");
        io::write_wav(args.out.join(&wav), &waves.get(i)?.to_vec1::<f32>()?, rate)?;
        let png = format!("{base}.png");
        io::write_png(args.out.join(&png), &x.get(i)?)?;
        let mut cell = Cell {
            title: kind.clone(),
            images: vec![png],
            links: vec![wav],
        };
        if let Some(m) = &masks {
            // The frame mask over every scale.
            let (scales, _) = (x.dim(2)?, x.dim(3)?);
            let row = m.get(i)?.unsqueeze(0)?;
            let full = row.repeat((scales, 1))?;
            let file = format!("{base}_mask.png");
            io::write_mask_png(args.out.join(&file), &full)?;
            cell.images.push(file);
        }
        cells.push(cell);
    }
    Ok(cells)
}

/// The names, standardiser and normal train rows of the table the model was fitted on.
struct TableData {
    names: Vec<String>,
    mean: Vec<f64>,
    std: Vec<f64>,
    train: Tensor,
}

fn table_data(args: &Args, dev: &Device) -> Result<Option<TableData>> {
    let Some(csv) = &args.data else {
        return Ok(None);
    };
    let table = dmad::data::read_csv_table(csv, &dmad::data::TableConfig::default())?;
    let train: Vec<usize> = match &args.split {
        Some(p) => {
            let f = dmad::data::read_split_file(p)?;
            let n = f.splits.len();
            f.splits
                .into_iter()
                .nth(args.split_index)
                .with_context(|| format!("{} has {n} splits", p.display()))?
                .train
        }
        None => (0..table.rows())
            .filter(|&r| table.labels[r] == 0)
            .step_by(2)
            .collect(),
    };
    let st = dmad::data::tabular::Standardiser::fit(&table, &train)?;
    let rows = st.apply(&table, &train);
    let train_t = Tensor::from_vec(rows, (train.len(), table.cols()), dev)?;
    Ok(Some(TableData {
        names: table.names.clone(),
        mean: st.mean,
        std: st.std,
        train: train_t,
    }))
}

fn table(gen: &Generator, args: &Args, seed: u64, dev: &Device) -> Result<Vec<Cell>> {
    let data = table_data(args, dev)?;
    let g = samples(gen, args, seed, data.as_ref().map(|d| &d.train))?;
    let d = g.x.dim(1)?;
    let (names, rows) = match &data {
        Some(t) if t.names.len() == d => (
            t.names.clone(),
            dmad::generate::destandardise(&g.x, &t.mean, &t.std)?,
        ),
        Some(t) => bail!(
            "{} has {} feature columns, the model {d}",
            args.data.as_deref().unwrap_or(Path::new("")).display(),
            t.names.len()
        ),
        None => (
            (0..d).map(|j| format!("f{j}")).collect(),
            g.x.to_vec2::<f32>()?
                .into_iter()
                .map(|r| r.into_iter().map(f64::from).collect())
                .collect(),
        ),
    };
    let stem = match args.kind {
        Kind::Normal => "normal",
        Kind::Anomalous => "anomalous",
    };
    let mut header = names.clone();
    let file = format!("{stem}.csv");
    let mut csv = format!("{},kind\n", header.join(","));
    for (r, k) in rows.iter().zip(&g.kinds) {
        let v: Vec<String> = r.iter().map(|x| x.to_string()).collect();
        writeln!(csv, "{},{k}", v.join(","))?;
    }
    std::fs::write(args.out.join(&file), csv)?;
    let mut links = vec![file];
    let mut mask_rows = vec![];
    if let Some(masks) = &g.masks {
        mask_rows = masks
            .iter()
            .map(|m| Ok(m.flatten_all()?.to_vec1::<f32>()?))
            .collect::<Result<Vec<_>>>()?;
        let as_f64: Vec<Vec<f64>> = mask_rows
            .iter()
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect();
        let m = format!("{stem}_mask.csv");
        io::write_csv(args.out.join(&m), &header, &as_f64)?;
        links.push(m);
    }
    header.push("kind".into());
    // One cell holding the table (first 50 rows), changed values highlighted.
    let mut t = String::from("<table><tr>");
    for h in &header {
        write!(t, "<th>{h}</th>")?;
    }
    t.push_str("</tr>");
    for (i, r) in rows.iter().enumerate().take(50) {
        t.push_str("<tr>");
        for (j, v) in r.iter().enumerate() {
            let hot = mask_rows.get(i).is_some_and(|m| m[j] > 0.5);
            let style = if hot {
                " style=\"background:#fbb\""
            } else {
                ""
            };
            write!(t, "<td{style}>{v:.4}</td>")?;
        }
        write!(t, "<td>{}</td></tr>", g.kinds[i])?;
    }
    t.push_str("</table>");
    Ok(vec![Cell {
        title: t,
        images: vec![],
        links,
    }])
}

/// A line plot of `v` (black) over `reference` (grey) with the mask shaded red.
fn line_plot(v: &[f32], reference: Option<&[f32]>, mask: &[f32], w: u32, h: u32) -> RgbImage {
    let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    let n = v.len().max(2);
    let xat = |i: usize| (i as i64 * (w as i64 - 1)) / (n as i64 - 1);
    for (i, &m) in mask.iter().enumerate() {
        if m > 0.5 {
            line(
                &mut img,
                (xat(i), 0),
                (xat(i), h as i64 - 1),
                [255, 215, 215],
            );
        }
    }
    let all: Vec<f32> = v.iter().chain(reference.unwrap_or(&[])).copied().collect();
    let lo = all.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = all.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let span = (hi - lo).max(1e-6);
    let y = |t: f32| (((hi - t) / span) * (h as f32 - 7.0)) as i64 + 3;
    let mut draw = |s: &[f32], c: [u8; 3]| {
        for i in 1..s.len() {
            line(&mut img, (xat(i - 1), y(s[i - 1])), (xat(i), y(s[i])), c);
        }
    };
    if let Some(r) = reference {
        draw(r, [170, 170, 170]);
    }
    draw(v, [20, 20, 20]);
    img
}

fn line(img: &mut RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
    let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
    for s in 0..=steps {
        let x = x0 + (x1 - x0) * s / steps;
        let y = y0 + (y1 - y0) * s / steps;
        if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }
}

fn html(title: &str, args: &Args, cells: &[Cell]) -> String {
    let mut s = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title><style>\
         body{{font-family:sans-serif;margin:1em}} .grid{{display:flex;flex-wrap:wrap;gap:12px}}\
         .cell{{border:1px solid #ccc;padding:6px}} .cell img{{image-rendering:pixelated;\
         height:128px;margin-right:4px}} table{{border-collapse:collapse;font-size:12px}}\
         td,th{{border:1px solid #ddd;padding:2px 4px}}</style></head><body><h1>{title}</h1>\
         <p>kind {:?}, strength {}, {} sampler steps. Anomalies are shown with their mask \
         (white = changed) and the normal sample they were made from.</p><div class=\"grid\">",
        args.kind, args.strength, args.steps
    );
    for c in cells {
        s.push_str("<div class=\"cell\">");
        if c.images.is_empty() {
            s.push_str(&c.title);
        } else {
            let _ = write!(s, "<div>{}</div>", c.title);
        }
        s.push_str("<div>");
        for i in &c.images {
            let _ = write!(s, "<img src=\"{i}\" title=\"{i}\">");
        }
        s.push_str("</div>");
        for l in &c.links {
            let _ = write!(s, "<div><a href=\"{l}\">{l}</a></div>");
        }
        s.push_str("</div>");
    }
    s.push_str("</div></body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmad::DetectorConfig;

    /// A tiny table model on the shipped wbc table, saved, then `dmad generate` in both kinds:
    /// the CSVs (de-standardised into wbc's columns), the mask CSV and the page.
    #[test]
    fn generate_writes_rows_masks_and_a_page() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/data/tabular");
        let csv = root.join("wbc.csv");
        let split = root.join("splits/wbc.json");
        let dev = Device::Cpu;
        let task = dmad::prepare::table(&csv, Some(&split), 0, &dev).unwrap();
        let mut cfg = DetectorConfig::for_tables(task.train.dim(1).unwrap());
        cfg.train.steps = 20;
        cfg.scoring.steps = 10;
        let mut det = Detector::new(cfg, &dev).unwrap();
        det.fit(&task.train, |_| {}).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("wbc.model");
        det.save(&model).unwrap();
        for kind in [Kind::Normal, Kind::Anomalous] {
            let out = dir.path().join(format!("{kind:?}"));
            let args = Args {
                model: model.clone(),
                kind,
                n: 6,
                out: out.clone(),
                strength: 0.7,
                steps: 10,
                data: Some(csv.clone()),
                split: Some(split.clone()),
                split_index: 0,
            };
            run(&args, 0, &dev).unwrap();
            let stem = if kind == Kind::Normal {
                "normal"
            } else {
                "anomalous"
            };
            let text = std::fs::read_to_string(out.join(format!("{stem}.csv"))).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 7, "a header and 6 rows");
            assert!(lines[0].ends_with(",kind"));
            assert_eq!(
                lines[0].split(',').count(),
                31,
                "30 wbc columns and the kind"
            );
            let page = std::fs::read_to_string(out.join("index.html")).unwrap();
            assert!(page.contains("<table>"));
            let mask = out.join("anomalous_mask.csv");
            assert_eq!(mask.exists(), kind == Kind::Anomalous);
            if kind == Kind::Anomalous {
                assert!(lines[1].ends_with(",local") && lines[4].ends_with(",dependency"));
                assert!(
                    page.contains("background:#fbb"),
                    "changed cells are highlighted"
                );
            }
        }
        let bad = Args {
            model: dir.path().join("missing"),
            kind: Kind::Normal,
            n: 1,
            out: dir.path().join("x"),
            strength: 0.5,
            steps: 10,
            data: None,
            split: None,
            split_index: 0,
        };
        assert!(run(&bad, 0, &dev).is_err());
    }
}
