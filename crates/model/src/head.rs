//! The output layer, one row per class, and how it changes when the user adds or removes a
//! class of their own: the convolutions are kept as trained, only the last layer's rows are.
//!
//! A new class's row is *imprinted* (after Qi, Brown & Lowe, "Low-Shot Learning with Imprinted
//! Weights", CVPR 2018): it points from the mean penultimate feature of reference images (the
//! replayed Fashion-MNIST ones) to the mean feature of the class's photos, scaled to the typical
//! length of the existing rows, and its bias makes it tie, at the class's mean feature, with the
//! strongest existing row. Both choices were measured (`crates/trainer/tests/own_class.rs`, 12
//! hats): with an uncentred row and the mean bias, the ten classes' held-out slice fell from
//! 93.4% to 44.6% before any training (the features are non-negative after ReLU, so every
//! mean points roughly the same way); centred, to 76.0%; centred and tied, it stayed at 93.4%,
//! and fine-tuning then only has to break the tie (docs/page.md, "Your own classes").
//!
//! Everything here reads tensors synchronously: run it on a CPU device (in the browser,
//! copy a WebGPU network to the CPU first, as saving does).

use burn::{
    module::Param,
    nn::{Linear, LinearConfig},
    prelude::*,
};

use crate::{
    LabelledImages, NUM_CLASSES, Network,
    classes::{ClassNameError, MAX_CLASSES},
    network::images_tensor,
};

/// Why the output layer cannot change as asked. Each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("Class “{0}” has no photos to learn from: teach it at least one (not held out), or remove it.")]
    NoPhotos(String),
    #[error(transparent)]
    Classes(#[from] ClassNameError),
    #[error("the network has {has} classes and cannot shrink to {wanted} this way")]
    Shrink { has: usize, wanted: usize },
    #[error("could not read the network's output layer: {0}")]
    Read(String),
}

/// The output layer's weights `[inputs × classes]` (row-major, as burn stores `Linear`) and
/// biases, on the host.
struct Rows {
    inputs: usize,
    classes: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

/// A tensor's values on the host, as f32.
fn host(data: TensorData) -> Result<Vec<f32>, HeadError> {
    data.convert::<f32>().try_into_vec::<f32>().map_err(|e| HeadError::Read(format!("{e:?}")))
}

impl Rows {
    fn read(layer: &Linear) -> Result<Self, HeadError> {
        let [inputs, classes] = layer.weight.dims();
        let weight = host(layer.weight.val().into_data())?;
        let bias = match &layer.bias {
            Some(b) => host(b.val().into_data())?,
            None => vec![0.0; classes],
        };
        Ok(Self { inputs, classes, weight, bias })
    }

    fn column(&self, class: usize) -> impl Iterator<Item = f32> + '_ {
        (0..self.inputs).map(move |i| self.weight[i * self.classes + class])
    }

    /// Keeps the classes `keep` (in that order) and appends `extra` columns with their biases.
    fn rebuilt(&self, keep: &[usize], extra: &[(Vec<f32>, f32)]) -> Self {
        let classes = keep.len() + extra.len();
        let mut weight = Vec::with_capacity(self.inputs * classes);
        for i in 0..self.inputs {
            weight.extend(keep.iter().map(|&c| self.weight[i * self.classes + c]));
            weight.extend(extra.iter().map(|(column, _)| column[i]));
        }
        let bias = keep.iter().map(|&c| self.bias[c]).chain(extra.iter().map(|e| e.1)).collect();
        Self { inputs: self.inputs, classes, weight, bias }
    }

    fn layer(self, device: &Device) -> Linear {
        Linear {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(self.weight, [self.inputs, self.classes]), device)),
            bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(self.bias, [self.classes]), device))),
        }
    }
}

impl Network {
    fn output_layer(&self) -> &Linear {
        match self {
            Network::Logistic(m) => &m.linear,
            Network::Cnn(m) => &m.fc2,
            Network::Compact(m) => &m.fc2,
        }
    }

    fn with_output_layer(self, layer: Linear) -> Self {
        match self {
            Network::Logistic(mut m) => {
                m.linear = layer;
                Network::Logistic(m)
            }
            Network::Cnn(mut m) => {
                m.fc2 = layer;
                Network::Cnn(m)
            }
            Network::Compact(mut m) => {
                m.fc2 = layer;
                Network::Compact(m)
            }
        }
    }

    /// How many classes the network answers with: its output layer's width.
    pub fn classes(&self) -> usize {
        self.output_layer().weight.dims()[1]
    }

    /// This network with a freshly initialised output layer of `classes` rows: the shape a
    /// weights file of that many classes loads into.
    pub(crate) fn with_class_count(self, classes: usize, device: &Device) -> Self {
        if classes == self.classes() {
            return self;
        }
        let inputs = self.output_layer().weight.dims()[0];
        self.with_output_layer(LinearConfig::new(inputs, classes).init(device))
    }

    /// The input of the output layer (`[batch, inputs]`) for images `[batch, 28, 28]`: the
    /// penultimate features of the CNNs (after ReLU), the pixels for the baseline.
    pub fn features(&self, images: Tensor<3>) -> Tensor<2> {
        match self {
            Network::Logistic(_) => images.flatten::<2>(1, 2),
            Network::Cnn(m) => m.features(images),
            Network::Compact(m) => m.features(images),
        }
    }

    /// This network answering with `classes` classes: the rows it has, plus one imprinted row
    /// for each new class (labels `self.classes()..classes`) from that class's photos in
    /// `photos`, centred on the mean feature of `reference` (images of the known classes; none:
    /// not centred). `names` name the new classes in the errors. Synchronous reads: a CPU device.
    pub fn with_new_classes(
        self,
        classes: usize,
        photos: &LabelledImages,
        reference: &LabelledImages,
        names: &[String],
    ) -> Result<Self, HeadError> {
        let has = self.classes();
        if classes < has {
            return Err(HeadError::Shrink { has, wanted: classes });
        }
        if classes > MAX_CLASSES {
            return Err(ClassNameError::TooMany.into());
        }
        if classes == has {
            return Ok(self);
        }
        let rows = Rows::read(self.output_layer())?;
        let norm = |v: &mut dyn Iterator<Item = f32>| v.map(|x| x * x).sum::<f32>().sqrt();
        let typical_norm = (0..has).map(|c| norm(&mut rows.column(c))).sum::<f32>() / has as f32;
        let device = self.output_layer().weight.device();
        let mean_feature = |set: &LabelledImages| host(self.features(images_tensor(set.to_f32(), &device)).mean_dim(0).into_data());
        let centre = if reference.is_empty() { vec![0.0; rows.inputs] } else { mean_feature(reference)? };
        let mut extra = Vec::new();
        for class in has..classes {
            let name = || names.get(class).cloned().unwrap_or_else(|| format!("class {class}"));
            let picked: Vec<usize> = (0..photos.len()).filter(|&i| photos.labels[i] as usize == class).collect();
            if picked.is_empty() {
                return Err(HeadError::NoPhotos(name()));
            }
            let mean = mean_feature(&photos.select(&picked))?;
            let direction: Vec<f32> = mean.iter().zip(&centre).map(|(f, c)| f - c).collect();
            let length = norm(&mut direction.iter().copied()).max(1e-6);
            let row: Vec<f32> = direction.iter().map(|&v| v * typical_norm / length).collect();
            // At the class's mean feature the new row ties with the strongest existing one:
            // pictures further along the row's direction go to the new class, the rest stay.
            let strongest =
                (0..has).map(|c| rows.column(c).zip(&mean).map(|(w, f)| w * f).sum::<f32>() + rows.bias[c]).fold(f32::MIN, f32::max);
            let bias = strongest - row.iter().zip(&mean).map(|(w, f)| w * f).sum::<f32>();
            extra.push((row, bias));
        }
        let keep: Vec<usize> = (0..has).collect();
        Ok(self.with_output_layer(rows.rebuilt(&keep, &extra).layer(&device)))
    }

    /// This network without class `class` (one of the user's own: the ten are built in). The
    /// other rows are untouched, so the other answers keep their order; later classes move
    /// down one label.
    pub fn without_class(self, class: usize) -> Result<Self, HeadError> {
        let has = self.classes();
        if class < NUM_CLASSES {
            return Err(ClassNameError::BuiltIn.into());
        }
        if class >= has {
            return Err(ClassNameError::NoSuchClass(class).into());
        }
        let rows = Rows::read(self.output_layer())?;
        let device = self.output_layer().weight.device();
        let keep: Vec<usize> = (0..has).filter(|&c| c != class).collect();
        Ok(self.with_output_layer(rows.rebuilt(&keep, &[]).layer(&device)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Block, CompactConfig, IMAGE_PIXELS};

    fn small() -> Network {
        let config = CompactConfig { stages: Block::plain(vec![vec![4], vec![8]]), pooled_side: 3, hidden: 16, dropout: 0.0 };
        Network::Compact(config.init(&Device::flex()))
    }

    fn photos(label: u8, n: usize) -> LabelledImages {
        let mut set = LabelledImages::default();
        for k in 0..n {
            let image: Vec<u8> = (0..IMAGE_PIXELS).map(|i| if (i / 28 + k) % 5 < 2 && i % 28 > 6 { 200 } else { 0 }).collect();
            set.push(&image, label);
        }
        set
    }

    fn logits(network: &Network, set: &LabelledImages) -> Vec<f32> {
        network.forward(images_tensor(set.to_f32(), &Device::flex())).into_data().try_into_vec().unwrap()
    }

    #[test]
    fn a_new_class_gets_an_imprinted_row_and_the_old_rows_stay() {
        let network = small();
        let hats = photos(10, 3);
        let before = logits(&network, &hats);
        let grown = network.with_new_classes(11, &hats, &LabelledImages::default(), &[]).unwrap();
        assert_eq!(grown.classes(), 11);
        let after = logits(&grown, &hats);
        for (old, new) in before.chunks_exact(10).zip(after.chunks_exact(11)) {
            assert_eq!(old, &new[..10]);
        }
        // The imprinted row points along the class's mean feature: its own photos score
        // higher on it than an empty picture does.
        let empty = {
            let mut set = LabelledImages::default();
            set.push(&[0; IMAGE_PIXELS], 0);
            set
        };
        let own = after.chunks_exact(11).map(|r| r[10]).sum::<f32>() / 3.0;
        assert!(own > logits(&grown, &empty)[10], "imprinted row does not favour its class");
    }

    #[test]
    fn growing_needs_photos_of_every_new_class_and_a_sensible_count() {
        let names: Vec<String> = crate::classes::fashion_names().into_iter().chain(["Hat".into(), "Scarf".into()]).collect();
        let e = small().with_new_classes(12, &photos(10, 2), &photos(3, 2), &names).unwrap_err();
        assert_eq!(e, HeadError::NoPhotos("Scarf".into()));
        assert!(e.to_string().contains("Scarf"));
        assert_eq!(
            small().with_new_classes(MAX_CLASSES + 1, &photos(10, 1), &photos(3, 2), &[]).unwrap_err(),
            ClassNameError::TooMany.into()
        );
        assert!(matches!(small().with_new_classes(9, &photos(1, 1), &photos(3, 2), &[]), Err(HeadError::Shrink { .. })));
        assert_eq!(small().with_new_classes(10, &LabelledImages::default(), &photos(3, 2), &[]).unwrap().classes(), 10);
    }

    #[test]
    fn removing_a_class_drops_its_row_only() {
        let mut set = photos(10, 2);
        let scarves = photos(11, 2);
        (0..scarves.len()).for_each(|i| set.push(scarves.image(i), 11));
        let grown = small().with_new_classes(12, &set, &photos(3, 2), &[]).unwrap();
        let full = logits(&grown, &set);
        let fewer = grown.clone().without_class(10).unwrap();
        assert_eq!(fewer.classes(), 11);
        for (a, b) in full.chunks_exact(12).zip(logits(&fewer, &set).chunks_exact(11)) {
            assert_eq!(&a[..10], &b[..10]);
            assert_eq!(a[11], b[10]);
        }
        assert_eq!(grown.clone().without_class(3).unwrap_err(), ClassNameError::BuiltIn.into());
        assert_eq!(grown.without_class(12).unwrap_err(), ClassNameError::NoSuchClass(12).into());
    }
}
