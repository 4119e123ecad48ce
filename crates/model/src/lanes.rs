//! Four f32 lanes, the one vector type of the hand-written CPU kernels ([`crate::direct`],
//! [`crate::winograd`]): wasm SIMD (`v128`) in the browser, a plain array elsewhere (which the
//! compiler vectorises natively, for the tests). The kernels are written once against it.

pub use imp::V4;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct V4(v128);

    impl V4 {
        #[inline(always)]
        pub fn load(from: &[f32]) -> Self {
            assert!(from.len() >= 4);
            // SAFETY: four floats are readable at `from` (checked above); v128_load allows
            // unaligned addresses.
            Self(unsafe { v128_load(from.as_ptr() as *const v128) })
        }

        #[inline(always)]
        pub fn splat(v: f32) -> Self {
            Self(f32x4_splat(v))
        }

        /// Four floats at `at`.
        ///
        /// # Safety
        /// `at..at + 4` must be readable (any alignment).
        #[inline(always)]
        pub unsafe fn read(at: *const f32) -> Self {
            // SAFETY: the caller guarantees four readable floats; v128_load allows any alignment.
            Self(unsafe { v128_load(at as *const v128) })
        }

        /// The float at `at` in all four lanes.
        ///
        /// # Safety
        /// `at` must be readable (any alignment).
        #[inline(always)]
        pub unsafe fn read_splat(at: *const f32) -> Self {
            // SAFETY: the caller guarantees one readable float at `at`.
            Self(unsafe { v128_load32_splat(at as *const u32) })
        }

        /// `self + a·b`.
        #[inline(always)]
        pub fn mul_add(self, a: Self, b: Self) -> Self {
            Self(f32x4_add(self.0, f32x4_mul(a.0, b.0)))
        }

        #[inline(always)]
        pub fn relu(self) -> Self {
            Self(f32x4_max(self.0, f32x4_splat(0.0)))
        }

        #[inline(always)]
        pub fn store(self, to: &mut [f32]) {
            assert!(to.len() >= 4);
            // SAFETY: four floats are writable at `to` (checked above); unaligned is allowed.
            unsafe { v128_store(to.as_mut_ptr() as *mut v128, self.0) }
        }
    }

    impl std::ops::Add for V4 {
        type Output = Self;

        #[inline(always)]
        fn add(self, b: Self) -> Self {
            Self(f32x4_add(self.0, b.0))
        }
    }

    impl std::ops::Sub for V4 {
        type Output = Self;

        #[inline(always)]
        fn sub(self, b: Self) -> Self {
            Self(f32x4_sub(self.0, b.0))
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod imp {
    #[derive(Clone, Copy)]
    pub struct V4([f32; 4]);

    impl V4 {
        #[inline(always)]
        pub fn load(from: &[f32]) -> Self {
            Self([from[0], from[1], from[2], from[3]])
        }

        #[inline(always)]
        pub fn splat(v: f32) -> Self {
            Self([v; 4])
        }

        /// Four floats at `at`.
        ///
        /// # Safety
        /// `at..at + 4` must be readable (any alignment).
        #[inline(always)]
        pub unsafe fn read(at: *const f32) -> Self {
            // SAFETY: the caller guarantees four readable floats; the read is unaligned.
            Self(unsafe { std::ptr::read_unaligned(at as *const [f32; 4]) })
        }

        /// The float at `at` in all four lanes.
        ///
        /// # Safety
        /// `at` must be readable (any alignment).
        #[inline(always)]
        pub unsafe fn read_splat(at: *const f32) -> Self {
            // SAFETY: the caller guarantees one readable float at `at`.
            Self([unsafe { at.read_unaligned() }; 4])
        }

        /// `self + a·b`.
        #[inline(always)]
        pub fn mul_add(self, a: Self, b: Self) -> Self {
            Self(std::array::from_fn(|i| self.0[i] + a.0[i] * b.0[i]))
        }

        #[inline(always)]
        pub fn relu(self) -> Self {
            Self(self.0.map(|v| v.max(0.0)))
        }

        #[inline(always)]
        pub fn store(self, to: &mut [f32]) {
            to[..4].copy_from_slice(&self.0);
        }
    }

    impl std::ops::Add for V4 {
        type Output = Self;

        #[inline(always)]
        fn add(self, b: Self) -> Self {
            Self(std::array::from_fn(|i| self.0[i] + b.0[i]))
        }
    }

    impl std::ops::Sub for V4 {
        type Output = Self;

        #[inline(always)]
        fn sub(self, b: Self) -> Self {
            Self(std::array::from_fn(|i| self.0[i] - b.0[i]))
        }
    }
}
