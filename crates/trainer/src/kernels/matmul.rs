//! Row-major matrix products through the `gemm` crate, which picks AVX-512, AVX2 or scalar
//! kernels at run time and splits large products across threads.

/// How a matrix operand is stored.
#[derive(Clone, Copy)]
pub enum Layout {
    /// `rows × cols`, row-major.
    Normal,
    /// Stored as the transpose (`cols × rows`, row-major).
    Transposed,
}

/// `c (m×n) = a (m×k) · b (k×n)`, or `c += a · b` with `accumulate`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(c: &mut [f32], a: &[f32], a_layout: Layout, b: &[f32], b_layout: Layout, m: usize, k: usize, n: usize, accumulate: bool) {
    assert!(c.len() >= m * n && a.len() >= m * k && b.len() >= k * n, "matmul operands smaller than {m}×{k}·{k}×{n}");
    if m == 0 || n == 0 {
        return;
    }
    // (column stride, row stride) of each operand, in elements.
    let strides = |layout, cols: usize, rows: usize| match layout {
        Layout::Normal => (1isize, cols as isize),
        Layout::Transposed => (rows as isize, 1isize),
    };
    let (a_cs, a_rs) = strides(a_layout, k, m);
    let (b_cs, b_rs) = strides(b_layout, n, k);
    // Threads pay for themselves only on products of a few million multiply-adds.
    let parallelism = if m * n * k >= 1 << 21 { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    // SAFETY: the asserts above keep every index the strides describe inside its slice, and
    // `c` does not alias `a` or `b` (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], at: bool, b: &[f32], bt: bool, m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let x = if at { a[p * m + i] } else { a[i * k + p] };
                    let y = if bt { b[j * k + p] } else { b[p * n + j] };
                    c[i * n + j] += x * y;
                }
            }
        }
        c
    }

    #[test]
    fn every_layout_matches_the_textbook_product() {
        let (m, k, n) = (7, 5, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.71).cos()).collect();
        for (at, bt) in [(false, false), (true, false), (false, true), (true, true)] {
            let lay = |t| if t { Layout::Transposed } else { Layout::Normal };
            let mut c = vec![1f32; m * n];
            matmul(&mut c, &a, lay(at), &b, lay(bt), m, k, n, false);
            let want = naive(&a, at, &b, bt, m, k, n);
            assert!(c.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-5), "{at} {bt}");
            matmul(&mut c, &a, lay(at), &b, lay(bt), m, k, n, true);
            assert!(c.iter().zip(&want).all(|(x, y)| (x - 2.0 * y).abs() < 1e-5), "accumulate {at} {bt}");
        }
    }
}
