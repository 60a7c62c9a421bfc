"""The blur generators (BGAN) of "Deblurring by Realistic Blurring" (Zhang et al., CVPR 2020),
and :func:`blur_generator`, which builds either from its config.

The blur generator takes a sharp image and noise, so one sharp image blurs in many
ways. In the paper the noise is a 4-vector ``z ~ N(0, 1)`` repeated over every pixel
(``noise="vector"``), which after the first convolution is little more than a per-image bias.
By default (``noise="map"``) it is per-pixel: 4 maps of N(0, 1) beside the image, and one more
map per residual block, added to the block's input with a learned weight per channel (zero at
first), as style-based generators inject noise; so the blur can vary across the image. It has
three standalone 3x3 convolutions around nine residual blocks of five 3x3 convolutions and four
ReLUs each, 64 channels (:class:`BlurGenerator`).

:class:`KernelBlurGenerator` (``arch="kernels"``) blurs by kernels it generates instead, one per
cell of the image (made and applied by :mod:`blurgen.bgan.nets.blur_kernels`), so it can only
blur.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..config import BGAN_ARCHS, KERNEL_FORMS, NOISE_KINDS
from .blur_kernels import (
    PATH_POINTS_PER_PX,
    blend_blur,
    centre_kernels,
    centre_points,
    circle_path_logits,
    path_from_logits,
    path_kernels,
)
from .layers import ResidualNet

NOISE_CHANNELS = 4


class BlurGenerator(ResidualNet):
    """BGAN: sharp RGB + noise -> blurred RGB, predicted as a residual on the sharp image.

    Learning blur as a change to the sharp image (output = sharp + residual, clamped) keeps
    colours and content from the first step, so the adversarial loss only has to learn the
    blur; with a sigmoid output the network first has to relearn the whole image.

    Args:
        channels: feature channels (64 in the paper).
        blocks: residual blocks (9 in the paper).
        noise: ``"map"`` (per-pixel maps, injected at every block) or ``"vector"`` (the
            paper's 4-vector repeated over the image).
        scale: the convolutions work on ``scale`` x ``scale`` cells of pixels stacked as
            channels (pixel unshuffle; the residual is shuffled back to full resolution), so
            the network reaches ``scale`` times as far for a ``scale**2``-th of the work per
            channel, and still sees and sets every pixel. Blur paths are tens of pixels
            long; 3x3 convolutions at full resolution reach one pixel each. 1: the paper's.

    Shape:
        sharp (N, 3, H, W) in [0, 1]; noise (N, *noise_shape(H, W)); output (N, 3, H, W) in
        [0, 1].
    """

    def __init__(
        self, channels: int = 64, blocks: int = 9, noise: str = "map", scale: int = 1
    ) -> None:
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a whole number >= 1, got {scale!r}")
        cell = scale * scale
        super().__init__((3 + NOISE_CHANNELS) * cell, channels, blocks, 3 * cell)
        if noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {', '.join(NOISE_KINDS)}, got {noise!r}")
        self.noise, self.scale = noise, int(scale)
        self.config = {"arch": "resnet", **self.config, "noise": noise, "scale": self.scale}
        if noise == "map":
            # One weight per channel for each of a cell's noise values (at scale 1, per channel).
            shape = (blocks, channels) if scale == 1 else (blocks, channels, cell)
            self.inject = nn.Parameter(torch.zeros(shape))

    def noise_shape(self, height: int, width: int) -> tuple[int, ...]:
        """The shape of one image's noise: (4,) for a vector, (4 + blocks, H, W) for maps."""
        if self.noise == "vector":
            return (NOISE_CHANNELS,)
        return (NOISE_CHANNELS + len(self.blocks), height, width)

    def forward(self, sharp: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        n, _, height, width = sharp.shape
        expected = (n, *self.noise_shape(height, width))
        if tuple(z.shape) != expected:
            raise ValueError(f"z must be {expected} ({self.noise} noise), got {tuple(z.shape)}")
        z = z.to(sharp.dtype)
        if self.noise == "vector":
            z = z[:, :, None, None].expand(n, NOISE_CHANNELS, height, width)
        s = self.scale
        # Sizes not a multiple of the scale are padded by repeating the last row and column
        # (the padding is cropped off again).
        pad = (0, -width % s, 0, -height % s)
        if any(pad):
            sharp_padded, z = F.pad(sharp, pad, mode="replicate"), F.pad(z, pad, mode="replicate")
        else:
            sharp_padded = sharp
        x = self.head(F.pixel_unshuffle(torch.cat([sharp_padded, z[:, :NOISE_CHANNELS]], 1), s))
        for b, block in enumerate(self.blocks):
            if self.noise == "map":
                extra = F.pixel_unshuffle(z[:, NOISE_CHANNELS + b : NOISE_CHANNELS + b + 1], s)
                weight = self.inject[b].to(x.dtype)
                if weight.ndim == 1:
                    x = x + weight[None, :, None, None] * extra
                else:
                    x = x + torch.einsum("ck,nkhw->nchw", weight, extra)
            x = block(x)
        residual = F.pixel_shuffle(self.tail(x), s)[:, :, :height, :width]
        return (sharp + residual).clamp(0, 1)


# Adam moves each weight by about the learning rate per step, whatever its gradient; a kernel's
# logits must move by tens for a kernel to grow into a streak, so the logits every draw shares
# (and the sensor noise's log variances) are parameters multiplied by this much. The part that
# varies with the noise gets its own, smaller factor (``variation_gain``): its last layer sums
# hundreds of weights, which already move the logits ~100 times as fast (with a factor of 100
# there too, the kernels of real photos snapped to an off-centre point within 250 steps; with
# 1 they hardly varied from draw to draw; with 10 they varied, and so much from cell to cell
# that the blend showed seams).
LOGIT_GAIN = 100.0
# The kernel generator's sensor noise: three maps (one per colour), and its shot and read
# variances to start with: 2.7 grey levels at mid-grey. The loss's gradient toward more or less
# noise grows with the noise (to first order zero-mean noise changes nothing), so from
# practically none (a standard deviation of 5e-5) the levels never moved in 500 steps.
SENSOR_CHANNELS = 3
START_LOG_VARIANCES = torch.tensor([2e-4, 1.6e-5]).log()


class KernelBlurGenerator(nn.Module):
    """BGAN that blurs by kernels it generates (``arch="kernels"``): the output is always a
    blur of the input, never new content.

    The image is divided into ``cell`` x ``cell`` px cells; each cell has ``latent`` channels
    of N(0, 1) noise. A dense network maps a cell's noise, with the image's global noise (the
    cells' mean, scaled back to unit variance), to the cell's ``kernel_size`` x
    ``kernel_size`` kernel (a softmax: non-negative, sum 1), then moved so that its centroid
    is its centre (:func:`centre_kernels`): the adversarial loss sees only blurred images, in
    which a shift is invisible, so learned kernels drift off centre, and a pair whose blurred
    image is shifted from its sharp one teaches a deblurrer to shift. Every pixel is blurred by
    the bilinear blend of its four nearest cells' kernels, so the blur varies smoothly across
    the image as real camera shake does, brightness and colour are kept exactly (a weighted
    mean of input pixels), and no ripples can be made up (noise only as below). The untrained
    network's kernel is exp(-distance in px), normalised.

    With ``form="path"`` the network draws each kernel as a camera path instead, as the
    physical model does: ``2 * kernel_size`` points, each a bounded step from the last, and a
    time weight per point (a softmax: how long the camera dwelt there); the path is centred on
    its weighted mean, pulled inside the kernel by a soft clamp, centred again (the clamp bends
    a path that nears the edge; :func:`centre_points`) and drawn with bilinear weights
    (:func:`path_kernels`). Such kernels are thin, continuous lines, as shake kernels are, and
    their centroid is the centre. The untrained path is a circle of 1 px radius.

    With ``sensor_noise`` it also learns the photos' noise: the image's global noise sets the
    variances of a shot term (per unit of signal) and a read term, through a linear map into
    their logarithms (so levels vary from image to image, log-normally), and three more
    full-resolution maps of N(0, 1) are the noise itself, added as ``sqrt(shot * blurred +
    read) * map`` in the encoded values, where real photos carry it. The cells' noise is then
    also drawn per pixel and summed over each cell (divided by the square root of the count,
    so still N(0, 1)). The untrained levels add 2.7 grey levels at mid-grey. With
    ``noise_kernel`` K_n > 1 the three maps are first convolved with a learned K_n x K_n kernel
    (one for all three; divided by its L2 norm, so each map stays of unit variance): the noise
    of real photos is correlated between neighbouring pixels by demosaicing and JPEG, and white
    noise over-added to look like it. The untrained kernel is nearly a delta (exp(-4 r^2),
    normalised). With ``noise_mixing`` the three maps are then mixed by a learned 3 x 3 matrix
    whose rows are divided by their L2 norms (each channel's noise still of unit variance, the
    correlation between channels i and j the dot product of rows i and j): demosaicing and
    JPEG's subsampled chroma leave real photos' noise mostly shared by the three colours, grey
    rather than coloured. The untrained matrix is the identity.

    Args:
        kernel_size: side of the kernels, px (odd).
        cell: side of the cells, px (even).
        latent: noise channels per cell.
        channels: width of the kernel network's hidden layers.
        blocks: hidden layers of the kernel network.
        sensor_noise: learn and add sensor noise too.
        noise_kernel: side of the kernel that correlates the sensor noise (odd; 1: white).
        noise_mixing: learn how the sensor noise is shared between the colour channels.
        variation_gain: factor on the logits that vary with the noise (see LOGIT_GAIN).
        form: ``"softmax"`` (a free kernel) or ``"path"`` (a drawn camera path).

    Shape:
        sharp (N, 3, H, W) in [0, 1], H and W over ``kernel_size // 2``; noise (N, latent,
        ceil(H / cell), ceil(W / cell)), or (N, latent + 3, H, W) with ``sensor_noise``;
        output (N, 3, H, W) in [0, 1], borders reflected.
    """

    def __init__(
        self,
        kernel_size: int = 31,
        cell: int = 64,
        latent: int = 8,
        channels: int = 256,
        blocks: int = 2,
        sensor_noise: bool = False,
        variation_gain: float = 1.0,
        form: str = "softmax",
        noise_kernel: int = 1,
        noise_mixing: bool = False,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size!r}")
        if form not in KERNEL_FORMS:
            raise ValueError(f"form must be one of {', '.join(KERNEL_FORMS)}, got {form!r}")
        if form == "path" and kernel_size < 9:
            raise ValueError(f"path kernels must be at least 9 px, got {kernel_size!r}")
        if cell < 2 or cell % 2:
            raise ValueError(f"cell must be even, got {cell!r}")
        if noise_kernel < 1 or noise_kernel % 2 == 0 or (noise_kernel > 1 and not sensor_noise):
            raise ValueError(f"noise_kernel must be odd, and over 1 only with sensor_noise, got "
                             f"{noise_kernel!r}")  # fmt: skip
        if noise_mixing and not sensor_noise:
            raise ValueError("noise_mixing needs sensor_noise")
        layers: list[nn.Module] = []
        width = 2 * latent
        for _ in range(blocks):
            layers += [nn.Linear(width, channels), nn.LeakyReLU(0.2, inplace=True)]
            width = channels
        self.body = nn.Sequential(*layers)
        if form == "path":
            # Per point: a step (dy, dx) and a time weight's logit.
            self.points = PATH_POINTS_PER_PX * kernel_size
            self.logits = nn.Linear(width, 3 * self.points, bias=False)
            self.mean_logits = nn.Parameter(circle_path_logits(self.points) / LOGIT_GAIN)
        else:
            self.logits = nn.Linear(width, kernel_size * kernel_size, bias=False)
            offset = torch.arange(kernel_size, dtype=torch.float32) - kernel_size // 2
            distance = (offset[:, None] ** 2 + offset[None, :] ** 2).sqrt()
            # Logits of minus the distance in px: a sharp peak with a tail that reaches the
            # edge (e^-15 at 15 px), so that training can grow any shape from it in a few
            # thousand steps (from a 1 px Gaussian's -r^2/2, the edge's -112, it only grew
            # round).
            self.mean_logits = nn.Parameter(-distance.flatten() / LOGIT_GAIN)
        nn.init.zeros_(self.logits.weight)
        self.form = form
        self.sensor_noise = bool(sensor_noise)
        if self.sensor_noise:
            self.levels = nn.Linear(latent, 2, bias=False)
            nn.init.zeros_(self.levels.weight)
            self.mean_levels = nn.Parameter(START_LOG_VARIANCES / LOGIT_GAIN)
        self.noise_kernel = int(noise_kernel)
        if self.noise_kernel > 1:
            offset = torch.arange(noise_kernel, dtype=torch.float32) - noise_kernel // 2
            squared = offset[:, None] ** 2 + offset[None, :] ** 2
            self.noise_logits = nn.Parameter(-4 * squared / LOGIT_GAIN)
        self.noise_mixing = bool(noise_mixing)
        if self.noise_mixing:
            self.noise_mix = nn.Parameter(torch.eye(SENSOR_CHANNELS) / LOGIT_GAIN)
        self.kernel_size, self.cell, self.latent = kernel_size, cell, latent
        self.variation_gain = float(variation_gain)
        self.config = {"arch": "kernels", "kernel_size": kernel_size, "cell": cell,
                       "latent": latent, "channels": channels, "blocks": blocks,
                       "sensor_noise": self.sensor_noise,
                       "variation_gain": float(variation_gain), "form": form,
                       "noise_kernel": self.noise_kernel,
                       "noise_mixing": self.noise_mixing}  # fmt: skip

    @property
    def reach(self) -> int:
        """How many px away an input pixel still changes an output pixel."""
        return self.kernel_size // 2

    def noise_shape(self, height: int, width: int) -> tuple[int, ...]:
        """The shape of one image's noise: (latent, cells down, cells across), or (latent +
        3, H, W) with sensor noise."""
        if self.sensor_noise:
            return (self.latent + SENSOR_CHANNELS, height, width)
        return (self.latent, -(-height // self.cell), -(-width // self.cell))

    def cell_noise(self, z: torch.Tensor) -> torch.Tensor:
        """Each cell's noise (N, latent, rows, cols), N(0, 1), from an image's noise z."""
        if not self.sensor_noise:
            return z
        maps = z[:, : self.latent]
        height, width = maps.shape[-2:]
        # ceil_mode: the last row and column of cells may be cut off by the image's edge;
        # their mean is over the pixels inside it, so scale each by its own count.
        means = F.avg_pool2d(maps, self.cell, ceil_mode=True)
        down = torch.arange(0, height, self.cell, device=z.device).neg().add(height)
        across = torch.arange(0, width, self.cell, device=z.device).neg().add(width)
        count = down.clamp(max=self.cell)[:, None] * across.clamp(max=self.cell)[None, :]
        return means * count.to(means.dtype).sqrt()

    def _global(self, cells: torch.Tensor) -> torch.Tensor:
        """An image's global noise (N, latent, 1, 1), N(0, 1): the cells' mean, scaled."""
        return cells.mean(dim=(2, 3), keepdim=True) * (cells.shape[2] * cells.shape[3]) ** 0.5

    def kernel_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The logits of each cell's kernel (N, rows, cols, L) for noise z (N, *noise_shape):
        K * K for ``form="softmax"``, 3 per path point for ``"path"``."""
        cells = self.cell_noise(z)
        codes = torch.cat([cells, self._global(cells).expand_as(cells)], 1).permute(0, 2, 3, 1)
        variation = self.logits(self.body(codes)) * self.variation_gain
        return variation + self.mean_logits * LOGIT_GAIN

    def kernels(self, z: torch.Tensor) -> torch.Tensor:
        """The kernel field of noise z (N, *noise_shape): (N, rows, cols, K, K), each kernel
        non-negative with sum 1 and its centroid on the centre (so the blur moves no content),
        indexed [dy, dx] from the top left (a true convolution: the output at p takes
        ``kernel[c + d] * input[p - d]``, c the centre)."""
        logits = self.kernel_logits(z)
        size = self.kernel_size
        if self.form == "path":
            points, weights = path_from_logits(logits, size // 2 - 1)
            return path_kernels(centre_points(points, weights, size // 2), weights, size)
        kernels = torch.softmax(logits, dim=-1).unflatten(-1, (size, size))
        return centre_kernels(kernels)

    def noise_levels(self, z: torch.Tensor) -> torch.Tensor:
        """The shot and read variances (N, 2) of noise z (N, *noise_shape), sensor noise
        only."""
        code = self._global(self.cell_noise(z))[:, :, 0, 0]
        return (self.levels(code) + self.mean_levels * LOGIT_GAIN).exp()

    def forward(self, sharp: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        n, _, height, width = sharp.shape
        expected = (n, *self.noise_shape(height, width))
        if tuple(z.shape) != expected:
            raise ValueError(
                f"z must be {expected} (cells of {self.cell} px), got {tuple(z.shape)}"
            )
        if min(height, width) <= self.reach:
            raise ValueError(f"images must be over {self.reach} px a side for kernels of "
                             f"{self.kernel_size} px, got {height} x {width}")  # fmt: skip
        z = z.to(sharp.dtype)
        blurred = blend_blur(sharp, self.kernels(z), self.cell)
        if self.sensor_noise:
            shot, read = self.noise_levels(z)[:, :, None, None, None].unbind(1)
            sigma = (shot * blurred.clamp(min=0) + read).sqrt()
            blurred = blurred + sigma * self.correlated(z[:, self.latent :])
        return blurred.clamp(0, 1)

    def correlated(self, maps: torch.Tensor) -> torch.Tensor:
        """Sensor-noise maps (N, 3, H, W) of N(0, 1), correlated by the learned noise kernel
        (borders reflected) and mixed between channels by the learned matrix, each still of
        unit variance; as they are with a 1 px kernel and no mixing."""
        if self.noise_kernel > 1:
            weights = torch.softmax(self.noise_logits.flatten() * LOGIT_GAIN, 0)
            weights = (weights / weights.norm()).view(1, 1, self.noise_kernel, self.noise_kernel)
            pad = self.noise_kernel // 2
            padded = F.pad(maps, (pad, pad, pad, pad), mode="reflect")
            channels = maps.shape[1]
            maps = F.conv2d(padded, weights.to(maps.dtype).expand(channels, 1, -1, -1),
                            groups=channels)  # fmt: skip
        if self.noise_mixing:
            mix = self.noise_mix / self.noise_mix.norm(dim=1, keepdim=True)
            maps = torch.einsum("ij,njhw->nihw", mix.to(maps.dtype), maps)
        return maps


def blur_generator(arch: str = "resnet", **config: Any) -> nn.Module:
    """A blur generator: ``"resnet"`` (:class:`BlurGenerator`, the paper's) or ``"kernels"``
    (:class:`KernelBlurGenerator`), built from the rest of its ``config``, which rebuilds it:
    ``blur_generator(**generator.config)``."""
    if arch == "resnet":
        return BlurGenerator(**config)
    if arch == "kernels":
        return KernelBlurGenerator(**config)
    raise ValueError(f"arch must be one of {', '.join(BGAN_ARCHS)}, got {arch!r}")
