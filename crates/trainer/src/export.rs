//! `trainer export`: a weights file as a standard ONNX file for other runtimes
//! (`fashion_model::onnx` states the input and output contract).

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use burn::prelude::Device;
use fashion_model::{WeightsFile, onnx};

use crate::{fsutil::write_atomic, predict::shipped_weights};

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Where to write the ONNX file.
    #[arg(long, value_name = "FILE")]
    pub onnx: PathBuf,
    /// Weights file to export, from the trainer or downloaded from the page [default: the shipped CNN, web/cnn.fmw]
    #[arg(long)]
    pub weights: Option<PathBuf>,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let weights = args.weights.unwrap_or_else(shipped_weights);
    let bytes = std::fs::read(&weights).with_context(|| format!("cannot read weights file {}", weights.display()))?;
    let file =
        WeightsFile::decode(&bytes, &Device::flex()).with_context(|| format!("{} is not a usable weights file", weights.display()))?;
    let model = onnx::export(&file.network, &file.classes, &file.summary)?;
    write_atomic(&args.onnx, &model)?;
    eprintln!(
        "wrote {} ({}, {} bytes): input `{}` float32 [N, 1, 28, 28] (pixels / 255), output `{}` float32 [N, {}] logits",
        args.onnx.display(),
        file.architecture.name(),
        model.len(),
        onnx::INPUT_NAME,
        onnx::OUTPUT_NAME,
        file.classes.len()
    );
    Ok(ExitCode::SUCCESS)
}
