"""How the kernel blur generator (:class:`~blurgen.bgan.nets.blur.KernelBlurGenerator`) makes
and applies its kernels, as functions of tensors: camera paths from logits, drawn into kernels
with bilinear weights; kernels and paths moved so that their centroid is the centre,
differentiably; and an image blurred by a field of kernels, one per cell, blended between
cells.
"""

from __future__ import annotations

import functools

import torch
from torch.nn import functional as F

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
