//! The run report: `metrics.json` (machine-readable), `report.md` (the comparison table) and
//! two SVG pictures (learning curves, confusion matrix), written atomically.

use std::path::Path;

use anyhow::{Context, Result};
use fashion_model::{CLASS_NAMES, NUM_CLASSES};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{fsutil::write_atomic, metrics::Evaluation, training::EpochRecord};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelReport {
    pub name: String,
    pub architecture: fashion_model::Architecture,
    pub parameters: usize,
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub train_seconds: f64,
    pub history: Vec<EpochRecord>,
    pub test: Evaluation,
    /// Softmax temperature fitted on the validation split.
    #[serde(default = "one")]
    pub temperature: f32,
    /// Test-set expected calibration error before and after temperature scaling.
    #[serde(default)]
    pub test_ece: (f64, f64),
    #[serde(default)]
    pub multiply_adds: u64,
    /// The averages of the last epochs' weights validated after the run, and the one shipped
    /// instead of the best epoch, if one validated better.
    #[serde(default)]
    pub averages: Vec<crate::average::AveragedEpochs>,
    #[serde(default)]
    pub average_chosen: Option<crate::average::AveragedEpochs>,
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub backend: String,
    pub cores: usize,
    pub data_source: String,
    pub train_images: usize,
    pub val_images: usize,
    pub test_images: usize,
    pub seed: u64,
    pub augment: Option<crate::augment::Augment>,
    /// How the CNN was trained (schedule, batch, label smoothing, weight decay…).
    pub cnn_recipe: crate::training::TrainConfig,
    pub logistic: ModelReport,
    pub cnn: ModelReport,
    /// CNN test accuracy minus LR test accuracy, in percentage points.
    pub cnn_gain_points: f64,
}

pub fn write(dir: &Path, run: &RunReport) -> Result<()> {
    write_atomic(&dir.join("metrics.json"), &serde_json::to_vec_pretty(run)?)?;
    write_atomic(&dir.join("report.md"), markdown(run).as_bytes())?;
    write_atomic(&dir.join("learning-curves.svg"), curves_svg(run)?.as_bytes())?;
    write_atomic(&dir.join("confusion-matrix.svg"), confusion_svg(&run.cnn)?.as_bytes())?;
    Ok(())
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

fn markdown(run: &RunReport) -> String {
    let mut s = String::new();
    s += "# Fashion-MNIST: logistic regression vs CNN\n\n";
    s += &format!(
        "Data: {} ({} train / {} validation / {} test images, split seed {}). Backend: {} on {} cores.\n\n",
        run.data_source, run.train_images, run.val_images, run.test_images, run.seed, run.backend, run.cores
    );
    s += "| model | parameters | multiply-adds | test accuracy | macro F1 | test loss | best epoch / run | training time | temperature | test ECE before → after |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for m in [&run.logistic, &run.cnn] {
        s += &format!(
            "| {} | {} | {} | {} | {:.4} | {:.4} | {} / {} | {:.0} s | {:.3} | {:.2}% → {:.2}% |\n",
            m.name,
            m.parameters,
            m.multiply_adds,
            pct(m.test.accuracy),
            m.test.macro_f1,
            m.test.loss,
            m.best_epoch,
            m.epochs_run,
            m.train_seconds,
            m.temperature,
            100.0 * m.test_ece.0,
            100.0 * m.test_ece.1
        );
    }
    s += &format!("\nCNN recipe: `{}`\n", serde_json::to_string(&run.cnn_recipe).unwrap_or_default());
    if !run.cnn.averages.is_empty() {
        s += "\nThe CNN's weights averaged over its last epochs (batch norm re-estimated), on the validation split:\n\n| weights | val loss | val accuracy |\n|---|---:|---:|\n";
        for a in &run.cnn.averages {
            s += &format!("| {} | {:.4} | {} |\n", a.epochs(), a.val_loss, pct(a.val_accuracy));
        }
        let best_loss = run.cnn.history.get(run.cnn.best_epoch.max(1) - 1).map_or(f64::NAN, |h| h.val_loss);
        s += &match &run.cnn.average_chosen {
            Some(a) => format!(
                "\nKept: {} (batch norm re-estimated), against val loss {:.4} for the best single epoch ({}) as trained.\n",
                a.epochs(),
                best_loss,
                run.cnn.best_epoch
            ),
            None => format!("\nKept: the best single epoch ({}, val loss {:.4}); no average beat it.\n", run.cnn.best_epoch, best_loss),
        };
    }
    s += &format!("\nThe CNN improves on the baseline by **{:+.2} points** of test accuracy.\n\n", run.cnn_gain_points);
    s += "## Per-class metrics on the test set\n\n| class | LR precision | LR recall | LR F1 | CNN precision | CNN recall | CNN F1 |\n|---|---:|---:|---:|---:|---:|---:|\n";
    for c in 0..NUM_CLASSES {
        let (l, n) = (&run.logistic.test.per_class[c], &run.cnn.test.per_class[c]);
        s += &format!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            CLASS_NAMES[c], l.precision, l.recall, l.f1, n.precision, n.recall, n.f1
        );
    }
    s += "\n## CNN confusion matrix (rows: true class, columns: predicted)\n\n|  |";
    for name in CLASS_NAMES {
        s += &format!(" {name} |");
    }
    s += "\n|---|";
    s += &"---:|".repeat(NUM_CLASSES);
    s += "\n";
    for (t, row) in run.cnn.test.confusion.iter().enumerate() {
        s += &format!("| {} |", CLASS_NAMES[t]);
        for v in row {
            s += &format!(" {v} |");
        }
        s += "\n";
    }
    s += "\n![learning curves](learning-curves.svg)\n\n![confusion matrix](confusion-matrix.svg)\n";
    s
}

fn curves_svg(run: &RunReport) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 720)).into_drawing_area();
        root.fill(&WHITE)?;
        let rows = root.split_evenly((2, 2));
        let models = [&run.logistic, &run.cnn];
        for (i, area) in rows.iter().enumerate() {
            let model = models[i % 2];
            let loss = i < 2;
            let epochs = model.history.len().max(1) as f64;
            let values: Vec<f64> = model
                .history
                .iter()
                .flat_map(|h| if loss { [h.train_loss, h.val_loss] } else { [h.train_accuracy * 100.0, h.val_accuracy * 100.0] })
                .collect();
            let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let pad = ((hi - lo) * 0.1).max(1e-3);
            let title = format!("{} — {}", model.name, if loss { "loss" } else { "accuracy (%)" });
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(0.5..epochs + 0.5, (lo - pad)..(hi + pad))?;
            chart.configure_mesh().x_desc("epoch").draw()?;
            for (series, colour, label) in [(0usize, BLUE, "train"), (1, RED, "validation")] {
                let points: Vec<(f64, f64)> = model.history.iter().map(|h| (h.epoch as f64, values[(h.epoch - 1) * 2 + series])).collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], colour));
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            }
            chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

fn confusion_svg(model: &ModelReport) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 700)).into_drawing_area();
        root.fill(&WHITE)?;
        let area = root.titled(&format!("{} confusion matrix (test set)", model.name), ("sans-serif", 20))?;
        let (cell, left, top) = (56i32, 110i32, 100i32);
        let max = model.test.confusion.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
        for (t, row) in model.test.confusion.iter().enumerate() {
            area.draw(&Text::new(CLASS_NAMES[t], (5, top + t as i32 * cell + cell / 2 - 6), ("sans-serif", 13)))?;
            for (p, &v) in row.iter().enumerate() {
                let x = left + p as i32 * cell;
                let y = top + t as i32 * cell;
                let shade = 255 - (220.0 * (v as f64 / max).sqrt()) as u8;
                area.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], RGBColor(shade, shade, 255).filled()))?;
                let ink = if shade < 140 { WHITE } else { BLACK };
                area.draw(&Text::new(v.to_string(), (x + 8, y + cell / 2 - 6), ("sans-serif", 13).into_font().color(&ink)))?;
            }
        }
        for (p, name) in CLASS_NAMES.iter().enumerate() {
            let x = left + p as i32 * cell + 4;
            area.draw(&Text::new(name.to_string(), (x, top - 20 - (p as i32 % 2) * 16), ("sans-serif", 12)))?;
        }
        area.draw(&Text::new("rows: true class, columns: predicted", (left, top + 10 * cell + 12), ("sans-serif", 13)))?;
        root.present().context("drawing the confusion matrix")?;
    }
    Ok(svg)
}
