//! The models in the tab: which burn device runs them (WebGPU or the CPU), the shipped or
//! user-loaded weights, and classification. No UI here: the page drives it.
//!
//! WebGPU reads must be awaited (`into_data_async`): a synchronous read panics in the browser.

use std::rc::Rc;

use burn::{module::Module, prelude::*, tensor::Transaction};
use fashion_model::{
    Architecture, IMAGE_PIXELS, Precision, TrainingSummary, WeightsError, WeightsFile,
    calibration::{probability_rows, row_probabilities},
    direct::DirectCnn,
    explain,
    network::{Network, images_tensor},
    verdict::Scores,
};

use crate::{EngineError, js};

/// Images per forward pass: large enough to amortise GPU dispatch, small enough to keep the
/// page responsive between passes.
pub const BATCH: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    WebGpu,
    Cpu,
}

impl BackendKind {
    pub fn label(self) -> &'static str {
        match self {
            BackendKind::WebGpu => "WebGPU",
            BackendKind::Cpu => "CPU",
        }
    }
}

/// A burn device and what the user should be told about it.
#[derive(Clone)]
pub struct Backend {
    pub kind: BackendKind,
    pub device: Device,
    /// The GPU adapter's name, or why the CPU is in use.
    pub detail: String,
}

impl Backend {
    /// burn's Flex CPU backend (single-threaded in the tab).
    pub fn cpu(reason: impl Into<String>) -> Self {
        Self { kind: BackendKind::Cpu, device: Device::flex(), detail: reason.into() }
    }

    /// burn-wgpu on the browser's WebGPU; `Err` explains why it cannot be used.
    #[cfg(feature = "webgpu")]
    pub async fn webgpu() -> Result<Self, String> {
        js::probe_webgpu().await?;
        let (device, setup) =
            Device::wgpu_options().init_with_setup_async().await.map_err(|e| format!("WebGPU could not be initialised: {e}"))?;
        let info = setup.adapter.get_info();
        let name = if info.name.is_empty() { "GPU adapter".to_string() } else { info.name.clone() };
        Ok(Self { kind: BackendKind::WebGpu, device, detail: name })
    }
}

/// One loaded weights file.
#[derive(Clone)]
pub struct Model {
    pub architecture: Architecture,
    /// Its classes in label order (the ten, then the user's own it has learnt).
    pub classes: Vec<String>,
    pub summary: TrainingSummary,
    /// As in the file: what fine-tuning trains and what is saved.
    pub network: Network,
    /// What classifies: `network` with batch norm folded into the convolutions.
    pub inference: Network,
    /// On the CPU, the same network in hand-written kernels ([`fashion_model::direct`]),
    /// which classify instead of burn's where the network fits them.
    pub direct: Option<Rc<DirectCnn>>,
    pub params: usize,
    /// The file as loaded, to rebuild the model on another device or offer it for download.
    pub bytes: Rc<Vec<u8>>,
}

impl Model {
    /// The softmax temperature the weights file carries (1 when it has none).
    pub fn temperature(&self) -> f32 {
        self.summary.softmax_temperature()
    }

    fn load(bytes: Rc<Vec<u8>>, backend: &Backend, expect_cnn: bool) -> Result<Self, WeightsError> {
        let file = WeightsFile::decode_expecting(&bytes, &backend.device, expect_cnn)?;
        let params = file.network.num_params();
        let inference = file.network.for_inference();
        // Reading the weights out is synchronous: only where they are in main memory.
        let direct = match (&file.network, backend.kind) {
            (Network::Compact(net), BackendKind::Cpu) => net.direct().map(Rc::new),
            _ => None,
        };
        Ok(Self {
            architecture: file.architecture,
            classes: file.classes,
            summary: file.summary,
            network: file.network,
            inference,
            direct,
            params,
            bytes,
        })
    }

    /// This model's weights file with the class names `names` (a rename of the user's own
    /// classes); the parameters are unchanged.
    pub fn renamed(&self, names: &[String]) -> Result<Vec<u8>, WeightsError> {
        WeightsFile::renamed(&self.bytes, names)
    }

    /// This model's weights file without class `class` (one of the user's own), rebuilt on the
    /// CPU from the file (WebGPU cannot be read synchronously); kept in full precision, as the
    /// user's work is.
    pub fn without_class(&self, class: usize) -> Result<Vec<u8>, String> {
        let file = WeightsFile::decode(&self.bytes, &Device::flex()).map_err(|e| e.to_string())?;
        let network = file.network.without_class(class).map_err(|e| e.to_string())?;
        let mut names = file.classes;
        names.remove(class);
        WeightsFile::encode_with_classes(&file.architecture, &names, &file.summary, network, Precision::F32).map_err(|e| e.to_string())
    }

    /// This model as an ONNX file for other runtimes ([`fashion_model::onnx`]), rebuilt from
    /// its weights file on the CPU whatever device it runs on (WebGPU cannot be read
    /// synchronously).
    pub fn onnx(&self) -> Result<Vec<u8>, String> {
        let file = WeightsFile::decode(&self.bytes, &Device::flex()).map_err(|e| e.to_string())?;
        fashion_model::onnx::export(&file.network, &file.classes, &file.summary).map_err(|e| e.to_string())
    }

    /// Logits (n × classes) of the network for `pixels`, by the hand-written kernels where they
    /// run, else by burn.
    pub async fn logits(&self, pixels: &[f32], device: &Device) -> Result<Vec<f32>, EngineError> {
        match &self.direct {
            Some(direct) => Ok(direct.forward(pixels)),
            None => logits(&self.inference, pixels, device).await,
        }
    }
}

/// Everything needed to classify: the device, the CNN and the baseline.
#[derive(Clone)]
pub struct Engine {
    pub backend: Backend,
    pub cnn: Model,
    pub baseline: Option<Model>,
}

impl Engine {
    pub fn load(backend: Backend, cnn: Vec<u8>, baseline: Option<Vec<u8>>) -> Result<Self, WeightsError> {
        let cnn = Model::load(Rc::new(cnn), &backend, true)?;
        let baseline = baseline.map(|b| Model::load(Rc::new(b), &backend, false)).transpose()?;
        Ok(Self { backend, cnn, baseline })
    }

    /// A copy with one model replaced by a weights file of either kind. The file is fully
    /// validated first; on error `self` is untouched.
    pub fn with_weights(&self, bytes: Vec<u8>) -> Result<Self, WeightsError> {
        let (architecture, _) = WeightsFile::peek(&bytes)?;
        let is_cnn = architecture.is_cnn();
        let model = Model::load(Rc::new(bytes), &self.backend, is_cnn)?;
        let mut next = self.clone();
        if is_cnn {
            next.cnn = model;
        } else {
            next.baseline = Some(model);
        }
        Ok(next)
    }

    /// Runs the CNN once so that WebGPU compiles its shaders before the first user image.
    pub async fn warm_up(&self) -> Result<(), EngineError> {
        self.cnn.logits(&[0.0; IMAGE_PIXELS], &self.backend.device).await.map(|_| ())
    }

    /// Probabilities for `pixels` (n × 784, in 0..=1), in batches of [`BATCH`].
    pub async fn classify(&self, pixels: &[f32]) -> Result<Vec<Scores>, EngineError> {
        let (cnn, baseline) = self.all_logits(pixels).await?;
        Ok(self.scores(&cnn, baseline.as_deref()))
    }

    /// Raw logits (n × classes) of the CNN and of the baseline (when loaded) for `pixels`, in
    /// batches of [`BATCH`].
    pub async fn all_logits(&self, pixels: &[f32]) -> Result<(Vec<f32>, Option<Vec<f32>>), EngineError> {
        let mut networks = vec![&self.cnn.inference];
        networks.extend(self.baseline.as_ref().map(|m| &m.inference));
        let (mut cnn, mut baseline) = (Vec::with_capacity(pixels.len() / IMAGE_PIXELS * self.cnn.classes.len()), Vec::new());
        for (n, chunk) in pixels.chunks(BATCH * IMAGE_PIXELS).enumerate() {
            if n > 0 {
                // Let the page paint and take input between batches (not after the last one:
                // a timer costs several milliseconds, more than a CPU forward pass of one photo).
                js::yield_now().await;
            }
            let mut per_network = match &self.cnn.direct {
                Some(direct) => {
                    let mut both = vec![direct.forward(chunk)];
                    if let Some(baseline) = &self.baseline {
                        both.push(baseline.logits(chunk, &self.backend.device).await?);
                    }
                    both
                }
                None => logits_of(&networks, chunk, &self.backend.device).await?,
            }
            .into_iter();
            cnn.extend(per_network.next().unwrap_or_default());
            baseline.extend(per_network.next().unwrap_or_default());
        }
        Ok((cnn, self.baseline.is_some().then_some(baseline)))
    }

    /// Calibrated probabilities and verdicts from [`Engine::all_logits`]' output: each file's
    /// temperature (fitted on the validation split) divides its logits. The page computes
    /// them from logits of either module, so that both answer alike.
    pub fn scores(&self, cnn_logits: &[f32], baseline_logits: Option<&[f32]>) -> Vec<Scores> {
        let (t, rule) = (self.cnn.temperature(), self.cnn.summary.unsure_rule());
        let baseline = baseline_logits
            .zip(self.baseline.as_ref())
            .map(|(logits, model)| probability_rows(logits, model.classes.len(), model.temperature()));
        cnn_logits
            .chunks_exact(self.cnn.classes.len())
            .enumerate()
            .map(|(i, row)| Scores {
                cnn: row_probabilities(row, t),
                verdict: rule.judge(row, t),
                baseline: baseline.as_ref().and_then(|b| b.get(i).cloned()),
            })
            .collect()
    }
}

impl Engine {
    /// The occlusion heatmap of the CNN's answer for one 28×28 input
    /// ([`fashion_model::explain`]): the input and its occluded copies in batches of
    /// [`BATCH`], on the backend in use.
    pub async fn explain(&self, pixels: &[f32]) -> Result<Vec<f32>, EngineError> {
        let batch = explain_inputs(pixels);
        let mut logits = Vec::with_capacity(batch.len() / IMAGE_PIXELS * self.cnn.classes.len());
        for chunk in batch.chunks(BATCH * IMAGE_PIXELS) {
            logits.extend(self.cnn.logits(chunk, &self.backend.device).await?);
            js::yield_now().await;
        }
        Ok(self.heatmap(&logits))
    }

    /// The heatmap from the CNN's logits for [`explain_inputs`], in order: for a caller that
    /// computes the logits itself (the page, on two CPU cores).
    pub fn heatmap(&self, logits: &[f32]) -> Vec<f32> {
        let mut probs = probability_rows(logits, self.cnn.classes.len(), self.cnn.temperature());
        let original = probs.remove(0);
        explain::heatmap(fashion_model::network::argmax(&original), &original, &probs)
    }
}

/// What the occlusion heatmap classifies: the 28×28 input, then its occluded copies.
pub fn explain_inputs(pixels: &[f32]) -> Vec<f32> {
    let mut batch = pixels.to_vec();
    batch.extend(explain::occluded(pixels));
    batch
}

/// Raw logits `[n × classes]` of `network` on `pixels`.
pub async fn logits(network: &Network, pixels: &[f32], device: &Device) -> Result<Vec<f32>, EngineError> {
    Ok(logits_of(&[network], pixels, device).await?.pop().unwrap_or_default())
}

/// Raw logits of each of `networks` on the same `pixels`, read back in one transaction: on
/// WebGPU every read waits for the device, so the CNN and the baseline share one wait.
pub async fn logits_of(networks: &[&Network], pixels: &[f32], device: &Device) -> Result<Vec<Vec<f32>>, EngineError> {
    let input = images_tensor(pixels.to_vec(), device);
    let read = networks.iter().fold(Transaction::default(), |tx, network| tx.register(network.forward(input.clone())));
    let data = read.execute_async().await.map_err(EngineError::device)?;
    data.into_iter().map(|d| d.convert::<f32>().try_to_vec::<f32>().map_err(|e| EngineError::Output(format!("{e:?}")))).collect()
}
