//! The report's strongest time-series peer of every series dataset (issue 21): the classical
//! peers of `benches/peers/classical.py` (IForest, KNN, LOF) and the series peers of
//! `benches/peers/series_peers.py` (matrix-profile AB-join, Sub-PCA, Sub-KNN), each dataset's
//! strongest one named by AUROC with its VUS-PR beside it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// Every peer of the section, in column order: classical first, then the series peers.
const PEERS: [&str; 6] = ["IForest", "KNN", "LOF", "MP-join", "Sub-PCA", "Sub-KNN"];

/// The id of the entry that stands for every UCR one-class set (their mean), as in the
/// report's per-modality means.
const UCR_ENTRY: &str = "timeseries/ucr (mean)";

/// One peer's figures on one series dataset.
#[derive(Debug, Clone, PartialEq)]
struct PeerCell {
    auroc: f64,
    vus_pr: Option<f64>,
    wall_s: Option<f64>,
}

/// Series cells keyed by dataset id, then peer name; the dataset ids in first-seen order.
#[derive(Debug, Default)]
struct SeriesCells {
    order: Vec<String>,
    cells: BTreeMap<String, BTreeMap<String, PeerCell>>,
}

impl SeriesCells {
    /// Adds the series records (modality `series` or `series-classification`) of a peers' JSON.
    fn add(&mut self, v: &Value) {
        for r in v["records"].as_array().into_iter().flatten() {
            let modality = r["modality"].as_str().unwrap_or("");
            if modality != "series" && modality != "series-classification" {
                continue;
            }
            let (Some(ds), Some(method), Some(auroc)) = (
                r["dataset"].as_str(),
                r["method"].as_str(),
                r["metrics"]["auroc"].as_f64(),
            ) else {
                continue;
            };
            if !self.cells.contains_key(ds) {
                self.order.push(ds.to_string());
            }
            self.cells.entry(ds.to_string()).or_default().insert(
                method.to_string(),
                PeerCell {
                    auroc,
                    vus_pr: r["metrics"]["vus_pr"].as_f64(),
                    wall_s: r["wall_s"].as_f64(),
                },
            );
        }
    }

    /// The UCR one-class sets' ids (`timeseries/ucr/<Name>`).
    fn ucr_sets(&self) -> Vec<&String> {
        self.order
            .iter()
            .filter(|d| d.starts_with("timeseries/ucr/"))
            .collect()
    }

    /// The UCR entry: per peer, the mean AUROC over the UCR sets (only a peer measured on
    /// every set) and the summed wall time.
    fn ucr_entry(&self) -> BTreeMap<String, PeerCell> {
        let sets = self.ucr_sets();
        let mut out = BTreeMap::new();
        if sets.is_empty() {
            return out;
        }
        for p in PEERS {
            let cells: Vec<&PeerCell> = sets
                .iter()
                .filter_map(|d| self.cells.get(*d).and_then(|c| c.get(p)))
                .collect();
            if cells.len() == sets.len() {
                let n = cells.len() as f64;
                out.insert(
                    p.to_string(),
                    PeerCell {
                        auroc: cells.iter().map(|c| c.auroc).sum::<f64>() / n,
                        vus_pr: None,
                        wall_s: cells.iter().map(|c| c.wall_s).sum(),
                    },
                );
            }
        }
        out
    }

    /// The entries of the series mean: each point-labelled series, then the UCR entry.
    fn entries(&self) -> Vec<(String, BTreeMap<String, PeerCell>)> {
        let mut out: Vec<(String, BTreeMap<String, PeerCell>)> = self
            .order
            .iter()
            .filter(|d| !d.starts_with("timeseries/ucr/"))
            .map(|d| (d.clone(), self.cells[d].clone()))
            .collect();
        let ucr = self.ucr_entry();
        if !ucr.is_empty() {
            out.push((UCR_ENTRY.to_string(), ucr));
        }
        out
    }
}

/// The peer with the highest AUROC (the first in [`PEERS`] order on a tie).
fn strongest(cells: &BTreeMap<String, PeerCell>) -> Option<(&'static str, &PeerCell)> {
    let mut best: Option<(&'static str, &PeerCell)> = None;
    for p in PEERS {
        if let Some(c) = cells.get(p) {
            if c.auroc.is_finite() && best.is_none_or(|(_, b)| c.auroc > b.auroc) {
                best = Some((p, c));
            }
        }
    }
    best
}

fn f3(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map_or("-".into(), |v| format!("{v:.3}"))
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The section of the report from the two peers' JSON files; nothing where neither exists.
pub(super) fn write_section(md: &mut String, classical_json: &Path, series_json: &Path) {
    let classical = read_json(classical_json);
    let series = read_json(series_json);
    md.push_str(&section(classical.as_ref(), series.as_ref()));
}

/// The section's Markdown from the peers' parsed JSON.
fn section(classical: Option<&Value>, series: Option<&Value>) -> String {
    let mut cells = SeriesCells::default();
    for v in [classical, series].into_iter().flatten() {
        cells.add(v);
    }
    let mut md = String::new();
    if cells.order.is_empty() || series.is_none() {
        return md;
    }
    let _ = writeln!(
        md,
        "## Series: the strongest peer of each dataset (issue 21)\n\n\
         The classical peers (IForest, KNN, LOF on windows of 64, \
         `benches/peers/classical.py`) and the series peers (`benches/peers/series_peers.py`, \
         `docs/results/series_peers.md`): the matrix-profile AB-join of the test part against \
         the train part (STUMPY), Sub-PCA and Sub-KNN as TSB-AD 1.5 defines them, with \
         windows from the train part's period (TSB-AD's `find_length_rank`). Cells read \
         `AUROC / VUS-PR`; the strongest peer is the one with the highest AUROC. The UCR \
         one-class sets (whole series; see `benches/peers/README-series.md` for the peers' \
         whole-series form) count as one entry, their mean, as in the per-modality means.\n"
    );
    let _ = writeln!(
        md,
        "| dataset | {} | strongest peer | AUROC | VUS-PR | wall s |\n|---|{}---|---|---|---|",
        PEERS.join(" | "),
        "---|".repeat(PEERS.len())
    );
    let row = |md: &mut String, name: &str, c: &BTreeMap<String, PeerCell>| {
        let mut line = format!("| {name} |");
        for p in PEERS {
            match c.get(p) {
                Some(x) if x.vus_pr.is_some() => {
                    let _ = write!(line, " {} / {} |", f3(Some(x.auroc)), f3(x.vus_pr));
                }
                Some(x) => {
                    let _ = write!(line, " {} |", f3(Some(x.auroc)));
                }
                None => line.push_str(" - |"),
            }
        }
        match strongest(c) {
            Some((p, x)) => {
                let _ = write!(
                    line,
                    " **{p}** | {} | {} | {} |",
                    f3(Some(x.auroc)),
                    f3(x.vus_pr),
                    x.wall_s.map_or("-".into(), |s| format!("{s:.1}"))
                );
            }
            None => line.push_str(" - | - | - | - |"),
        }
        let _ = writeln!(md, "{line}");
    };
    for d in cells
        .order
        .iter()
        .filter(|d| !d.starts_with("timeseries/ucr/"))
    {
        row(&mut md, &super::short_id(d), &cells.cells[d]);
    }
    for d in cells.ucr_sets() {
        row(&mut md, &super::short_id(d), &cells.cells[d]);
    }
    let entries = cells.entries();
    let ucr_n = cells.ucr_sets().len();
    if ucr_n > 0 {
        let e = &entries.last().expect("the UCR entry").1;
        row(&mut md, &format!("ucr (mean of {ucr_n} sets)"), e);
    }
    // The series mean per peer over the entries (a peer measured on every entry only).
    let mut means: BTreeMap<String, PeerCell> = BTreeMap::new();
    for p in PEERS {
        let v: Vec<f64> = entries
            .iter()
            .filter_map(|(_, c)| c.get(p).map(|x| x.auroc))
            .collect();
        if !v.is_empty() && v.len() == entries.len() {
            means.insert(
                p.to_string(),
                PeerCell {
                    auroc: v.iter().sum::<f64>() / v.len() as f64,
                    vus_pr: None,
                    wall_s: None,
                },
            );
        }
    }
    let mut line = format!("| **mean AUROC ({} entries)** |", entries.len());
    for p in PEERS {
        let _ = write!(line, " {} |", f3(means.get(p).map(|c| c.auroc)));
    }
    match strongest(&means) {
        Some((p, x)) => {
            let _ = write!(line, " **{p}** | {} | - | - |", f3(Some(x.auroc)));
        }
        None => line.push_str(" - | - | - | - |"),
    }
    let _ = writeln!(md, "{line}");
    let best_each: Vec<f64> = entries
        .iter()
        .filter_map(|(_, c)| strongest(c).map(|(_, x)| x.auroc))
        .collect();
    if best_each.len() == entries.len() {
        let _ = writeln!(
            md,
            "\nThe strongest peer of each entry, averaged: {:.3}. It picks a peer per dataset by \
             its test AUROC, so it is a bar to beat, not a method. Wall s: fit + score of the \
             strongest peer (the UCR entry: summed over the sets).\n",
            best_each.iter().sum::<f64>() / best_each.len() as f64
        );
    } else {
        let _ = writeln!(md);
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(ds: &str, modality: &str, method: &str, auroc: f64, vus: Option<f64>) -> Value {
        json!({"dataset": ds, "modality": modality, "method": method, "wall_s": 1.0,
               "metrics": {"auroc": auroc, "vus_pr": vus}})
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn the_strongest_peer_is_named_per_dataset_and_ucr_counts_once() {
        let s = "series";
        let u = "series-classification";
        let classical = json!({"records": [
            rec("tabular/wbc", "table", "KNN", 0.99, None),
            rec("timeseries/yahoo", s, "KNN", 0.70, Some(0.2)),
            rec("timeseries/ucr/A", u, "KNN", 0.90, None),
            rec("timeseries/ucr/B", u, "KNN", 0.50, None),
        ]});
        let series = json!({"records": [
            rec("timeseries/yahoo", s, "MP-join", 0.80, Some(0.6)),
            rec("timeseries/yahoo", s, "Sub-PCA", 0.80, Some(0.1)),
            rec("timeseries/ucr/A", u, "MP-join", 0.60, None),
            rec("timeseries/ucr/B", u, "MP-join", 0.60, None),
        ]});
        let mut cells = SeriesCells::default();
        cells.add(&classical);
        cells.add(&series);
        assert_eq!(cells.order.len(), 3, "tables are not series");
        // A tie goes to the first peer in column order.
        let (p, c) = strongest(&cells.cells["timeseries/yahoo"]).unwrap();
        assert_eq!((p, c.vus_pr), ("MP-join", Some(0.6)));
        // UCR: KNN's mean 0.70 beats MP-join's 0.60, though MP-join wins set B.
        let entries = cells.entries();
        assert_eq!(entries.len(), 2);
        let (p, c) = strongest(&entries[1].1).unwrap();
        assert!(p == "KNN" && close(c.auroc, 0.70));
        assert_eq!(
            strongest(&cells.cells["timeseries/ucr/B"]).unwrap().0,
            "MP-join"
        );
        let md = section(Some(&classical), Some(&series));
        assert!(md.contains("| yahoo | - | 0.700 / 0.200 | - | 0.800 / 0.600 | 0.800 / 0.100 | - | **MP-join** | 0.800 | 0.600 | 1.0 |"), "{md}");
        assert!(
            md.contains(
                "| ucr (mean of 2 sets) | - | 0.700 | - | 0.600 | - | - | **KNN** | 0.700 |"
            ),
            "{md}"
        );
        // Means over the 2 entries: KNN (0.70 + 0.70) / 2, MP-join (0.80 + 0.60) / 2.
        assert!(
            md.contains(
                "| **mean AUROC (2 entries)** | - | 0.700 | - | 0.700 | - | - | **KNN** | 0.700 |"
            ),
            "{md}"
        );
        assert!(md.contains("averaged: 0.750"), "{md}");
    }

    #[test]
    fn no_series_peers_no_section() {
        let classical = json!({"records": [rec("timeseries/yahoo", "series", "KNN", 0.7, None)]});
        assert!(section(Some(&classical), None).is_empty());
        assert!(section(None, None).is_empty());
    }
}
