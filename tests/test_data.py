"""PairsDataset and the training batches inside a DataLoader with worker processes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from blurgen.bgan.data import StepBatches
from blurgen.h5 import SCHEMA
from blurgen.torch import PairsDataset


def fake_pairs(path, count, side=16, start=0):
    """A schema-valid file whose blurred image is the sharp one plus 1: easy to check."""
    sharp = (np.arange(count * side * side * 3).reshape(count, side, side, 3) + start) % 200
    with h5py.File(path, "w") as f:
        f.attrs["schema"] = SCHEMA
        f.attrs["complete"] = True
        f["sharp"] = sharp.astype(np.uint8)
        f["blurred"] = (sharp + 1).astype(np.uint8)
    return path


def test_items_are_chw_floats_in_range_across_files(tmp_path):
    files = [fake_pairs(tmp_path / "a.h5", 3), fake_pairs(tmp_path / "b.h5", 2, start=7)]
    data = PairsDataset(files)
    assert len(data) == 5
    item = data[4]
    assert item["sharp"].shape == (3, 16, 16) and item["sharp"].dtype == torch.float32
    assert 0 <= item["sharp"].min() and item["blurred"].max() <= 1
    with h5py.File(files[1], "r") as f:
        expected = torch.from_numpy(f["sharp"][1]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(item["sharp"], expected)
    with pytest.raises(IndexError):
        data[5]


def test_dataloader_with_two_workers_crops_and_flips_both_alike(tmp_path):
    files = [fake_pairs(tmp_path / "a.h5", 6), fake_pairs(tmp_path / "b.h5", 5, start=3)]
    data = PairsDataset(files, crop=8, flip=True)

    def load(seed):
        torch.manual_seed(seed)
        loader = DataLoader(data, batch_size=4, num_workers=2, shuffle=True)
        return list(loader)

    batches = load(0)
    seen = torch.cat([b["index"] for b in batches])
    assert sorted(seen.tolist()) == list(range(11))
    for batch in batches:
        assert batch["sharp"].shape[1:] == (3, 8, 8)
        # The same crop and flips for both images: blurred is still sharp + 1/255.
        torch.testing.assert_close(batch["blurred"], batch["sharp"] + 1 / 255)
    again = load(0)
    for a, b in zip(batches, again, strict=True):
        torch.testing.assert_close(a["sharp"], b["sharp"])


def test_step_batches_depend_on_the_seed_and_step_alone(tmp_path):
    files = [fake_pairs(tmp_path / "a.h5", 6), fake_pairs(tmp_path / "b.h5", 5, start=3)]
    data = PairsDataset(files, crop=8, flip=True, transpose=True)
    index = np.array([0, 2, 3, 7, 9])
    batches = StepBatches(data, index, batch=3, seed=5)

    def load(steps, workers):
        loader = DataLoader(batches, batch_size=None, sampler=steps, num_workers=workers)
        return list(loader)

    alone = load(range(0, 6), 0)
    for blurred, sharp in alone:
        assert sharp.shape == (3, 3, 8, 8)
        torch.testing.assert_close(blurred, sharp + 1 / 255)  # the same crop and orientation
    # Any number of workers, and a start part-way (a resumed run), load the same batches.
    for steps, workers in ((range(0, 6), 1), (range(0, 6), 2), (range(2, 6), 2)):
        for (a, b), (c, d) in zip(alone[steps.start :], load(steps, workers), strict=True):
            assert torch.equal(a, c) and torch.equal(b, d)
    assert not torch.equal(alone[0][1], alone[1][1])
    other = StepBatches(data, index, batch=3, seed=6)[0]
    assert not torch.equal(other[1], alone[0][1])
    # Only pairs of the index are drawn: here pair i is flat, at 10 * i.
    with h5py.File(tmp_path / "flat.h5", "w") as f:
        f.attrs["schema"], f.attrs["complete"] = SCHEMA, True
        f["sharp"] = f["blurred"] = np.arange(0, 110, 10, dtype=np.uint8)[:, None, None, None] * (
            np.ones((1, 16, 16, 3), np.uint8)
        )
    flat = StepBatches(PairsDataset([tmp_path / "flat.h5"], crop=8), index, batch=3, seed=5)
    drawn = {
        round(float(sharp[0, 0, 0]) * 255) // 10 for step in range(20) for sharp in flat[step][1]
    }
    assert drawn == set(index.tolist())
    with pytest.raises(ValueError, match="no pairs to train on"):
        StepBatches(data, np.array([], int), batch=3, seed=0)


@pytest.mark.parametrize("transpose", [False, True])
def test_flips_and_transposes_give_every_orientation(tmp_path, transpose):
    data = PairsDataset([fake_pairs(tmp_path / "a.h5", 1, side=4)], flip=True, transpose=transpose)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        sharp = torch.from_numpy(f["sharp"][0]).float() / 255
    quarter_turns = [torch.rot90(sharp, k) for k in range(4)]
    orientations = [*quarter_turns, *(turn.flip(1) for turn in quarter_turns)]
    torch.manual_seed(0)
    seen = []
    for _ in range(200):
        item = data[0]
        torch.testing.assert_close(item["blurred"], item["sharp"] + 1 / 255)
        image = item["sharp"].permute(1, 2, 0)
        seen.append(next(i for i, o in enumerate(orientations) if torch.equal(image, o)))
    counts = np.bincount(seen, minlength=8)
    # Flips alone reach the identity, the half turn and the two mirrors along the axes; with
    # transposes the quarter turns and the diagonal mirrors too, each about as often.
    reached = {0, 2, 4, 6}
    if transpose:
        assert counts.min() >= 10
    else:
        assert set(np.flatnonzero(counts)) == reached


def test_refuses_unfinished_or_foreign_files(tmp_path):
    path = fake_pairs(tmp_path / "a.h5", 2)
    with h5py.File(path, "a") as f:
        f.attrs["complete"] = False
    with pytest.raises(ValueError, match="not complete"):
        PairsDataset([path])
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="blurgen-pairs/1"):
        PairsDataset([tmp_path / "other.h5"])
    with pytest.raises(ValueError, match="crop 32"):
        PairsDataset([fake_pairs(tmp_path / "b.h5", 1)], crop=32)


def test_on_a_real_dataset(tmp_path):
    import cv2

    from blurgen.pipeline import DatasetConfig, make_dataset

    paths = []
    for i in range(2):
        paths.append(tmp_path / f"p{i}.png")
        cv2.imwrite(
            str(paths[-1]), (np.random.default_rng(i).random((50, 50, 3)) * 255).astype(np.uint8)
        )
    make_dataset(paths, tmp_path / "pairs.h5", DatasetConfig(patch=24, per_image=3, kernel_size=7))
    data = PairsDataset([tmp_path / "pairs.h5"])
    assert len(data) == 6
    with h5py.File(tmp_path / "pairs.h5", "r") as f:
        np.testing.assert_array_equal(
            (data[5]["blurred"].permute(1, 2, 0).numpy() * 255).round(), f["blurred"][5]
        )
