"""Networks of "Deblurring by Realistic Blurring" (Zhang et al., CVPR 2020).

The blur generator (BGAN) takes a sharp image and noise, so one sharp image blurs in many
ways. In the paper the noise is a 4-vector ``z ~ N(0, 1)`` repeated over every pixel
(``noise="vector"``), which after the first convolution is little more than a per-image bias.
By default (``noise="map"``) it is per-pixel: 4 maps of N(0, 1) beside the image, and one more
map per residual block, added to the block's input with a learned weight per channel (zero at
first), as style-based generators inject noise; so the blur can vary across the image. It has
three standalone 3x3 convolutions around nine residual blocks of five 3x3 convolutions and four
ReLUs each, 64 channels. The discriminator is VGG-style: strided conv + LeakyReLU stages and a
dense head.

The deblurring generator (DBGAN) is, as the authors released it, a residual-in-residual dense
network (RRDB, as in ESRGAN but without upsampling): 16 blocks of three dense blocks of five
3x3 convolutions, 64 features, growth 32, about 11.6 M parameters; ``arch="resnet"`` keeps
blurgen's earlier, lighter deblurrer (plain residual blocks, 3.0 M parameters).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .config import (
    BGAN_ARCHS,
    DEBLUR_ARCHS,
    DISC_INPUTS,
    DISCRIMINATORS,
    KERNEL_FORMS,
    NOISE_KINDS,
)

NOISE_CHANNELS = 4


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """A 3x3 convolution that keeps the size (at stride 1)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


class ResidualBlock(nn.Module):
    """Five 3x3 convolutions with a ReLU between each pair (four), plus the input."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(5):
            layers.append(conv3x3(channels, channels))
            if i < 4:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualNet(nn.Module):
    """What both generators share: a 3x3 conv + ReLU, residual blocks, then conv, ReLU, conv
    to 3 channels. The last conv starts at zero, so a generator that adds this net's output to
    its input image starts as the identity rather than from a random image."""

    def __init__(self, in_channels: int, channels: int, blocks: int, out_channels: int = 3) -> None:
        super().__init__()
        self.head = nn.Sequential(conv3x3(in_channels, channels), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.tail = nn.Sequential(
            conv3x3(channels, channels), nn.ReLU(inplace=True), conv3x3(channels, out_channels)
        )
        nn.init.zeros_(self.tail[-1].weight)
        nn.init.zeros_(self.tail[-1].bias)
        self.config = {"channels": channels, "blocks": blocks}

    scale = 1

    @property
    def reach(self) -> int:
        """How many px away an input pixel still changes an output pixel: one per 3x3
        convolution on the way (the head, five per block, two in the tail), times the scale
        the convolutions work at (plus the rest of a ``scale`` x ``scale`` cell)."""
        return (1 + 5 * len(self.blocks) + 2) * self.scale + self.scale - 1

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) residual of an (N, in_channels, H, W) input."""
        return self.tail(self.blocks(self.head(x)))


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
# Tiles of blend_blur transformed at once, whatever the batch (each a few windows of a cell and
# a kernel: about 0.8 MB a tile for 64 px cells and 63 px kernels).
BAND_TILES = 64
# Path kernels (form="path"): points per px of kernel side, the most a step between points may
# move along each axis (so the drawn path has no gaps: points at most 0.71 px apart, and the
# longest path is 1.41 times the kernel's side), and the radius of the circle the path starts
# as (a slight round blur that the adversarial loss can stretch any way; a single point would
# be a saddle: every point gets the same gradient, and centring removes it). The circle's steps
# are within PATH_MAX_STEP from 18 points on, hence kernels of at least 9 px.
PATH_POINTS_PER_PX = 2
PATH_MAX_STEP = 0.5
PATH_START_RADIUS = 1.0


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


def circle_path_logits(points: int) -> torch.Tensor:
    """The path logits (3 * points,) of a circle of PATH_START_RADIUS px, walked once at an
    even pace (see :func:`path_from_logits`)."""
    angle = 2 * torch.pi * torch.arange(points + 1, dtype=torch.float64) / points
    circle = PATH_START_RADIUS * torch.stack([angle.sin(), angle.cos()], 1)
    # The first point is the origin; centring moves the circle's centre there.
    steps = torch.cat([torch.zeros(1, 2, dtype=torch.float64), circle.diff(dim=0)[:-1]])
    raw = torch.atanh(steps / PATH_MAX_STEP)
    return torch.cat([raw.flatten(), torch.zeros(points, dtype=torch.float64)]).float()


def path_from_logits(logits: torch.Tensor, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera paths from logits (..., 3 T): T steps (dy, dx), each ``PATH_MAX_STEP *
    tanh(logit)`` px, summed into points, and T time weights (their softmax). The points are
    centred on their weighted mean, then pulled inside ``radius`` px by ``radius *
    tanh(point / radius)`` along each axis.

    Returns:
        points (..., T, 2) in px, (dy, dx) from the kernel's centre; weights (..., T), sum 1.
    """
    count = logits.shape[-1] // 3
    steps = PATH_MAX_STEP * torch.tanh(logits[..., : 2 * count].unflatten(-1, (count, 2)))
    points = steps.cumsum(-2)
    weights = torch.softmax(logits[..., 2 * count :], dim=-1)
    points = points - (weights[..., None] * points).sum(-2, keepdim=True)
    return radius * torch.tanh(points / radius), weights


def path_kernels(points: torch.Tensor, weights: torch.Tensor, size: int) -> torch.Tensor:
    """Draw weighted points into ``size`` x ``size`` kernels with bilinear weights: each point
    adds ``weight * max(0, 1 - |dy - y|) * max(0, 1 - |dx - x|)`` at offset (y, x) from the
    centre (so the kernel's sum and centroid are the weights' and the points' weighted mean's).

    Args:
        points: (..., T, 2), (dy, dx) px from the centre, inside ``size // 2`` px.
        weights: (..., T), non-negative.
        size: the kernels' side, odd.

    Returns:
        (..., size, size), indexed [dy, dx] from the top left as :meth:`KernelBlurGenerator.
        kernels`' are.
    """
    offsets = torch.arange(size, device=points.device, dtype=points.dtype) - size // 2
    tents = (1 - (points[..., None] - offsets).abs()).clamp(min=0)  # (..., T, 2, size)
    return torch.einsum("...t,...ty,...tx->...yx", weights, tents[..., 0, :], tents[..., 1, :])


def centring_shift(positions: torch.Tensor, weights: torch.Tensor, limit: float) -> torch.Tensor:
    """The shift s that centres weighted positions kept inside ``[-limit, limit]``: the root of
    ``f(s) = sum(weights * clamp(positions + s, -limit, limit))``, so positions moved by s and
    clamped (none lost) have their weighted mean at 0. Where nothing reaches the limit that is
    minus the weighted mean; where some does, the rest move further to balance it.

    f rises piecewise linearly between its kinks (where a position meets a limit), from
    ``-limit * sum(weights)`` to ``+limit * sum(weights)``: its root is interpolated exactly on
    the piece that crosses zero. Differentiable in both inputs (the piece is picked without
    gradient, the interpolation carries it).

    Args:
        positions: (..., T), px.
        weights: (..., T), non-negative, with a positive sum.
        limit: px, positive.

    Returns:
        (...,) px.
    """
    kinks = torch.cat([-limit - positions, limit - positions], -1).sort(-1).values
    moved = (positions[..., None, :] + kinks[..., :, None]).clamp(-limit, limit)
    balance = (weights[..., None, :] * moved).sum(-1)  # f at each kink, non-decreasing
    # At the first kink every position is at -limit, at the last at +limit: f < 0 there,
    # f > 0 here, so the piece ending at the first kink with f >= 0 holds the root.
    # Weights that are NaN or sum to zero have no root: the clamp lets NaN through (as a
    # diverged training's loss shows it) instead of an index error, on CUDA a device assert.
    upper = (balance >= 0).to(torch.uint8).argmax(-1, keepdim=True).clamp(min=1)
    lower = upper - 1
    s0, s1 = kinks.gather(-1, lower), kinks.gather(-1, upper)
    f0, f1 = balance.gather(-1, lower), balance.gather(-1, upper)
    return (s0 - f0 * (s1 - s0) / (f1 - f0))[..., 0]


def centre_points(points: torch.Tensor, weights: torch.Tensor, limit: float) -> torch.Tensor:
    """Weighted points (..., T, 2) moved along each axis by :func:`centring_shift` and
    clamped to ``[-limit, limit]``: their weighted mean is the centre and none leaves the
    kernel (with ``limit = size // 2``, :func:`path_kernels` keeps all their weight)."""
    shift = centring_shift(points.transpose(-1, -2), weights[..., None, :], limit)
    return (points + shift[..., None, :]).clamp(-limit, limit)


def centre_kernels(kernels: torch.Tensor) -> torch.Tensor:
    """Kernels (..., K, K), K odd, moved so that each one's centroid is its centre pixel,
    differentiably and without losing any mass.

    Each pixel's mass moves by the kernel's :func:`centring_shift` along each axis (the weights
    of the positions along an axis are the kernel's sums across the other), is clamped to the
    kernel's border and is spread to its neighbours with bilinear weights, which keep its sum
    and its first moment: so the result keeps the kernel's sum and is non-negative, and its
    centroid is 0 exactly (up to rounding), even where some mass piles up at the border.
    A whole-pixel shift moves the kernel unchanged; a fractional one spreads it over one more
    pixel along that axis (variance up by at most 1/4 px^2).

    Returns:
        (..., K, K), of the kernels' dtype, at least float32.
    """
    size = kernels.shape[-1]
    limit = size // 2
    # At least float32, whatever autocast would choose: bf16 loses the sum and centroid
    # (1.7e-3 and 3e-3 px off were measured).
    dtype = torch.promote_types(kernels.dtype, torch.float32)
    offsets = torch.arange(size, device=kernels.device, dtype=dtype) - limit

    def spread(weights: torch.Tensor) -> torch.Tensor:
        # (..., K out, K in): where the mass of each input row (column) goes.
        shift = centring_shift(offsets.expand_as(weights), weights, limit)
        moved = (offsets + shift[..., None]).clamp(-limit, limit)
        return (1 - (offsets[:, None] - moved[..., None, :]).abs()).clamp(min=0)

    with torch.autocast(kernels.device.type, enabled=False):
        kernels = kernels.to(dtype)
        down, across = spread(kernels.sum(-1)), spread(kernels.sum(-2))
        return torch.einsum("...yi,...ij,...xj->...yx", down, kernels, across)


def blend_blur(image: torch.Tensor, kernels: torch.Tensor, cell: int) -> torch.Tensor:
    """Blur an image by a field of kernels, one per ``cell`` x ``cell`` cell, each pixel by the
    bilinear blend of its four nearest cells' kernels (weights by distance to the cells'
    centres; beyond the outer centres, the outer cells' own).

    The output is cut into cell-sized tiles whose corners are four cells' centres; each tile's
    window of input is convolved with those four kernels by FFT (the valid part of a circular
    convolution of the window's size) and the four results blended. Images and rows of tiles
    are done a few at a time (:data:`BAND_TILES` tiles), so the memory on the way stays the
    same whatever the images' size and number.

    Args:
        image: (N, C, H, W), H and W over K // 2 (reflected at the borders).
        kernels: (N, ceil(H / cell), ceil(W / cell), K, K), K odd.
        cell: even number of px.

    Returns:
        (N, C, H, W), of the image's dtype.
    """
    n, channels, height, width = image.shape
    _, rows, cols, size, _ = kernels.shape
    per_pass = max(1, BAND_TILES // ((rows + 1) * (cols + 1)))
    if n > per_pass:
        return torch.cat([blend_blur(image[i : i + per_pass], kernels[i : i + per_pass], cell)
                          for i in range(0, n, per_pass)])  # fmt: skip
    half, pad = cell // 2, size // 2
    window = cell + size - 1
    x = F.pad(image.float(), (pad, pad, pad, pad), mode="reflect")
    # Tile i covers output rows [i * cell - half, (i + 1) * cell - half); its window of input
    # starts at row i * cell of this padding.
    x = F.pad(x, (half, (cols + 1) * cell - half - width, half, (rows + 1) * cell - half - height))
    t = (torch.arange(cell, device=image.device, dtype=torch.float32) + 0.5) / cell
    left = torch.arange(cols + 1, device=image.device)
    col_sides = (((left - 1).clamp(0, cols - 1), 1 - t), (left.clamp(max=cols - 1), t))
    spectra_of = functools.partial(torch.fft.rfft2, s=(window, window))
    band = max(1, BAND_TILES // (cols + 1))
    bands = []
    for first in range(0, rows + 1, band):
        up = torch.arange(first, min(first + band, rows + 1), device=image.device)
        rows_in = x[:, :, first * cell : (first + len(up)) * cell + size - 1]
        spectra = spectra_of(rows_in.unfold(2, window, cell).unfold(3, window, cell))
        out = 0
        # Tile (i, j) blends the kernels of cells i-1..i, j-1..j, clamped to the field.
        for row_index, row_weight in (((up - 1).clamp(0, rows - 1), 1 - t),
                                      (up.clamp(max=rows - 1), t)):  # fmt: skip
            for col_index, col_weight in col_sides:
                corner = kernels[:, row_index][:, :, col_index].float()  # (N, i, j, K, K)
                blurred = torch.fft.irfft2(spectra * spectra_of(corner)[:, None], s=(window,) * 2)
                weight = row_weight[:, None] * col_weight[None, :]
                out = out + blurred[..., size - 1 :, size - 1 :] * weight
        # (N, C, i, j, cell, cell) -> (N, C, i cell, j cell)
        bands.append(out.permute(0, 1, 2, 4, 3, 5).flatten(4, 5).flatten(2, 3))
    out = torch.cat(bands, 2)
    return out[:, :, half : half + height, half : half + width].to(image.dtype)


def blur_generator(arch: str = "resnet", **config: Any) -> nn.Module:
    """A blur generator: ``"resnet"`` (:class:`BlurGenerator`, the paper's) or ``"kernels"``
    (:class:`KernelBlurGenerator`), built from the rest of its ``config``, which rebuilds it:
    ``blur_generator(**generator.config)``."""
    if arch == "resnet":
        return BlurGenerator(**config)
    if arch == "kernels":
        return KernelBlurGenerator(**config)
    raise ValueError(f"arch must be one of {', '.join(BGAN_ARCHS)}, got {arch!r}")


class DeblurGenerator(ResidualNet):
    """blurgen's lighter deblurring generator (``arch="resnet"``): blurred RGB -> sharp RGB.

    Three standalone 3x3 convolutions around sixteen residual blocks (five convolutions and
    four ReLUs each); the network predicts a residual added to its input, clamped to [0, 1].

    Shape:
        blurred (N, 3, H, W) in [0, 1]; output (N, 3, H, W) in [0, 1].
    """

    def __init__(self, channels: int = 64, blocks: int = 16) -> None:
        super().__init__(3, channels, blocks)
        self.config = {"arch": "resnet", **self.config}

    def forward(self, blurred: torch.Tensor) -> torch.Tensor:
        return (blurred + self.residual(blurred)).clamp(0, 1)


# ESRGAN's scaling of every dense and residual-in-residual branch before it is added.
BRANCH_SCALE = 0.2


class DenseBlock(nn.Module):
    """Five 3x3 convolutions, each fed the block's input and all earlier outputs stacked;
    LeakyReLU(0.2) after the first four (``growth`` channels each), the fifth back to
    ``channels``, scaled by 0.2 and added to the input."""

    def __init__(self, channels: int, growth: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            conv3x3(channels + i * growth, growth if i < 4 else channels) for i in range(5)
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs[:-1]:
            features.append(self.act(conv(torch.cat(features, 1))))
        return x + BRANCH_SCALE * self.convs[-1](torch.cat(features, 1))


class ResidualInResidual(nn.Module):
    """Three dense blocks in a row; their output, scaled by 0.2, added to the input."""

    def __init__(self, channels: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*(DenseBlock(channels, growth) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + BRANCH_SCALE * self.body(x)


class RRDBDeblurGenerator(nn.Module):
    """DBGAN's deblurring generator as released by its authors (``arch="rrdb"``).

    A 3x3 convolution to ``channels`` features; ``blocks`` residual-in-residual dense blocks
    and a 3x3 convolution, added to those features (the long feature skip); a 3x3 convolution
    with LeakyReLU(0.2) and one to 3 channels, added to the input image (the image skip) and
    clamped to [0, 1]. The last convolution starts at zero, so the untrained network is the
    identity; the dense blocks' weights start at a tenth of PyTorch's default, as ESRGAN's do,
    so that the 3 x ``blocks`` residual branches start small.

    Shape:
        blurred (N, 3, H, W) in [0, 1]; output (N, 3, H, W) in [0, 1].
    """

    def __init__(self, channels: int = 64, blocks: int = 16, growth: int = 32) -> None:
        super().__init__()
        self.head = conv3x3(3, channels)
        self.trunk = nn.Sequential(*(ResidualInResidual(channels, growth) for _ in range(blocks)))
        self.trunk_conv = conv3x3(channels, channels)
        self.tail = nn.Sequential(
            conv3x3(channels, channels), nn.LeakyReLU(0.2, inplace=True), conv3x3(channels, 3)
        )
        with torch.no_grad():
            for layer in self.trunk.modules():
                if isinstance(layer, nn.Conv2d):
                    layer.weight.mul_(0.1)
        nn.init.zeros_(self.tail[-1].weight)
        nn.init.zeros_(self.tail[-1].bias)
        self.config = {"arch": "rrdb", "channels": channels, "blocks": blocks, "growth": growth}

    @property
    def reach(self) -> int:
        """How many px away an input pixel still changes an output pixel: one per 3x3
        convolution on the longest path (the head, five per dense block, the trunk's and the
        tail's)."""
        return 1 + 15 * len(self.trunk) + 1 + 2

    def forward(self, blurred: torch.Tensor) -> torch.Tensor:
        features = self.head(blurred)
        features = features + self.trunk_conv(self.trunk(features))
        return (blurred + self.tail(features)).clamp(0, 1)


def deblur_generator(
    arch: str = "rrdb", channels: int = 64, blocks: int = 16, growth: int = 32
) -> nn.Module:
    """A deblurring generator: ``"rrdb"`` (the published DBGAN) or ``"resnet"`` (lighter;
    ``growth`` does not apply). Its ``config`` rebuilds it: ``deblur_generator(**config)``."""
    if arch == "rrdb":
        return RRDBDeblurGenerator(channels, blocks, growth)
    if arch == "resnet":
        return DeblurGenerator(channels, blocks)
    raise ValueError(f"arch must be one of {', '.join(DEBLUR_ARCHS)}, got {arch!r}")


class Discriminator(nn.Module):
    """VGG-style discriminator: a real-vs-generated score per image.

    Stages of conv 3x3 + LeakyReLU(0.2), the second of each pair strided, doubling channels
    from ``channels`` up to 8x; then average pooling to 4x4 and a dense head. Designed for
    128 px patches (any size of at least 32 px works).

    Shape:
        x (N, 3, H, W) in [0, 1]; output (N,) logits.
    """

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv3x3(3, channels), nn.LeakyReLU(0.2, inplace=True)]
        width = channels
        for stage in range(4):
            out = channels * min(2 ** (stage + 1), 8)
            layers += [conv3x3(width, width, stride=2), nn.LeakyReLU(0.2, inplace=True),
                       conv3x3(width, out), nn.LeakyReLU(0.2, inplace=True)]  # fmt: skip
            width = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(width * 16, 100), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(100, 1),
        )  # fmt: skip
        self.config = {"channels": channels}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Centred, roughly unit-scale input: on raw [0, 1] pixels it took this network several
        # times as many steps to start telling blurred from sharp patches (measured).
        return self.head(self.pool(self.features((x - 0.5) / 0.25)))[:, 0]


# Neighbour differences of a blurred photo are a few hundredths; this brings them near the unit
# scale the pixel input is normalised to.
GRADIENT_GAIN = 10.0


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (as in pix2pix and DeblurGAN): a real-vs-generated score per
    overlapping patch, so it judges local texture (blur) rather than content.

    ``layers`` 4x4 convolutions of stride 2 (channels doubling from ``channels``, at most 8x),
    one of stride 1, each followed by LeakyReLU(0.2), and a 4x4 convolution to one logit per
    position; each logit sees a square of 16, 34, 70... px for 1, 2, 3... layers. No
    normalisation, so a sample's logits do not depend on the rest of its batch.

    With ``inputs="gradients"`` the network sees, instead of the pixels, each channel's
    differences to its right and lower neighbours (6 maps, one px narrower and shorter, so a
    logit sees one px more of the image): the length and direction of a blur, which the
    pixels' content drowns, and nothing of brightness.

    Shape:
        x (N, 3, H, W) in [0, 1], H and W at least the patch seen; output (N, h, w) logits.
    """

    def __init__(self, channels: int = 64, layers: int = 3, inputs: str = "pixels") -> None:
        super().__init__()
        if inputs not in DISC_INPUTS:
            raise ValueError(f"inputs must be one of {', '.join(DISC_INPUTS)}, got {inputs!r}")
        self.inputs = inputs
        stack: list[nn.Module] = []
        width = 3 if inputs == "pixels" else 6
        for layer in range(layers + 1):
            out = channels * min(2**layer, 8)
            stride = 2 if layer < layers else 1
            stack += [nn.Conv2d(width, out, 4, stride, 1), nn.LeakyReLU(0.2, inplace=True)]
            width = out
        stack.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.features = nn.Sequential(*stack)
        self.config = {"kind": "patch", "channels": channels, "layers": layers, "inputs": inputs}

    @property
    def patch(self) -> int:
        """The side of the square of input each logit sees, px."""
        size = 1
        for layer in reversed(self.features):
            if isinstance(layer, nn.Conv2d):
                size = (size - 1) * layer.stride[0] + layer.kernel_size[0]
        return size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inputs == "pixels":
            return self.features((x - 0.5) / 0.25)[:, 0]
        right = x[..., :-1, 1:] - x[..., :-1, :-1]
        below = x[..., 1:, :-1] - x[..., :-1, :-1]
        return self.features(torch.cat([right, below], 1) * GRADIENT_GAIN)[:, 0]


class MultiScaleDiscriminator(nn.Module):
    """PatchGAN discriminators at ``scales`` scales (as in pix2pixHD): one on the input, one on
    it 2x2 average-pooled, one on it pooled 4x4... each with weights of its own. A pooled
    image's fine scale is the input's coarser one, so with the same small patch the coarser
    networks judge blur longer than a patch is wide (a 20 px streak is 5 px at 1/4).

    Shape:
        x (N, 3, H, W) in [0, 1], H and W at least ``2 ** (scales - 1)`` times the patch seen;
        output (N, L): every scale's logits, flattened and joined (:meth:`split` parts them).
    """

    def __init__(
        self, channels: int = 64, layers: int = 3, scales: int = 2, inputs: str = "pixels"
    ) -> None:
        super().__init__()
        self.nets = nn.ModuleList(
            PatchDiscriminator(channels, layers, inputs) for _ in range(scales)
        )
        self.config = {**self.nets[0].config, "scales": scales}
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = []
        for scale, net in enumerate(self.nets):
            pooled = F.avg_pool2d(x, 2**scale) if scale else x
            logits.append(net(pooled).flatten(1))
        self.sizes = [part.shape[1] for part in logits]
        return torch.cat(logits, 1)

    def split(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Logits (M, L) of images of the last call's size, parted by scale: a loss is taken
        per scale, or the finest scale's many logits would outweigh the coarse ones."""
        return logits.split(self.sizes, dim=1)


def discriminator(
    kind: str = "vgg", channels: int = 64, layers: int = 3, scales: int = 1, inputs: str = "pixels"
) -> nn.Module:
    """The discriminator ``kind``: ``"vgg"`` (:class:`Discriminator`, one logit per image;
    ``layers``, ``scales`` and ``inputs`` do not apply) or ``"patch"``
    (:class:`PatchDiscriminator`, or :class:`MultiScaleDiscriminator` for more than one
    scale)."""
    if kind == "vgg":
        return Discriminator(channels)
    if kind == "patch":
        if scales > 1:
            return MultiScaleDiscriminator(channels, layers, scales, inputs)
        return PatchDiscriminator(channels, layers, inputs)
    raise ValueError(f"discriminator must be one of {', '.join(DISCRIMINATORS)}, got {kind!r}")


def gaussian_init(module: nn.Module, std: float = 0.01) -> nn.Module:
    """Initialise every conv and linear layer with N(0, std) weights and zero biases (the
    paper's initialisation); returns the module."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module
