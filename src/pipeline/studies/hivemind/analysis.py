"""From response embeddings to the paper's measures and the study's claims rows.

Per generator (a model at one decoding setting) and prompt:
- `intra`: mean pairwise cosine of its responses to the prompt (intra-model repetition);
- `random`: mean cosine between its responses to the prompt and its responses to every other
  prompt — the random-pair baseline, paired with `intra` prompt by prompt.
Per pair of generators and shared prompt: `inter`, the mean cosine over all cross pairs, and
`inter_random`, the same across different prompts. All CIs are paired percentile bootstraps
over prompts (the unit the paper counts; `pipeline.stats.bootstrap_interval`). Rules for each
verdict are in docs/studies/hivemind.md.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from pipeline.claims import Claim, claim_row
from pipeline.metrics.similarity import (mean_cross_cosine, mean_pairwise_cosine,
                                         random_pair_cosines, share_above)
from pipeline.stats import Interval, bootstrap_interval
from pipeline.studies.hivemind import STUDY
from pipeline.studies.hivemind.embed import embedding_matrix


def _groups(table: pa.Table) -> dict[str, dict[str, np.ndarray]]:
    """generator → prompt_id → embeddings [n, dim]."""
    emb = embedding_matrix(table)
    gens = np.asarray(table.column("generator").to_pylist())
    prompts = np.asarray(table.column("prompt_id").to_pylist())
    out: dict[str, dict[str, np.ndarray]] = {}
    for g in dict.fromkeys(gens):
        rows = gens == g
        out[g] = {p: emb[rows & (prompts == p)] for p in dict.fromkeys(prompts[rows])}
    return out


def _rest(by_prompt: Mapping[str, np.ndarray], prompt: str) -> np.ndarray:
    others = [e for p, e in by_prompt.items() if p != prompt]
    return np.concatenate(others) if others else np.zeros((0, 1))


def intra_table(table: pa.Table, categories: Mapping[str, str]) -> pa.Table:
    """One row per (generator, prompt): n, intra, random (NaN where undefined)."""
    rows = []
    for g, by_prompt in _groups(table).items():
        for p, e in by_prompt.items():
            rest = _rest(by_prompt, p)
            rows.append({"generator": g, "prompt_id": p, "category": categories.get(p, ""),
                         "n_responses": int(e.shape[0]), "intra": mean_pairwise_cosine(e),
                         "random": mean_cross_cosine(e, rest) if rest.shape[0] else math.nan})
    return pa.Table.from_pylist(rows)


def inter_table(table: pa.Table) -> pa.Table:
    """One row per (generator a < b, shared prompt): inter and its cross-prompt baseline."""
    groups = _groups(table)
    rows = []
    for a, b in itertools.combinations(sorted(groups), 2):
        shared = [p for p in groups[a] if p in groups[b]]
        for p in shared:
            rest_b = _rest(groups[b], p)
            rows.append({"a": a, "b": b, "prompt_id": p,
                         "inter": mean_cross_cosine(groups[a][p], groups[b][p]),
                         "inter_random": mean_cross_cosine(groups[a][p], rest_b) if rest_b.shape[0] else math.nan})
    schema = pa.schema([("a", pa.string()), ("b", pa.string()), ("prompt_id", pa.string()),
                        ("inter", pa.float64()), ("inter_random", pa.float64())])
    return pa.Table.from_pylist(rows, schema=schema)


def random_pairs(table: pa.Table, n_pairs: int, seed: int) -> pa.Table:
    """Sampled cosines of random response pairs from different prompts, per generator."""
    emb = embedding_matrix(table)
    gens = np.asarray(table.column("generator").to_pylist())
    prompts = np.asarray(table.column("prompt_id").to_pylist())
    cols: dict[str, list] = {"generator": [], "cosine": []}
    for g in dict.fromkeys(gens):
        rows = gens == g
        if np.unique(prompts[rows]).size < 2:
            continue
        cos = random_pair_cosines(emb[rows], prompts[rows], n_pairs, seed=seed)
        cols["generator"] += [g] * cos.size
        cols["cosine"] += cos.tolist()
    return pa.table(cols)


def inter_matrix(intra: pa.Table, inter: pa.Table) -> tuple[list[str], np.ndarray]:
    """Generators and the symmetric matrix of mean similarities (diagonal: mean intra)."""
    gens = sorted(set(intra.column("generator").to_pylist()))
    m = np.full((len(gens), len(gens)), np.nan)
    idx = {g: i for i, g in enumerate(gens)}
    for g in gens:
        vals = [r["intra"] for r in intra.to_pylist() if r["generator"] == g]
        m[idx[g], idx[g]] = np.nanmean(vals) if np.isfinite(vals).any() else np.nan
    for (a, b), rows in itertools.groupby(inter.to_pylist(), key=lambda r: (r["a"], r["b"])):
        vals = [r["inter"] for r in rows]
        m[idx[a], idx[b]] = m[idx[b], idx[a]] = np.nanmean(vals) if np.isfinite(vals).any() else np.nan
    return gens, m


# -- claims ---------------------------------------------------------------------------

def _claim(claim: str, metric: str, value: float, baseline: float, iv: Interval, margin: float, scale: str,
           note: str, precondition: tuple[bool, str] = (True, "")) -> Claim:
    return claim_row(study=STUDY, claim=claim, metric=metric, value=value, baseline=baseline, iv=iv, scale=scale,
                     margin=margin, precondition=precondition, note=note)


def _over_prompts(stat: Callable[[np.ndarray], float], n: int, cfg: Mapping[str, Any],
                  shared_se: float = 0.0) -> Interval:
    """Paired bootstrap over prompts (`pipeline.stats`)."""
    return bootstrap_interval(stat, n, seed=cfg["seed"], shared_se=shared_se, unit="prompts")


def _share_floor(flags: np.ndarray) -> float:
    """Binomial SE of a share of prompts, with the add-one estimate so that 0/n or n/n does not
    claim certainty."""
    n = flags.size
    p = (flags.sum() + 1) / (n + 2) if n else 0.5
    return float(math.sqrt(p * (1 - p) / n)) if n else 0.0


def _per_generator(intra: pa.Table) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    out = {}
    rows = intra.to_pylist()
    for g in dict.fromkeys(r["generator"] for r in rows):
        ok = [r for r in rows if r["generator"] == g and np.isfinite(r["intra"]) and np.isfinite(r["random"])]
        out[g] = (np.array([r["intra"] for r in ok]), np.array([r["random"] for r in ok]),
                  [r["prompt_id"] for r in ok])
    return out


def repetition_claims(intra: pa.Table, cfg: Mapping[str, Any], scale: str,
                      empties: Mapping[str, tuple[int, int]]) -> tuple[list[Claim], dict[str, bool]]:
    """Per generator: intra against a diverse responder, and the share of prompts above `threshold`.

    "Repeats itself" is judged against `diverse_similarity`: the mean pairwise cosine of
    distinct, on-topic answers to one prompt under this embedder (a calibration, not a
    measurement of this run; its SE over the calibration prompts enters the interval). A genuinely diverse responder fails it; topical overlap alone,
    which lifts intra above the other-prompt random pairs for any on-topic model, does not
    pass it. The random-pair baseline stays in the note for reference.
    """
    claims, repeats = [], {}
    thr, majority = cfg["threshold"], cfg["share_majority"]
    diverse = cfg["diverse_similarity"]
    div_ok = (diverse["embedder"] == cfg["embedder"],
              f"diverse_similarity is calibrated for {diverse['embedder']}, but this run embeds with "
              f"{cfg['embedder']}: recalibrate it (bench/hivemind_calibration.py)")
    thr_ok = (cfg["threshold_embedder"] == cfg["embedder"],
              f"the paper's {thr} is an absolute cosine for {cfg['threshold_embedder']}; this run embeds with "
              f"{cfg['embedder']}, and absolute cosines do not transfer between embedders")
    for g, (v, b, _) in _per_generator(intra).items():
        n = v.size
        n_empty, n_total = empties.get(g, (0, 0))
        base_note = f"{n} prompts; CI: bootstrap over prompts; {n_empty}/{n_total} empty responses excluded"
        d = v - diverse["value"]
        c = _claim(f"{g} repeats itself: responses to one prompt are more alike than a diverse responder's",
                   f"mean pairwise cosine within a prompt (baseline: distinct on-topic answers under {diverse['embedder']})",
                   v.mean() if n else math.nan, diverse["value"],
                   _over_prompts(lambda i: float(d[i].mean()), n, cfg, diverse["se"]), 0.0, scale,
                   f"same model on other prompts: {b.mean() if n else math.nan:.3f}; {base_note}", div_ok)
        claims.append(c)
        repeats[g] = c.verdict == "reproduced"
        share, _, _ = share_above(v, thr)
        share_b, _, _ = share_above(b, thr)
        above, above_b = (v > thr).astype(float), (b > thr).astype(float)
        claims.append(_claim(
            f"{g}: most prompts have mean pairwise similarity above {thr}",
            f"share of prompts with intra-model similarity > {thr} (baseline: share of random pairs)",
            share, share_b, bootstrap_interval(lambda i: float(above[i].mean() - above_b[i].mean()), n,
                                               seed=cfg["seed"], floor=_share_floor(above), unit="prompts"),
            majority, scale, f"reproduced needs the CI above a {majority} share; {base_note}", thr_ok))
    return claims, repeats


def _normalised(inter: np.ndarray, intra_ab: np.ndarray, rand: np.ndarray) -> Callable[[np.ndarray], float]:
    def h(i: np.ndarray) -> float:
        gap = intra_ab[i].mean() - rand[i].mean()
        return float((inter[i].mean() - rand[i].mean()) / gap) if gap > 0 else math.nan
    return h


def convergence_claims(intra: pa.Table, inter: pa.Table, models_of: Mapping[str, str],
                       repeats: Mapping[str, bool], cfg: Mapping[str, Any], scale: str) -> list[Claim]:
    """Inter-model similarity close to intra-model, for every pair of generators of distinct models."""
    per = {(r["generator"], r["prompt_id"]): r["intra"] for r in intra.to_pylist()}
    close = cfg["close_ratio"]
    metric = "normalised inter-model similarity (inter − random) / (intra − random); baseline: 'close' ratio"
    rows_by_pair: dict[tuple[str, str], list[dict]] = {}
    for r in inter.to_pylist():
        rows_by_pair.setdefault((r["a"], r["b"]), []).append(r)
    claims, same_model = [], []
    for (a, b), rows in rows_by_pair.items():
        ok = [r for r in rows if all(np.isfinite(x) for x in (r["inter"], r["inter_random"],
                                                               per.get((a, r["prompt_id"]), math.nan),
                                                               per.get((b, r["prompt_id"]), math.nan)))]
        x = np.array([r["inter"] for r in ok])
        rnd = np.array([r["inter_random"] for r in ok])
        ia = np.array([(per[(a, r["prompt_id"])] + per[(b, r["prompt_id"])]) / 2 for r in ok])
        h = _normalised(x, ia, rnd)
        n = len(ok)
        iv = _over_prompts(h, n, cfg).shifted(close)
        value = iv.estimate + close
        raw = (f"inter {x.mean():.3f}, intra {ia.mean():.3f}, random {rnd.mean():.3f} over {n} shared prompts"
               if n else "no shared prompts")
        if models_of[a] == models_of[b]:
            same_model.append((a, b, value, iv, raw))
            continue
        not_repeating = [g for g in (a, b) if not repeats.get(g, False)]
        claims.append(_claim(
            f"{a} and {b} converge: cross-model similarity close to within-model", metric, value, close,
            iv, 0.0, scale, f"{raw}; CI: bootstrap over prompts",
            precondition=(not not_repeating, f"{', '.join(not_repeating)} shows no repetition above "
                          "random pairs, so 'close to intra-model' is undefined")))
    if not claims:
        distinct = sorted({models_of[g] for g in set(intra.column("generator").to_pylist())})
        if same_model:
            a, b, value, iv, raw = same_model[0]
            note = (f"only one distinct model in the population ({', '.join(distinct)}): measured between "
                    f"decoding settings of the same weights ({a} vs {b}: {raw}), which is not the "
                    "paper's comparison; add models to studies.hivemind.models")
            claims.append(_claim("different models converge: cross-model similarity close to within-model",
                                 metric, value, close, iv, 0.0, scale, "", precondition=(False, note)))
        else:
            claims.append(_claim("different models converge: cross-model similarity close to within-model",
                                 metric, math.nan, close, _over_prompts(lambda i: math.nan, 0, cfg), 0.0, scale,
                                 "", precondition=(False, "fewer than two generators share prompts")))
    return claims


def distinct_share(generations: pa.Table, generator: str) -> float:
    """Mean over prompts of (distinct non-empty responses / non-empty responses)."""
    shares = []
    rows = [r for r in generations.to_pylist() if r["generator"] == generator and not r["empty"]]
    for _, grp in itertools.groupby(sorted(rows, key=lambda r: r["prompt_id"]), key=lambda r: r["prompt_id"]):
        texts = [r["response"] for r in grp]
        shares.append(len(set(texts)) / len(texts))
    return float(np.mean(shares)) if shares else math.nan


def rl_claims(intra: pa.Table, generations: pa.Table, pairs: Sequence[Mapping[str, str]],
              cfg: Mapping[str, Any], scale: str) -> list[Claim]:
    """RL-trained generators repeat themselves more than their base, on open-ended prompts only.

    On single-answer task prompts similarity rises with accuracy (MiniLM: 0.70 at pass@1 0.3 →
    0.83 at 0.6), so any RL run that improves pass@1 would "lose diversity". Task prompts
    (source `task:*`) are therefore excluded; a pair with no shared open-ended prompt is
    `inconclusive` with that reason. Paired bootstrap over the shared prompts.
    """
    claim = "RL-trained model is less diverse than its base (higher intra-model similarity)"
    metric = "mean pairwise cosine within an open-ended prompt: RL (value) vs base (baseline)"
    per = {(r["generator"], r["prompt_id"]): r["intra"] for r in intra.to_pylist()}
    present = set(intra.column("generator").to_pylist())
    usable = [p for p in pairs if p["base"] in present and p["rl"] in present]
    none = _over_prompts(lambda i: math.nan, 0, cfg)
    if not usable:
        why = ("the RLVR study's models are not in this run (enable studies.rlvr and list its base and "
               "RL models under studies.hivemind.models and rl_pairs)")
        return [_claim(claim, metric, math.nan, math.nan, none, 0.0, scale, "", precondition=(False, why))]
    task = {p for p, src in zip(generations.column("prompt_id").to_pylist(), generations.column("source").to_pylist())
            if src.startswith("task:")}
    out = []
    for p in usable:
        shared = [k[1] for k in per if k[0] == p["rl"] and (p["base"], k[1]) in per
                  and np.isfinite(per[k]) and np.isfinite(per[(p["base"], k[1])])]
        prompts = [q for q in shared if q not in task]
        rl = np.array([per[(p["rl"], q)] for q in prompts])
        base = np.array([per[(p["base"], q)] for q in prompts])
        d = rl - base
        pre = (bool(prompts), f"all {len(shared)} shared prompts are single-answer task prompts, where similarity "
                              "rises with accuracy (it cannot tell lost diversity from higher pass@1); the claim "
                              "needs open-ended prompts answered by both models")
        note = (f"{p['rl']} vs {p['base']} on {d.size} shared open-ended prompts ({len(shared) - d.size} task prompts "
                f"excluded); distinct-response share {distinct_share(generations, p['rl']):.2f} (RL) vs "
                f"{distinct_share(generations, p['base']):.2f} (base)")
        out.append(_claim(f"{claim}: {p['rl']} vs {p['base']}", metric, rl.mean() if d.size else math.nan,
                          base.mean() if d.size else math.nan, _over_prompts(lambda i: float(d[i].mean()), d.size, cfg),
                          0.0, scale, note, pre))
    return out


def run_analysis(embeddings: str, generations: Sequence[str], out: Mapping[str, str],
                 cfg: Mapping[str, Any], scale: str) -> list[Claim]:
    """Write intra/inter/random-pair tables, a summary and the claims; return the claims.

    `out` maps intra, inter, random_pairs, summary, claims to paths; `cfg` is the study's
    `analysis` block plus seed, rl_pairs and embedder (`specs.AnalyseSpec.cfg`).
    """
    from pipeline.claims import write_claims
    from pipeline.io import read_parquet, write_json, write_parquet

    emb = read_parquet(embeddings)
    gen = pa.concat_tables([read_parquet(p) for p in generations])
    categories = dict(zip(gen.column("prompt_id").to_pylist(), gen.column("category").to_pylist()))
    models_of = dict(zip(gen.column("generator").to_pylist(), gen.column("model").to_pylist()))
    empties = {}
    for g in models_of:
        flags = [e for gg, e in zip(gen.column("generator").to_pylist(), gen.column("empty").to_pylist()) if gg == g]
        empties[g] = (int(sum(flags)), len(flags))
    intra = intra_table(emb, categories)
    inter = inter_table(emb)
    rnd = random_pairs(emb, cfg["random_pairs"], cfg["seed"])
    write_parquet(intra, out["intra"])
    write_parquet(inter, out["inter"])
    write_parquet(rnd, out["random_pairs"])
    # Claims 1–3 are about open-ended prompts; task models (spine entries with their own task
    # prompts) enter only the RL comparison, though their measures are in every table.
    task = {g for g, s in zip(gen.column("generator").to_pylist(), gen.column("source").to_pylist())
            if s.startswith("task:")}
    open_intra = intra.filter(pa.array([g not in task for g in intra.column("generator").to_pylist()]))
    open_inter = inter.filter(pa.array([a not in task and b not in task for a, b in
                                        zip(inter.column("a").to_pylist(), inter.column("b").to_pylist())],
                                       pa.bool_()))
    claims, repeats = repetition_claims(open_intra, cfg, scale, empties)
    claims += convergence_claims(open_intra, open_inter, models_of, repeats, cfg, scale)
    claims += rl_claims(intra, gen, cfg["rl_pairs"], cfg, scale)
    gens, m = inter_matrix(intra, inter)
    per = _per_generator(intra)
    rnd_rows = rnd.to_pylist()
    write_json({
        "generators": {g: {"model": models_of[g], "responses": empties[g][1], "empty": empties[g][0],
                           "prompts": int(per[g][0].size) if g in per else 0,
                           "mean_intra": float(np.mean(per[g][0])) if g in per and per[g][0].size else None,
                           "mean_random_pair": float(np.mean([r["cosine"] for r in rnd_rows if r["generator"] == g]))
                           if any(r["generator"] == g for r in rnd_rows) else None,
                           "share_above_threshold": share_above(per[g][0], cfg["threshold"])[0] if g in per else None}
                       for g in models_of},
        "threshold": cfg["threshold"],
        "matrix": {"generators": gens, "values": [[None if not np.isfinite(x) else float(x) for x in row] for row in m]},
    }, out["summary"])
    write_claims(claims, out["claims"])
    return claims
