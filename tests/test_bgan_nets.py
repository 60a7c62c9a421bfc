"""BGAN networks, VGG-19 features and losses: shapes, names, loading, closed forms, gradients."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from blurgen.bgan import infer, nets
from blurgen.bgan.infer import BlurGAN, Deblurrer
from blurgen.bgan.losses import (
    content_loss,
    perceptual_loss,
    ralsgan_discriminator_loss,
    ralsgan_generator_loss,
)
from blurgen.bgan.nets import (
    BlurGenerator,
    DeblurGenerator,
    DenseBlock,
    Discriminator,
    KernelBlurGenerator,
    MultiScaleDiscriminator,
    PatchDiscriminator,
    ResidualBlock,
    ResidualInResidual,
    RRDBDeblurGenerator,
    blur_generator,
    deblur_generator,
    discriminator,
    gaussian_init,
)
from blurgen.bgan.nets.blur import LOGIT_GAIN
from blurgen.bgan.nets.blur_kernels import PATH_MAX_STEP
from blurgen.bgan.nets.discriminators import GRADIENT_GAIN
from blurgen.bgan.vgg import LAYERS, VGG19Features, load_vgg19

TORCHVISION_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


class TestGenerator:
    def test_paper_structure(self):
        g = BlurGenerator(noise="vector")
        convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == 3 + 9 * 5
        assert convs[0].in_channels == 7 and convs[-1].out_channels == 3
        block = g.blocks[0]
        assert isinstance(block, ResidualBlock)
        assert sum(isinstance(m, torch.nn.ReLU) for m in block.modules()) == 4
        # Noise maps add one learned weight per channel and block, and no convolution.
        maps = BlurGenerator()
        assert maps.noise == "map" and maps.inject.shape == (9, 64)
        assert (
            sum(p.numel() for p in maps.parameters())
            == sum(p.numel() for p in g.parameters()) + 9 * 64
        )
        assert maps.noise_shape(20, 24) == (4 + 9, 20, 24) and g.noise_shape(20, 24) == (4,)

    @pytest.mark.parametrize(("noise", "scale"), [("map", 1), ("vector", 1), ("map", 2)])
    def test_tiles_give_the_whole_image(self, noise, scale):
        from blurgen.bgan.infer import BlurGAN

        torch.manual_seed(1)
        g = BlurGenerator(channels=8, blocks=1, noise=noise, scale=scale)
        with torch.no_grad():
            for parameter in g.parameters():  # away from the identity the net starts as
                parameter.add_(torch.randn_like(parameter) * 0.1)
        assert g.reach == {1: 8, 2: 17}[scale]
        # An odd width: at scale 2 the last column is padded, in the whole image and in the
        # tiles that touch it; the last tile of the rows starts off the cells' grid (17) unless
        # tiles are aligned to it.
        sharp = np.random.default_rng(0).random((2, 102, 93, 3)).astype(np.float32)
        whole, tiled = BlurGAN(g, tile=1000), BlurGAN(g, tile=5 * g.reach)
        z = whole.noise([[0, 0], [0, 1]], 102, 93)
        expected = whole.blur_with(sharp, z)
        assert not np.allclose(expected, sharp, atol=0.05)
        np.testing.assert_allclose(tiled.blur_with(sharp, z), expected, rtol=0, atol=1e-5)
        with pytest.raises(ValueError, match=f"tile must be over {4 * g.reach} px"):
            BlurGAN(g, tile=4 * g.reach)

    @pytest.mark.parametrize(("noise", "scale"), [("map", 1), ("vector", 1), ("map", 2)])
    def test_starts_as_the_identity(self, noise, scale):
        g = BlurGenerator(channels=8, blocks=2, noise=noise, scale=scale)
        sharp = torch.rand(2, 3, 21, 24)
        assert torch.equal(g(sharp, torch.randn(2, *g.noise_shape(21, 24))), sharp)

    def test_scale_works_on_cells_of_pixels(self):
        g = BlurGenerator(channels=8, blocks=2, scale=2)
        assert g.head[0].in_channels == 7 * 4 and g.tail[-1].out_channels == 3 * 4
        assert g.inject.shape == (2, 8, 4) and g.config["scale"] == 2
        assert g.reach == (1 + 10 + 2) * 2 + 1
        with pytest.raises(ValueError, match="scale"):
            BlurGenerator(scale=0)

    @pytest.mark.parametrize("noise", ["map", "vector"])
    def test_output_range_and_noise_matters(self, noise):
        torch.manual_seed(0)
        g = gaussian_init(BlurGenerator(channels=8, blocks=2, noise=noise), std=0.2)
        sharp = torch.rand(2, 3, 20, 24)
        a = g(sharp, torch.randn(2, *g.noise_shape(20, 24)))
        b = g(sharp, torch.randn(2, *g.noise_shape(20, 24)))
        assert a.shape == (2, 3, 20, 24) and 0 <= a.min() and a.max() <= 1
        assert not torch.allclose(a, b)

    def test_noise_maps_act_locally_and_through_every_block(self):
        torch.manual_seed(1)
        g = gaussian_init(BlurGenerator(channels=8, blocks=1), std=0.2)
        with torch.no_grad():
            g.inject.fill_(1.0)
        sharp = torch.rand(1, 3, 16, 40)
        z = torch.randn(1, 5, 16, 40)
        left = z.clone()
        left[..., :8] = torch.randn(1, 5, 16, 8)
        a, b = g(sharp, z), g(sharp, left)
        # Eight 3x3 convolutions see 8 px: new noise on the left changes only the left.
        assert not torch.allclose(a[..., :8], b[..., :8])
        assert torch.equal(a[..., 17:], b[..., 17:])
        injected = z.clone()
        injected[:, 4] = torch.randn(16, 40)  # the block's map only
        assert not torch.allclose(g(sharp, injected), a)

    def test_blur_scales_integer_images_and_draws_noise_from_the_seed(self):
        torch.manual_seed(0)
        gan = BlurGAN(gaussian_init(BlurGenerator(channels=8, blocks=1), std=0.2))
        image = (np.random.default_rng(0).random((2, 16, 20, 3)) * 255).astype(np.uint8)
        as_float = image / np.float32(255)
        np.testing.assert_array_equal(gan.blur(image, seed=4), gan.blur(as_float, seed=4))
        z = gan.noise([1, 2], 16, 20)
        assert z.shape == (2, 5, 16, 20) and z.dtype == np.float32
        drawn = np.random.default_rng(2).standard_normal((5, 16, 20))
        np.testing.assert_array_equal(z[1], drawn.astype(np.float32))
        # blur draws image i's noise from the seed [seed, i].
        seeds = [[4, i] for i in range(2)]
        np.testing.assert_array_equal(gan.blur(image, seed=4),
                                      gan.blur_with(image, gan.noise(seeds, 16, 20)))  # fmt: skip
        np.testing.assert_array_equal(gan.blur_with(image, z), gan.blur_with(as_float, z))
        assert not np.array_equal(gan.blur(image, seed=4), gan.blur(image, seed=5))
        with pytest.raises(TypeError, match="uint8 or uint16"):
            gan.blur(image.astype(np.int16))

    def test_bad_noise_shape(self):
        with pytest.raises(ValueError, match=r"z must be \(1, 4\) \(vector noise\)"):
            BlurGenerator(8, 1, "vector")(torch.rand(1, 3, 8, 8), torch.randn(1, 3))
        with pytest.raises(ValueError, match=r"z must be \(1, 5, 8, 8\) \(map noise\)"):
            BlurGenerator(8, 1)(torch.rand(1, 3, 8, 8), torch.randn(1, 4))
        with pytest.raises(ValueError, match="noise must be one of map, vector"):
            BlurGenerator(noise="scalar")

    def test_checkpoints_from_before_noise_maps_load_as_vectors(self, tmp_path):
        old = BlurGenerator(channels=8, blocks=1, noise="vector")
        config = {"channels": 8, "blocks": 1}  # as such checkpoints recorded it
        torch.save({"kind": "bgan", "generator": old.state_dict(), "generator_config": config},
                   tmp_path / "old.pt")  # fmt: skip
        assert BlurGAN.load(tmp_path / "old.pt").generator.noise == "vector"

    def test_gaussian_init(self):
        g = gaussian_init(BlurGenerator(channels=8, blocks=1), std=0.01)
        weights = torch.cat(
            [m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
        )
        assert weights.std().item() == pytest.approx(0.01, rel=0.1)
        assert all(m.bias.abs().max() == 0 for m in g.modules() if isinstance(m, torch.nn.Conv2d))


def field_blur_reference(image, kernels, cell):
    """float64 kernel-field blur of an (H, W) image by (rows, cols, K, K) kernels: every cell's
    kernel convolves the whole reflected image (scipy), weighted per pixel by the bilinear tent
    of the cell's centre, flat beyond the outer centres."""
    height, width = image.shape
    rows, cols, size, _ = kernels.shape
    padded = np.pad(image, size // 2, mode="reflect")

    def tents(length, count):
        position = np.arange(length)
        centres = np.arange(count) * cell + (cell - 1) / 2
        weights = np.clip(1 - np.abs(position[None] - centres[:, None]) / cell, 0, 1)
        weights[0, position <= centres[0]] = 1
        weights[-1, position >= centres[-1]] = 1
        return weights

    across, down = tents(width, cols), tents(height, rows)
    out = np.zeros((height, width))
    for i in range(rows):
        for j in range(cols):
            blurred = convolve2d(padded, kernels[i, j], mode="valid")
            out += down[i][:, None] * across[j][None, :] * blurred
    return out


class TestKernelBlurGenerator:
    @pytest.mark.parametrize(("height", "width", "cell", "size", "band"),
                             [(40, 40, 64, 7, 256), (70, 53, 16, 9, 256), (70, 53, 16, 9, 1),
                              (64, 96, 32, 31, 3), (33, 17, 8, 5, 256)])  # fmt: skip
    def test_field_blur_is_the_blend_of_direct_convolutions(
        self, height, width, cell, size, band, monkeypatch
    ):
        monkeypatch.setattr(nets.blur_kernels, "BAND_TILES", band)
        rng = np.random.default_rng(height + size)
        rows, cols = -(-height // cell), -(-width // cell)
        kernels = rng.random((rows, cols, size, size))
        kernels /= kernels.sum(axis=(2, 3), keepdims=True)
        image = rng.random((2, height, width))
        got = nets.blend_blur(torch.tensor(image[:, None], dtype=torch.float32),
                              torch.tensor(np.stack([kernels, kernels[::-1]]), dtype=torch.float32),
                              cell)  # fmt: skip
        assert got.shape == (2, 1, height, width) and got.dtype == torch.float32
        for k, field in enumerate((kernels, kernels[::-1])):
            expected = field_blur_reference(image[k], field, cell)
            np.testing.assert_allclose(got[k, 0].numpy(), expected, rtol=0, atol=1e-5)

    def test_an_off_centre_delta_moves_the_image_as_a_convolution_does(self):
        # kernel[c + d] = 1: output(p) = input(p - d), so content moves by +d (down, right).
        kernel = torch.zeros(1, 1, 1, 9, 9)
        kernel[..., 4 + 2, 4 + 3] = 1
        image = torch.rand(1, 3, 30, 30)
        out = nets.blend_blur(image, kernel, 32)
        torch.testing.assert_close(out[..., 6:-6, 6:-6], image[..., 4:-8, 3:-9], rtol=0, atol=1e-6)

    def test_starts_as_a_peak_with_a_tail_and_keeps_brightness(self):
        g = KernelBlurGenerator(kernel_size=15, cell=16, latent=3, channels=16, blocks=1)
        assert g.noise_shape(40, 33) == (3, 3, 3) and g.reach == 7
        kernels = g.kernels(torch.randn(2, 3, 3, 3))
        assert kernels.shape == (2, 3, 3, 15, 15) and kernels.min() >= 0
        torch.testing.assert_close(kernels.sum(dim=(3, 4)), torch.ones(2, 3, 3))
        offset = torch.arange(15.0) - 7
        expected = (-(offset[:, None] ** 2 + offset[None, :] ** 2).sqrt()).exp()
        torch.testing.assert_close(kernels[1, 2, 0], expected / expected.sum())
        grey = torch.full((1, 3, 40, 33), 0.37)
        torch.testing.assert_close(g(grey, torch.randn(1, 3, 3, 3)), grey, rtol=0, atol=1e-6)
        with pytest.raises(ValueError, match=r"z must be \(1, 3, 3, 3\) \(cells of 16 px\)"):
            g(grey, torch.randn(1, 3, 2, 3))
        with pytest.raises(ValueError, match="images must be over 7 px a side for kernels of 15"):
            g(grey[..., :7], torch.randn(1, 3, 3, 1))
        with pytest.raises(ValueError, match="kernel_size must be odd"):
            KernelBlurGenerator(kernel_size=4)
        with pytest.raises(ValueError, match="cell must be even"):
            KernelBlurGenerator(cell=5)

    def test_each_cell_has_its_own_kernel_and_all_share_the_image_noise(self):
        torch.manual_seed(0)
        g = gaussian_init(KernelBlurGenerator(kernel_size=9, cell=8, latent=2, channels=16,
                                              blocks=1), std=0.3)  # fmt: skip
        z = torch.randn(1, 2, 2, 3)
        kernels = g.kernels(z)
        assert not torch.allclose(kernels[0, 0, 0], kernels[0, 1, 2])
        # A cell's noise reaches its own kernel directly, every other one through the image's
        # mean noise.
        changed = z.clone()
        changed[0, :, 1, 2] += 1
        moved = (g.kernels(changed) - kernels).abs().amax(dim=(3, 4))[0]
        assert moved[1, 2] > 2 * moved[0, 0] > 0

    def test_sensor_noise_maps_sum_per_cell_and_add_the_learned_variance(self):
        g = KernelBlurGenerator(kernel_size=9, cell=16, latent=3, channels=16, blocks=1,
                                sensor_noise=True)  # fmt: skip
        assert g.noise_shape(70, 53) == (6, 70, 53)
        z = torch.randn(2, 6, 70, 53, generator=torch.Generator().manual_seed(0))
        cells = g.cell_noise(z).numpy()
        assert cells.shape == (2, 3, 5, 4)
        for i in range(5):
            for j in range(4):
                block = z[:, :3, i * 16 : (i + 1) * 16, j * 16 : (j + 1) * 16].numpy()
                expected = block.sum(axis=(2, 3)) / np.sqrt(block[0, 0].size)
                np.testing.assert_allclose(cells[:, :, i, j], expected, rtol=0, atol=1e-5)
        # Untrained: 2.7 grey levels at mid-grey.
        torch.testing.assert_close(g.noise_levels(z), torch.tensor([[2e-4, 1.6e-5]] * 2))
        # Set levels: the noise added to a flat grey has variance shot * 0.5 + read.
        with torch.no_grad():
            g.mean_levels.copy_(torch.tensor([1e-3, 2e-4]).log() / LOGIT_GAIN)
        torch.testing.assert_close(g.noise_levels(z), torch.tensor([[1e-3, 2e-4]] * 2))
        z = torch.randn(2, 6, 256, 256, generator=torch.Generator().manual_seed(1))
        grey = torch.full((2, 3, 256, 256), 0.5)
        added = g(grey, z) - grey
        assert added.var().item() == pytest.approx(1e-3 * 0.5 + 2e-4, rel=0.02)
        torch.testing.assert_close(added / (1e-3 * 0.5 + 2e-4) ** 0.5, z[:, 3:], rtol=0,
                                   atol=1e-3)  # fmt: skip

    def test_a_noise_kernel_correlates_the_sensor_noise_and_keeps_its_variance(self):
        g = KernelBlurGenerator(kernel_size=9, cell=16, latent=2, channels=8, blocks=1,
                                sensor_noise=True, noise_kernel=3)  # fmt: skip
        assert g.config["noise_kernel"] == 3
        weights = np.array([[0.0, 1, 0], [1, 4, 1], [0, 1, 0]])  # a cross, set by its logits
        with torch.no_grad():
            g.noise_logits.copy_(torch.tensor(np.log(weights + 1e-30)) / LOGIT_GAIN)
        maps = torch.randn(2, 3, 200, 200, generator=torch.Generator().manual_seed(0))
        got = g.correlated(maps).detach().numpy()
        # An independent reference: scipy's convolution of each map, unit-norm weights.
        unit = weights / np.linalg.norm(weights)
        padded = np.pad(maps.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
        for n in range(2):
            for c in range(3):
                expected = convolve2d(padded[n, c], unit, mode="valid")
                np.testing.assert_allclose(got[n, c], expected, rtol=0, atol=1e-5)
        # Unit variance, and the correlation of horizontal neighbours in closed form.
        lag = (unit[:, 1:] * unit[:, :-1]).sum()
        assert got.var() == pytest.approx(1, abs=0.01)
        assert (got[..., 1:] * got[..., :-1]).mean() == pytest.approx(lag, abs=0.01)
        white = KernelBlurGenerator(9, 16, 2, 8, 1, sensor_noise=True)
        assert white.correlated(maps) is maps
        with pytest.raises(ValueError, match="noise_kernel must be odd, and over 1 only with"):
            KernelBlurGenerator(noise_kernel=3)

    def test_noise_mixing_shares_the_sensor_noise_between_colours_at_unit_variance(self):
        g = KernelBlurGenerator(kernel_size=9, cell=16, latent=2, channels=8, blocks=1,
                                sensor_noise=True, noise_kernel=3, noise_mixing=True)  # fmt: skip
        assert g.config["noise_mixing"] is True
        maps = torch.randn(2, 3, 200, 200, generator=torch.Generator().manual_seed(0))
        # Untrained: the identity (with a 3 px kernel that is still nearly a delta).
        torch.testing.assert_close(g.correlated(maps), g.correlated(maps)[:, [0, 1, 2]])
        white = KernelBlurGenerator(9, 16, 2, 8, 1, sensor_noise=True, noise_mixing=True)
        torch.testing.assert_close(white.correlated(maps), maps)
        matrix = np.array([[1.0, 1, 1], [2, 1, 0], [0, 0, 3]])
        with torch.no_grad():
            white.noise_mix.copy_(torch.tensor(matrix) / LOGIT_GAIN)
        got = white.correlated(maps).detach().numpy()
        # An independent reference: each pixel's colour vector times the row-normalised matrix.
        unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        expected = np.einsum("ij,njhw->nihw", unit, maps.numpy())
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
        # Unit variance per channel; the correlation between channels in closed form.
        flat = got.transpose(1, 0, 2, 3).reshape(3, -1)
        np.testing.assert_allclose(np.corrcoef(flat), unit @ unit.T, atol=0.01)
        np.testing.assert_allclose(flat.var(axis=1), 1, atol=0.02)
        # It learns: the loss reaches the matrix.
        white.correlated(maps)[:, 0].mean().backward()
        assert white.noise_mix.grad is not None and white.noise_mix.grad.abs().sum() > 0
        with pytest.raises(ValueError, match="noise_mixing needs sensor_noise"):
            KernelBlurGenerator(noise_mixing=True)

    def test_variation_gain_scales_the_logits_that_vary_with_the_noise(self):
        torch.manual_seed(0)
        plain = gaussian_init(KernelBlurGenerator(9, 8, 2, 16, 1), std=0.3)
        gained = KernelBlurGenerator(9, 8, 2, 16, 1, variation_gain=10)
        gained.load_state_dict(plain.state_dict())
        assert gained.config["variation_gain"] == 10.0 and plain.config["variation_gain"] == 1.0
        z = torch.randn(3, 2, 1, 1)
        shared = plain.mean_logits * LOGIT_GAIN
        varying = plain.kernel_logits(z) - shared
        assert varying.abs().max() > 0.1
        torch.testing.assert_close(gained.kernel_logits(z) - shared, 10 * varying)
        # The kernels are their softmax, centred.
        softmax = torch.softmax(plain.kernel_logits(z), -1).unflatten(-1, (9, 9))
        torch.testing.assert_close(plain.kernels(z), nets.centre_kernels(softmax))

    def test_path_kernels_are_the_bilinear_drawing_of_the_points(self):
        rng = np.random.default_rng(3)
        points = rng.uniform(-5.5, 5.5, (2, 7, 2))
        weights = rng.random((2, 7))
        got = nets.path_kernels(torch.tensor(points), torch.tensor(weights), 13).numpy()
        for k in range(2):
            expected = np.zeros((13, 13))
            for (dy, dx), weight in zip(points[k], weights[k], strict=True):
                for y in range(13):
                    for x in range(13):
                        tent_y = max(0.0, 1 - abs(dy - (y - 6)))
                        tent_x = max(0.0, 1 - abs(dx - (x - 6)))
                        expected[y, x] += weight * tent_y * tent_x
            np.testing.assert_allclose(got[k], expected, rtol=0, atol=1e-12)
        # A point 2 px down and 3 px right of the centre: kernel[c + (2, 3)], as blend_blur
        # reads it (content moves down and right).
        one = nets.path_kernels(torch.tensor([[2.0, 3.0]]), torch.ones(1), 9)
        assert one[6, 7] == 1 and one.sum() == 1

    def test_paths_are_continuous_centred_and_inside_the_kernel(self):
        logits = torch.randn(4, 3 * 40, generator=torch.Generator().manual_seed(0)) * 3
        points, weights = nets.path_from_logits(logits, 10.0)
        assert points.shape == (4, 40, 2) and points.abs().max() < 10
        torch.testing.assert_close(weights.sum(-1), torch.ones(4))
        # Unclamped, steps are at most PATH_MAX_STEP along each axis and the weighted mean
        # of the points is the centre.
        free, _ = nets.path_from_logits(logits, 1e6)
        assert free.diff(dim=1).abs().max() <= PATH_MAX_STEP
        torch.testing.assert_close((weights[..., None] * free).sum(1), torch.zeros(4, 2),
                                   rtol=0, atol=1e-4)  # fmt: skip
        # The soft clamp is radius * tanh(point / radius).
        torch.testing.assert_close(points, 10 * torch.tanh(free / 10))

    def test_an_untrained_path_generator_draws_a_circle_and_keeps_brightness(self):
        g = KernelBlurGenerator(kernel_size=15, cell=16, latent=3, channels=16, blocks=1,
                                form="path")  # fmt: skip
        assert g.config["form"] == "path" and g.points == 30
        kernels = g.kernels(torch.randn(2, 3, 3, 3)).detach()
        angle = 2 * np.pi * np.arange(30) / 30
        circle = np.stack([np.sin(angle), np.cos(angle)], 1)  # (dy, dx), radius 1
        clamped = 6 * np.tanh(circle / 6)  # inside 15 // 2 - 1 px
        expected = nets.path_kernels(torch.tensor(clamped), torch.full((30,), 1 / 30), 15)
        for kernel in kernels.flatten(0, 2):
            torch.testing.assert_close(kernel, expected.float(), rtol=0, atol=1e-5)
        offset = torch.arange(15.0) - 7
        centroid = (kernels * offset[:, None]).sum((3, 4)), (kernels * offset).sum((3, 4))
        torch.testing.assert_close(torch.stack(centroid), torch.zeros(2, 2, 3, 3), atol=1e-5,
                                   rtol=0)  # fmt: skip
        grey = torch.full((1, 3, 40, 33), 0.37)
        torch.testing.assert_close(g(grey, torch.randn(1, 3, 3, 3)), grey, rtol=0, atol=1e-6)
        with pytest.raises(ValueError, match="path kernels must be at least 9 px, got 7"):
            KernelBlurGenerator(kernel_size=7, form="path")
        with pytest.raises(ValueError, match="form must be one of softmax, path"):
            KernelBlurGenerator(form="gauss")

    def test_whole_images_in_groups_equal_one_at_a_time(self, monkeypatch):
        torch.manual_seed(0)
        network = KernelBlurGenerator(kernel_size=9, cell=8, latent=2, channels=16, blocks=1)
        gan = BlurGAN(gaussian_init(network, std=0.3))
        sharp = np.random.default_rng(0).random((3, 20, 30, 3)).astype(np.float32)
        z = gan.noise([5, 6, 7], 20, 30)
        assert z.shape == (3, 2, 3, 4)
        together = gan.blur_with(sharp, z)
        monkeypatch.setattr(infer, "WHOLE_IMAGE_PIXELS", 1)
        np.testing.assert_allclose(gan.blur_with(sharp, z), together, rtol=0, atol=1e-6)
        assert not np.allclose(together, sharp, atol=0.05)
        # Given seeds, the noise too is drawn an image at a time (it is 11 floats a pixel with
        # the shipped generator's sensor noise).
        drawn = []
        noise = gan.noise
        monkeypatch.setattr(
            gan, "noise", lambda seeds, *size: drawn.append(seeds) or noise(seeds, *size)
        )
        np.testing.assert_allclose(gan.blur_seeded(sharp, [5, 6, 7]), together, rtol=0,
                                   atol=1e-6)  # fmt: skip
        assert drawn == [[5], [6], [7]]
        with pytest.raises(ValueError, match="3 images need 3 noise seeds, got 2"):
            gan.blur_seeded(sharp, [5, 6])

    def test_blur_generator_builds_either_from_its_config(self):
        for g in (BlurGenerator(8, 1), KernelBlurGenerator(9, 8, 2, 16, 1),
                  KernelBlurGenerator(9, 8, 2, 16, 1, form="path")):  # fmt: skip
            again = blur_generator(**g.config)
            assert type(again) is type(g) and again.config == g.config
        with pytest.raises(ValueError, match="arch must be one of resnet, kernels"):
            blur_generator(arch="unet")


def shift_by_bisection(positions, weights, limit):
    """float64 reference for nets.centring_shift: bisection on the weighted mean of the moved,
    clamped positions (it rises with the shift)."""
    low, high = -2.0 * limit - np.abs(positions).max(), 2.0 * limit + np.abs(positions).max()
    for _ in range(200):
        middle = (low + high) / 2
        if (weights * np.clip(positions + middle, -limit, limit)).sum() < 0:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def centred_reference(kernel):
    """float64 loop reference for nets.centre_kernels: every pixel's mass moved by the
    bisected shifts, clamped to the border, and split between the four nearest pixels."""
    size = kernel.shape[0]
    limit = size // 2
    offsets = np.arange(size) - limit
    shift_y = shift_by_bisection(offsets, kernel.sum(axis=1), limit)
    shift_x = shift_by_bisection(offsets, kernel.sum(axis=0), limit)
    out = np.zeros_like(kernel)
    for i in range(size):
        for j in range(size):
            y = min(max(offsets[i] + shift_y, -limit), limit) + limit
            x = min(max(offsets[j] + shift_x, -limit), limit) + limit
            y0, x0 = min(int(np.floor(y)), size - 2), min(int(np.floor(x)), size - 2)
            ty, tx = y - y0, x - x0
            for dy, wy in ((0, 1 - ty), (1, ty)):
                for dx, wx in ((0, 1 - tx), (1, tx)):
                    out[y0 + dy, x0 + dx] += kernel[i, j] * wy * wx
    return out


def centroids(kernels):
    """(dy, dx) centroids of (..., K, K) kernels, px from the centre pixel."""
    offset = torch.arange(kernels.shape[-1], dtype=kernels.dtype) - kernels.shape[-1] // 2
    total = kernels.sum((-1, -2))
    return torch.stack([(kernels.sum(-1) * offset).sum(-1) / total,
                        (kernels.sum(-2) * offset).sum(-1) / total], -1)  # fmt: skip


class TestCentring:
    def test_the_shift_is_minus_the_mean_or_balances_what_the_border_holds(self):
        rng = np.random.default_rng(0)
        positions = rng.uniform(-3, 3, (4, 20))
        weights = rng.random((4, 20))
        got = nets.centring_shift(torch.tensor(positions), torch.tensor(weights), 7.0).numpy()
        # Nothing reaches the border: minus the weighted mean (closed form).
        expected = -(weights * positions).sum(1) / weights.sum(1)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        # Heavy ends that the shift pushes past the border: the bisection's root.
        positions = np.concatenate([rng.uniform(-7, -5, (4, 5)), rng.uniform(-1, 3, (4, 10)),
                                    rng.uniform(5, 7, (4, 5))], 1)  # fmt: skip
        weights[:, :5] *= 6
        got = nets.centring_shift(torch.tensor(positions), torch.tensor(weights), 7.0).numpy()
        for k in range(4):
            expected = shift_by_bisection(positions[k], weights[k], 7.0)
            assert abs(expected + (weights[k] * positions[k]).sum() / weights[k].sum()) > 0.1
            assert got[k] == pytest.approx(expected, abs=1e-9)
        # Closed form: 0.6 at -4 and 0.4 at +4 (held there): the 0.6 moves to -8/3.
        shift = nets.centring_shift(torch.tensor([-4.0, 4.0]), torch.tensor([0.6, 0.4]), 4.0)
        assert shift.item() == pytest.approx(4 / 3, abs=1e-6)

    @pytest.mark.parametrize("edge", [0.0, 0.3])
    def test_centred_kernels_are_the_float64_loop_keep_their_sum_and_sit_on_the_centre(self, edge):
        rng = np.random.default_rng(1)
        kernels = rng.random((3, 11, 11)) ** 8  # peaky, so centroids are off by px
        kernels[:, :, :3] += edge * rng.random((3, 11, 3))  # mass on the border
        kernels /= kernels.sum(axis=(1, 2), keepdims=True)
        got = nets.centre_kernels(torch.tensor(kernels))
        assert centroids(torch.tensor(kernels)).abs().max() > 0.5
        for k in range(3):
            np.testing.assert_allclose(got[k].numpy(), centred_reference(kernels[k]), rtol=0,
                                       atol=1e-9)  # fmt: skip
        assert got.min() >= 0
        torch.testing.assert_close(got.sum((1, 2)), torch.ones(3, dtype=torch.float64))
        torch.testing.assert_close(centroids(got), torch.zeros(3, 2, dtype=torch.float64))

    def test_a_whole_pixel_shift_moves_the_kernel_unchanged(self):
        blob = torch.tensor([[0.1, 0.0, 0.2], [0.0, 0.4, 0.0], [0.2, 0.0, 0.1]])
        kernel = torch.zeros(13, 13)
        kernel[6 + 2 - 1 : 6 + 2 + 2, 6 - 3 - 1 : 6 - 3 + 2] = blob  # centred at (+2, -3)
        expected = torch.zeros(13, 13)
        expected[5:8, 5:8] = blob
        torch.testing.assert_close(nets.centre_kernels(kernel), expected, rtol=0, atol=1e-6)
        # A kernel already centred stays as it is (the untrained generator's is).
        torch.testing.assert_close(nets.centre_kernels(expected), expected, rtol=0, atol=1e-7)

    def test_centring_is_differentiable(self):
        rng = np.random.default_rng(2)
        logits = torch.tensor(rng.normal(0, 2, (2, 49)), requires_grad=True)
        edge = torch.zeros(2, 7, 7, dtype=torch.float64)
        edge[..., 0] = 3.0  # some mass is held at the border
        assert torch.autograd.gradcheck(
            lambda x: nets.centre_kernels((x.unflatten(-1, (7, 7)) + edge).softmax(-1)),
            (logits,),
        )  # fmt: skip
        points = torch.tensor(rng.uniform(-4, 4, (2, 9, 2)), requires_grad=True)
        weights = torch.tensor(rng.random((2, 9)), requires_grad=True)
        assert torch.autograd.gradcheck(lambda p, w: nets.centre_points(p, w, 4.0),
                                        (points, weights))  # fmt: skip

    def test_centred_points_keep_all_their_weight_inside_the_kernel(self):
        rng = np.random.default_rng(3)
        points = torch.tensor(rng.uniform(-6, 6, (4, 30, 2)))
        points[:, :10, 1] = 5.9  # a path that runs along the right edge
        weights = torch.tensor(rng.random((4, 30)))
        weights /= weights.sum(1, keepdim=True)
        moved = nets.centre_points(points, weights, 6.0)
        assert moved.abs().max() <= 6
        torch.testing.assert_close((weights[..., None] * moved).sum(1),
                                   torch.zeros(4, 2, dtype=torch.float64))  # fmt: skip
        kernels = nets.path_kernels(moved, weights, 13)
        torch.testing.assert_close(kernels.sum((1, 2)), torch.ones(4, dtype=torch.float64))
        torch.testing.assert_close(centroids(kernels), torch.zeros(4, 2, dtype=torch.float64))

    @pytest.mark.parametrize("form", ["softmax", "path"])
    def test_a_generators_kernels_are_centred_and_it_still_learns(self, form):
        torch.manual_seed(0)
        g = gaussian_init(KernelBlurGenerator(kernel_size=15, cell=8, latent=2, channels=16,
                                              blocks=1, form=form), std=2.0)  # fmt: skip
        if form == "path":
            # A straight path to the right, the camera dwelling at its start and its end: the
            # soft clamp squeezes the far end more than the near one, off centre.
            steps = torch.zeros(g.points, 2)
            steps[1:, 1] = 4.0
            dwell = torch.full((g.points,), -20.0)
            dwell[0], dwell[-10:] = 2.0, 0.0
            with torch.no_grad():
                g.mean_logits.copy_(torch.cat([steps.flatten(), dwell]) / LOGIT_GAIN)
                g.logits.weight.mul_(0.05)
        z = torch.randn(4, 2, 2, 3)
        logits = g.kernel_logits(z)
        if form == "path":
            raw = nets.path_kernels(*nets.path_from_logits(logits, 6), 15)
        else:
            raw = torch.softmax(logits, -1).unflatten(-1, (15, 15))
        assert centroids(raw).abs().max() > 0.2  # off centre before centring
        kernels = g.kernels(z)
        assert kernels.min() >= 0
        torch.testing.assert_close(kernels.sum((3, 4)), torch.ones(4, 2, 3))
        torch.testing.assert_close(centroids(kernels), torch.zeros(4, 2, 3, 2), rtol=0,
                                   atol=1e-4)  # fmt: skip
        (kernels[..., :7, :] ** 2).sum().backward()
        assert g.logits.weight.grad.abs().max() > 0 and g.mean_logits.grad.abs().max() > 0

    def test_the_shipped_generators_kernels_are_centred(self):
        generator = infer.load_generator("builtin:lai2016", "bgan")
        with torch.no_grad():
            for seed in range(4):
                z = BlurGAN(generator).noise([seed], 192, 192)
                kernels = generator.kernels(torch.as_tensor(z, dtype=torch.float32)).double()
                torch.testing.assert_close(centroids(kernels), torch.zeros(1, 3, 3, 2,
                                           dtype=torch.float64), rtol=0, atol=1e-4)  # fmt: skip
                torch.testing.assert_close(kernels.sum((3, 4)), torch.ones(1, 3, 3,
                                           dtype=torch.float64), rtol=0, atol=1e-5)  # fmt: skip


def conv_parameters(in_channels, out_channels):
    """Weights and biases of a 3x3 convolution."""
    return in_channels * out_channels * 9 + out_channels


class TestRRDBDeblurGenerator:
    def test_published_configuration(self):
        g = deblur_generator()
        assert isinstance(g, RRDBDeblurGenerator)
        assert g.config == {"arch": "rrdb", "channels": 64, "blocks": 16, "growth": 32}
        # Each dense block: four 3x3 convs to 32 channels fed 64, 96, 128, 160, and one from
        # 192 back to 64; three per RRDB, sixteen RRDBs; head, trunk conv and the tail's two.
        dense = sum(conv_parameters(64 + 32 * i, 32) for i in range(4)) + conv_parameters(192, 64)
        others = conv_parameters(3, 64) + 2 * conv_parameters(64, 64) + conv_parameters(64, 3)
        expected = 16 * 3 * dense + others
        assert sum(p.numel() for p in g.parameters()) == expected == 11_588_163
        assert len(g.trunk) == 16 and all(isinstance(b, ResidualInResidual) for b in g.trunk)
        block = g.trunk[0].body[0]
        assert isinstance(block, DenseBlock) and len(g.trunk[0].body) == 3
        assert [c.in_channels for c in block.convs] == [64, 96, 128, 160, 192]
        assert [c.out_channels for c in block.convs] == [32, 32, 32, 32, 64]
        assert block.act.negative_slope == 0.2
        assert g.reach == 1 + 16 * 15 + 3
        # The lighter network kept as "resnet".
        resnet = deblur_generator("resnet")
        assert isinstance(resnet, DeblurGenerator) and resnet.config["arch"] == "resnet"
        assert sum(p.numel() for p in resnet.parameters()) < 3.1e6
        with pytest.raises(ValueError, match="arch must be one of rrdb, resnet"):
            deblur_generator("unet")

    def test_branches_are_scaled_by_a_fifth(self):
        # With every weight zero and the last convolution's bias 1, a dense block adds 0.2;
        # three in a row add 0.6, and the RRDB adds a fifth of x + 0.6 to x.
        rrdb = ResidualInResidual(channels=4, growth=2)
        with torch.no_grad():
            for block in rrdb.body:
                for conv in block.convs:
                    conv.weight.zero_()
                    conv.bias.zero_()
                block.convs[-1].bias.fill_(1.0)
        x = torch.rand(1, 4, 6, 6)
        torch.testing.assert_close(rrdb.body[0](x), x + 0.2)
        torch.testing.assert_close(rrdb(x), x + 0.2 * (x + 0.6))

    def test_dense_connections_and_skips(self):
        torch.manual_seed(0)
        g = RRDBDeblurGenerator(channels=8, blocks=2, growth=4)
        blurred = torch.rand(1, 3, 30, 30) * 0.5 + 0.25
        assert torch.equal(g(blurred), blurred)  # the last conv starts at zero
        with torch.no_grad():
            for parameter in g.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.05)
        # Each dense conv sees all earlier outputs: perturbing the first output changes the
        # fifth conv's result through its input channels 8..11.
        block = g.trunk[0].body[0]
        assert block.convs[4].weight.shape[1] == 8 + 4 * 4
        out = g(blurred)
        assert not torch.equal(out, blurred)
        # The trunk reaches the image only through trunk_conv (the long feature skip).
        with torch.no_grad():
            g.trunk_conv.weight.zero_()
            g.trunk_conv.bias.zero_()
            expected = (blurred + g.tail(g.head(blurred))).clamp(0, 1)
            for parameter in g.trunk.parameters():
                parameter.add_(1.0)
        torch.testing.assert_close(g(blurred), expected)

    def test_reach_and_tiles(self, tmp_path):
        torch.manual_seed(2)
        g = RRDBDeblurGenerator(channels=4, blocks=1, growth=2)
        with torch.no_grad():
            for parameter in g.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.1)
        assert g.reach == 19
        # In float64: an input 19 px away acts through 19 small weights in a row.
        wide = RRDBDeblurGenerator(channels=4, blocks=1, growth=2).double()
        wide.load_state_dict(g.state_dict())
        image = torch.rand(1, 3, 48, 48, dtype=torch.float64) * 0.5 + 0.25
        changed = image.clone()
        changed[..., 24, 24 + g.reach + 1 :] = 0.0  # beyond the reach of pixel (24, 24)
        with torch.no_grad():
            assert wide(image)[..., 24, 24].equal(wide(changed)[..., 24, 24])
            changed[..., 24, 24 + g.reach] = 0.0
            assert not wide(image)[..., 24, 24].equal(wide(changed)[..., 24, 24])
        # Tiles overlapping by twice the reach give the whole image, via a checkpoint.
        torch.save({"kind": "dbgan-generator", "generator": g.state_dict(),
                    "generator_config": g.config}, tmp_path / "g.pt")  # fmt: skip
        tiled = Deblurrer.load(tmp_path / "g.pt", tile=80, overlap=2 * g.reach)
        assert tiled.generator.config == g.config
        picture = np.random.default_rng(0).random((100, 130, 3)).astype(np.float32)
        whole = Deblurrer(g, tile=1000).deblur(picture)
        np.testing.assert_allclose(tiled.deblur(picture), whole, rtol=0, atol=1e-5)

    def test_checkpoints_from_before_the_rrdb_load_as_the_resnet(self, tmp_path):
        old = DeblurGenerator(channels=4, blocks=1)
        config = {"channels": 4, "blocks": 1}  # as such checkpoints recorded it
        torch.save({"kind": "dbgan", "generator": old.state_dict(), "generator_config": config},
                   tmp_path / "old.pt")  # fmt: skip
        assert isinstance(Deblurrer.load(tmp_path / "old.pt").generator, DeblurGenerator)


def test_discriminator_shapes():
    d = Discriminator(channels=8)
    assert d(torch.rand(3, 3, 128, 128)).shape == (3,)
    assert d(torch.rand(2, 3, 64, 48)).shape == (2,)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_a_patch_discriminator_scores_each_patch_on_it_alone(layers):
    torch.manual_seed(0)
    d = discriminator("patch", channels=4, layers=layers)
    assert isinstance(d, PatchDiscriminator) and d.patch == {1: 16, 2: 34, 3: 70}[layers]
    x = torch.rand(2, 3, 96, 80, requires_grad=True)
    logits = d(x)
    assert logits.shape == (2, 96 // 2**layers - 2, 80 // 2**layers - 2)
    # The input a logit depends on is a square of the patch's side (its centre, away from
    # the borders), and only the sample's own.
    row, col = logits.shape[1] // 2, logits.shape[2] // 2
    logits[1, row, col].backward()
    touched = x.grad[1].abs().sum(0).nonzero()
    assert x.grad[0].abs().max() == 0
    extent = touched.max(0).values - touched.min(0).values + 1
    assert extent.tolist() == [d.patch, d.patch]
    assert isinstance(discriminator("vgg", channels=4), Discriminator)
    with pytest.raises(ValueError, match="discriminator must be one of vgg, patch"):
        discriminator("pixel")


def test_a_multi_scale_discriminator_judges_pooled_copies_with_wider_patches():
    torch.manual_seed(0)
    d = discriminator("patch", channels=4, layers=2, scales=3)
    assert isinstance(d, MultiScaleDiscriminator) and len(d.nets) == 3
    assert d.config == {
        "kind": "patch", "channels": 4, "layers": 2, "inputs": "pixels", "scales": 3
    }  # fmt: skip
    x = torch.rand(2, 3, 96, 80, requires_grad=True)
    logits = d(x)
    # Each scale's logits are its own network's on the image averaged over 2^s x 2^s blocks
    # (pooled here by NumPy).
    image = x.detach().numpy()
    expected = []
    for scale, net in enumerate(d.nets):
        f = 2**scale
        pooled = image.reshape(2, 3, 96 // f, f, 80 // f, f).mean(axis=(3, 5))
        expected.append(net(torch.from_numpy(pooled)).flatten(1))
    torch.testing.assert_close(logits, torch.cat(expected, 1), rtol=0, atol=1e-5)
    for part, own in zip(d.split(logits), expected, strict=True):
        torch.testing.assert_close(part, own, rtol=0, atol=1e-5)
    # A logit of the coarsest scale, away from the borders, sees a square 4x as wide as a
    # patch.
    x = torch.rand(1, 3, 320, 320, requires_grad=True)
    coarse = d.nets[2](torch.zeros(1, 3, 80, 80)).shape[1:]
    finer = sum(net(torch.zeros(1, 3, 320 // 2**s, 320 // 2**s)).numel()
                for s, net in enumerate(d.nets[:2]))  # fmt: skip
    d(x)[0, finer + coarse[0] // 2 * coarse[1] + coarse[1] // 2].backward()
    touched = x.grad[0].abs().sum(0).nonzero()
    extent = touched.max(0).values - touched.min(0).values + 1
    assert extent.tolist() == [4 * d.nets[0].patch] * 2
    assert isinstance(discriminator("patch", channels=4, scales=1), PatchDiscriminator)


def test_a_gradient_discriminator_sees_neighbour_differences_and_not_brightness():
    torch.manual_seed(0)
    d = discriminator("patch", channels=4, layers=2, inputs="gradients")
    assert d.features[0].in_channels == 6
    x = torch.rand(2, 3, 64, 48, requires_grad=True)
    logits = d(x)
    # The network's layers on the differences made by NumPy, scaled by the gain.
    image = x.detach().numpy().astype(np.float64)
    right = image[:, :, :-1, 1:] - image[:, :, :-1, :-1]
    below = image[:, :, 1:, :-1] - image[:, :, :-1, :-1]
    maps = torch.from_numpy(np.concatenate([right, below], 1) * GRADIENT_GAIN).float()
    torch.testing.assert_close(logits, d.features(maps)[:, 0], rtol=0, atol=1e-5)
    torch.testing.assert_close(d(x + 0.1), logits, rtol=0, atol=1e-5)
    # A horizontal ramp and a vertical one, the same differences turned, score differently:
    # the network sees the direction.
    ramp = torch.linspace(0, 1, 48).expand(1, 3, 48, 48)
    assert not torch.allclose(d(ramp), d(ramp.transpose(2, 3)))
    # A logit away from the borders sees one px more than the pixel network's patch.
    row, col = logits.shape[1] // 2, logits.shape[2] // 2
    logits[0, row, col].backward()
    touched = x.grad[0].abs().sum(0).nonzero()
    extent = touched.max(0).values - touched.min(0).values + 1
    assert extent.tolist() == [d.patch + 1, d.patch + 1]
    with pytest.raises(ValueError, match="inputs must be one of pixels, gradients"):
        discriminator("patch", inputs="edges")


class TestVGG:
    def test_torchvision_parameter_names(self):
        full = VGG19Features("conv5_4")
        names = {n for n, _ in full.named_parameters()}
        assert names == {
            f"features.{i}.{p}" for i in TORCHVISION_CONV_INDICES for p in ("weight", "bias")
        }
        assert LAYERS["conv3_3"] == 14 and len(VGG19Features("conv3_3").features) == 15

    def test_frozen_and_normalised(self):
        vgg = VGG19Features("relu1_1").train()
        assert not vgg.training and not any(p.requires_grad for p in vgg.parameters())
        with torch.no_grad():
            vgg.features[0].weight.zero_()
            vgg.features[0].weight[0, 0, 1, 1] = 1  # picks the normalised red channel
            vgg.features[0].bias.zero_()
        out = vgg(torch.full((1, 3, 4, 4), 0.485))
        assert out[0, 0].abs().max() == 0  # the ImageNet mean maps to 0

    def test_load_from_files(self, tmp_path):
        source = VGG19Features("conv5_4")
        state = {k: torch.randn_like(v) for k, v in source.state_dict().items()}
        state["classifier.0.weight"] = torch.zeros(2, 2)  # a whole vgg19 state dict has these
        torch.save(state, tmp_path / "vgg19.pth")
        loaded = load_vgg19("conv3_3", tmp_path / "vgg19.pth")
        torch.testing.assert_close(loaded.features[14].weight, state["features.14.weight"])
        features_only = {k: v for k, v in state.items() if k.startswith("features.")}
        torch.save(features_only, tmp_path / "features.pth")
        again = load_vgg19("conv3_3", tmp_path / "features.pth")
        torch.testing.assert_close(again.features[0].bias, state["features.0.bias"])
        torch.save({"something": torch.zeros(1)}, tmp_path / "other.pth")
        with pytest.raises(ValueError, match="torchvision's format"):
            load_vgg19("conv3_3", tmp_path / "other.pth")
        with pytest.raises(FileNotFoundError, match="nope.pth"):
            load_vgg19("conv3_3", tmp_path / "nope.pth")
        (tmp_path / "notes.pth").write_text("not weights")
        with pytest.raises(ValueError, match="notes.pth' cannot be read"):
            load_vgg19("conv3_3", tmp_path / "notes.pth")

    def test_no_network_is_a_clear_error(self, monkeypatch):
        def offline(*args, **kwargs):
            raise urllib.error.URLError("no network")

        monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
        with pytest.raises(OSError, match="--vgg-weights") as info:
            load_vgg19()
        assert "torch.hub" in str(info.value) and "vgg19-dcbb9e9d.pth" in str(info.value)

    def test_unknown_layer(self):
        with pytest.raises(ValueError, match="conv9_9"):
            VGG19Features("conv9_9")


class TestLosses:
    def test_relativistic_closed_form(self):
        real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
        # mean(fake) = 1, mean(real) = 2
        d = 0.5 * (((real - 1 - 1) ** 2).mean() + ((fake - 2 + 1) ** 2).mean())
        g = 0.5 * (((fake - 2 - 1) ** 2).mean() + ((real - 1 + 1) ** 2).mean())
        assert ralsgan_discriminator_loss(real, fake).item() == pytest.approx(d.item())
        assert ralsgan_generator_loss(real, fake).item() == pytest.approx(g.item())
        # At the discriminator's optimum (real - mean(fake) = 1, fake - mean(real) = -1): zero.
        assert ralsgan_discriminator_loss(torch.tensor([1.0]), torch.tensor([0.0])).item() == 0

    def test_gradients_reach_the_generator(self):
        torch.manual_seed(0)
        # Away from the identity start, where only the last layer has a gradient.
        g = gaussian_init(BlurGenerator(channels=8, blocks=1), std=0.1)
        d = Discriminator(channels=8)
        vgg = VGG19Features("conv2_2")
        sharp, real = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
        fake = g(sharp, torch.randn(2, *g.noise_shape(32, 32)))
        loss = perceptual_loss(vgg, fake, sharp) + 0.005 * ralsgan_generator_loss(
            d(real).detach(), d(fake)
        )
        loss.backward()
        assert g.head[0].weight.grad is not None and g.head[0].weight.grad.abs().sum() > 0
        assert g.inject.grad is not None and g.inject.grad.abs().sum() > 0  # learns from zero
        assert all(p.grad is None for p in vgg.parameters())

    def test_content_and_perceptual_zero_on_equal_inputs(self):
        x = torch.rand(1, 3, 16, 16)
        assert content_loss(x, x).item() == 0
        assert perceptual_loss(VGG19Features("conv1_2"), x, x).item() == 0

    def test_content_losses_closed_form(self):
        # errors -0.5, 0.25, 0, 1 (float64 so the sums are exact)
        target = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
        output = torch.tensor([[[[-0.5, 0.25], [0.0, 1.0]]]], dtype=torch.float64)
        assert content_loss(output, target).item() == (0.25 + 0.0625 + 0 + 1) / 4
        assert content_loss(output, target, "mse").item() == (0.25 + 0.0625 + 0 + 1) / 4
        assert content_loss(output, target, "l1").item() == (0.5 + 0.25 + 0 + 1) / 4
        with pytest.raises(ValueError, match="'l2'"):
            content_loss(output, target, "l2")

    def test_coarse_content_holds_brightness_and_lets_blur_through(self):
        sharp = torch.rand(1, 3, 32, 32, dtype=torch.float64)
        # A horizontal box blur of 3 px (circular): local means barely move, pixels do.
        blurred = (sharp + sharp.roll(1, -1) + sharp.roll(-1, -1)) / 3
        assert content_loss(blurred, sharp, scale=8) < content_loss(blurred, sharp) / 10
        # A brightness shift of c costs c^2 at any scale: colour and brightness are held.
        for scale in (1, 4, 8):
            shifted = content_loss(sharp + 0.07, sharp, scale=scale).item()
            assert shifted == pytest.approx(0.07**2)


class TestCentringEdges:
    def test_weights_without_a_root_give_nan_not_an_index_error(self):
        from blurgen.bgan.nets import centring_shift

        positions = torch.arange(5.0) - 2
        for weights in (torch.zeros(5), torch.full((5,), float("nan"))):
            assert torch.isnan(centring_shift(positions, weights, 2.0)).all()

    def test_centring_stays_float32_under_autocast(self):
        from blurgen.bgan.nets import centre_kernels

        kernels = torch.softmax(torch.randn(4, 31 * 31, generator=torch.Generator().manual_seed(0)),
                                -1).unflatten(-1, (31, 31))  # fmt: skip
        with torch.autocast("cpu", dtype=torch.bfloat16):
            centred = centre_kernels(kernels)
        assert centred.dtype == torch.float32
        torch.testing.assert_close(centred.sum((-1, -2)), torch.ones(4), atol=1e-5, rtol=0)
        offsets = torch.arange(31.0) - 15
        assert (centred.sum(-1) @ offsets).abs().max() < 1e-4
        assert (centred.sum(-2) @ offsets).abs().max() < 1e-4
