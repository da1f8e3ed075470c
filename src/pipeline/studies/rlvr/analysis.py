"""From per-problem counts to pass@k curves, coverage, perplexity and the claims rows.

Models are named `base`, `teacher`, `distill-s<seed>` and `<algorithm>-s<seed>`. All were
sampled n times per held-out problem with the same decoding settings.

- pass@k curve: the unbiased estimator averaged over problems, for k = 1, 2, 4, … k_max.
- solved set: problems with at least one correct sample among all n (n ≥ 2·k_max).
- crossing k: the smallest k (on the integer grid 1..k_max) at which base pass@k ≥ RL pass@k,
  given RL led at k = 1.
- lost problems: solved by base but by no RL sample, grouped by problem class (the
  calibration showed a collapse onto one answer class can fake a crossing).
- perplexity: each response's mean per-token negative log-likelihood under the base.

Claims (effects oriented so positive supports the paper; seeds are RL/distillation seeds
against the one base: the CI covers RL-run variation and the sampling noise of the one base
evaluation, redrawn per problem from its binomial counts, but not base-training variation):
1. RL beats base at k=1: pass@1(RL_s) − pass@1(base), paired judge, margin 0.
2. base catches up at large k: pass@k_max(base) − pass@k_max(RL_s); needs RL to lead at k=1
   and the curves not both saturated.
3. RL-solved ⊂ base-solved: |RL_s ∩ base| / |RL_s| − max(`subset_threshold`, base coverage)
   (a random problem set would be a subset at the rate of base coverage); needs base to
   leave some problem unsolved (otherwise the relation holds trivially).
4. distillation expands coverage more than RL: share of held-out problems solved by the model
   and never by base, students against RL runs (Welch); needs base to leave some problem
   unsolved and at least two RL runs.
5. base likes RL responses: NLL_base(base responses) − NLL_base(RL responses) per token.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pipeline.claims import Claim, claim_row, judge, write_claims
from pipeline.io import DataError, read_parquet, write_parquet
from pipeline.metrics.passk import pass_at_k, pass_at_k_curve, powers_of_two
from pipeline.stats import welch_interval

STUDY = "rlvr"
NAME_RE = re.compile(r"^(base|teacher|(?P<family>[a-z]+)-s(?P<seed>\d+))$")


def parse_name(name: str) -> tuple[str, int | None]:
    """('base', None), ('teacher', None), ('grpo', 0), ('distill', 1), ..."""
    m = NAME_RE.match(name)
    if not m:
        raise ValueError(f"model name {name!r} is not base, teacher or <family>-s<seed>")
    return (m.group("family"), int(m.group("seed"))) if m.group("family") else (name, None)


@dataclass
class Counts:
    pids: list[str]
    klass: list[str]
    n: np.ndarray
    c: np.ndarray

    @property
    def solved(self) -> np.ndarray:
        return self.c > 0


def load_counts(paths: Mapping[str, str]) -> dict[str, Counts]:
    """Per-model counts aligned on the base model's problem order."""
    if "base" not in paths:
        raise ValueError("analysis needs the base model's counts")
    out: dict[str, Counts] = {}
    order: list[str] | None = None
    for name, path in paths.items():
        rows = read_parquet(path).to_pylist()
        by_pid = {r["pid"]: r for r in rows}
        if order is None:
            order = [r["pid"] for r in read_parquet(paths["base"]).to_pylist()]
        if set(by_pid) != set(order):
            raise DataError(f"{path}: its problems differ from the base model's held-out problems")
        rows = [by_pid[p] for p in order]
        out[name] = Counts(order, [r["klass"] for r in rows], np.array([r["n"] for r in rows]),
                           np.array([r["c"] for r in rows]))
    return out


def curves(counts: Mapping[str, Counts], ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Mean pass@k over problems for every model, for each k in ks."""
    return {name: pass_at_k_curve(c.n, c.c, ks).mean(axis=1) for name, c in counts.items()}


def crossing_k(base: np.ndarray, rl: np.ndarray, ks: Sequence[int]) -> int | None:
    """Smallest k where base ≥ RL, if RL led at the first k; None otherwise."""
    if not rl[0] > base[0]:
        return None
    for k, b, r in zip(ks, base, rl):
        if b >= r:
            return int(k)
    return None


def lost_by_class(base: Counts, other: Counts) -> dict[str, tuple[int, int]]:
    """class → (problems base solves but `other` never does, problems base solves)."""
    total = Counter(k for k, s in zip(base.klass, base.solved) if s)
    lost = Counter(k for k, s, o in zip(base.klass, base.solved, other.solved) if s and not o)
    return {k: (lost.get(k, 0), total[k]) for k in sorted(total)}


def response_nll(samples_path: str) -> np.ndarray:
    """Per-response mean per-token NLL under the base (responses with no token dropped)."""
    t = read_parquet(samples_path, columns=["base_logp", "n_tokens"]).to_pydict()
    lp, n = np.asarray(t["base_logp"], dtype=float), np.asarray(t["n_tokens"], dtype=float)
    keep = n > 0
    return -lp[keep] / n[keep]


def _families(counts: Mapping[str, Any], family: str) -> list[str]:
    return sorted((n for n in counts if parse_name(n)[0] == family), key=lambda n: parse_name(n)[1])


def _fmt_lost(lost: Mapping[str, tuple[int, int]]) -> str:
    return ", ".join(f"{k} {a}/{b}" for k, (a, b) in lost.items() if a) or "none"


def eval_sd(stat: Callable[[np.ndarray], float], counts: Counts, *, draws: int = 200, seed: int = 0) -> float:
    """Sampling SD of `stat(correct counts)` for one model's evaluation: the counts are redrawn
    from Binomial(n, c/n) per problem (a parametric bootstrap of the n samples per problem)."""
    rng = np.random.default_rng(seed)
    p = counts.c / counts.n
    vals = [stat(rng.binomial(counts.n, p)) for _ in range(draws)]
    return float(np.std(vals, ddof=1))


def _mean_sd(sds: Sequence[float]) -> float:
    """The typical per-run SD of several runs' evaluations (root mean square)."""
    return float(np.sqrt(np.mean(np.square(sds)))) if len(sds) else 0.0


def build_claims(counts: Mapping[str, Counts], nll: Mapping[str, np.ndarray], *, k_max: int,
                 algorithms: Sequence[str], subset_threshold: float, scale: str) -> list[Claim]:
    """The RLVR rows; every interval carries the base evaluation's sampling noise (`shared_se`)
    and each run's own as its floor (`pipeline.stats`)."""
    ks_all = list(range(1, k_max + 1))
    curve = curves(counts, ks_all)
    base = counts["base"]
    b1, bk = curve["base"][0], curve["base"][-1]
    base_cov = float(base.solved.mean())

    def passk_sd(name: str, k: int) -> float:
        c = counts[name]
        return eval_sd(lambda cc: float(pass_at_k(c.n, cc, k).mean()), c)

    def solved_sd(name: str, stat: Callable[[np.ndarray], float]) -> float:
        return eval_sd(lambda cc: stat(cc > 0), counts[name])

    some_not_all = (0.0 < b1 < 1.0, f"the base must solve some held-out samples but not all (pass@1 {b1:.3f}): "
                                    "train the base longer or shorter")
    room = (base_cov < 1.0, f"base solves every held-out problem within n={int(base.n.max())} samples "
                            "(relation holds trivially; make the task harder or evaluate at lower temperature)")
    base_sd1, base_sdk = passk_sd("base", 1), passk_sd("base", k_max)
    claims: list[Claim] = []
    for algo in algorithms:
        runs = _families(counts, algo)
        if not runs:
            continue
        r1 = [curve[r][0] for r in runs]
        rk = [curve[r][-1] for r in runs]
        crosses = [crossing_k(curve["base"], curve[r], ks_all) for r in runs]
        lost = Counter()
        totals: dict[str, int] = {}
        for r in runs:
            for k, (a, b) in lost_by_class(base, counts[r]).items():
                lost[k] += a
                totals[k] = totals.get(k, 0) + b
        lost_note = "problems lost by class, summed over seeds: " + _fmt_lost(
            {k: (lost[k], totals[k]) for k in totals})
        claims.append(judge(study=STUDY, claim=f"{algo}: RL beats base at k=1", metric="pass@1",
                            values=r1, baselines=[b1] * len(runs), scale=scale, higher_is_claimed=True,
                            floor=_mean_sd([passk_sd(r, 1) for r in runs]), shared_se=base_sd1,
                            precondition=some_not_all,
                            note=f"CI includes the base evaluation's sampling SD {base_sd1:.3f}"))
        leads = float(np.mean(r1)) > b1
        saturated = bk >= 0.999 and min(rk) >= 0.999
        cross_txt = ", ".join(str(c) if c is not None else "none" for c in crosses)
        claims.append(judge(
            study=STUDY, claim=f"{algo}: base catches up or overtakes RL at large k", metric=f"pass@{k_max}",
            values=[bk] * len(runs), baselines=rk, scale=scale, higher_is_claimed=True,
            floor=_mean_sd([passk_sd(r, k_max) for r in runs]), shared_se=base_sdk,
            precondition=(some_not_all if not some_not_all[0] else
                          (leads and not saturated,
                           "RL does not lead at k=1, so there is no lead to lose" if not leads
                           else f"both curves saturate at k={k_max}")),
            note=f"CI includes the base evaluation's sampling SD {base_sdk:.3f}; crossing k per seed: {cross_txt}; "
                 f"{lost_note}"))
        frac, chance, new = [], base_cov, []
        solving = [r for r in runs if counts[r].solved.any()]
        frac_sd, base_frac_sd = [], []
        for r in solving:
            s = counts[r].solved
            frac.append(float((s & base.solved).sum() / s.sum()))
            new.append(int((s & ~base.solved).sum()))
            frac_sd.append(solved_sd(r, lambda x, b=base.solved: float((x & b).sum() / max(x.sum(), 1))))
            base_frac_sd.append(solved_sd("base", lambda x, s=s: float((s & x).sum() / s.sum())))
        subset_pre = (room if not room[0] else
                      (len(solving) == len(runs), f"{len(runs) - len(solving)} RL run(s) solve no held-out problem"))
        bar = max(subset_threshold, chance)
        claims.append(judge(
            study=STUDY, claim=f"{algo}: problems solved by RL are nearly a subset of those solved by base",
            metric="|RL∩base|/|RL| against max(threshold, chance)", values=frac, baselines=[bar] * len(frac),
            scale=scale, higher_is_claimed=True, floor=_mean_sd(frac_sd), shared_se=_mean_sd(base_frac_sd),
            precondition=subset_pre,
            note=f"baseline: max(subset_threshold {subset_threshold}, chance level = base coverage {chance:.3f}); "
                 f"problems solved only by RL per seed: {new}"))
        base_resp = float(np.mean(nll["base"])) if "base" in nll else math.nan
        have = [r for r in runs if r in nll]
        vals = [float(np.mean(nll[r])) for r in have]
        if vals:
            def se(x: np.ndarray) -> float:
                return float(np.std(x, ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
            claims.append(judge(
                study=STUDY, claim=f"{algo}: base model assigns RL responses at least its own likelihood",
                metric="base NLL per token of responses", values=vals, baselines=[base_resp] * len(vals),
                scale=scale, higher_is_claimed=False, floor=_mean_sd([se(nll[r]) for r in have]),
                shared_se=se(nll["base"]) if "base" in nll else 0.0, precondition=some_not_all,
                note="value: RL responses, baseline: base responses; lower means more likely under base"))
    distilled = _families(counts, "distill")
    if distilled:
        claims.append(_distill_claim(counts, distilled, algorithms, room, solved_sd, curve, scale))
    return claims


def _distill_claim(counts, distilled, algorithms, room, solved_sd, curve, scale) -> Claim:
    """Distillation expands coverage beyond the base more than RL does (the paper's contrast).

    Both the students and the RL runs start from the same base and learn from the same task's
    answers (the teacher's samples, the verifier's rewards), so a student beating the base
    alone says little; the paper's claim is that distillation adds problems the base never
    solves where RL does not. Effect: mean share of held-out problems solved only by the
    student − the same share for RL runs (Welch interval over the two groups of runs).
    """
    base = counts["base"]

    def new_share(x: np.ndarray) -> float:
        return float((x & ~base.solved).mean())

    d_new = [new_share(counts[d].solved) for d in distilled]
    rl_runs = [r for a in algorithms for r in _families(counts, a)]
    r_new = [new_share(counts[r].solved) for r in rl_runs]
    floor = _mean_sd([solved_sd(n, new_share) for n in [*distilled, *rl_runs]])
    pre = room if not room[0] else (len(rl_runs) >= 2, f"{len(rl_runs)} RL run(s): nothing to compare against")
    b1 = curve["base"][0]
    return claim_row(
        study=STUDY, claim="distillation expands coverage beyond the base more than RL does",
        metric="share of held-out problems solved by the model and never by base: students (value) vs RL (baseline)",
        value=float(np.mean(d_new)), baseline=float(np.mean(r_new)) if r_new else math.nan,
        iv=welch_interval(d_new, r_new, floor=floor), scale=scale, precondition=pre,
        note=f"Welch interval over {len(distilled)} students and {len(rl_runs)} RL runs; distilled pass@1 "
             f"{np.mean([curve[d][0] for d in distilled]):.3f} vs base {b1:.3f}")


def passk_rows(counts: Mapping[str, Counts], ks: Sequence[int]) -> list[dict[str, Any]]:
    curve = curves(counts, ks)
    rows = []
    for name, vals in curve.items():
        family, seed = parse_name(name)
        rows += [{"model": name, "family": family, "seed": seed, "k": int(k), "pass_at_k": float(v)}
                 for k, v in zip(ks, vals)]
    return rows


def coverage_rows(counts: Mapping[str, Counts], k_max: int) -> list[dict[str, Any]]:
    rows = []
    for name, c in counts.items():
        family, seed = parse_name(name)
        pk = pass_at_k(c.n, c.c, k_max)
        rows += [{"model": name, "family": family, "seed": seed, "pid": p, "klass": k, "n": int(n),
                  "c": int(cc), "solved": bool(cc > 0), f"pass_at_{k_max}": float(v)}
                 for p, k, n, cc, v in zip(c.pids, c.klass, c.n, c.c, pk)]
    return rows


def perplexity_rows(nll: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    rows = []
    for name, v in nll.items():
        family, seed = parse_name(name)
        rows += [{"model": name, "family": family, "seed": seed, "nll_per_token": float(x)} for x in v]
    return rows


def run_analysis(counts_paths: Mapping[str, str], samples_paths: Mapping[str, str], *, k_max: int,
                 algorithms: Sequence[str], subset_threshold: float, scale: str,
                 out: Mapping[str, str]) -> list[Claim]:
    """Write passk, coverage, perplexity and claims Parquet files (paths in `out`)."""
    counts = load_counts(counts_paths)
    n_min = int(min(c.n.min() for c in counts.values()))
    if n_min < 2 * k_max:
        raise ValueError(f"studies.rlvr.eval: n_samples={n_min} < 2·k_max={2 * k_max}; the pass@k "
                         "estimate at large k needs more samples")
    nll = {name: response_nll(p) for name, p in samples_paths.items()}
    write_parquet(passk_rows(counts, powers_of_two(k_max)), out["passk"])
    write_parquet(coverage_rows(counts, k_max), out["coverage"])
    write_parquet(perplexity_rows(nll), out["perplexity"])
    claims = build_claims(counts, nll, k_max=k_max, algorithms=algorithms,
                          subset_threshold=subset_threshold, scale=scale)
    write_claims(claims, out["claims"])
    return claims
