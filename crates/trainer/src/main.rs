//! `trainer`: trains the report's study (logistic regression vs CNN) on Fashion-MNIST and writes
//! the page's weights; also classifies photos (`predict`), scores any weights file
//! (`evaluate`) and measures speed (`bench`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(feature = "suite")]
use trainer::suite;
use trainer::{bench, calibrate, convert, export, finetune_sets, predict, study};

#[derive(Parser)]
#[command(version, about = "Train, evaluate and run the Fashion-MNIST classifiers", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: study::TrainArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Train logistic regression and the CNN, evaluate both, write weights and a report (the default).
    Train(study::TrainArgs),
    /// Classify image files with a weights file (default: the shipped CNN).
    Predict(predict::PredictArgs),
    /// Test-set metrics of any weights file, including one fine-tuned in the browser.
    Evaluate(predict::EvaluateArgs),
    /// Accuracy of every model on Fashion-MNIST, photo-style, pose and drawings test sets.
    #[cfg(feature = "suite")]
    Suite(suite::SuiteArgs),
    /// Training and inference throughput of the CNN on each backend.
    Bench(bench::BenchArgs),
    /// Refit a weights file's temperature and "not sure" rule on the validation split.
    Calibrate(calibrate::CalibrateArgs),
    /// Rewrite a weights file in the current format, in f16 (as shipped) or f32.
    Convert(convert::ConvertArgs),
    /// Write a weights file as an ONNX file for other runtimes (onnxruntime, ONNX Runtime Web…).
    Export(export::ExportArgs),
    /// Write the page's replay set and held-out test slice (training runs do it too).
    Samples(finetune_sets::SamplesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => study::run(cli.train),
        Some(Command::Train(args)) => study::run(args),
        Some(Command::Predict(args)) => predict::predict(args),
        Some(Command::Evaluate(args)) => predict::evaluate(args),
        Some(Command::Bench(args)) => bench::run(args),
        #[cfg(feature = "suite")]
        Some(Command::Suite(args)) => suite::run(args),
        Some(Command::Samples(args)) => finetune_sets::run(args),
        Some(Command::Convert(args)) => convert::run(args),
        Some(Command::Export(args)) => export::run(args),
        Some(Command::Calibrate(args)) => calibrate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
