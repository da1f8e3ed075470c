"""From evaluation rows to the paper's timescales, their scaling with n, and claims rows.

τ_mem(n, seed): first training step at which f_mem reaches `thresholds.mem_fraction`
(interpolated linearly in f_mem against log step between the two checkpoints around the
crossing); censored (not observed) when it never does within the budget.
τ_gen(n, seed): first step at which the Fréchet distance has come down to within
`thresholds.gen_tolerance` of its total drop, FD ≤ FD_min + tol·(FD_first − FD_min), over the
checkpoints before memorisation (f_mem below its threshold).
τ_loss(n, seed): the minimum of the held-out denoising loss (parabola in log step around the
lowest checkpoint), a cheap second estimate of the memorisation time (the held-out loss
turns up when the model starts to fit individual images).
Scaling: ordinary least squares of log τ on log n over every (n, seed) where τ was observed,
slope with a t-distribution 95% CI.

Claims are interval rules on a fitted slope (not paired comparisons), built as `Claim`
rows directly; the rules are documented in docs/studies/diffusion.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa
from scipy import stats

from pipeline.claims import Claim, write_claims
from pipeline.io import read_parquet, write_parquet

STUDY = "diffusion"


def first_crossing(steps: Iterable[float], values: Iterable[float], threshold: float, above: bool = True) -> float:
    """First step where `values` reaches `threshold` (≥ if above, else ≤), log-interpolated.

    NaN values are skipped; returns NaN when the threshold is never reached.
    """
    s = np.asarray(list(steps), dtype=float)
    v = np.asarray(list(values), dtype=float)
    ok = np.isfinite(v) & np.isfinite(s) & (s > 0)
    s, v = s[ok], v[ok]
    if s.size == 0:
        return math.nan
    order = np.argsort(s)
    s, v = s[order], v[order]
    hit = v >= threshold if above else v <= threshold
    if not hit.any():
        return math.nan
    i = int(np.argmax(hit))
    if i == 0:
        return float(s[0])
    frac = (threshold - v[i - 1]) / (v[i] - v[i - 1])
    return float(np.exp(np.log(s[i - 1]) + frac * (np.log(s[i]) - np.log(s[i - 1]))))


def tau_gen(steps, fd, tolerance: float, generalising=None) -> float:
    """First step where FD is within `tolerance` of its total drop from the first checkpoint.

    `generalising` (booleans per checkpoint) restricts the plateau to checkpoints before
    memorisation: once samples copy training images their FD keeps moving for reasons that
    are not generalisation (copies of real images look real), which would push the
    "plateau" to the end of training.
    """
    s = np.asarray(list(steps), dtype=float)
    f = np.asarray(list(fd), dtype=float)
    ok = np.isfinite(f)
    if generalising is not None:
        ok &= np.asarray(list(generalising), dtype=bool)
    if ok.sum() < 2:
        return math.nan
    s, f = s[ok], f[ok]
    order = np.argsort(s)
    s, f = s[order], f[order]
    lo = f.min()
    if f[0] <= lo:  # never improved on the first checkpoint: no plateau to reach
        return math.nan
    return first_crossing(s, f, lo + tolerance * (f[0] - lo), above=False)


def tau_mem(steps, f_mem, threshold: float) -> float:
    return first_crossing(steps, f_mem, threshold, above=True)


def tau_loss_min(steps, heldout_loss) -> float:
    """Step of minimum held-out loss, refined by a parabola in log step through the lowest
    checkpoint and its two neighbours; NaN when the minimum is at the first or the last
    checkpoint (not bracketed, so not observed)."""
    s = np.asarray(list(steps), dtype=float)
    v = np.asarray(list(heldout_loss), dtype=float)
    ok = np.isfinite(v)
    if ok.sum() < 3:
        return math.nan
    s, v = s[ok], v[ok]
    order = np.argsort(s)
    x, v = np.log(s[order]), v[order]
    i = int(np.argmin(v))
    if i == 0 or i == len(v) - 1:
        return math.nan
    a, b, _ = np.polyfit(x[i - 1 : i + 2], v[i - 1 : i + 2], 2)
    vertex = -b / (2 * a) if a > 0 else x[i]
    return float(np.exp(np.clip(vertex, x[i - 1], x[i + 1])))


@dataclass
class Fit:
    slope: float
    ci_low: float
    ci_high: float
    intercept: float
    points: int
    sizes: int  # distinct n among the points


def loglog_fit(n: Iterable[float], tau: Iterable[float]) -> Fit:
    """OLS of log τ on log n; 95% CI of the slope from the t distribution (NaN if < 3 points)."""
    x = np.asarray(list(n), dtype=float)
    y = np.asarray(list(tau), dtype=float)
    ok = np.isfinite(y) & (y > 0) & (x > 0)
    x, y = np.log(x[ok]), np.log(y[ok])
    sizes = len(np.unique(x))
    if sizes < 2:
        return Fit(math.nan, math.nan, math.nan, math.nan, int(x.size), sizes)
    res = stats.linregress(x, y)
    if x.size < 3:
        return Fit(float(res.slope), math.nan, math.nan, float(res.intercept), int(x.size), sizes)
    half = stats.t.ppf(0.975, x.size - 2) * res.stderr
    return Fit(float(res.slope), float(res.slope - half), float(res.slope + half), float(res.intercept), int(x.size), sizes)


def _runs(table: pa.Table, order: str):
    """((n, seed), that run's rows sorted by `order`) for every run, runs in sorted order."""
    rows = table.to_pylist()
    for key in sorted({(r["n"], r["seed"]) for r in rows}):
        yield key, sorted((r for r in rows if (r["n"], r["seed"]) == key), key=lambda r: r[order])


def timescales(evals: pa.Table, thresholds: Mapping[str, Any]) -> pa.Table:
    """One row per (n, seed): τ_gen, τ_mem, τ_loss, the budget, and the final f_mem."""
    out = []
    for key, rs in _runs(evals, "step"):
        steps = [r["step"] for r in rs]
        out.append({
            "n": key[0], "seed": key[1],
            "tau_gen": tau_gen(steps, [r["fd"] for r in rs], float(thresholds["gen_tolerance"]),
                               [not (r["f_mem"] >= float(thresholds["mem_fraction"])) for r in rs]),
            "tau_mem": tau_mem(steps, [r["f_mem"] for r in rs], float(thresholds["mem_fraction"])),
            "tau_loss": tau_loss_min(steps, [r["loss_heldout"] for r in rs]),
            "max_step": max(steps),
            "final_f_mem": rs[-1]["f_mem"],
        })
    return pa.Table.from_pylist(out)


def rf_timescales(curves: pa.Table, gen_tolerance: float, gap_threshold: float) -> pa.Table:
    """τ_gen (test loss within tolerance of its drop) and τ_mem (train/test gap ≥ threshold)."""
    out = []
    for key, rs in _runs(curves, "time"):
        times = [r["time"] for r in rs]
        out.append({
            "n": key[0], "seed": key[1],
            "tau_gen": tau_gen(times, [r["test_loss"] for r in rs], gen_tolerance),
            "tau_mem": first_crossing(times, [r["gap"] for r in rs], gap_threshold),
            "max_time": max(times),
        })
    return pa.Table.from_pylist(out)


# --------------------------------------------------------------------------- claims
def _interval_claim(*, claim: str, metric: str, fit: Fit, target: float, tol: float, scale: str,
                    n_seeds: int, ok: tuple[bool, str], note: str) -> Claim:
    """Slope claimed to lie within target ± tol.

    effect = tol − |slope − target| (positive supports the claim); its 95% CI follows from
    the slope's: reproduced when the whole slope CI lies inside the band, not reproduced
    when it lies wholly outside, inconclusive otherwise.
    """
    a, b = fit.ci_low - target, fit.ci_high - target
    effect = tol - abs(fit.slope - target) if math.isfinite(fit.slope) else math.nan
    if math.isfinite(a) and math.isfinite(b):
        lo = tol - max(abs(a), abs(b))
        hi = tol - (0.0 if a <= 0 <= b else min(abs(a), abs(b)))
    else:
        lo = hi = math.nan
    if not ok[0]:
        verdict, why = "inconclusive", f"precondition failed: {ok[1]}"
    elif not math.isfinite(lo):
        verdict, why = "inconclusive", "too few points for a confidence interval"
    elif lo > 0:
        verdict, why = "reproduced", ""
    elif hi <= 0:
        verdict, why = "not reproduced", ""
    else:
        verdict, why = "inconclusive", f"95% CI of the slope [{fit.ci_low:.2f}, {fit.ci_high:.2f}] straddles the band {target}±{tol}"
    return Claim(study=STUDY, claim=claim, metric=metric, value=fit.slope, baseline=target, effect=effect,
                 ci_low=lo, ci_high=hi, n_seeds=n_seeds, verdict=verdict, scale=scale,
                 note="; ".join(s for s in (why, note) if s))


def _positive_claim(*, claim: str, metric: str, fit: Fit, scale: str, n_seeds: int, ok: tuple[bool, str], note: str) -> Claim:
    """Slope claimed positive: reproduced when its 95% CI is above 0, not when at or below."""
    if not ok[0]:
        verdict, why = "inconclusive", f"precondition failed: {ok[1]}"
    elif not math.isfinite(fit.ci_low):
        verdict, why = "inconclusive", "too few points for a confidence interval"
    elif fit.ci_low > 0:
        verdict, why = "reproduced", ""
    elif fit.ci_high <= 0:
        verdict, why = "not reproduced", ""
    else:
        verdict, why = "inconclusive", "95% CI of the slope straddles 0"
    return Claim(study=STUDY, claim=claim, metric=metric, value=fit.slope, baseline=0.0, effect=fit.slope,
                 ci_low=fit.ci_low, ci_high=fit.ci_high, n_seeds=n_seeds, verdict=verdict, scale=scale,
                 note="; ".join(s for s in (why, note) if s))


def _censored_note(ts: list[dict], key: str, what: str) -> str:
    miss = sorted({r["n"] for r in ts if not math.isfinite(r[key])})
    if not miss:
        return ""
    return f"{what} for n={miss} (censored: left out of the fit)"


def _sizes_with(ts: list[dict], key: str) -> int:
    return len({r["n"] for r in ts if math.isfinite(r[key])})


def build_claims(ts_table: pa.Table, rf_table: pa.Table | None, cfg: Mapping[str, Any], scale: str) -> list[Claim]:
    """The study's claims rows from the per-(n, seed) timescales (and the RF model's)."""
    th = cfg["thresholds"]
    min_sizes = int(th["min_sizes"])
    tol_flat, tol_lin = float(th["flat_tolerance"]), float(th["slope_tolerance"])
    ts = ts_table.to_pylist()
    n_seeds = len({r["seed"] for r in ts})
    claims: list[Claim] = []

    def pre(key: str, what: str) -> tuple[bool, str]:
        k = _sizes_with(ts, key)
        return (k >= min_sizes, f"{what} observed for {k} training-set size(s), need {min_sizes}")

    fit_mem = loglog_fit([r["n"] for r in ts], [r["tau_mem"] for r in ts])
    fit_gen = loglog_fit([r["n"] for r in ts], [r["tau_gen"] for r in ts])
    fit_loss = loglog_fit([r["n"] for r in ts], [r["tau_loss"] for r in ts])
    both = [r for r in ts if math.isfinite(r["tau_mem"]) and math.isfinite(r["tau_gen"])]
    fit_win = loglog_fit([r["n"] for r in both], [r["tau_mem"] / r["tau_gen"] for r in both])
    mem_ok = pre("tau_mem", f"memorisation (f_mem ≥ {th['mem_fraction']})")

    claims.append(_interval_claim(
        claim="tau_gen is roughly independent of n", metric="slope of log tau_gen vs log n", fit=fit_gen,
        target=0.0, tol=tol_flat, scale=scale, n_seeds=n_seeds, ok=pre("tau_gen", "a quality plateau"),
        note=_censored_note(ts, "tau_gen", "no quality plateau before memorisation")))
    claims.append(_interval_claim(
        claim="tau_mem grows linearly with n", metric="slope of log tau_mem vs log n", fit=fit_mem,
        target=1.0, tol=tol_lin, scale=scale, n_seeds=n_seeds, ok=mem_ok,
        note=_censored_note(ts, "tau_mem", "memorisation not reached within the budget")))
    claims.append(_positive_claim(
        claim="the generalisation window [tau_gen, tau_mem] widens with n",
        metric="slope of log(tau_mem/tau_gen) vs log n", fit=fit_win, scale=scale, n_seeds=n_seeds,
        ok=(mem_ok[0] and len({r["n"] for r in both}) >= min_sizes, mem_ok[1] if not mem_ok[0] else
            f"both timescales observed for {len({r['n'] for r in both})} size(s), need {min_sizes}"),
        note=""))
    claims.append(_interval_claim(
        claim="tau_mem grows linearly with n (held-out loss minimum as the estimate)",
        metric="slope of log tau_loss vs log n", fit=fit_loss, target=1.0, tol=tol_lin, scale=scale,
        n_seeds=n_seeds, ok=pre("tau_loss", "a held-out loss minimum"),
        note=_censored_note(ts, "tau_loss", "held-out loss minimum not bracketed by checkpoints")))

    if rf_table is not None and rf_table.num_rows:
        rf = rf_table.to_pylist()
        rf_seeds = len({r["seed"] for r in rf})
        k_mem = _sizes_with(rf, "tau_mem")
        k_gen = _sizes_with(rf, "tau_gen")
        claims.append(_interval_claim(
            claim="random-features model: tau_mem grows linearly with n", metric="slope of log tau_mem vs log n (RF)",
            fit=loglog_fit([r["n"] for r in rf], [r["tau_mem"] for r in rf]), target=1.0, tol=tol_lin, scale=scale,
            n_seeds=rf_seeds, ok=(k_mem >= min_sizes, f"train/test gap threshold reached for {k_mem} size(s), need {min_sizes}"),
            note=_censored_note(rf, "tau_mem", "train/test gap threshold not reached")))
        claims.append(_interval_claim(
            claim="random-features model: tau_gen is roughly independent of n", metric="slope of log tau_gen vs log n (RF)",
            fit=loglog_fit([r["n"] for r in rf], [r["tau_gen"] for r in rf]), target=0.0, tol=tol_flat, scale=scale,
            n_seeds=rf_seeds, ok=(k_gen >= min_sizes, f"test-loss plateau reached for {k_gen} size(s), need {min_sizes}"),
            note=""))
    return claims


def fits_table(ts_table: pa.Table, rf_table: pa.Table | None) -> pa.Table:
    """The fitted slopes (for the results directory and the figures)."""
    ts = ts_table.to_pylist()
    rows = []
    sets = [("diffusion", "tau_gen", ts), ("diffusion", "tau_mem", ts), ("diffusion", "tau_loss", ts)]
    if rf_table is not None:
        rf = rf_table.to_pylist()
        sets += [("random_features", "tau_gen", rf), ("random_features", "tau_mem", rf)]
    for model, key, data in sets:
        f = loglog_fit([r["n"] for r in data], [r[key] for r in data])
        rows.append({"model": model, "timescale": key, "slope": f.slope, "ci_low": f.ci_low, "ci_high": f.ci_high,
                     "intercept": f.intercept, "points": f.points, "sizes": f.sizes})
    return pa.Table.from_pylist(rows)


def analyse(*, eval_rows: Iterable[str | Path], rf_curves: str | Path | None, cfg: Mapping[str, Any], scale: str,
            out: Mapping[str, str | Path]) -> list[Claim]:
    """Evaluation rows → evals, timescales, fits and claims tables (keys of `out`: evals,
    timescales, fits, claims, and rf_timescales when the RF experiment ran)."""
    evals = pa.concat_tables([read_parquet(p) for p in eval_rows], promote_options="default")
    write_parquet(evals, out["evals"])
    ts = timescales(evals, cfg["thresholds"])
    write_parquet(ts, out["timescales"])
    rf_ts = None
    if rf_curves is not None:
        rf_cfg = cfg["random_features"]
        rf_ts = rf_timescales(read_parquet(rf_curves), float(cfg["thresholds"]["gen_tolerance"]),
                              float(rf_cfg["gap_threshold"]))
        write_parquet(rf_ts, out["rf_timescales"])
    write_parquet(fits_table(ts, rf_ts), out["fits"])
    claims = build_claims(ts, rf_ts, cfg, scale)
    write_claims(claims, out["claims"])
    return claims
