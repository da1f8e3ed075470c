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

from pipeline.claims import Claim, claim_row, write_claims
from pipeline.stats import Interval, band_interval, slope_interval
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

    `generalising` (booleans per checkpoint) restricts the plateau to a window of checkpoints
    (`timescales` passes one common horizon for every n, see there). NaN (censored) when the
    curve is still falling by more than `tolerance` of its drop over the window's last step.
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
    if f[-2] - f[-1] > tolerance * (f[0] - lo):  # still falling at the window's end: censored
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
    mde: float = math.nan  # smallest slope deviation the fit could detect (pipeline.stats)

    @property
    def interval(self) -> Interval:
        return Interval(self.slope, self.ci_low, self.ci_high, self.mde, self.points, "points")


def loglog_fit(n: Iterable[float], tau: Iterable[float], resolution: float = 0.0) -> Fit:
    """OLS of log τ on log n; 95% CI of the slope from the t distribution (NaN if < 3 points).

    `resolution`: the SD of log τ's measurement error from the checkpoint grid (the residual
    SD's floor)."""
    x = np.asarray(list(n), dtype=float)
    y = np.asarray(list(tau), dtype=float)
    ok = np.isfinite(y) & (y > 0) & (x > 0)
    x, y = np.log(x[ok]), np.log(y[ok])
    iv, intercept = slope_interval(x, y, floor=resolution)
    return Fit(iv.estimate, iv.low, iv.high, intercept, int(x.size), len(np.unique(x)), iv.mde)


def _runs(table: pa.Table, order: str):
    """((n, seed), that run's rows sorted by `order`) for every run, runs in sorted order."""
    rows = table.to_pylist()
    for key in sorted({(r["n"], r["seed"]) for r in rows}):
        yield key, sorted((r for r in rows if (r["n"], r["seed"]) == key), key=lambda r: r[order])


def common_horizon(evals: pa.Table, mem_fraction: float) -> float:
    """The earliest memorisation step of any run (its last step if none memorised).

    τ_gen is read on checkpoints up to this one step for every n: once samples copy training
    images their FD moves for reasons that are not generalisation, and a per-run window ending
    at each run's own τ_mem would grow with n and bias the τ_gen slope upward.
    """
    taus = [tau_mem([r["step"] for r in rs], [r["f_mem"] for r in rs], mem_fraction) for _, rs in _runs(evals, "step")]
    taus = [t for t in taus if math.isfinite(t)]
    return min(taus) if taus else math.inf


def timescales(evals: pa.Table, thresholds: Mapping[str, Any]) -> pa.Table:
    """One row per (n, seed): τ_gen (on the common horizon), τ_mem, τ_loss, the budget, the final f_mem."""
    out = []
    mem = float(thresholds["mem_fraction"])
    horizon = common_horizon(evals, mem)
    for key, rs in _runs(evals, "step"):
        steps = [r["step"] for r in rs]
        out.append({
            "n": key[0], "seed": key[1],
            "tau_gen": tau_gen(steps, [r["fd"] for r in rs], float(thresholds["gen_tolerance"]),
                               [s <= horizon for s in steps]),
            "tau_mem": tau_mem(steps, [r["f_mem"] for r in rs], mem),
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
def _band_claim(*, claim: str, metric: str, fit: Fit, target: float, tol: float, scale: str,
                ok: tuple[bool, str], note: str) -> Claim:
    """Slope claimed to lie within target ± tol (`pipeline.stats.band_interval`): reproduced when
    the whole slope CI lies inside the band, not reproduced when it lies wholly outside."""
    return claim_row(study=STUDY, claim=claim, metric=metric, value=fit.slope, baseline=target,
                     iv=band_interval(fit.interval, target, tol), scale=scale, precondition=ok,
                     note="; ".join(x for x in (f"band {target}±{tol}, slope 95% CI [{fit.ci_low:.2f}, {fit.ci_high:.2f}]"
                                                if math.isfinite(fit.ci_low) else "", note) if x))


def _censored_band_claim(*, claim: str, metric: str, data: list[dict], key: str, budget: str, target: float,
                         tol: float, min_sizes: int, scale: str, what: str, resolution: float) -> Claim:
    """A band claim on a timescale that a size may not reach within its budget (censored).

    A censored (n, seed) enters the fit at its budget, a lower bound on its τ; the slope of that
    fit is then a lower bound on the true slope (censoring hits the large n). So a super-linear
    truth can still be `not reproduced` (even the lower bound lies above the band), while
    `reproduced` needs every size observed: an upper bound on the slope does not exist otherwise.
    """
    observed = _sizes_with(data, key)
    censored = sorted({r["n"] for r in data if not math.isfinite(r[key])})
    sizes = len({r["n"] for r in data})
    if not censored:
        fit = loglog_fit([r["n"] for r in data], [r[key] for r in data], resolution)
        return _band_claim(claim=claim, metric=metric, fit=fit, target=target, tol=tol, scale=scale,
                           ok=(observed >= min_sizes, f"{what} observed for {observed} size(s), need {min_sizes}"),
                           note="")
    bound = loglog_fit([r["n"] for r in data], [r[key] if math.isfinite(r[key]) else r[budget] for r in data],
                       resolution)
    ok = (sizes >= min_sizes and observed >= 2,
          f"{what} observed for {observed} size(s) ({len(censored)} censored) of {sizes}, need {min_sizes} "
          "sizes of which 2 observed")
    iv = band_interval(bound.interval, target, tol)
    note = (f"{what} not reached within the budget for n={censored}: they enter the fit at their budget "
            f"(a lower bound), slope ≥ {bound.slope:.2f}, 95% CI [{bound.ci_low:.2f}, {bound.ci_high:.2f}]")
    if ok[0] and math.isfinite(bound.ci_low) and bound.ci_low > target + tol:
        return claim_row(study=STUDY, claim=claim, metric=metric + " (censored sizes at their budget)",
                         value=bound.slope, baseline=target, iv=iv, scale=scale,
                         note=f"even the lower bound on the slope lies above the band {target}±{tol}; {note}")
    if ok[0]:
        ok = (False, f"censored sizes give only a lower bound on the slope, and it is not above the band "
                     f"{target}±{tol}; give the largest size more budget")
    return claim_row(study=STUDY, claim=claim, metric=metric + " (censored sizes at their budget)",
                     value=bound.slope, baseline=target, iv=iv, scale=scale, precondition=ok, note=note)


def _positive_claim(*, claim: str, metric: str, fit: Fit, scale: str, ok: tuple[bool, str], note: str) -> Claim:
    """Slope claimed positive: reproduced when its 95% CI is above 0, not when at or below."""
    return claim_row(study=STUDY, claim=claim, metric=metric, value=fit.slope, baseline=0.0, iv=fit.interval,
                     scale=scale, precondition=ok, note=note)


def _censored_note(ts: list[dict], key: str, what: str) -> str:
    miss = sorted({r["n"] for r in ts if not math.isfinite(r[key])})
    if not miss:
        return ""
    return f"{what} for n={miss} (censored: left out of the fit)"


def _sizes_with(ts: list[dict], key: str) -> int:
    return len({r["n"] for r in ts if math.isfinite(r[key])})


def build_claims(ts_table: pa.Table, rf_tables: Mapping[float, pa.Table] | None, cfg: Mapping[str, Any],
                 scale: str) -> list[Claim]:
    """The study's claims rows from the per-(n, seed) timescales (and the RF model's, one table
    per pre-registered gap threshold)."""
    th = cfg["thresholds"]
    min_sizes = int(th["min_sizes"])
    tol_flat, tol_lin = float(th["flat_tolerance"]), float(th["slope_tolerance"])
    ts = ts_table.to_pylist()
    claims: list[Claim] = []
    # log τ is read on a checkpoint grid with `per_octave` points per doubling: its SD from the
    # grid is at most the quantisation error log 2 / per_octave / √12, the fits' residual floor.
    res = math.log(2) / float(cfg["checkpoints"]["per_octave"]) / math.sqrt(12)

    def pre(key: str, what: str) -> tuple[bool, str]:
        k = _sizes_with(ts, key)
        return (k >= min_sizes, f"{what} observed for {k} training-set size(s), need {min_sizes}")

    fit_gen = loglog_fit([r["n"] for r in ts], [r["tau_gen"] for r in ts], res)
    fit_loss = loglog_fit([r["n"] for r in ts], [r["tau_loss"] for r in ts], res)
    both = [r for r in ts if math.isfinite(r["tau_mem"]) and math.isfinite(r["tau_gen"])]
    fit_win = loglog_fit([r["n"] for r in both], [r["tau_mem"] / r["tau_gen"] for r in both], res * math.sqrt(2))
    mem_ok = pre("tau_mem", f"memorisation (f_mem ≥ {th['mem_fraction']})")

    claims.append(_band_claim(
        claim="tau_gen is roughly independent of n", metric="slope of log tau_gen vs log n (common horizon)",
        fit=fit_gen, target=0.0, tol=tol_flat, scale=scale, ok=pre("tau_gen", "a quality plateau"),
        note=_censored_note(ts, "tau_gen", "no quality plateau within the common horizon")))
    claims.append(_censored_band_claim(
        claim="tau_mem grows linearly with n", metric="slope of log tau_mem vs log n", data=ts, key="tau_mem",
        budget="max_step", target=1.0, tol=tol_lin, min_sizes=min_sizes, scale=scale,
        what=f"memorisation (f_mem ≥ {th['mem_fraction']})", resolution=res))
    claims.append(_positive_claim(
        claim="the generalisation window [tau_gen, tau_mem] widens with n",
        metric="slope of log(tau_mem/tau_gen) vs log n", fit=fit_win, scale=scale,
        ok=(mem_ok[0] and len({r["n"] for r in both}) >= min_sizes, mem_ok[1] if not mem_ok[0] else
            f"both timescales observed for {len({r['n'] for r in both})} size(s), need {min_sizes}"),
        note=""))
    claims.append(_band_claim(
        claim="tau_mem grows linearly with n (held-out loss minimum as the estimate)",
        metric="slope of log tau_loss vs log n", fit=fit_loss, target=1.0, tol=tol_lin, scale=scale,
        ok=pre("tau_loss", "a held-out loss minimum"),
        note=_censored_note(ts, "tau_loss", "held-out loss minimum not bracketed by checkpoints")))
    if rf_tables:
        rc = cfg["random_features"]
        rf_res = math.log(float(rc["time_max"]) / float(rc["time_min"])) / (int(rc["n_times"]) - 1) / math.sqrt(12)
        claims += _rf_claims(rf_tables, min_sizes, tol_flat, tol_lin, scale, rf_res)
    return claims


def _rf_claims(rf_tables: Mapping[float, pa.Table], min_sizes: int, tol_flat: float, tol_lin: float,
               scale: str, res: float) -> list[Claim]:
    """Random-features rows. τ_mem depends on the gap threshold, and the thresholds are fixed in
    config before a run (`random_features.gap_thresholds`): a verdict holds only if it is the
    same at every one of them; otherwise the row is inconclusive and names the slopes."""
    per = {thr: _censored_band_claim(
        claim="random-features model: tau_mem grows linearly with n", metric="slope of log tau_mem vs log n (RF)",
        data=t.to_pylist(), key="tau_mem", budget="max_time", target=1.0, tol=tol_lin, min_sizes=min_sizes,
        scale=scale, what=f"train/test gap ≥ {thr}", resolution=res) for thr, t in rf_tables.items()}
    first = next(iter(per.values()))
    verdicts = {c.verdict for c in per.values()}
    slopes = ", ".join(f"gap {thr}: slope {c.value:.2f} ({c.verdict})" for thr, c in per.items())
    if len(verdicts) == 1:
        first.note = f"same verdict at every pre-registered gap threshold ({slopes}); {first.note}"
    else:
        first.verdict = "inconclusive"
        first.note = f"the verdict depends on the gap threshold ({slopes}); shown: gap {next(iter(per))}"
    rf = next(iter(rf_tables.values())).to_pylist()
    k_gen = _sizes_with(rf, "tau_gen")
    gen = _band_claim(
        claim="random-features model: tau_gen is roughly independent of n", metric="slope of log tau_gen vs log n (RF)",
        fit=loglog_fit([r["n"] for r in rf], [r["tau_gen"] for r in rf], res), target=0.0, tol=tol_flat, scale=scale,
        ok=(k_gen >= min_sizes, f"test-loss plateau reached for {k_gen} size(s), need {min_sizes}"), note="")
    return [first, gen]


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
    rf_ts, rf_all = None, {}
    if rf_curves is not None:
        curves = read_parquet(rf_curves)
        tol = float(cfg["thresholds"]["gen_tolerance"])
        rf_all = {float(g): rf_timescales(curves, tol, float(g)) for g in cfg["random_features"]["gap_thresholds"]}
        rf_ts = next(iter(rf_all.values()))  # the first pre-registered threshold: the tables and figures
        write_parquet(rf_ts, out["rf_timescales"])
    write_parquet(fits_table(ts, rf_ts), out["fits"])
    claims = build_claims(ts, rf_all, cfg, scale)
    write_claims(claims, out["claims"])
    return claims
