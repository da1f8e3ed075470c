"""Confidence intervals, the minimum detectable effect and THE verdict rule: one home.

Every claims row in every study is decided here, so a reader has one set of choices to check:

- Over seeds (a handful of independent training runs): a Student-t interval of the mean
  per-seed effect (`t_interval`). With two or three seeds a bootstrap interval is far too
  narrow; the t interval is honest about how little a handful of seeds says.
- Two groups of unpaired runs (say distilled students against RL runs): Welch's t interval
  of the difference of means (`welch_interval`).
- Over prompts or problems (many units, one run): a paired percentile bootstrap over the
  units (`bootstrap_interval`); the statistic is recomputed on resampled unit indices, so
  pairing (the same prompt under two models) is kept.
- Fitted slopes (scaling laws): the OLS slope with its t interval (`slope_interval`), the
  residual SD floored at the resolution the fitted quantity is measured at.
- A noise floor: the spread per unit never drops below `floor`, the sampling SD of one
  evaluation of the effect (a count's Poisson SD, a pass rate's binomial SD, a loss's
  standard error over windows, paired window by window when two models share them).
  Identical per-seed values (1, 1 spikes) then give an interval as wide as one
  evaluation's noise, never a zero-width one.
- Every source of sampling noise enters the interval: a baseline evaluated once and shared
  by every seed (the one base model in RLVR; the validation windows every gated-attention
  seed is scored on) does not average out over seeds, so its standard error `shared_se`
  is added in quadrature to the standard error of the mean.
- The verdict (`decide`): `reproduced` when the whole 95% interval of the effect (oriented
  so that positive supports the paper) lies above the margin, `not reproduced` when it lies
  at or below it, otherwise `inconclusive`; a failed precondition is `inconclusive` with its
  reason and never judged.
- The minimum detectable effect (`Interval.mde`): the smallest true distance from the
  margin that this design (its spread and its number of units) would detect with 80% power
  at the 95% level, (q_0.975 + q_0.80) · SE. An inconclusive row says how many seeds its
  observed effect would need, so `inconclusive` reads as "needs ~N seeds", not as a shrug.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats as _st

LEVEL = 0.95
POWER = 0.80
VERDICTS = ("reproduced", "not reproduced", "inconclusive")


@dataclass(frozen=True)
class Interval:
    """An estimate of an effect with its CI and minimum detectable effect over `n` `unit`s."""

    estimate: float
    low: float
    high: float
    mde: float
    n: int
    unit: str

    @property
    def finite(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def shifted(self, by: float) -> "Interval":
        """The same interval for `effect − by` (a value against a fixed bar)."""
        return Interval(self.estimate - by, self.low - by, self.high - by, self.mde, self.n, self.unit)


def _nan(n: int, unit: str, estimate: float = math.nan) -> Interval:
    return Interval(estimate, math.nan, math.nan, math.nan, n, unit)


def _quantiles(df: float, level: float) -> tuple[float, float]:
    return float(_st.t.ppf(0.5 + level / 2, df)), float(_st.t.ppf(POWER, df))


def _array(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=float).ravel()


def t_interval(effects: Sequence[float], *, floor: float, shared_se: float = 0.0,
               level: float = LEVEL, unit: str = "seeds") -> Interval:
    """Student-t interval of the mean of per-seed effects (NaN for fewer than two finite ones).

    `floor`: the smallest credible SD per seed (one evaluation's sampling SD); `shared_se`:
    the SE of a baseline evaluated once for every seed, added in quadrature.
    """
    if floor < 0 or shared_se < 0 or not (math.isfinite(floor) and math.isfinite(shared_se)):
        raise ValueError(f"floor and shared_se must be finite and ≥ 0, got {floor}, {shared_se}")
    x = _array(effects)
    if x.size < 2 or not np.isfinite(x).all():  # a diverged run is not dropped silently
        return _nan(int(x.size), unit, float(x.mean()) if x.size else math.nan)
    sd = max(float(x.std(ddof=1)), floor)
    se = math.sqrt(sd**2 / x.size + shared_se**2)
    q, qp = _quantiles(x.size - 1, level)
    m = float(x.mean())
    return Interval(m, m - q * se, m + q * se, (q + qp) * se, int(x.size), unit)


def welch_interval(a: Sequence[float], b: Sequence[float], *, floor: float, level: float = LEVEL,
                   unit: str = "seeds") -> Interval:
    """Welch t interval of mean(a) − mean(b) for two unpaired groups of runs (each SD floored)."""
    x, y = _array(a), _array(b)
    n = int(min(x.size, y.size))
    if x.size < 2 or y.size < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        est = float(x.mean() - y.mean()) if x.size and y.size else math.nan
        return _nan(n, unit, est)
    vx, vy = max(x.var(ddof=1), floor**2) / x.size, max(y.var(ddof=1), floor**2) / y.size
    se = math.sqrt(vx + vy)
    df = ((vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1)) if se > 0
          else min(x.size, y.size) - 1)
    q, qp = _quantiles(df, level)
    m = float(x.mean() - y.mean())
    return Interval(m, m - q * se, m + q * se, (q + qp) * se, n, unit)


def bootstrap_interval(stat: Callable[[np.ndarray], float], n: int, *, seed: int, n_boot: int = 2000,
                       floor: float = 0.0, shared_se: float = 0.0, level: float = LEVEL,
                       unit: str = "prompts") -> Interval:
    """Percentile interval of `stat(indices)` over `n` units resampled with replacement.

    The statistic sees resampled indices, so paired measures (one prompt, two models) stay
    paired. The interval is widened symmetrically when the bootstrap SE is below `floor`, and
    each half-width is combined in quadrature with `shared_se` (a baseline measured once,
    such as a calibration constant, whose error the resampling cannot see).
    """
    if n < 2:
        return _nan(n, unit, stat(np.arange(n)) if n else math.nan)
    est = float(stat(np.arange(n)))
    rng = np.random.default_rng(seed)
    vals = np.array([stat(rng.integers(0, n, size=n)) for _ in range(n_boot)], dtype=float)
    vals = vals[np.isfinite(vals)]
    if vals.size < 2:
        return _nan(n, unit, est)
    alpha = (1 - level) / 2
    lo, hi = float(np.quantile(vals, alpha)), float(np.quantile(vals, 1 - alpha))
    se = max(float(vals.std(ddof=1)), floor)
    z, zp = float(_st.norm.ppf(1 - alpha)), float(_st.norm.ppf(POWER))
    lo, hi = min(lo, est - z * floor), max(hi, est + z * floor)
    lo = est - math.hypot(est - lo, z * shared_se)
    hi = est + math.hypot(hi - est, z * shared_se)
    return Interval(est, lo, hi, (z + zp) * math.hypot(se, shared_se), n, unit)


def slope_interval(x: Sequence[float], y: Sequence[float], *, floor: float = 0.0,
                   level: float = LEVEL) -> tuple[Interval, float]:
    """OLS slope of y on x with its t interval and MDE (NaN below three points); also the intercept.

    `floor`: the smallest credible residual SD (the resolution y is measured at), so points
    lying exactly on a line never give a zero-width interval.
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    if np.unique(xa).size < 2:
        return _nan(int(xa.size), "points"), math.nan
    slope, intercept = np.polyfit(xa, ya, 1)
    s, b = float(slope), float(intercept)
    if xa.size < 3:
        return _nan(int(xa.size), "points", s), b
    resid = ya - (s * xa + b)
    sd = max(math.sqrt(float(resid @ resid) / (xa.size - 2)), floor)
    se = sd / math.sqrt(float(((xa - xa.mean()) ** 2).sum()))
    q, qp = _quantiles(xa.size - 2, level)
    return Interval(s, s - q * se, s + q * se, (q + qp) * se, int(xa.size), "points"), b


def band_interval(slope: Interval, target: float, tol: float) -> Interval:
    """A slope claimed to lie in target ± tol, as an effect tol − |slope − target| (positive
    supports the claim) whose interval follows from the slope's: above 0 when the whole slope
    interval is inside the band, at or below 0 when it lies wholly outside."""
    est = tol - abs(slope.estimate - target) if math.isfinite(slope.estimate) else math.nan
    if not slope.finite:
        return _nan(slope.n, slope.unit, est)
    a, b = slope.low - target, slope.high - target
    lo = tol - max(abs(a), abs(b))
    hi = tol - (0.0 if a <= 0 <= b else min(abs(a), abs(b)))
    return Interval(est, lo, hi, slope.mde, slope.n, slope.unit)


def units_needed(iv: Interval, margin: float = 0.0) -> int | None:
    """How many units the observed effect would need to clear `margin` at this spread (None if
    the estimate is not on the claimed side or the interval is undefined)."""
    gap = iv.estimate - margin
    if not (iv.finite and math.isfinite(iv.mde) and gap > 0):
        return None
    return int(math.ceil(iv.n * (iv.mde / gap) ** 2))


def decide(iv: Interval, margin: float = 0.0, precondition: tuple[bool, str] = (True, "")) -> tuple[str, str]:
    """THE verdict rule: (verdict, reason). See the module docstring."""
    ok, reason = precondition
    if not ok:
        return "inconclusive", f"precondition failed: {reason}"
    if not iv.finite:
        if iv.n >= 2:
            return "inconclusive", "non-finite values (a run diverged?)"
        return "inconclusive", f"fewer than two {iv.unit}"
    if iv.low > margin:
        return "reproduced", ""
    if iv.high <= margin:
        return "not reproduced", ""
    need = units_needed(iv, margin)
    take = (f"this effect would need ~{need} {iv.unit}" if need is not None
            else f"effects within {iv.mde:.3g} of the margin are below what {iv.n} {iv.unit} can detect")
    return "inconclusive", f"95% CI straddles the margin {margin:g}; {take}"
