//! Zipf-distributed ranks for the page-cache reader's access skew.

/// Zipf-distributed ranks in `1..=n` by rejection-inversion (W. Hörmann, G. Derflinger,
/// "Rejection-inversion to generate variates from monotone discrete distributions", 1996;
/// the formulation of Apache Commons' `RejectionInversionZipfSampler`): O(1) time and memory
/// per draw, whatever the size of the file.
///
/// Each draw inverts the hat function, `x = exp(log1p(u (1-s)) / (1-s))`, and rounds it to a
/// rank: two libm calls and a `floor` (an eighth of a scenario's run time). When `1/(1-s)` is
/// a multiple of 1/2 (s = 0.5, 0.6, 0.75, 0.8, 0.9, 1.5, 2, ...: `half_power`), `x` is also
/// `(1 + u (1-s))^(1/(1-s))`, a few multiplications and a square root, and a draw decides
/// from that whenever the decision is at least 1e-9 · x away from a boundary (the rounding to
/// a rank, the acceptance threshold): the two computations of `x` agree to about 1e-14, so
/// the libm one then decides the same. Draws near a boundary (two in 10^4 for tv_evening's
/// reader) and other exponents take the libm path. Either way a draw uses the same uniform
/// variates and returns the same rank as the libm-only computation (`sample_reference`, kept
/// for the test that checks it).
#[derive(Clone, Debug)]
pub(crate) struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
    /// `m = 2 / (1 - s)` when it is an integer (to 1e-12) with `1 <= |m| <= 64`: then
    /// `x = (1 + t)^(m/2)`.
    half_power: Option<i32>,
}

/// What the fast path decided for one uniform variate.
enum Fast {
    /// Accept rank `k` (`k - x <= threshold`).
    Accept(u32),
    /// Rank `k`, accepted only if `u >= h_integral(k + 0.5) - h(k)` (computed exactly).
    Check(u32),
}

impl Zipf {
    pub(crate) fn new(n: u32, s: f64) -> Zipf {
        let mut z = Zipf {
            n: n as f64,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
            half_power: None,
        };
        let m = 2.0 / (1.0 - s);
        if m.is_finite() && (1.0..=64.0).contains(&m.abs().round()) {
            let r = m.round();
            if (m - r).abs() <= 1e-12 * r.abs() {
                z.half_power = Some(r as i32);
            }
        }
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.threshold = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// The integral of `h` from 1 to `x`, shifted: `(x^(1-s) - 1) / (1-s)` (ln x at s = 1).
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }

    /// One rank. The first variate's fast acceptance (most draws) is inlined into the
    /// caller; the rest (the exact check, the libm path, a rejection and the draws after it)
    /// is `sample_rest`, out of line, so the common case carries none of their spills.
    #[inline]
    pub(crate) fn sample(&self, rng: &mut crate::rng::Rng) -> u32 {
        let u = self.uniform(rng);
        if let Some(Fast::Accept(k)) = self.fast_decision(u) {
            return k;
        }
        self.sample_rest(u, rng)
    }

    #[inline(always)]
    fn uniform(&self, rng: &mut crate::rng::Rng) -> f64 {
        self.h_integral_n + rng.unit() * (self.h_integral_x1 - self.h_integral_n)
    }

    /// `sample` from variate `u` on: the loop of the rejection-inversion algorithm, `u`
    /// first.
    #[inline(never)]
    fn sample_rest(&self, mut u: f64, rng: &mut crate::rng::Rng) -> u32 {
        loop {
            match self.fast_decision(u) {
                Some(Fast::Accept(k)) => return k,
                Some(Fast::Check(k)) => {
                    let k = k as f64;
                    if u >= self.h_integral(k + 0.5) - self.h(k) {
                        return k as u32;
                    }
                }
                None => {
                    if let Some(k) = self.decide_reference(u) {
                        return k;
                    }
                }
            }
            u = self.uniform(rng);
        }
    }

    /// One step of the libm-only algorithm: the rank `u` gives, or None if it is rejected.
    fn decide_reference(&self, u: f64) -> Option<u32> {
        let x = self.h_integral_inv(u);
        let k = (x + 0.5).floor().clamp(1.0, self.n);
        if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
            return Some(k as u32);
        }
        None
    }

    /// The libm-only algorithm, draw for draw what `sample` returns.
    #[cfg(test)]
    fn sample_reference(&self, rng: &mut crate::rng::Rng) -> u32 {
        loop {
            let u = self.h_integral_n + rng.unit() * (self.h_integral_x1 - self.h_integral_n);
            if let Some(k) = self.decide_reference(u) {
                return k;
            }
        }
    }

    /// `decide_reference`'s decision for `u` from a cheaper `x`, or None if there is none
    /// (`half_power` is None) or `x` is too close to a boundary for the two computations to
    /// be sure to agree.
    ///
    /// Both start from the same `t = max(u (1-s), -1)`. The reference computes
    /// `exp(log1p(t) / t * u)` (or, for `|t| <= 1e-8`, `exp(helper1(t) u)` by its series),
    /// that is `(1 + t)^(u/t)` to within a few ulps of its logarithm `y` (`|y| = |ln x| < 23`):
    /// a relative 1e-14 at most. This computes `(1 + t)^(m/2)` by squarings, a square root
    /// and (for negative `m`) a division: `1 + t` is rounded (a relative 1.1e-16, times
    /// `|m|/2 <= 32`), the products add at most 64 ulps, and `m/2` differs from
    /// `u/t = 1/(1-s)` by a relative 1e-12 at most (1e-16 for s = 0.6), which changes
    /// `ln x` by `1e-12 |y|`: the two `x` agree to a relative 3e-11 at worst. The decisions
    /// need `x + 0.5` to its nearest integer and `k - x` to the threshold: a margin of
    /// 1e-9 · (x + 0.5) is thirty times the largest disagreement. `t >= -0.75` keeps away
    /// from the clamp at -1.
    #[inline(always)]
    fn fast_decision(&self, u: f64) -> Option<Fast> {
        let m = self.half_power?;
        let t = (u * (1.0 - self.s)).max(-1.0);
        // (`max` gives -1 for a NaN, so `t` is a number.)
        if t < -0.75 {
            return None;
        }
        let w = 1.0 + t;
        let mut e = m.unsigned_abs() / 2;
        let mut x = if m & 1 != 0 { w.sqrt() } else { 1.0 };
        let mut base = w;
        while e > 0 {
            if e & 1 != 0 {
                x *= base;
            }
            base *= base;
            e >>= 1;
        }
        if m < 0 {
            x = 1.0 / x;
        }
        let z = x + 0.5;
        if z.is_nan() || z >= 4.0e15 {
            return None;
        }
        // floor(z) for 0 <= z < 2^52, without a libm call.
        let fl = (z as i64) as f64;
        let margin = 1e-9 * z;
        if z - fl < margin || fl + 1.0 - z < margin {
            return None;
        }
        let k = fl.clamp(1.0, self.n);
        let d = k - x;
        if (d - self.threshold).abs() < margin {
            return None;
        }
        Some(if d <= self.threshold {
            Fast::Accept(k as u32)
        } else {
            Fast::Check(k as u32)
        })
    }
}

/// `ln(1 + x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_matches_its_law() {
        // P(rank 1) = 1 / H(n, s); for n = 1000, s = 1: H ~ 7.4855.
        let z = Zipf::new(1000, 1.0);
        let mut rng = crate::rng::Rng::new(3);
        let n = 200_000;
        let mut ones = 0;
        let mut twos = 0;
        for _ in 0..n {
            let k = z.sample(&mut rng);
            assert!((1..=1000).contains(&k));
            ones += (k == 1) as u32;
            twos += (k == 2) as u32;
        }
        let p1 = ones as f64 / n as f64;
        assert!((p1 - 1.0 / 7.4855).abs() < 0.005, "{p1}");
        let ratio = ones as f64 / twos as f64;
        assert!((ratio - 2.0).abs() < 0.1, "{ratio}");
        // s != 1 and a single-element range.
        let z = Zipf::new(1, 0.8);
        assert_eq!(z.sample(&mut rng), 1);
        let z = Zipf::new(50, 0.5);
        for _ in 0..1000 {
            assert!((1..=50).contains(&z.sample(&mut rng)));
        }
    }

    /// The fast path returns, draw for draw, the ranks of the libm-only algorithm, and
    /// leaves the uniform stream in the same place.
    #[test]
    fn zipf_fast_path_matches_reference() {
        let cases: &[(u32, f64, u32)] = &[
            (163_840, 0.6, 400_000), // tv_evening's page cache
            (1000, 1.0, 100_000),
            (50, 0.5, 50_000),
            (1, 0.8, 1000),
            (2, 0.3, 20_000),
            (1_000_000, 1.2, 100_000),
            (4_000_000_000, 0.9, 100_000),
            (100_000, 0.999, 100_000),
            (100_000, 1.001, 100_000),
            (100_000, 0.01, 100_000),
            (100_000, 2.0, 100_000),
            (1000, 10.0, 50_000),
            (65_536, 0.000_01, 50_000),
            (100_000, 0.75, 100_000),
            (100_000, 1.5, 100_000),
            (100_000, 0.95, 100_000),
            (100_000, 0.968_75, 100_000),
            (100_000, 1.0 / 3.0, 100_000),
            (7, 0.6, 20_000),
        ];
        // The fast path is taken where it should be: 2 / (1 - s) = 5, 4, 8, -4, 40, -2.
        for (s, m) in [
            (0.6, 5),
            (0.5, 4),
            (0.75, 8),
            (1.5, -4),
            (0.95, 40),
            (2.0, -2),
        ] {
            assert_eq!(Zipf::new(1000, s).half_power, Some(m), "s={s}");
        }
        for s in [1.0, 0.3, 0.999, 10.0, 0.000_01] {
            assert_eq!(Zipf::new(1000, s).half_power, None, "s={s}");
        }
        for &(n, s, draws) in cases {
            let z = Zipf::new(n, s);
            let mut a = crate::rng::Rng::new(n as u64 ^ s.to_bits());
            let mut b = a.clone();
            for i in 0..draws {
                let (fast, reference) = (z.sample(&mut a), z.sample_reference(&mut b));
                assert_eq!(fast, reference, "n={n} s={s} draw {i}");
            }
            assert_eq!(a.next_u64(), b.next_u64(), "n={n} s={s}: streams diverged");
        }
    }
}
