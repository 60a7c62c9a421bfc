"""Pairs made on the fly: SyntheticPairs' item i is make-dataset's pair i, byte for byte, for
every method; its errors name the source."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset
from blurgen.torch import PairsDataset, SyntheticPairs

SOURCES = [str(p) for p in bundled_images()[:2]]


@pytest.mark.parametrize("mix", [(("motion", 1), ("linear", 1), ("camera", 1), ("bgan", 1))])
def test_items_are_the_files_pairs(tmp_path, mix):
    config = DatasetConfig(patch=40, per_image=6, kernel_size=9, mix=mix)
    path = tmp_path / "pairs.h5"
    from blurgen.bgan.infer import BganBlur

    learned = BganBlur(config.bgan)
    make_dataset(SOURCES, path, config, seed=5, learned=learned)
    stored = PairsDataset([path], crop=24, flip=True, transpose=True)
    made = SyntheticPairs(SOURCES, config=config, seed=5, crop=24, flip=True, transpose=True,
                          learned=learned)  # fmt: skip
    assert len(made) == len(stored) == 12
    np.testing.assert_array_equal(made.sources(), stored.sources())
    for i in range(len(made)):
        a, b = made.item(i, np.random.default_rng(i)), stored.item(i, np.random.default_rng(i))
        assert torch.equal(a["blurred"], b["blurred"]) and torch.equal(a["sharp"], b["sharp"])
        assert a["index"] == b["index"] == i


def test_a_preset_and_settings_and_workers(tmp_path):
    path = tmp_path / "pairs.h5"
    made = SyntheticPairs(SOURCES, preset="deblurgan", patch=72, per_image=2, seed=1)
    make_dataset(SOURCES, path, made.config, seed=1)
    stored = PairsDataset([path])
    loader = DataLoader(made, batch_size=4, num_workers=2)
    batch = next(iter(loader))
    assert batch["blurred"].shape == (4, 3, 72, 72)
    for i in range(4):
        assert torch.equal(batch["blurred"][i], stored[i]["blurred"])


def test_an_unusable_source_is_named(tmp_path):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((20, 20, 3), np.uint8))
    made = SyntheticPairs([SOURCES[0], str(small)], preset="none", patch=32, per_image=2)
    assert made[1]["sharp"].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="small.png'. too small"):
        made[2]
    with pytest.raises(ValueError, match="not both"):
        SyntheticPairs(SOURCES, config=DatasetConfig(), patch=32)
    with pytest.raises(FileNotFoundError, match="gone"):
        SyntheticPairs([str(tmp_path / "gone")])


def test_a_batch_made_together_is_the_items_made_alone():
    made = SyntheticPairs(SOURCES, preset="none", patch=32, per_image=3, seed=2, crop=16,
                          flip=True, transpose=True)  # fmt: skip
    indices = [5, 0, 5, 3, 1]  # repeats, as StepBatches draws with replacement
    together = made.items(indices, [np.random.default_rng(k) for k in range(5)])
    for k, index in enumerate(indices):
        alone = made.item(index, np.random.default_rng(k))
        assert torch.equal(together[k]["blurred"], alone["blurred"])
        assert torch.equal(together[k]["sharp"], alone["sharp"]) and together[k]["index"] == index
    torch.manual_seed(0)
    batch = made.__getitems__(indices)
    torch.manual_seed(0)
    for item, index in zip(batch, indices, strict=True):
        assert torch.equal(item["blurred"], made[index]["blurred"])
