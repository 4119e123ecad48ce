//! ONNX export: any of the networks as a standard ONNX file that other runtimes (onnxruntime,
//! ONNX Runtime Web, OpenCV, TensorRT…) run without this project.
//!
//! The contract, also stated in the README:
//! - input `image`, float32 `[N, 1, 28, 28]`, pixels `0..=1` (Fashion-MNIST's `pixels / 255`,
//!   or the output of [`crate::preprocess`]); `N` is free;
//! - output `logits`, float32 `[N, classes]`, before softmax and before the calibration
//!   temperature (both are in the metadata: `classes`, `temperature`);
//! - batch norm folded into the convolutions, dropout gone: an inference graph of `Conv`,
//!   `Relu`, `MaxPool`, `AveragePool` (or a `MatMul` where burn's adaptive pooling cells are
//!   not evenly spaced), `Flatten` and `Gemm`, in opset 13.
//!
//! The protobuf encoding is prost's; the message types below are the subset of `onnx.proto`
//! this export writes, with the field numbers of the official schema (prost-build would need
//! `protoc` at build time, for nine small messages).

use burn::{
    nn::{Linear, conv::Conv2d, pool::MaxPool2d},
    prelude::*,
};
use prost::Message;

use crate::{
    IMAGE_SIDE,
    compact::{CompactCnn, fold_batch_norm},
    direct::pool_span,
    network::{Cnn, Network},
    weights::TrainingSummary,
};

/// ONNX IR version 8 (2021) and opset 13: read by every maintained runtime.
const IR_VERSION: i64 = 8;
const OPSET: i64 = 13;
/// Names of the graph's input and output (the contract above).
pub const INPUT_NAME: &str = "image";
pub const OUTPUT_NAME: &str = "logits";

/// Why a network could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("cannot read the network's parameters ({0}); copy a network on the GPU to the CPU first")]
    Unreadable(String),
    #[error("the network has {found} outputs but {names} class names")]
    ClassNames { found: usize, names: usize },
}

/// The ONNX file of `network` (any architecture), with its class names and calibration in the
/// metadata. The network's parameters must be readable synchronously (on the CPU).
pub fn export(network: &Network, class_names: &[String], summary: &TrainingSummary) -> Result<Vec<u8>, OnnxError> {
    let mut graph = Graph::default();
    let x = INPUT_NAME.to_string();
    let logits = match network {
        Network::Logistic(m) => {
            let x = graph.flatten(&x);
            graph.dense(&x, &m.linear)?
        }
        Network::Cnn(m) => cnn(&mut graph, m, x)?,
        Network::Compact(m) => compact(&mut graph, m, x)?,
    };
    graph.rename_output(&logits, OUTPUT_NAME);
    let classes = graph.initializers.last().map_or(0, |t| t.dims.first().copied().unwrap_or(0) as usize);
    if classes != class_names.len() {
        return Err(OnnxError::ClassNames { found: classes, names: class_names.len() });
    }
    let side = IMAGE_SIDE as i64;
    let model = proto::Model {
        ir_version: IR_VERSION,
        opset_import: vec![proto::OperatorSetId { domain: String::new(), version: OPSET }],
        producer_name: "fashion-mnist trainer".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "Fashion-MNIST classifier ({}). Input `{INPUT_NAME}`: float32 [N, 1, 28, 28], pixels / 255. Output `{OUTPUT_NAME}`: float32 [N, {classes}], before softmax; divide by `temperature` (metadata) before softmax for calibrated probabilities.",
            network_name(network)
        ),
        graph: Some(proto::Graph {
            node: graph.nodes,
            name: "fashion_mnist".into(),
            initializer: graph.initializers,
            input: vec![value_info(INPUT_NAME, &[Dim::Batch, Dim::Fixed(1), Dim::Fixed(side), Dim::Fixed(side)])],
            output: vec![value_info(OUTPUT_NAME, &[Dim::Batch, Dim::Fixed(classes as i64)])],
        }),
        metadata_props: vec![
            entry("classes", serde_json::to_string(class_names).unwrap_or_default()),
            entry("temperature", summary.softmax_temperature().to_string()),
        ],
    };
    Ok(model.encode_to_vec())
}

fn network_name(network: &Network) -> &'static str {
    match network {
        Network::Logistic(_) => "logistic regression",
        Network::Cnn(_) => "CNN (report layout)",
        Network::Compact(_) => "compact CNN",
    }
}

fn cnn(graph: &mut Graph, m: &Cnn, x: String) -> Result<String, OnnxError> {
    let mut x = x;
    let blocks = [(&m.conv1, &m.norm1, true), (&m.conv2, &m.norm2, true), (&m.conv3, &m.norm3, false)];
    for (conv, norm, pooled) in blocks {
        let conv = match norm {
            Some(norm) => fold_batch_norm(conv, norm),
            None => conv.clone(),
        };
        x = graph.conv_relu(&x, &conv)?;
        if pooled {
            x = graph.max_pool(&x, &m.pool);
        }
    }
    let x = graph.flatten(&x);
    let x = graph.dense(&x, &m.fc1)?;
    let x = graph.relu(&x);
    graph.dense(&x, &m.fc2)
}

fn compact(graph: &mut Graph, m: &CompactCnn, x: String) -> Result<String, OnnxError> {
    let folded = m.folded();
    let mut x = x;
    let mut side = IMAGE_SIDE;
    let mut channels = 1;
    // The previous convolution's input and its channels: a residual block's shortcut.
    let mut previous = (x.clone(), 1);
    for (i, stage) in folded.stages.iter().enumerate() {
        if i > 0 {
            x = graph.max_pool(&x, &folded.pool);
            side /= 2;
        }
        for block in stage {
            let input = (x.clone(), channels);
            channels = block.conv.weight.dims()[0];
            x = if block.shortcut {
                let y = graph.conv(&x, &block.conv)?;
                let skip = graph.zero_padded(&previous.0, previous.1, channels);
                let sum = graph.node("Add", vec![y, skip], Vec::new());
                graph.relu(&sum)
            } else {
                graph.conv_relu(&x, &block.conv)?
            };
            previous = input;
        }
    }
    let [k, _] = folded.head_pool.output_size;
    let x = graph.adaptive_average_pool(&x, channels, side, k);
    let x = graph.flatten(&x);
    let x = graph.dense(&x, &folded.fc1)?;
    let x = graph.relu(&x);
    graph.dense(&x, &folded.fc2)
}

/// Builds the node list and the initializers, naming each intermediate value.
#[derive(Default)]
struct Graph {
    nodes: Vec<proto::Node>,
    initializers: Vec<proto::Tensor>,
}

impl Graph {
    fn node(&mut self, op: &str, inputs: Vec<String>, attributes: Vec<proto::Attribute>) -> String {
        let name = format!("{}_{}", op.to_lowercase(), self.nodes.len());
        self.nodes.push(proto::Node {
            input: inputs,
            output: vec![name.clone()],
            name: name.clone(),
            op_type: op.into(),
            attribute: attributes,
        });
        name
    }

    fn constant(&mut self, name: String, dims: Vec<i64>, values: Vec<f32>) -> String {
        self.initializers.push(proto::Tensor {
            dims,
            data_type: proto::FLOAT,
            float_data: values,
            int64_data: Vec::new(),
            name: name.clone(),
        });
        name
    }

    fn constant_i64(&mut self, name: String, values: Vec<i64>) -> String {
        let dims = vec![values.len() as i64];
        self.initializers.push(proto::Tensor {
            dims,
            data_type: proto::INT64,
            float_data: Vec::new(),
            int64_data: values,
            name: name.clone(),
        });
        name
    }

    /// A 'same' convolution with bias (batch norm already folded in), then ReLU.
    fn conv_relu(&mut self, x: &str, conv: &Conv2d) -> Result<String, OnnxError> {
        let y = self.conv(x, conv)?;
        Ok(self.relu(&y))
    }

    /// `x` (`[N, have, H, W]`) with zero channels appended up to `channels`: a residual
    /// block's widening shortcut.
    fn zero_padded(&mut self, x: &str, have: usize, channels: usize) -> String {
        if have >= channels {
            return x.into();
        }
        let id = self.nodes.len();
        let pads = self.constant_i64(format!("pad_{id}.pads"), vec![0, 0, 0, 0, 0, (channels - have) as i64, 0, 0]);
        self.node("Pad", vec![x.into(), pads], Vec::new())
    }

    /// A 'same' convolution with bias (batch norm already folded in).
    fn conv(&mut self, x: &str, conv: &Conv2d) -> Result<String, OnnxError> {
        let dims = conv.weight.dims();
        let [cout, _, kh, kw] = dims;
        let id = self.nodes.len();
        let w = self.constant(format!("conv_{id}.weight"), dims.iter().map(|&d| d as i64).collect(), read(conv.weight.val())?);
        let b = match &conv.bias {
            Some(bias) => read(bias.val())?,
            None => vec![0.0; cout],
        };
        let b = self.constant(format!("conv_{id}.bias"), vec![cout as i64], b);
        let (ph, pw) = (kh as i64 / 2, kw as i64 / 2);
        let y = self.node(
            "Conv",
            vec![x.into(), w, b],
            vec![ints("kernel_shape", &[kh as i64, kw as i64]), ints("pads", &[ph, pw, ph, pw]), ints("strides", &[1, 1])],
        );
        Ok(y)
    }

    fn relu(&mut self, x: &str) -> String {
        self.node("Relu", vec![x.into()], Vec::new())
    }

    /// burn's pool as configured (no padding: 7 → 3 drops the last row and column, as
    /// ONNX's floor rounding does).
    fn max_pool(&mut self, x: &str, pool: &MaxPool2d) -> String {
        let kernel = pool.kernel_size.map(|k| k as i64);
        let stride = pool.stride.map(|s| s as i64);
        self.node("MaxPool", vec![x.into()], vec![ints("kernel_shape", &kernel), ints("strides", &stride)])
    }

    /// burn's adaptive average pooling from `side` to `k` cells a side: one `AveragePool`
    /// where the cells are evenly spaced and equally large (the shipped 7 → 3: kernel 3,
    /// stride 2), else a product with the pooling matrix.
    fn adaptive_average_pool(&mut self, x: &str, channels: usize, side: usize, k: usize) -> String {
        let spans: Vec<(usize, usize)> = (0..k).map(|i| pool_span(i, side, k)).collect();
        let size = spans[0].1 - spans[0].0;
        let step = if k > 1 { spans[1].0 - spans[0].0 } else { 1 };
        let even = spans.iter().enumerate().all(|(i, &(a, b))| b - a == size && a == i * step);
        if even {
            let (kernel, stride) = (size as i64, step as i64);
            return self.node(
                "AveragePool",
                vec![x.into()],
                vec![ints("kernel_shape", &[kernel, kernel]), ints("strides", &[stride, stride])],
            );
        }
        // [N, C, side, side] → [N, C, side²] · [side², k²] → [N, C, k²]; Flatten then gives
        // burn's channel-major order.
        let mut matrix = vec![0.0; side * side * k * k];
        for (i, &(y0, y1)) in spans.iter().enumerate() {
            for (j, &(x0, x1)) in spans.iter().enumerate() {
                let weight = 1.0 / ((y1 - y0) * (x1 - x0)) as f32;
                for y in y0..y1 {
                    for x in x0..x1 {
                        matrix[(y * side + x) * k * k + i * k + j] = weight;
                    }
                }
            }
        }
        let id = self.nodes.len();
        let shape = self.constant_i64(format!("pool_{id}.shape"), vec![0, channels as i64, (side * side) as i64]);
        let flat = self.node("Reshape", vec![x.into(), shape], Vec::new());
        let matrix = self.constant(format!("pool_{id}.matrix"), vec![(side * side) as i64, (k * k) as i64], matrix);
        self.node("MatMul", vec![flat, matrix], Vec::new())
    }

    fn flatten(&mut self, x: &str) -> String {
        self.node("Flatten", vec![x.into()], vec![int("axis", 1)])
    }

    /// burn's `Linear` (weights `[inputs, outputs]`, `y = x·W + b`) as `Gemm`.
    fn dense(&mut self, x: &str, layer: &Linear) -> Result<String, OnnxError> {
        let [inputs, outputs] = layer.weight.dims();
        let id = self.nodes.len();
        let w = self.constant(format!("dense_{id}.weight"), vec![inputs as i64, outputs as i64], read(layer.weight.val())?);
        let b = match &layer.bias {
            Some(bias) => read(bias.val())?,
            None => vec![0.0; outputs],
        };
        let b = self.constant(format!("dense_{id}.bias"), vec![outputs as i64], b);
        Ok(self.node("Gemm", vec![x.into(), w, b], Vec::new()))
    }

    /// Gives the last node's output the graph output's name.
    fn rename_output(&mut self, from: &str, to: &str) {
        for node in &mut self.nodes {
            for output in &mut node.output {
                if output == from {
                    *output = to.into();
                }
            }
        }
    }
}

fn read<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, OnnxError> {
    tensor.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|e| OnnxError::Unreadable(format!("{e:?}")))
}

fn ints(name: &str, values: &[i64]) -> proto::Attribute {
    proto::Attribute { name: name.into(), r#type: proto::ATTRIBUTE_INTS, ints: values.to_vec(), ..Default::default() }
}

fn int(name: &str, value: i64) -> proto::Attribute {
    proto::Attribute { name: name.into(), r#type: proto::ATTRIBUTE_INT, i: value, ..Default::default() }
}

fn entry(key: &str, value: String) -> proto::StringStringEntry {
    proto::StringStringEntry { key: key.into(), value }
}

enum Dim {
    /// The free batch dimension, named `N`.
    Batch,
    Fixed(i64),
}

fn value_info(name: &str, dims: &[Dim]) -> proto::ValueInfo {
    let dim = dims
        .iter()
        .map(|d| match d {
            Dim::Batch => proto::Dimension { value: Some(proto::dimension::Value::DimParam("N".into())) },
            Dim::Fixed(n) => proto::Dimension { value: Some(proto::dimension::Value::DimValue(*n)) },
        })
        .collect();
    proto::ValueInfo {
        name: name.into(),
        r#type: Some(proto::Type {
            tensor_type: Some(proto::TensorType { elem_type: proto::FLOAT, shape: Some(proto::TensorShape { dim }) }),
        }),
    }
}

/// The messages of `onnx.proto` this export writes, with the official field numbers (fields
/// it never writes are left out; readers skip absent fields).
#[allow(clippy::derive_partial_eq_without_eq)]
pub mod proto {
    /// `TensorProto.DataType`.
    pub const FLOAT: i32 = 1;
    pub const INT64: i32 = 7;
    /// `AttributeProto.AttributeType`.
    pub const ATTRIBUTE_INT: i32 = 2;
    pub const ATTRIBUTE_INTS: i32 = 7;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Model {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(string, tag = "3")]
        pub producer_version: String,
        #[prost(string, tag = "6")]
        pub doc_string: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<Graph>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetId>,
        #[prost(message, repeated, tag = "14")]
        pub metadata_props: Vec<StringStringEntry>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetId {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringStringEntry {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Graph {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<Node>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<Tensor>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfo>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfo>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Node {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<Attribute>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Attribute {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(float, repeated, tag = "4")]
        pub float_data: Vec<f32>,
        #[prost(int64, repeated, tag = "7")]
        pub int64_data: Vec<i64>,
        #[prost(string, tag = "8")]
        pub name: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfo {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<Type>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Type {
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TensorType>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorType {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShape>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShape {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(oneof = "dimension::Value", tags = "1, 2")]
        pub value: Option<dimension::Value>,
    }

    pub mod dimension {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(int64, tag = "1")]
            DimValue(i64),
            #[prost(string, tag = "2")]
            DimParam(String),
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::{Block, CLASS_NAMES, CnnConfig, CompactConfig, network::Architecture};

    fn names() -> Vec<String> {
        CLASS_NAMES.iter().map(|s| s.to_string()).collect()
    }

    fn ops(bytes: &[u8]) -> (proto::Model, Vec<String>) {
        let model = proto::Model::decode(bytes).expect("the export decodes as an ONNX ModelProto");
        let ops = model.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.clone()).collect();
        (model, ops)
    }

    #[test]
    fn shipped_shape_is_a_plain_inference_graph() {
        let device = Device::flex();
        let network = Architecture::Compact(CompactConfig::shipped()).init(&device);
        let bytes = export(&network, &names(), &TrainingSummary::default()).unwrap();
        let (model, ops) = ops(&bytes);
        // A plain block, then two residual blocks, each widening its input: its shortcut
        // zero-pads the channels before the sum.
        let residual = ["MaxPool", "Conv", "Relu", "Conv", "Pad", "Add", "Relu"];
        let expected: Vec<&str> =
            [&["Conv", "Relu"][..], &residual, &residual, &["AveragePool", "Flatten", "Gemm", "Relu", "Gemm"]].concat();
        assert_eq!(ops, expected);
        let graph = model.graph.unwrap();
        assert_eq!(graph.input[0].name, INPUT_NAME);
        assert_eq!(graph.output[0].name, OUTPUT_NAME);
        assert_eq!(graph.node.last().unwrap().output, [OUTPUT_NAME]);
        // Every value a node reads is the input, an initializer or an earlier node's output.
        let mut known: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).chain([INPUT_NAME.to_string()]).collect();
        for node in &graph.node {
            assert!(node.input.iter().all(|i| known.contains(i)), "{} reads an unknown value", node.name);
            known.extend(node.output.iter().cloned());
        }
        // Parameters: everything but batch norm's four vectors per conv, which are folded.
        let exported: usize = graph.initializer.iter().map(|t| t.float_data.len()).sum();
        let classes = model.metadata_props.iter().find(|e| e.key == "classes").unwrap();
        assert_eq!(serde_json::from_str::<Vec<String>>(&classes.value).unwrap(), names());
        assert!(exported > 200_000, "{exported} parameters");
    }

    #[test]
    fn uneven_pooling_cells_become_a_matrix_product_whose_rows_sum_to_one() {
        let device = Device::flex();
        // 14 → 3: cells 0..5, 4..10, 9..14 are not equally large.
        let config = CompactConfig { stages: Block::plain(vec![vec![4], vec![6]]), pooled_side: 3, hidden: 8, dropout: 0.0 };
        let network = Architecture::Compact(config).init(&device);
        let (model, ops) = ops(&export(&network, &names(), &TrainingSummary::default()).unwrap());
        assert!(ops.contains(&"MatMul".to_string()) && !ops.contains(&"AveragePool".to_string()), "{ops:?}");
        let matrix = model.graph.unwrap().initializer.into_iter().find(|t| t.name.ends_with(".matrix")).unwrap();
        assert_eq!(matrix.dims, [196, 9]);
        for cell in 0..9 {
            let sum: f32 = (0..196).map(|p| matrix.float_data[p * 9 + cell]).sum();
            assert!((sum - 1.0).abs() < 1e-5, "cell {cell} averages with total weight {sum}");
        }
    }

    #[test]
    fn every_architecture_exports_and_a_wrong_class_list_is_refused() {
        let device = Device::flex();
        for architecture in [Architecture::Logistic, Architecture::Cnn(CnnConfig::report()), Architecture::Cnn(CnnConfig::shipped())] {
            let network = architecture.init(&device);
            let (_, ops) = ops(&export(&network, &names(), &TrainingSummary::default()).unwrap());
            assert_eq!(ops.last().unwrap(), "Gemm", "{}", architecture.name());
            let err = export(&network, &names()[..9], &TrainingSummary::default()).unwrap_err();
            assert!(err.to_string().contains("10 outputs but 9 class names"), "{err}");
        }
    }
}
