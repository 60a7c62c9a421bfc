"""CameraShake in albumentations pipelines: the blurred image is BlurTransform's for the record
drawn, the sharp target and the masks stay sharp and aligned, seeds replay, dtypes are kept."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

A = pytest.importorskip("albumentations")

from blurgen import presets  # noqa: E402
from blurgen.albumentations import CameraShake  # noqa: E402

SHAPE = (160, 150)  # the camera-shake preset's kernels are 101 px: crops must be larger
CROP = (128, 120)


def photo(dtype=np.uint8, seed=0) -> np.ndarray:
    """A (160, 150, 3) image with edges to blur: smooth noise plus a bright square."""
    rng = np.random.default_rng(seed)
    values = rng.random((*SHAPE, 3)) * 0.6
    values[40:100, 30:90] += 0.4
    if dtype == np.uint8:
        return np.rint(values * 255).astype(np.uint8)
    return values.astype(dtype)


def labels() -> np.ndarray:
    """(160, 150) int32 labels 0..3 in blocks, and no two rows alike (a flip or a misplaced
    crop shows)."""
    ys, xs = np.indices(SHAPE)
    return ((ys // 40 + xs // 50) % 4 + (ys == xs) * 4).astype(np.int32)


def pipeline(shake: CameraShake, seed=0, **options) -> A.Compose:
    return A.Compose(
        [A.HorizontalFlip(p=1), A.RandomCrop(*CROP, p=1), shake],
        additional_targets={"sharp": "image"},
        seed=seed,
        save_applied_params=True,
        **options,
    )


def flipped_crop(array: np.ndarray, out: dict) -> np.ndarray:
    """``array`` flipped left-right, then cut where the call's RandomCrop cut."""
    (x0, y0, x1, y1) = dict(out["applied_transforms"])["RandomCrop"]["crop_coords"]
    return array[:, ::-1][y0:y1, x0:x1]


class KernelsOf:
    """A map-style dataset of 4 items: the kernel that ``transform`` drew for each."""

    def __init__(self, transform: A.Compose) -> None:
        self.transform = transform

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> np.ndarray:
        self.transform(image=photo())
        return self.transform.transforms[0].get_applied_params()["record"].kernel


class TestCameraShake:
    def test_image_is_blurred_sharp_and_masks_stay_aligned(self):
        shake = CameraShake(p=1)
        sharp, mask = photo(), labels()
        out = pipeline(shake)(image=sharp, sharp=sharp.copy(), mask=mask, masks=[mask, mask + 1])
        record = dict(out["applied_transforms"])["CameraShake"]["record"]
        assert record is shake.get_applied_params()["record"] and record.shape == CROP
        expected_sharp = flipped_crop(sharp, out)
        np.testing.assert_array_equal(out["sharp"], expected_sharp)
        np.testing.assert_array_equal(out["image"], shake.transform.apply(expected_sharp, record))
        assert np.abs(out["image"].astype(int) - expected_sharp).mean() > 2  # it did blur
        np.testing.assert_array_equal(out["mask"], flipped_crop(mask, out))
        assert out["mask"].dtype == np.int32 and set(np.unique(out["mask"])) <= set(range(8))
        for got, given in zip(out["masks"], [mask, mask + 1], strict=True):
            np.testing.assert_array_equal(got, flipped_crop(given, out))

    def test_a_batch_of_images_gets_one_record_and_extra_images_stay(self):
        shake = CameraShake(p=1)
        frames = np.stack([photo(seed=1), photo(seed=2)])
        compose = A.Compose([shake], additional_targets={"sharps": "images"}, seed=4)
        out = compose(images=frames, sharps=frames.copy())
        record = shake.get_applied_params()["record"]
        np.testing.assert_array_equal(out["sharps"], frames)
        for blurred, frame in zip(out["images"], frames, strict=True):
            np.testing.assert_array_equal(blurred, shake.transform.apply(frame, record))

    def test_p_zero_leaves_everything_untouched(self):
        shake = CameraShake(p=0)
        sharp, mask = photo(), labels()
        out = A.Compose([shake], additional_targets={"sharp": "image"})(
            image=sharp, sharp=sharp, mask=mask
        )
        for key, given in (("image", sharp), ("sharp", sharp), ("mask", mask)):
            np.testing.assert_array_equal(out[key], given)
        assert shake.get_applied_params() == {}

    def test_the_compose_seed_fixes_the_blur(self):
        sharp = photo()

        def calls(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
            """Two calls' blurred images and kernels."""
            shake = CameraShake(p=1)
            compose = pipeline(shake, seed=seed)
            return [(compose(image=sharp, sharp=sharp)["image"],
                     shake.get_applied_params()["record"].kernel) for _ in range(2)]  # fmt: skip

        first, again, other = calls(7), calls(7), calls(8)
        for (image, kernel), (image_again, kernel_again) in zip(first, again, strict=True):
            np.testing.assert_array_equal(image, image_again)
            np.testing.assert_array_equal(kernel, kernel_again)
        # The kernels, not only the crops, differ: each call, and each seed, draws its own blur.
        assert not np.array_equal(first[0][1], first[1][1])
        assert not np.array_equal(first[0][1], other[0][1])

    @pytest.mark.parametrize("dtype", [np.uint8, np.float32])
    def test_the_dtype_is_kept(self, dtype):
        shake = CameraShake(p=1)
        sharp = photo(dtype)
        out = pipeline(shake)(image=sharp, sharp=sharp)
        assert out["image"].dtype == dtype and out["image"].shape == (*CROP, 3)
        assert out["sharp"].dtype == dtype
        record = shake.get_applied_params()["record"]
        np.testing.assert_array_equal(out["image"], shake.transform.apply(out["sharp"], record))

    def test_a_config_and_serialisation(self):
        shake = CameraShake(config=presets.load("none", kernel_size=9, read="0.01"), p=1)
        saved = json.loads(json.dumps(A.to_dict(pipeline(shake, seed=3))))
        loaded = A.from_dict(saved)
        loaded.set_random_seed(3)
        sharp = photo()
        out = pipeline(shake, seed=3)(image=sharp, sharp=sharp)
        np.testing.assert_array_equal(loaded(image=sharp, sharp=sharp)["image"], out["image"])
        assert shake.transform.config.kernel_size == 9

    def test_reseeded_workers_draw_their_own_blurs(self):
        """The docstring's recipe: each DataLoader worker reseeds its copy of the Compose."""
        torch = pytest.importorskip("torch")
        from torch.utils.data import DataLoader, get_worker_info

        loader = DataLoader(
            KernelsOf(A.Compose([CameraShake(p=1)], seed=5)), batch_size=None, num_workers=2,
            worker_init_fn=lambda i: get_worker_info().dataset.transform.set_random_seed(9 + i),
        )  # fmt: skip
        kernels = [torch.as_tensor(kernel).numpy().tobytes() for kernel in loader]
        assert len(kernels) == 4 and len(set(kernels)) == 4

    def test_errors(self):
        with pytest.raises(ValueError, match="boundary must be one of reflect, wrap"):
            CameraShake(boundary="valid")
        with pytest.raises(ValueError, match="not both"):
            CameraShake("deblurgan", config=presets.load("none"))
        with pytest.raises(ValueError, match="p\n.*less than or equal to 1"):
            CameraShake(p=1.5)
        with pytest.raises(ValueError, match="no preset 'nope'"):
            CameraShake("nope")


def test_blurgen_does_not_import_albumentations_and_says_how_to_install_it():
    code = (
        "import sys\n"
        "import blurgen, blurgen.transform, blurgen.pipeline\n"
        "assert 'albumentations' not in sys.modules\n"
        "sys.modules['albumentations'] = None\n"  # as if it were not installed
        "import blurgen.albumentations\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "AssertionError" not in result.stderr
    message = 'needs albumentations 2.x: pip install "blurgen[albumentations]"'
    assert f"ImportError: blurgen.albumentations {message}" in result.stderr
