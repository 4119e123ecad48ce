//! The compact network's shape as data: the blocks a weights file's header lists
//! ([`Block`]), and the list of 3×3 convolutions they unfold into ([`ConvStep`]), which every
//! implementation walks: burn's module ([`crate::compact`]), the page's CPU kernels
//! ([`crate::direct`]), the ONNX export and the trainer's hand-written training step.
//! A new kind of block is described here once; each implementation then handles the steps.

use serde::{Deserialize, Serialize};

use crate::IMAGE_SIDE;

/// One block of a stage.
///
/// Written in a weights file's header as a plain number for a conv block (as every file
/// before residual blocks wrote it) and as `{"residual": width}` for a residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Block {
    /// 3×3 conv, batch norm, ReLU, to `width` channels.
    Conv(usize),
    /// Two 3×3 convs with batch norm (ReLU between them), plus the block's input, then ReLU:
    /// `relu(bn(conv(relu(bn(conv(x))))) + x)`. Where the block widens its input, the input
    /// is zero-padded to the width (the parameter-free shortcut of ResNet's option A); the
    /// sides never change inside a block (the max-pool sits between stages).
    Residual { residual: usize },
}

impl Block {
    /// Output channels.
    pub fn width(self) -> usize {
        match self {
            Block::Conv(width) | Block::Residual { residual: width } => width,
        }
    }

    /// Stages of plain conv blocks, e.g. `vec![vec![32], vec![64], vec![96, 128]]`.
    pub fn plain(stages: Vec<Vec<usize>>) -> Vec<Vec<Block>> {
        stages.into_iter().map(|stage| stage.into_iter().map(Block::Conv).collect()).collect()
    }
}

/// One 3×3 'same' convolution (no bias; batch norm follows) of the unfolded network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvStep {
    /// Index of the stage it belongs to.
    pub stage: usize,
    pub cin: usize,
    pub cout: usize,
    /// Side of the maps it runs on (after the pool, if any).
    pub side: usize,
    /// A 2×2 max-pool halves the maps before this convolution (the first of every stage but
    /// the first).
    pub pool_before: bool,
    /// The second convolution of a residual block: the input of the step before it (after
    /// that step's pool; `cin` of that step channels, zero-padded to `cout`) is added to its
    /// batch-normalised output before the ReLU.
    pub shortcut: bool,
}

/// Side of the feature maps in stage `i`: 28, 14, 7, 3 (a 2×2 pool floors 7 to 3).
pub fn stage_side(i: usize) -> usize {
    IMAGE_SIDE >> i
}

/// The convolutions `stages` unfold into, in order.
pub fn steps(stages: &[Vec<Block>]) -> Vec<ConvStep> {
    let mut steps = Vec::new();
    let mut cin = 1;
    for (s, stage) in stages.iter().enumerate() {
        let side = stage_side(s);
        for (b, block) in stage.iter().enumerate() {
            let pool_before = s > 0 && b == 0;
            let cout = block.width();
            steps.push(ConvStep { stage: s, cin, cout, side, pool_before, shortcut: false });
            if let Block::Residual { .. } = block {
                steps.push(ConvStep { stage: s, cin: cout, cout, side, pool_before: false, shortcut: true });
            }
            cin = cout;
        }
    }
    steps
}

/// A random valid list of stages (1 to 4 stages of 1 or 2 blocks, plain or residual, widths
/// drawn from `widths`): what the parity tests check every implementation on, and a start
/// for architecture searches.
pub fn random_stages(rng: &mut impl rand::Rng, widths: &[usize]) -> Vec<Vec<Block>> {
    let mut cin = 1;
    let stages = rng.random_range(1..=4);
    (0..stages)
        .map(|_| {
            (0..rng.random_range(1..=2))
                .map(|_| {
                    let width = widths[rng.random_range(0..widths.len())];
                    let block = if rng.random_bool(0.5) {
                        // A shortcut only widens: take the input's width where the draw is narrower.
                        Block::Residual { residual: width.max(cin) }
                    } else {
                        Block::Conv(width)
                    };
                    cin = block.width();
                    block
                })
                .collect()
        })
        .collect()
}

/// Why a list of blocks cannot be built (a weights file's header is untrusted input).
pub fn check_blocks(stages: &[Vec<Block>]) -> Result<(), String> {
    let mut cin = 1;
    for (s, stage) in stages.iter().enumerate() {
        if stage.is_empty() {
            return Err(format!("stage {} has no block; every stage needs at least one", s + 1));
        }
        for (b, block) in stage.iter().enumerate() {
            let width = block.width();
            if width == 0 {
                return Err(format!("block {} of stage {} has no channels", b + 1, s + 1));
            }
            if matches!(block, Block::Residual { .. }) && width < cin {
                return Err(format!(
                    "residual block {} of stage {} narrows {cin} channels to {width}; its shortcut can only widen (zero-padded), so give it at least {cin}",
                    b + 1,
                    s + 1
                ));
            }
            cin = width;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_read_old_headers_and_write_residual_ones() {
        let old: Vec<Vec<Block>> = serde_json::from_str("[[32],[64],[96,128]]").unwrap();
        assert_eq!(old, Block::plain(vec![vec![32], vec![64], vec![96, 128]]));
        let mixed = vec![vec![Block::Conv(16), Block::Residual { residual: 16 }], vec![Block::Residual { residual: 32 }]];
        let json = serde_json::to_string(&mixed).unwrap();
        assert_eq!(json, r#"[[16,{"residual":16}],[{"residual":32}]]"#);
        assert_eq!(serde_json::from_str::<Vec<Vec<Block>>>(&json).unwrap(), mixed);
        assert!(serde_json::from_str::<Vec<Vec<Block>>>(r#"[[{"dense":3}]]"#).is_err());
    }

    #[test]
    fn residual_blocks_unfold_into_two_convolutions_with_a_shortcut() {
        let stages = vec![vec![Block::Conv(8), Block::Residual { residual: 8 }], vec![Block::Residual { residual: 16 }]];
        let want = [
            ConvStep { stage: 0, cin: 1, cout: 8, side: 28, pool_before: false, shortcut: false },
            ConvStep { stage: 0, cin: 8, cout: 8, side: 28, pool_before: false, shortcut: false },
            ConvStep { stage: 0, cin: 8, cout: 8, side: 28, pool_before: false, shortcut: true },
            ConvStep { stage: 1, cin: 8, cout: 16, side: 14, pool_before: true, shortcut: false },
            ConvStep { stage: 1, cin: 16, cout: 16, side: 14, pool_before: false, shortcut: true },
        ];
        assert_eq!(steps(&stages), want);
        check_blocks(&stages).unwrap();
    }

    #[test]
    fn random_stages_are_valid_and_varied() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
        let drawn: Vec<_> = (0..40).map(|_| random_stages(&mut rng, &[8, 16])).collect();
        drawn.iter().for_each(|stages| check_blocks(stages).unwrap());
        let residual = drawn.iter().flatten().flatten().filter(|b| matches!(b, Block::Residual { .. })).count();
        assert!(residual > 10 && drawn.iter().any(|s| s.len() == 4), "{drawn:?}");
    }

    #[test]
    fn shapes_that_cannot_be_built_are_named() {
        let narrowing = vec![vec![Block::Conv(16)], vec![Block::Residual { residual: 8 }]];
        assert!(check_blocks(&narrowing).unwrap_err().contains("at least 16"));
        assert!(check_blocks(&[vec![Block::Conv(0)]]).is_err());
        assert!(check_blocks(&[vec![Block::Conv(4)], vec![]]).is_err());
    }
}
