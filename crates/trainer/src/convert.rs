//! `trainer convert`: rewrites a weights file of any readable version in the current format,
//! with its parameters in f16 (what the page ships) or f32.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use burn::prelude::Device;
use fashion_model::{Precision, WeightsFile};

use crate::fsutil::write_atomic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    /// Half precision: half the bytes (the shipped files).
    F16,
    /// Single precision, exactly as trained.
    F32,
}

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// Weights file to read (any format version this build reads).
    pub input: PathBuf,
    /// Where to write it (may be the input itself: it is fully read first and replaced atomically).
    pub output: PathBuf,
    #[arg(long, value_enum, default_value_t = PrecisionArg::F16)]
    pub precision: PrecisionArg,
}

pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    let bytes = std::fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let file =
        WeightsFile::decode(&bytes, &Device::flex()).with_context(|| format!("{} is not a usable weights file", args.input.display()))?;
    let precision = match args.precision {
        PrecisionArg::F16 => Precision::F16,
        PrecisionArg::F32 => Precision::F32,
    };
    let out = WeightsFile::encode_with_classes(&file.architecture, &file.classes, &file.summary, file.network, precision)?;
    write_atomic(&args.output, &out)?;
    eprintln!("wrote {} ({} → {} bytes, {precision:?})", args.output.display(), bytes.len(), out.len());
    Ok(ExitCode::SUCCESS)
}
