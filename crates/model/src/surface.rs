//! Finding the garment on a surface: a floor, a bed, a table, the grass.
//!
//! Catalog shots have a plain backdrop, and the border's colour is the background (see
//! `preprocess`). A phone photo of a shirt on a wooden floor does not: the grain, a shadow and
//! light falling off across the frame all differ from the border's median grey. Here the
//! surface is *learnt* instead, from the picture itself:
//!
//! 1. **Even out the light**: a smooth (quadratic) brightness surface is fitted to the
//!    surface's pixels (at first the border's) and divided out, so a floor lit from one side
//!    looks the same everywhere.
//! 2. **Describe each pixel** by its brightness, two colour-opponent channels (so a red shirt on
//!    a green lawn of the same brightness stands out) and the local texture (how much the
//!    brightness varies around it: wood grain and carpet vary, most garments less).
//! 3. **Model the surface from the border** as a few colour/texture clusters (less the border
//!    clusters that fill the picture's centre: a garment photographed close reaches the
//!    edge), and the item from what is unlike them; then, a few times over, label each pixel by
//!    which model explains it better, smoothed over its neighbours, keep the region with the
//!    most evidence of not being the surface (not one along much of the frame's edge, or over
//!    most of the frame), fill its holes, and refit the light and the item's model (GrabCut's
//!    iteration, with smoothing in place of the graph cut).
//!
//! The region becomes the item's mask: its ink is its colour distance from the surface,
//! everything else becomes Fashion-MNIST's black. A picture whose best region is small, or
//! hardly unlike its surface, has no item: an empty floor is refused rather than called a
//! shirt. The constants below were chosen on development pictures (`trainer` example
//! `surface_lab`), not on the surface set `trainer suite` reports.

/// Longest side the item is looked for at: enough for a 28×28 result, cheap on a phone.
pub(crate) const SEGMENT_SIDE: u32 = 192;
/// How far from the border's median colour (brightness and each colour channel) a plain
/// backdrop's pixels lie, and what share of the border must: an item may cover the rest.
const PLAIN_TOLERANCE: f32 = 0.015;
const PLAIN_SHARE: f32 = 0.65;
/// Features per pixel: brightness, two colour-opponent channels, texture.
const FEATURES: usize = 4;
/// Clusters in each colour/texture model.
const CLUSTERS: usize = 5;
/// Share of the border's own pixels a pixel must be less likely than, under the surface's
/// model, to seed the item's model.
const SEED_PERCENTILE: f32 = 0.97;
/// Relabel-and-refit rounds.
const ROUNDS: usize = 4;
/// Smallest item: its bounding box's longer side, as a share of the picture's shorter side (a
/// sun in a landscape, a knot in a floorboard are smaller than a garment photographed to be
/// seen)…
const MIN_EXTENT: f32 = 0.3;
/// …and its area, as a share of the picture.
const MIN_AREA: f32 = 0.008;
/// Largest share of the frame's edge an item may lie along (a garment cut by two sides of a
/// tight frame is about 25%).
const MAX_EDGE_SHARE: f32 = 0.35;
/// Largest item: beyond this the "item" is the surface itself.
const MAX_AREA: f32 = 0.75;

/// The item found on a surface, at the segmentation resolution.
#[derive(Debug, Clone)]
pub(crate) struct ItemMask {
    /// Soft mask, 0 = surface, 1 = item.
    pub mask: Vec<f32>,
    /// Ink: how far each pixel's (light-evened) colour lies from the surface's, 0..1, not yet
    /// masked.
    pub contrast: Vec<f32>,
}

/// Whether the picture is a catalog shot, handled as before: its border is a plain backdrop
/// (brightness and colour hardly vary), and the item stands out from it in brightness, not
/// only in colour (a red shirt on a green cloth of the same brightness vanishes in grayscale).
pub(crate) fn is_catalog_shot(rgb: &[[f32; 3]], w: usize, h: usize) -> bool {
    let mut border = Vec::new();
    for_border(w, h, border_strip(w, h), |i| border.push(opponent(rgb[i])));
    let background: [f32; 3] = std::array::from_fn(|k| percentile(&mut border.iter().map(|f| f[k]).collect::<Vec<_>>(), 0.5));
    // Plain: most of the border (all but what an item reaching the frame's edge covers) is one
    // colour, within JPEG noise and a faint gradient: not a texture, not a light fall-off.
    let near = border.iter().filter(|f| (0..3).all(|k| (f[k] - background[k]).abs() <= PLAIN_TOLERANCE)).count();
    if (near as f32) < PLAIN_SHARE * border.len() as f32 {
        return false;
    }
    let (mut brightness, mut colour): (Vec<f32>, Vec<f32>) = rgb
        .iter()
        .map(|&c| {
            let f = opponent(c);
            ((f[0] - background[0]).abs(), ((f[1] - background[1]).powi(2) + (f[2] - background[2]).powi(2)).sqrt())
        })
        .unzip();
    let (brightness, colour) = (percentile(&mut brightness, 0.99), percentile(&mut colour, 0.99));
    brightness >= 0.5 * colour
}

/// Looks for one item on a textured or unevenly lit surface. `None`: nothing stands out.
pub(crate) fn find_item(rgb: &[[f32; 3]], w: usize, h: usize) -> Option<ItemMask> {
    let strip = border_strip(w, h);
    let n = w * h;
    let on_border: Vec<bool> = (0..n).map(|i| is_border(i % w, i / w, w, h, strip)).collect();
    let mut even = even_out_light(rgb, w, h, &on_border);
    let mut features = describe(&even, w, h);

    // The surface from the border; the item from the pixels least like it.
    let border_idx: Vec<usize> = (0..n).filter(|&i| on_border[i]).collect();
    let centre_idx: Vec<usize> = (0..n).filter(|&i| is_central(i % w, i / w, w, h)).collect();
    let mut surface = surface_model(&features, &border_idx, &centre_idx);
    let surface_cost: Vec<f32> = (0..n).map(|i| surface.cost(&features[i])).collect();
    let mut border_cost: Vec<f32> = border_idx.iter().map(|&i| surface_cost[i]).collect();
    let unusual = percentile(&mut border_cost, SEED_PERCENTILE);
    let mut item: Vec<bool> = (0..n).map(|i| !on_border[i] && surface_cost[i] > unusual).collect();
    // How much more unlike the surface than its own unusual pixels each pixel is: the evidence
    // a region is the item. Capped, so a few extreme pixels do not outweigh a large garment.
    let excess: Vec<f32> = surface_cost.iter().map(|&c| (c - unusual).clamp(0.0, 20.0) + 0.05).collect();
    if item.iter().filter(|&&v| v).count() < (MIN_AREA * n as f32) as usize {
        return None;
    }

    let mut score = vec![0f32; n];
    for round in 0..ROUNDS {
        let item_idx: Vec<usize> = (0..n).filter(|&i| item[i]).collect();
        let surface_idx: Vec<usize> = (0..n).filter(|&i| !item[i]).collect();
        if item_idx.is_empty() || surface_idx.is_empty() {
            return None;
        }
        if round > 0 {
            // The light, then the surface, learnt again from everything not taken as the item.
            let not_item: Vec<bool> = item.iter().map(|&v| !v).collect();
            even = even_out_light(rgb, w, h, &not_item);
            features = describe(&even, w, h);
            surface = surface_model(&features, &border_idx, &centre_idx);
        }
        let garment = Model::fit(&features, &item_idx);
        for i in 0..n {
            // Positive: the item's model explains the pixel better. The border leans to the
            // surface: an item seldom reaches the edge of the frame.
            score[i] = surface.cost(&features[i]) - garment.cost(&features[i]) - if on_border[i] { 2.0 } else { 0.0 };
        }
        let smooth = box_blur(&score, w, h, 2);
        let labels: Vec<bool> = smooth.iter().map(|&s| s > 0.0).collect();
        item = fill_holes(&strongest_region(&labels, &excess, w, h)?, w, h);
    }

    let area = item.iter().filter(|&&v| v).count() as f32 / n as f32;
    if !(MIN_AREA..=MAX_AREA).contains(&area) || extent(&item, w, h) < MIN_EXTENT * w.min(h) as f32 {
        return None;
    }
    // How clearly the region stands apart: the mean evidence over it.
    let evidence = (0..n).filter(|&i| item[i]).map(|i| score[i].min(20.0)).sum::<f32>() / (area * n as f32);
    if evidence < 3.0 {
        return None;
    }
    let mask = box_blur(&item.iter().map(|&v| v as u8 as f32).collect::<Vec<_>>(), w, h, 1);
    let contrast = contrast_from_surface(&features, &surface, &item);
    Some(ItemMask { mask, contrast })
}

/// The surface's model, from the border, less what of the border is the item: a garment
/// photographed close reaches the frame's edge, and its colours must not count as surface.
/// A border cluster that is a minority of the border but dominates the picture's centre is the
/// item's.
fn surface_model(features: &[[f32; FEATURES]], border: &[usize], centre: &[usize]) -> Model {
    let first = Model::fit(features, border);
    let shares = |idx: &[usize]| {
        let mut counts = vec![0usize; first.means.len()];
        for &i in idx {
            counts[first.nearest(&features[i])] += 1;
        }
        counts.iter().map(|&c| c as f32 / idx.len().max(1) as f32).collect::<Vec<_>>()
    };
    let (on_border, in_centre) = (shares(border), shares(centre));
    let item_like: Vec<bool> = on_border.iter().zip(&in_centre).map(|(&b, &c)| b < 0.4 && c > 0.25 && c > 2.0 * b).collect();
    if !item_like.contains(&true) {
        return first;
    }
    let kept: Vec<usize> = border.iter().copied().filter(|&i| !item_like[first.nearest(&features[i])]).collect();
    if kept.len() * 2 < border.len() { first } else { Model::fit(features, &kept) }
}

/// The central box (the middle 40% of each side), where an item usually lies.
fn is_central(x: usize, y: usize, w: usize, h: usize) -> bool {
    (3 * w / 10..7 * w / 10).contains(&x) && (3 * h / 10..7 * h / 10).contains(&y)
}

/// The longer side of a region's bounding box, in pixels.
fn extent(region: &[bool], w: usize, h: usize) -> f32 {
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (i, _) in region.iter().enumerate().filter(|&(_, &v)| v) {
        let (x, y) = (i % w, i / w);
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    if x1 < x0 { 0.0 } else { (x1 - x0 + 1).max(y1 - y0 + 1) as f32 }
}

/// Width of the border strip the surface is learnt from.
fn border_strip(w: usize, h: usize) -> usize {
    (w.min(h) / 16).max(2)
}

fn is_border(x: usize, y: usize, w: usize, h: usize, strip: usize) -> bool {
    x < strip || y < strip || x >= w - strip || y >= h - strip
}

fn for_border(w: usize, h: usize, strip: usize, mut f: impl FnMut(usize)) {
    for y in 0..h {
        for x in 0..w {
            if is_border(x, y, w, h, strip) {
                f(y * w + x);
            }
        }
    }
}

/// Brightness and two colour-opponent channels (red–green, yellow–blue).
fn opponent([r, g, b]: [f32; 3]) -> [f32; 3] {
    [0.299 * r + 0.587 * g + 0.114 * b, r - g, 0.5 * (r + g) - b]
}

/// Divides out a smooth brightness surface fitted to the `surface` pixels (least squares on log
/// brightness, quadratic in x and y), so light falling off across the frame does not make
/// one side of the surface look like an item.
fn even_out_light(rgb: &[[f32; 3]], w: usize, h: usize, surface: &[bool]) -> Vec<[f32; 3]> {
    let basis = |x: usize, y: usize| {
        let (u, v) = (x as f64 / w as f64 - 0.5, y as f64 / h as f64 - 0.5);
        [1.0, u, v, u * u, u * v, v * v]
    };
    let log_l = |c: [f32; 3]| ((opponent(c)[0] + 0.03) as f64).ln();
    let mut ata = [[0f64; 6]; 6];
    let mut atb = [0f64; 6];
    for i in (0..w * h).filter(|&i| surface[i]) {
        let phi = basis(i % w, i / w);
        let target = log_l(rgb[i]);
        for r in 0..6 {
            atb[r] += phi[r] * target;
            for c in 0..6 {
                ata[r][c] += phi[r] * phi[c];
            }
        }
    }
    let Some(coef) = solve6(ata, atb) else { return rgb.to_vec() };
    let mean = coef[0] + coef[3] / 12.0 + coef[5] / 12.0; // the fit's mean over the frame
    (0..w * h)
        .map(|i| {
            let phi = basis(i % w, i / w);
            let fit: f64 = phi.iter().zip(&coef).map(|(p, c)| p * c).sum();
            let gain = (mean - fit).exp().clamp(0.25, 4.0) as f32;
            rgb[i].map(|v| (v * gain).min(1.5))
        })
        .collect()
}

/// Solves a 6×6 system by Gaussian elimination with partial pivoting.
fn solve6(mut a: [[f64; 6]; 6], mut b: [f64; 6]) -> Option<[f64; 6]> {
    for col in 0..6 {
        let pivot = (col..6).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..6 {
            let f = a[row][col] / a[col][col];
            for c in col..6 {
                a[row][c] -= f * a[col][c];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0f64; 6];
    for row in (0..6).rev() {
        let s: f64 = (row + 1..6).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

/// Per-pixel features: brightness and colour (lightly blurred, so fine texture averages out)
/// and texture (the standard deviation of brightness in a 5×5 window).
fn describe(rgb: &[[f32; 3]], w: usize, h: usize) -> Vec<[f32; FEATURES]> {
    let opp: Vec<[f32; 3]> = rgb.iter().map(|&c| opponent(c)).collect();
    let channel = |k: usize| box_blur(&opp.iter().map(|o| o[k]).collect::<Vec<_>>(), w, h, 1);
    let (l, a, b) = (channel(0), channel(1), channel(2));
    let raw_l: Vec<f32> = opp.iter().map(|o| o[0]).collect();
    let mean = box_blur(&raw_l, w, h, 2);
    let mean_sq = box_blur(&raw_l.iter().map(|v| v * v).collect::<Vec<_>>(), w, h, 2);
    (0..w * h).map(|i| [l[i], 1.5 * a[i], 1.5 * b[i], 1.5 * (mean_sq[i] - mean[i] * mean[i]).max(0.0).sqrt()]).collect()
}

/// Mean of each pixel's (2r+1)² neighbourhood, clipped at the edges (integral image).
fn box_blur(v: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut sum = vec![0f64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0f64;
        for x in 0..w {
            row += v[y * w + x] as f64;
            sum[(y + 1) * (w + 1) + x + 1] = sum[y * (w + 1) + x + 1] + row;
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            let s = sum[y1 * (w + 1) + x1] - sum[y0 * (w + 1) + x1] - sum[y1 * (w + 1) + x0] + sum[y0 * (w + 1) + x0];
            out[y * w + x] = (s / ((y1 - y0) * (x1 - x0)) as f64) as f32;
        }
    }
    out
}

/// A few colour/texture clusters (k-means), each a diagonal Gaussian.
struct Model {
    means: Vec<[f32; FEATURES]>,
    /// Per cluster: 1 / (2σ²) per feature, and the constant ½ Σ log σ² − log weight.
    inv_two_var: Vec<[f32; FEATURES]>,
    offset: Vec<f32>,
}

impl Model {
    fn fit(features: &[[f32; FEATURES]], members: &[usize]) -> Self {
        // At most ~4,000 samples: plenty for five clusters, and bounded time.
        let step = (members.len() / 4000).max(1);
        let samples: Vec<[f32; FEATURES]> = members.iter().step_by(step).map(|&i| features[i]).collect();
        let k = CLUSTERS.min(samples.len()).max(1);
        // Seeds spread over the samples sorted by brightness: deterministic, and they start
        // apart.
        let mut order: Vec<usize> = (0..samples.len()).collect();
        order.sort_by(|&i, &j| samples[i][0].total_cmp(&samples[j][0]));
        let mut means: Vec<[f32; FEATURES]> = (0..k).map(|c| samples[order[(2 * c + 1) * samples.len() / (2 * k)]]).collect();
        let mut assign = vec![0usize; samples.len()];
        for _ in 0..8 {
            for (s, a) in samples.iter().zip(&mut assign) {
                *a = (0..k).min_by(|&x, &y| dist2(s, &means[x]).total_cmp(&dist2(s, &means[y]))).unwrap_or(0);
            }
            let mut sums = vec![[0f32; FEATURES]; k];
            let mut counts = vec![0usize; k];
            for (s, &a) in samples.iter().zip(&assign) {
                counts[a] += 1;
                for d in 0..FEATURES {
                    sums[a][d] += s[d];
                }
            }
            for c in 0..k {
                if counts[c] > 0 {
                    means[c] = sums[c].map(|v| v / counts[c] as f32);
                }
            }
        }
        let mut var = vec![[0f32; FEATURES]; k];
        let mut counts = vec![0usize; k];
        for (s, &a) in samples.iter().zip(&assign) {
            counts[a] += 1;
            for d in 0..FEATURES {
                var[a][d] += (s[d] - means[a][d]).powi(2);
            }
        }
        // A floor on the spread: JPEG noise, and no cluster explains one colour infinitely well.
        const MIN_VAR: f32 = 0.02 * 0.02;
        let (mut inv_two_var, mut offset) = (Vec::new(), Vec::new());
        for c in 0..k {
            let v = var[c].map(|s| (s / counts[c].max(1) as f32).max(MIN_VAR));
            let weight = (counts[c].max(1) as f32 / samples.len() as f32).max(0.02);
            inv_two_var.push(v.map(|s| 0.5 / s));
            offset.push(0.5 * v.iter().map(|s| s.ln()).sum::<f32>() - weight.ln());
        }
        Self { means, inv_two_var, offset }
    }

    /// Negative log-likelihood of the best-fitting cluster.
    fn cost(&self, f: &[f32; FEATURES]) -> f32 {
        (0..self.means.len()).map(|c| self.cluster_cost(c, f)).fold(f32::MAX, f32::min)
    }

    /// The best-fitting cluster.
    fn nearest(&self, f: &[f32; FEATURES]) -> usize {
        (0..self.means.len()).map(|c| (c, self.cluster_cost(c, f))).min_by(|a, b| a.1.total_cmp(&b.1)).map_or(0, |(c, _)| c)
    }

    /// Negative log-likelihood of `f` under cluster `c`.
    fn cluster_cost(&self, c: usize, f: &[f32; FEATURES]) -> f32 {
        self.offset[c] + (0..FEATURES).map(|d| (f[d] - self.means[c][d]).powi(2) * self.inv_two_var[c][d]).sum::<f32>()
    }

    /// Distance in colour (not texture) from the nearest cluster centre.
    fn colour_distance(&self, f: &[f32; FEATURES]) -> f32 {
        self.means.iter().map(|m| (0..3).map(|d| (f[d] - m[d]).powi(2)).sum::<f32>()).fold(f32::MAX, f32::min).sqrt()
    }
}

fn dist2(a: &[f32; FEATURES], b: &[f32; FEATURES]) -> f32 {
    (0..FEATURES).map(|d| (a[d] - b[d]).powi(2)).sum()
}

/// The labelled region (4-connected) with the most evidence of not being the surface (the sum
/// of `evidence` over it), a region touching the border counting half and one along much of
/// it, or over most of the frame, not at all: the item is one large region, usually away from
/// the frame's edges.
fn strongest_region(labels: &[bool], evidence: &[f32], w: usize, h: usize) -> Option<Vec<bool>> {
    let mut region = vec![u32::MAX; w * h];
    let (mut best, mut best_score, mut id) = (u32::MAX, 0f32, 0u32);
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !labels[start] || region[start] != u32::MAX {
            continue;
        }
        let (mut area, mut edge, mut weight) = (0usize, 0usize, 0f32);
        region[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            area += 1;
            weight += evidence[i];
            edge += is_border(i % w, i / w, w, h, 1) as usize;
            for j in neighbours(i, w, h) {
                if labels[j] && region[j] == u32::MAX {
                    region[j] = id;
                    stack.push(j);
                }
            }
        }
        // A region along much of the frame's edge is the surface (or its light), not an item.
        let edge_share = edge as f32 / (2 * (w + h) - 4) as f32;
        let score = if edge_share > MAX_EDGE_SHARE || area as f32 > MAX_AREA * (w * h) as f32 {
            0.0
        } else {
            weight * if edge > 0 { 0.5 } else { 1.0 }
        };
        if score > best_score {
            (best, best_score) = (id, score);
        }
        id += 1;
    }
    (best != u32::MAX).then(|| region.iter().map(|&r| r == best).collect())
}

/// The 4-connected neighbours of pixel `i` on a w×h grid.
fn neighbours(i: usize, w: usize, h: usize) -> impl Iterator<Item = usize> {
    let (x, y) = (i % w, i / w);
    [(x > 0).then(|| i - 1), (x + 1 < w).then(|| i + 1), (y > 0).then(|| i - w), (y + 1 < h).then(|| i + w)].into_iter().flatten()
}

/// Fills the holes of a region: everything not reachable from the frame's edge without
/// crossing it (a logo on a shirt, a sandal's gaps stay gaps only if they open to the outside).
fn fill_holes(item: &[bool], w: usize, h: usize) -> Vec<bool> {
    let mut outside = vec![false; w * h];
    let mut stack: Vec<usize> = (0..w * h).filter(|&i| !item[i] && is_border(i % w, i / w, w, h, 1)).collect();
    for &i in &stack {
        outside[i] = true;
    }
    while let Some(i) = stack.pop() {
        for j in neighbours(i, w, h) {
            if !item[j] && !outside[j] {
                outside[j] = true;
                stack.push(j);
            }
        }
    }
    outside.iter().map(|&o| !o).collect()
}

/// How far each pixel's colour lies from the surface's nearest colour, scaled so the item's
/// strongest parts reach 1.
fn contrast_from_surface(features: &[[f32; FEATURES]], surface: &Model, item: &[bool]) -> Vec<f32> {
    let d: Vec<f32> = features.iter().map(|f| surface.colour_distance(f)).collect();
    let mut inside: Vec<f32> = d.iter().zip(item).filter(|&(_, &m)| m).map(|(&v, _)| v).collect();
    let top = percentile(&mut inside, 0.95).max(0.05);
    d.iter().map(|v| (v / top).min(1.0)).collect()
}

/// The `q` quantile of `v` (reorders it).
fn percentile(v: &mut [f32], q: f32) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let k = ((v.len() - 1) as f32 * q) as usize;
    *v.select_nth_unstable_by(k, f32::total_cmp).1
}
