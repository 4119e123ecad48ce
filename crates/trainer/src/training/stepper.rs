//! What runs the training steps: burn's autodiff and optimizer, or the hand-written kernels.

use anyhow::Result;
use burn::{
    nn::loss::CrossEntropyLoss,
    optim::{AdamConfig, AdamWConfig, ModuleOptimizer},
    prelude::*,
};
use fashion_model::{Architecture, Network, finetune::train_step};
use rand::rngs::StdRng;

use super::{StepCode, TrainConfig, epoch::tensors};
use crate::{
    average::WeightAverage,
    kernels::{AdamW, CpuTrainer},
};

/// What runs the steps: burn's network on the autodiff device with its optimizer, or the
/// hand-written kernels.
#[allow(clippy::large_enum_variant)] // one per run
pub enum Stepper {
    /// `model` is `None` only inside a step, which moves it through burn's optimizer.
    Burn {
        model: Option<Network>,
        optim: ModuleOptimizer,
    },
    Kernels(CpuTrainer),
}

impl Stepper {
    pub fn new(arch: &Architecture, config: &TrainConfig, model: Network) -> Result<Self> {
        match config.engine {
            StepCode::Burn => Ok(Stepper::Burn { model: Some(model), optim: optimizer(config) }),
            StepCode::Kernels => {
                config.engine.check(arch, config)?;
                let (Architecture::Compact(compact), Network::Compact(network)) = (arch, &model) else {
                    unreachable!("StepCode::check lets the kernels train the compact CNN only")
                };
                let optimizer = AdamW { weight_decay: config.weight_decay };
                Ok(Stepper::Kernels(CpuTrainer::new(compact, &network.params(), optimizer, config.label_smoothing)?))
            }
        }
    }

    /// One step on a batch; its mean loss and how many of its images were answered right.
    /// burn's steps also move the weight average, where there is one.
    #[allow(clippy::too_many_arguments)] // a batch, its rate and the step's tools, each used once
    pub fn step(
        &mut self,
        pixels: &[f32],
        labels: &[u8],
        rate: f64,
        rng: &mut StdRng,
        loss_fn: &CrossEntropyLoss,
        ad_device: &Device,
        average: &mut Option<WeightAverage>,
    ) -> (f64, usize) {
        match self {
            Stepper::Burn { model, optim } => {
                let (images, targets) = tensors(pixels, labels, ad_device);
                let taken = model.take().expect("the model is back after every step");
                let (next, loss, logits) = train_step(taken, optim, loss_fn, images, targets, rate);
                if let Some(average) = average {
                    average.update(&next);
                }
                *model = Some(next);
                let predicted = logits.argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().unwrap_or_default();
                (loss.into_scalar::<f32>() as f64, predicted.iter().zip(labels).filter(|&(&p, &l)| p == l as i64).count())
            }
            Stepper::Kernels(trainer) => {
                let outcome = trainer.step(pixels, labels, rate, rng);
                (outcome.loss, outcome.correct)
            }
        }
    }

    /// The network as trained so far, for evaluation on `device` (no autodiff).
    pub fn network(&self, device: &Device) -> Result<Network> {
        match self {
            Stepper::Burn { model, .. } => Ok(model.as_ref().expect("the model is back after every step").valid()),
            Stepper::Kernels(trainer) => trainer.network(device),
        }
    }

    pub fn optimizer_state(&mut self) -> Result<Vec<u8>> {
        match self {
            Stepper::Burn { optim, .. } => Ok(optim.into_bytes().map_err(|e| anyhow::anyhow!("{e}"))?.to_vec()),
            Stepper::Kernels(trainer) => Ok(trainer.optimizer_state()),
        }
    }
}

pub fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    if config.weight_decay > 0.0 { AdamWConfig::new().with_weight_decay(config.weight_decay).init() } else { AdamConfig::new().init() }
}
