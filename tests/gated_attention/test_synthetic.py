"""The Bigram-Backcopy source: its rule, its statistics, and a batch that is a pure function of the step."""
import numpy as np
import pytest
import torch

from pipeline.data.synthetic import BOS_ID, BigramBackcopy, bigram_stats
from pipeline.io import DataError
from pipeline.train.engine import StepContext

TEXT = "the cat sat on the mat; a bat ate the hat. " * 40


@pytest.fixture(scope="module")
def stats(tmp_path_factory):
    path = tmp_path_factory.mktemp("bigram") / "corpus.txt"
    path.write_text(TEXT)
    return bigram_stats(str(path), "text", 1.0, path.with_suffix(".json"), doc_chars=4000)


def test_counts_are_the_texts_bigrams(stats):
    chars = stats["chars"]
    counts = np.asarray(stats["counts"])
    assert counts.sum() == len(TEXT.rstrip()) - 1  # a document drops its trailing whitespace
    assert counts[chars.index("t"), chars.index("h")] == TEXT.count("th")
    assert counts[chars.index("a"), chars.index("t")] == TEXT.count("at")


def test_trigger_rule_holds_and_bos_leads(stats):
    task = BigramBackcopy(stats, triggers=2)
    x = task.draw(torch.Generator().manual_seed(0), 64, 96)
    assert (x[:, 0] == BOS_ID).all() and (x[:, 1:] != BOS_ID).all()
    copy = task.copy_targets(x)
    assert copy.any()
    assert torch.equal(x[:, 2:-0 or None][copy[:, 2:]], x[:, :-2][copy[:, 2:]])  # x_t = x_{t-2} after a trigger
    # the triggers are the most frequent characters (space and 't' in this text)
    assert {task.chars[i - 1] for i in task.triggers.tolist()} == {" ", "t"}


def test_bigram_frequencies_match_the_source(stats):
    task = BigramBackcopy(stats, triggers=1)
    x = task.draw(torch.Generator().manual_seed(1), 4000, 48)  # backcopy loops cluster draws: many chains
    free = ~task.copy_targets(x)[:, 2:]
    prev, nxt = x[:, 1:-1][free], x[:, 2:][free]  # bigram-drawn positions (the first character is not a bigram draw)
    checked = 0
    for p in torch.unique(prev).tolist():
        seen = torch.bincount(nxt[prev == p], minlength=task.vocab_size).double()
        if seen.sum() < 2000:
            continue
        emp = seen / seen.sum()
        assert torch.allclose(emp, task.transition[p], atol=0.03), task.chars[p - 1]
        checked += 1
    assert checked >= 3


def test_batch_is_a_pure_function_of_seed_and_step_whatever_the_ranks(stats):
    task = BigramBackcopy(stats, triggers=3)

    def batch(step, rank, world, seed=0):
        ctx = StepContext(step, 0, rank, world, seed, 8 // world, torch.device("cpu"))
        return ctx.local(task.sample(ctx.generator(), ctx.global_micro_batch, 31))

    one = batch(5, 0, 1)
    assert one.shape == (8, 32)
    assert torch.equal(one, batch(5, 0, 1))
    assert torch.equal(one, torch.cat([batch(5, 0, 2), batch(5, 1, 2)]))
    assert not torch.equal(one, batch(6, 0, 1)) and not torch.equal(one, batch(5, 0, 1, seed=1))
    assert torch.equal(task.fixed(4, 31), task.fixed(4, 31))


def test_too_many_triggers_is_a_clear_error(stats):
    with pytest.raises(DataError, match="triggers"):
        BigramBackcopy(stats, triggers=len(stats["chars"]))
