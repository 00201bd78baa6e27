//! What the command line writes: CSV of scores, PNG heat-map overlays and series plots, SVG
//! ROC curves and the HTML report, and the plain-text metrics table.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Tensor;
use image::{Rgb, RgbImage};

use crate::tasks::{Metrics, Scored};

/// Writes `scores.csv`, and PNG overlays (images) or a PNG plot (series) into `out`.
pub fn write_scores(det: &dmad::Detector, s: &Scored, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let threshold = det.threshold()?.value;
    let mut csv = String::from("index,source,kind,label,score,anomalous\n");
    for (i, &score) in s.scores.iter().enumerate() {
        // Unlabelled data: the label column stays empty.
        let label = match (s.labelled, s.labels.get(i)) {
            (true, Some(l)) => l.to_string(),
            _ => String::new(),
        };
        let _ = writeln!(
            csv,
            "{i},{},{},{label},{score},{}",
            csv_field(s.sources.get(i).map(String::as_str).unwrap_or("")),
            csv_field(s.kinds.get(i).map(String::as_str).unwrap_or("")),
            u8::from(score as f64 >= threshold)
        );
    }
    let path = out.join("scores.csv");
    std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
    if let (Some(x), Some(maps)) = (&s.inputs, &s.maps) {
        for i in 0..x.dim(0)? {
            let img = overlay(&x.get(i)?, &maps.get(i)?)?;
            let p = out.join(format!("overlay_{i:04}.png"));
            img.save(&p)
                .with_context(|| format!("writing {}", p.display()))?;
        }
    }
    if let Some(values) = &s.series {
        let img = series_plot(values, &s.scores, threshold, &s.labels, 1200, 300);
        let p = out.join("series.png");
        img.save(&p)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// A score or threshold at a precision that tells close values apart: 6 significant digits,
/// in scientific notation when it is very small or very large.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() {
        format!("{v}")
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.5e}")
    } else {
        let decimals = (5 - a.log10().floor() as i32).clamp(0, 8) as usize;
        format!("{v:.decimals$}")
    }
}

/// What `dmad score` prints: how many samples, how many above the threshold, and the highest
/// scores with their sources.
pub fn score_summary(s: &Scored) -> String {
    let flagged = s
        .scores
        .iter()
        .filter(|&&v| v as f64 >= s.threshold)
        .count();
    let unit = if s.series.is_some() {
        "points"
    } else {
        "samples"
    };
    let mut out = format!(
        "{} {unit} scored, {flagged} at or above the threshold {}",
        s.scores.len(),
        number(s.threshold)
    );
    if s.series.is_none() {
        let mut order: Vec<usize> = (0..s.scores.len()).collect();
        order.sort_by(|&a, &b| s.scores[b].total_cmp(&s.scores[a]));
        out.push_str("\nhighest scores:");
        for &i in order.iter().take(5) {
            let _ = write!(
                out,
                "\n  {}  {}",
                number(s.scores[i] as f64),
                s.sources.get(i).map_or(format!("#{i}"), |v| v.clone())
            );
        }
    }
    if !s.labelled {
        out.push_str("\n(unlabelled data: scores only; `dmad eval` needs labels)");
    }
    out
}

/// Escapes text for HTML.
fn html_escape(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes the HTML report of one `dmad score` or `dmad eval` run to `path`: the metrics when
/// there are labels (with the ROC curve), every sample's score at 6 significant digits,
/// highest first, with its anomaly-map overlay (images and scalograms, the first 200), or
/// the series plot.
pub fn write_report(
    path: &Path,
    title: &str,
    s: &Scored,
    metrics: Option<&Metrics>,
    score_seconds: f64,
) -> Result<()> {
    let mut html = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif}} td{{padding:0 8px}} \
         figure{{display:inline-block;margin:4px}}</style><h1>{t}</h1>",
        t = html_escape(title)
    );
    let flagged = s
        .scores
        .iter()
        .filter(|&&v| v as f64 >= s.threshold)
        .count();
    let _ = write!(
        html,
        "<p>{} scores, {flagged} at or above the threshold {}; scoring took {score_seconds:.3} s.</p>",
        s.scores.len(),
        number(s.threshold)
    );
    match metrics {
        Some(m) => {
            let _ = write!(
                html,
                "<pre>{}</pre>",
                html_escape(&metrics_table(&[(s.name.clone(), m.clone())]))
            );
            html.push_str(&roc_svg(&s.scores, &s.labels, "ROC")?);
        }
        None if !s.labelled => html.push_str("<p>Unlabelled data: scores only.</p>"),
        None => {}
    }
    if let Some(values) = &s.series {
        let img = series_plot(values, &s.scores, s.threshold, &s.labels, 1000, 260);
        let _ = write!(
            html,
            "<p>Series (top), point scores and threshold (bottom).</p><img src=\"{}\">",
            png_data_url(&img)?
        );
    } else {
        let mut order: Vec<usize> = (0..s.scores.len()).collect();
        order.sort_by(|&a, &b| s.scores[b].total_cmp(&s.scores[a]));
        if let (Some(x), Some(maps)) = (&s.inputs, &s.maps) {
            html.push_str("<h2>Highest scores: input and anomaly map</h2><div>");
            for &i in order.iter().take(200) {
                let img = overlay(&x.get(i)?, &maps.get(i)?)?;
                let _ = write!(
                    html,
                    "<figure><img src=\"{}\"><figcaption>{} {}</figcaption></figure>",
                    png_data_url(&img)?,
                    html_escape(s.sources.get(i).map(String::as_str).unwrap_or("")),
                    number(s.scores[i] as f64)
                );
            }
            html.push_str("</div>");
        }
        html.push_str("<h2>Scores</h2><table><tr><th>source</th><th>kind</th><th>score</th><th>anomalous</th></tr>");
        for &i in &order {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                html_escape(s.sources.get(i).map(String::as_str).unwrap_or("")),
                html_escape(s.kinds.get(i).map(String::as_str).unwrap_or("")),
                number(s.scores[i] as f64),
                if s.scores[i] as f64 >= s.threshold {
                    "yes"
                } else {
                    ""
                }
            );
        }
        html.push_str("</table>");
    }
    std::fs::write(path, html).with_context(|| format!("writing {}", path.display()))
}

/// Normalises values to [0, 1] by their min and max.
fn unit(v: &[f32]) -> Vec<f32> {
    let (lo, hi) = v
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let span = (hi - lo).max(1e-12);
    v.iter().map(|&x| (x - lo) / span).collect()
}

/// A perceptual colour map (approximately "inferno") for t in [0, 1].
fn colour(t: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 5] = [
        [0.0, 0.0, 4.0],
        [87.0, 16.0, 110.0],
        [188.0, 55.0, 84.0],
        [249.0, 142.0, 9.0],
        [252.0, 255.0, 164.0],
    ];
    let t = t.clamp(0.0, 1.0) * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f32;
    let c = |k: usize| (STOPS[i][k] * (1.0 - f) + STOPS[i + 1][k] * f) as u8;
    [c(0), c(1), c(2)]
}

/// The input image (first channel, grey) with its anomaly map blended on top, side by side
/// with the map alone.
pub fn overlay(x: &Tensor, map: &Tensor) -> Result<RgbImage> {
    let (h, w) = (x.dim(1)?, x.dim(2)?);
    let grey = x.get(0)?.flatten_all()?.to_vec1::<f32>()?;
    let m = unit(&map.flatten_all()?.to_vec1::<f32>()?);
    let mut img = RgbImage::new(2 * w as u32, h as u32);
    for r in 0..h {
        for c in 0..w {
            let g = ((grey[r * w + c] + 1.0) * 127.5).clamp(0.0, 255.0);
            let heat = colour(m[r * w + c]);
            let a = 0.5 * m[r * w + c];
            let blend = |k: usize| (g * (1.0 - a) + heat[k] as f32 * a) as u8;
            img.put_pixel(c as u32, r as u32, Rgb([blend(0), blend(1), blend(2)]));
            img.put_pixel((w + c) as u32, r as u32, Rgb(heat));
        }
    }
    Ok(img)
}

fn line(img: &mut RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
    let n = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
    for k in 0..=n {
        let x = x0 + (x1 - x0) * k / n;
        let y = y0 + (y1 - y0) * k / n;
        if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }
}

/// The series (top half) and its scores with the threshold (bottom half); anomalous points are
/// shaded red.
pub fn series_plot(
    values: &[f32],
    scores: &[f32],
    threshold: f64,
    labels: &[u8],
    width: u32,
    height: u32,
) -> RgbImage {
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let n = values.len().max(2);
    let half = height as i64 / 2;
    let xat = |i: usize| (i as i64 * (width as i64 - 1)) / (n as i64 - 1);
    for (i, &l) in labels.iter().enumerate() {
        if l != 0 {
            let x = xat(i);
            line(&mut img, (x, 0), (x, height as i64 - 1), [255, 220, 220]);
        }
    }
    let draw = |img: &mut RgbImage, v: &[f32], top: i64, c: [u8; 3], extra: Option<f32>| {
        let mut all = v.to_vec();
        if let Some(e) = extra {
            all.push(e);
        }
        let u = unit(&all);
        let y = |t: f32| top + ((1.0 - t) * (half - 6) as f32) as i64 + 3;
        for i in 1..v.len() {
            line(img, (xat(i - 1), y(u[i - 1])), (xat(i), y(u[i])), c);
        }
        if extra.is_some() {
            let ty = y(u[v.len()]);
            line(img, (0, ty), (width as i64 - 1, ty), [200, 0, 0]);
        }
    };
    draw(&mut img, values, 0, [30, 30, 30], None);
    draw(
        &mut img,
        scores,
        half,
        [20, 60, 200],
        Some(threshold as f32),
    );
    img
}

/// An SVG ROC curve.
pub fn roc_svg(scores: &[f32], labels: &[u8], title: &str) -> Result<String> {
    let y: Vec<bool> = labels.iter().map(|&l| l != 0).collect();
    let roc = dmad::metrics::roc_curve(scores, &y)?;
    let (w, h, m) = (260.0, 260.0, 30.0);
    let mut pts = String::new();
    for (f, t) in roc.fpr.iter().zip(&roc.tpr) {
        let _ = write!(
            pts,
            "{:.1},{:.1} ",
            m + f * (w - 2.0 * m),
            h - m - t * (h - 2.0 * m)
        );
    }
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">
<rect x="{m}" y="{m}" width="{iw}" height="{iw}" fill="none" stroke="#999"/>
<line x1="{m}" y1="{b}" x2="{r}" y2="{m}" stroke="#ccc" stroke-dasharray="4"/>
<polyline points="{pts}" fill="none" stroke="#1f4fb4" stroke-width="2"/>
<text x="{m}" y="18">{title}</text><text x="{cx}" y="{tb}">FPR</text><text x="4" y="{cy}">TPR</text>
</svg>"##,
        iw = w - 2.0 * m,
        b = h - m,
        r = w - m,
        cx = w / 2.0 - 10.0,
        tb = h - 8.0,
        cy = h / 2.0,
    ))
}

/// The plain-text table of metrics, one row per dataset.
pub fn metrics_table(rows: &[(String, Metrics)]) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    let mut s = format!(
        "{:<28} {:>6} {:>6} {:>6} {:>7} {:>6} {:>6} {:>6} {:>6}\n",
        "dataset", "AUROC", "AUPRC", "F1max", "pAUC.1", "F1@thr", "pxAUC", "AUPRO", "VUS-PR"
    );
    for (name, m) in rows {
        let r = &m.report;
        let _ = writeln!(
            s,
            "{:<28} {:>6.3} {:>6.3} {:>6.3} {:>7.3} {:>6} {:>6} {:>6} {:>6}{}",
            name,
            r.auroc,
            r.auprc,
            r.f1_max,
            r.pauc_01,
            opt(r.f1_at_threshold),
            opt(m.pixel_auroc),
            opt(m.aupro_03),
            opt(m.vus_pr),
            m.ucr_hit
                .map_or(String::new(), |h| format!("  UCR hit: {h}")),
        );
    }
    s
}

/// Encodes bytes as base64 (for images inlined in the HTML report).
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(T[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A PNG as a data URL.
pub fn png_data_url(img: &RgbImage) -> Result<String> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    Ok(format!("data:image/png;base64,{}", base64(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn numbers_keep_six_significant_digits() {
        assert_eq!(number(0.123456789), "0.123457");
        assert_eq!(number(1234.56789), "1234.57");
        assert_eq!(number(0.00001234567), "1.23457e-5");
        assert_eq!(number(0.0), "0");
    }
}
