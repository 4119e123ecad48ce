//! Flags shared by several subcommands.

use std::path::PathBuf;

use clap::Args;

use crate::backend::BackendChoice;

#[derive(Args, Clone)]
pub struct CommonArgs {
    /// Folder with the Fashion-MNIST files [default: $FASHION_MNIST_DIR, /usr/share/datasets/fashion-mnist, data/fashion-mnist]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
}
