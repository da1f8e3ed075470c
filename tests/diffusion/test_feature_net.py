"""The feature classifier behind the Fréchet distance: it learns, it saves and loads safely."""
import pyarrow as pa
import pytest
import torch

from pipeline.io import DataError, read_json
from pipeline.metrics.frechet import frechet_distance
from pipeline.studies.diffusion.data import read_images, to_model_space
from pipeline.studies.diffusion.feature_net import embed, load_feature_net, train_feature_net
from pipeline.io import read_parquet, write_parquet

CFG = {"task": "auto", "width": 8, "dim": 16, "steps": 150, "batch": 64, "lr": 0.003, "seed": 0}


def test_label_classifier_learns_and_its_features_separate_data_from_noise(digits_table, tmp_path):
    meta = train_feature_net(digits_table, tmp_path / "f.pt", tmp_path / "f.json", CFG)
    assert meta["task"] == "labels" and meta["heldout_accuracy"] > 0.5  # chance is 0.1
    assert read_json(tmp_path / "f.json") == meta
    net = load_feature_net(tmp_path / "f.pt", tmp_path / "f.json")
    pool = to_model_space(read_images(digits_table, split="pool")[0])
    held = to_model_space(read_images(digits_table, split="heldout")[0])
    noise = torch.rand_like(held) * 2 - 1
    fd_data = frechet_distance(embed(net, pool), embed(net, held))
    assert fd_data < frechet_distance(embed(net, noise), embed(net, held)) / 3


def test_rotation_task_without_labels(digits_table, tmp_path):
    table = read_parquet(digits_table)
    unlabeled = table.set_column(table.schema.get_field_index("label"), "label", pa.array([-1] * table.num_rows))
    write_parquet(unlabeled.replace_schema_metadata(table.schema.metadata), tmp_path / "u.parquet")
    meta = train_feature_net(tmp_path / "u.parquet", tmp_path / "f.pt", tmp_path / "f.json", CFG)
    assert meta["task"] == "rotation" and meta["n_classes"] == 4 and meta["heldout_accuracy"] > 0.4  # chance 0.25
    with pytest.raises(DataError, match="no class labels"):
        train_feature_net(tmp_path / "u.parquet", tmp_path / "g.pt", tmp_path / "g.json", {**CFG, "task": "labels"})
