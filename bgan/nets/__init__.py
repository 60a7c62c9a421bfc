"""The networks of "Deblurring by Realistic Blurring" (Zhang et al., CVPR 2020), by family:

- :mod:`.blur`: the blur generators (BGAN): the paper's ResNet and blurgen's kernel generator,
  and :func:`blur_generator`, which builds either from its config;
- :mod:`.blur_kernels`: how the kernel generator makes and applies its kernels: camera paths
  drawn into kernels, centring, and blurring by a field of kernels;
- :mod:`.deblur`: the deblurring generators (DBGAN): the published RRDB network and a lighter
  ResNet, and :func:`deblur_generator`;
- :mod:`.discriminators`: the VGG-style, patch and multi-scale discriminators, and
  :func:`discriminator`;
- :mod:`.layers`: what several families share: the 3x3 convolution, residual blocks, and the
  paper's initialisation.

The networks and functions are imported from here (``from blurgen.bgan.nets import
KernelBlurGenerator``); the constants that tune them live in their modules.
"""

from .blur import BlurGenerator, KernelBlurGenerator, blur_generator
from .blur_kernels import (
    blend_blur,
    centre_kernels,
    centre_points,
    centring_shift,
    circle_path_logits,
    path_from_logits,
    path_kernels,
)
from .deblur import (
    DeblurGenerator,
    DenseBlock,
    ResidualInResidual,
    RRDBDeblurGenerator,
    deblur_generator,
)
from .discriminators import (
    Discriminator,
    MultiScaleDiscriminator,
    PatchDiscriminator,
    discriminator,
)
from .layers import ResidualBlock, ResidualNet, conv3x3, gaussian_init

__all__ = [
    "BlurGenerator",
    "DeblurGenerator",
    "DenseBlock",
    "Discriminator",
    "KernelBlurGenerator",
    "MultiScaleDiscriminator",
    "PatchDiscriminator",
    "RRDBDeblurGenerator",
    "ResidualBlock",
    "ResidualInResidual",
    "ResidualNet",
    "blend_blur",
    "blur_generator",
    "centre_kernels",
    "centre_points",
    "centring_shift",
    "circle_path_logits",
    "conv3x3",
    "deblur_generator",
    "discriminator",
    "gaussian_init",
    "path_from_logits",
    "path_kernels",
]
