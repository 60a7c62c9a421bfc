"""Blur methods are registered: a method added in one module and one registration line works
in datasets, their files, regenerate and the transform, and nothing else names it."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from blurgen import methods
from blurgen.h5 import schema_table, verify_pairs
from blurgen.methods.kernel import KernelBlur
from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset, regenerate
from blurgen.schema import Column
from blurgen.transform import BlurTransform


class BoxBlur(KernelBlur):
    """A square box of a random odd side: the smallest method with a draw of its own and a
    column in the file."""

    name = "box"
    title = "box blur"
    code = 200
    help = "a square box of random odd side"
    draws_kernel = False  # drawn in place, from its side

    def draw(self, rngs, config, device):
        return [2 * int(rng.integers(0, config.kernel_size // 2 + 1)) + 1 for rng in rngs]

    def place(self, drawn, config, side, photo, origin, flips, params):
        k, o = config.kernel_size, (config.kernel_size - drawn) // 2
        kernel = np.zeros((k, k), np.float32)
        kernel[o : o + drawn, o : o + drawn] = 1 / drawn**2
        return drawn, params, kernel

    def columns(self, config):
        return {"box_side": Column(np.uint8, (), "side of the box, px")}

    def column_values(self, records, config, crop):
        sides = [r.drawn if r.method == self.name else 0 for r in records]
        return {"box_side": np.array(sides, np.uint8)}

    def read(self, f, row):
        return int(f["box_side"][row])


@pytest.fixture
def box():
    method = methods.register(BoxBlur())
    yield method
    methods.unregister(method.name)


def test_a_registered_method_makes_datasets_that_replay(box, tmp_path):
    config = DatasetConfig(patch=24, per_image=4, kernel_size=9, mix=(("box", 1), ("motion", 1)))
    path = tmp_path / "box.h5"
    sources = [str(p) for p in bundled_images()[:2]]
    make_dataset(sources, path, config, seed=3)
    assert verify_pairs(path)[1] == []
    with h5py.File(path) as f:
        method, sides, kernels = f["method"][...], f["box_side"][...], f["kernel"][...]
        stored = f["sharp"][...], f["blurred"][...]
        assert json.loads(f.attrs["config"])["mix"] == [["box", 1.0], ["motion", 1.0]]
    boxes = method == box.code
    assert 0 < boxes.sum() < len(method)
    assert set(sides[boxes]) <= {1, 3, 5, 7, 9} and not sides[~boxes].any()
    for row in np.flatnonzero(boxes):
        side = int(sides[row])
        assert np.count_nonzero(kernels[row]) == side**2
        np.testing.assert_allclose(kernels[row].sum(), 1, rtol=1e-6)
    for row in range(len(method)):
        sharp, blurred = regenerate(path, row)
        np.testing.assert_array_equal(sharp, stored[0][row])
        np.testing.assert_array_equal(blurred, stored[1][row])
    assert "`box_side`" in schema_table(config)


def test_the_transform_draws_a_registered_method(box):
    t = BlurTransform(DatasetConfig(kernel_size=7, blur="box"))
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), np.uint8)
    record = t.draw(1, image.shape[:2])
    assert record.method == "box" and record.sample.drawn in (1, 3, 5, 7)
    assert t.apply(image, record).shape == image.shape


def test_names_and_codes_are_unique():
    with pytest.raises(ValueError, match="clashes with 'motion'"):
        methods.register(type("Again", (BoxBlur,), {"name": "motion"})())
    with pytest.raises(ValueError, match="code 0"):
        methods.register(type("Zero", (BoxBlur,), {"code": 0})())
    with pytest.raises(ValueError, match="unknown blur method 'boxes': one of motion, linear"):
        methods.get("boxes")
    with pytest.raises(ValueError, match="blurgen's own"):
        methods.unregister("motion")


def test_no_module_outside_the_methods_names_one():
    """The synthesiser, the file, the pipeline, Ray shards, calibrate, the transform, the
    Datasets, the CLI's dataset and blur commands go through the registry: none of them tests
    which method a sample uses."""
    from pathlib import Path

    import blurgen
    import blurgen.cli

    root = Path(blurgen.__file__).parent
    files = [root / name for name in ("sample.py", "pipeline.py", "h5.py", "cluster.py",
                                      "calibrate.py", "transform.py", "torch.py")]  # fmt: skip
    cli = Path(blurgen.cli.__file__).parent
    files += [cli / name for name in ("dataset.py", "blur.py")]
    for path in files:
        text = path.read_text()
        for name in methods.names():
            for quoted in (f'"{name}"', f"'{name}'"):
                assert quoted not in text, f"{path.name} names the method {name}"
