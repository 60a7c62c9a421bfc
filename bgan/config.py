"""The settings of the two trainings, as frozen dataclasses whose fields carry their
command-line help (the training commands build their options from them).

This module imports no torch, so that the command line starts quickly.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from blurgen import methods as registry
from blurgen import presets

if TYPE_CHECKING:
    from blurgen.pipeline import DatasetConfig

# The blur generators (see blurgen.bgan.nets.blur_generator) and their widths and depths when
# not given: the paper's ResNet, and the kernel network's two hidden layers of 256.
BGAN_ARCHS = ("resnet", "kernels")
BGAN_SHAPES = {"resnet": (64, 9), "kernels": (256, 2)}
# How the kernel generator makes a kernel (see blurgen.bgan.nets.KernelBlurGenerator).
KERNEL_FORMS = ("softmax", "path")
# The ResNet blur generator's noise (see blurgen.bgan.nets.BlurGenerator).
NOISE_KINDS = ("map", "vector")
# The discriminators (see blurgen.bgan.nets.discriminator).
DISCRIMINATORS = ("vgg", "patch")
# What the patch discriminator sees (see blurgen.bgan.nets.PatchDiscriminator).
DISC_INPUTS = ("pixels", "gradients")
# The deblurring generators (see blurgen.bgan.nets.deblur_generator).
DEBLUR_ARCHS = ("rrdb", "resnet")
# The deblurring trainer's pixel losses (see blurgen.bgan.losses.content_loss).
CONTENT_LOSSES = ("mse", "l1")
# The preset of the deblurring trainer's pairs made on the fly (--synthesise), unless given,
# and the settings over it.
DEFAULT_PRESET = "camera-shake"
SYNTHESIS_SETTINGS = ("preset", "per_image", "synth_patch")


def setting(default: Any = MISSING, *, help: str, **hints: Any) -> Any:
    """A config field that carries its own command-line help: the training commands build
    their options from the fields (name, default, ``help``), so each is written once.

    ``hints`` shape the option: ``min`` (the least value of a number), ``choices`` (the allowed
    strings), ``path`` (``"file"``, ``"folder"`` or ``"any"``: an existing path).
    """
    return field(default=default, metadata={"help": help, **hints})


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """What both trainings share: length, batches, schedule, losses' common parts, networks'
    widths, checkpoints and precision. Each field's ``help`` says what it means."""

    iters: int = setting(10000, help="Optimisation steps.", min=1)
    batch: int = setting(4, help="Patches per step.", min=1)
    patch: int = setting(128, help="Side of the square training patches, px.", min=16)
    lr: float = setting(
        1e-4, help="Adam learning rate; decays linearly to 0 from --decay-start x --iters on."
    )
    # Without a warm-up, Adam's first steps, each about lr on every weight of the
    # zero-initialised last convolution, pushed the generator's last ReLUs to silence at
    # higher rates (at 5e-4 a 64-channel deblurring network stopped learning for good).
    warmup: int = setting(
        200,
        help="Steps over which the learning rate first rises linearly to --lr (0: none).",
        min=0,
    )
    decay_start: float = setting(
        0.5, help="Fraction of --iters after which the learning rate decays linearly to 0."
    )
    seed: int = setting(
        0,
        help="Root seed of the networks' initialisation and of the data "
        "drawn; the same seed and settings give the same run.",
        min=0,
    )
    perceptual_weight: float = setting(
        1.0, help="Weight of the VGG-19 perceptual loss (0: none, and no VGG-19 weights needed)."
    )
    adversarial_weight: float = setting(
        0.005, help="Weight of the relativistic-average least-squares adversarial loss."
    )
    content_weight: float = setting(1.0, help="Weight of the pixel loss to the sharp image.")
    vgg_layer: str = setting("conv3_3", help="VGG-19 layer of the perceptual loss.")
    vgg_weights: str | None = setting(
        None,
        help="torchvision vgg19 weights file; without it torch.hub downloads and caches them.",
        path="file",
    )
    channels: int = setting(64, help="Generator feature channels.", min=4)
    blocks: int = setting(9, help="Generator blocks.", min=1)
    discriminator: str = setting(
        "vgg",
        help="The discriminator: vgg (the paper's: strided stages, pooled, one score per "
        "image) or patch (PatchGAN: one score per overlapping patch of the input, so it "
        "judges local blur rather than content).",
        choices=DISCRIMINATORS,
    )
    disc_channels: int = setting(64, help="Discriminator channels of the first stage.", min=4)
    disc_layers: int = setting(
        3,
        help="patch: strided layers of the discriminator; each score sees 16, 34, 70, 142 px "
        "for 1 to 4.",
        min=1,
    )
    disc_scales: int = setting(
        1,
        help="patch: judge the images at this many scales (each 2x2 average-pooled from the "
        "last, each with a discriminator of its own), so that blur longer than a patch is "
        "judged too.",
        min=1,
    )
    disc_input: str = setting(
        "pixels",
        help="patch: what the discriminator sees: pixels, or gradients (each channel's "
        "differences to its neighbours: blur's length and direction without the content and "
        "brightness that drown them; with the resnet generator keep a content term for colour).",
        choices=DISC_INPUTS,
    )
    # PyTorch's default initialisation is the default here: with N(0, 0.01) the 11-layer
    # discriminator shrank its input ~1e7-fold and the generator got no adversarial gradient
    # (measured with bench/bgan_learns.py).
    init_std: float | None = setting(
        None,
        help="Initialise both networks with N(0, STD) "
        "weights and zero biases (the paper: 0.01); default: "
        "PyTorch's initialisation.",
    )
    checkpoint_every: int = setting(1000, help="Steps between checkpoints.", min=1)
    keep: int = setting(
        3, help="Step checkpoints kept besides latest.pt (and best.pt): the newest N.", min=1
    )
    sample_every: int = setting(500, help="Steps between sample grids.", min=1)
    log_every: int = setting(10, help="Steps between lines of log.jsonl.", min=1)
    bf16: bool = setting(True, help="bf16 autocast on CUDA; --no-bf16 trains in float32 there.")
    cpu_bf16: bool = setting(
        False,
        help="bf16 autocast on the CPU too: about 1.5-2x as fast "
        "where the CPU has AVX-512 BF16 or AMX (slower where it has "
        "not); the weights differ slightly from float32's.",
    )

    compile: bool = setting(
        False,
        help="Compile the networks' training steps with torch.compile (on the CPU it needs a C++ "
        "compiler; the first step waits for the compilation, a minute or more).",
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if "min" in f.metadata and value is not None and value < f.metadata["min"]:
                raise ValueError(f"{f.name} must be at least {f.metadata['min']}, "
                                 f"got {getattr(self, f.name)!r}")  # fmt: skip
            if "choices" in f.metadata and getattr(self, f.name) not in f.metadata["choices"]:
                raise ValueError(f"{f.name} must be one of {', '.join(f.metadata['choices'])}, "
                                 f"got {getattr(self, f.name)!r}")  # fmt: skip
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        for name, default in (("disc_scales", 1), ("disc_input", "pixels")):
            if getattr(self, name) != default and self.discriminator != "patch":
                raise ValueError(f"{name} applies to the patch discriminator (--discriminator "
                                 "patch)")  # fmt: skip
        if not 0 <= self.decay_start <= 1:
            raise ValueError(f"decay_start must be in [0, 1], got {self.decay_start!r}")


@dataclass(frozen=True, kw_only=True)
class BganConfig(TrainingConfig):
    """Everything that defines a BGAN training run: the fields of
    :class:`TrainingConfig` with the paper's BGAN defaults, and the photos,
    losses, generator and pretraining below. Each field's ``help`` (in its metadata, shown by
    ``blurgen train-bgan --help``) says what it means.
    """

    sharp: str = setting(help="Folder (or .txt list) of sharp photos.", path="any")
    blurry: str = setting(
        help="Folder (or .txt list) of real blurry photos; need not match the sharp ones.",
        path="any",
    )
    patch: int = setting(128, help="Side of the square training patches, px.", min=32)
    adversarial_weight: float = setting(
        0.005,
        help="Weight of the relativistic-average "
        "least-squares adversarial loss (the paper: 0.005).",
    )
    # It anchors colour and brightness when the VGG-19 is not pretrained.
    content_weight: float = setting(
        0.0,
        help="Weight of an MSE to the sharp input that holds "
        "colour and brightness (0 in the paper).",
    )
    content_scale: int = setting(
        8,
        help="The content MSE compares means over squares of this "
        "many px, what blur preserves (1: pixels, which fights the "
        "blur).",
        min=1,
    )
    arch: str = setting(
        "resnet",
        help="The generator: resnet, the paper's (sharp image + noise in, a residual added to "
        "the image out), or kernels, which generates a blur kernel for each --cell from its "
        "noise and blurs the image by them, blended between cells (brightness and colour are "
        "kept and nothing but blur can be made).",
        choices=BGAN_ARCHS,
    )
    channels: int | None = setting(
        None,
        help="Generator feature channels; default: 64 (the paper's) for resnet, 256 for the "
        "kernel network's hidden layers.",
        min=4,
    )
    blocks: int | None = setting(
        None,
        help="Generator residual blocks (resnet; default 9, the paper's) or the kernel "
        "network's hidden layers (default 2).",
        min=1,
    )
    kernel_size: int = setting(31, help="kernels: side of the generated kernels, px (odd).", min=1)
    cell: int = setting(
        64, help="kernels: side of the cells that each get their own kernel, px (even).", min=2
    )
    latent: int = setting(8, help="kernels: noise channels per cell.", min=1)
    sensor_noise: bool = setting(
        False,
        help="kernels: also learn the blurry photos' sensor noise (shot and read variances "
        "that vary from image to image) and add it, so that a discriminator cannot tell the "
        "generated photos by their missing noise.",
    )
    noise_kernel: int = setting(
        1,
        help="kernels, with --sensor-noise: side of a learned kernel that correlates the noise "
        "between neighbouring pixels, as demosaicing and JPEG do in real photos (odd; 1: white "
        "noise).",
        min=1,
    )
    noise_mixing: bool = setting(
        False,
        help="kernels, with --sensor-noise: learn how much of the noise the colour channels "
        "share (a 3 x 3 mixing of the noise maps), as real photos' noise is mostly grey "
        "after demosaicing and JPEG; without it each channel's noise is its own.",
    )
    variation_gain: float = setting(
        1.0,
        help="kernels: factor on the part of the kernels that varies with the noise: at 10 draws "
        "differ (at 1 they hardly did in 3,000 steps on real photos), but neighbouring cells' "
        "kernels then differ so much that their blend shows seams.",
    )
    kernel_form: str = setting(
        "softmax",
        help="kernels: how a kernel is made: softmax, a free kernel (any shape), or path, a "
        "camera path drawn into the kernel (points a bounded step apart, each with a time "
        "weight), so kernels are thin, continuous and centred, as shake kernels are.",
        choices=KERNEL_FORMS,
    )
    noise: str = setting(
        "map",
        help="resnet: the generator's noise: per-pixel maps, also injected into "
        "every residual block (the blur can vary across the image), or the "
        "paper's 4-vector repeated over the image.",
        choices=NOISE_KINDS,
    )
    scale: int = setting(
        1,
        help="resnet: the generator works on SCALE x SCALE cells of pixels stacked "
        "as channels, so it reaches SCALE times as far (blur paths are tens "
        "of px) for the same work; 1: the paper's. Must divide --patch.",
        min=1,
    )
    pretrain: int = setting(
        0,
        help="Steps, counted in --iters, in which the generator first "
        "learns to reproduce blurgen's own blur (--physics) of the sharp "
        "photos; the adversarial steps then move it toward the real blurry "
        "photos.",
        min=0,
    )
    # A DatasetConfig.to_dict() (a make-dataset preset's, for example); rendered with
    # reflected borders at the patch's size, so its kernels must fit in a patch.
    physics: dict | None = field(
        default=None,
        hash=False,
        metadata={"help": "make-dataset preset whose kernels and degradation --pretrain imitates."},
    )
    init: str | None = setting(
        None,
        help="Start the generator from these weights (a "
        "checkpoint, generator.pt, or builtin:lai2016 to adapt the "
        "shipped one to your photos); same network shape.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        channels, blocks = BGAN_SHAPES[self.arch]
        if self.channels is None:
            object.__setattr__(self, "channels", channels)
        if self.blocks is None:
            object.__setattr__(self, "blocks", blocks)
        if self.arch == "kernels":
            if self.kernel_size % 2 == 0 or self.cell % 2:
                raise ValueError(f"kernel_size must be odd and cell even, got "
                                 f"{self.kernel_size!r} and {self.cell!r}")  # fmt: skip
            if self.kernel_size // 2 >= self.patch:
                raise ValueError(f"kernel_size must be under twice the patch ({self.patch} px), "
                                 f"got {self.kernel_size!r}")  # fmt: skip
            if self.scale != 1 or self.noise != "map":
                raise ValueError("scale and noise are the resnet generator's")
            if self.kernel_form == "path" and self.kernel_size < 9:
                raise ValueError(f"path kernels must be at least 9 px, got {self.kernel_size!r}")
            if self.noise_kernel % 2 == 0 or (self.noise_kernel > 1 and not self.sensor_noise):
                raise ValueError(f"noise_kernel must be odd, and over 1 only with sensor_noise, "
                                 f"got {self.noise_kernel!r}")  # fmt: skip
            if self.noise_mixing and not self.sensor_noise:
                raise ValueError("noise_mixing needs sensor_noise")
        elif (self.sensor_noise or self.kernel_form != "softmax" or self.noise_kernel != 1
              or self.noise_mixing):  # fmt: skip
            raise ValueError("sensor_noise, noise_kernel, noise_mixing and kernel_form are the "
                             "kernel generator's")  # fmt: skip
        if not 0 <= int(self.pretrain) <= self.iters:
            raise ValueError(f"pretrain must be 0 to iters ({self.iters}) steps, "
                             f"got {self.pretrain!r}")  # fmt: skip
        if self.pretrain and self.physics is None:
            raise ValueError("pretraining needs the blur to imitate (physics=)")
        if self.pretrain:
            physics = physics_config(self.physics)
            if physics.kernel_size > self.patch:
                raise ValueError(f"the pretraining kernels ({physics.kernel_size} px) must fit "
                                 f"in a patch ({self.patch} px)")  # fmt: skip
        if int(self.content_scale) != self.content_scale:
            raise ValueError(f"content_scale must be a whole number, got {self.content_scale!r}")
        if int(self.scale) != self.scale or self.patch % self.scale:
            raise ValueError(f"scale must be a whole number that divides the patch "
                             f"({self.patch}), got {self.scale!r}")  # fmt: skip

    def generator(self) -> dict:
        """The generator's settings, as :func:`blurgen.bgan.nets.blur_generator` takes them."""
        shape = {"arch": self.arch, "channels": self.channels, "blocks": self.blocks}
        if self.arch == "kernels":
            return {**shape, "kernel_size": self.kernel_size, "cell": self.cell,
                    "latent": self.latent, "sensor_noise": self.sensor_noise,
                    "variation_gain": self.variation_gain, "form": self.kernel_form,
                    "noise_kernel": self.noise_kernel,
                    "noise_mixing": self.noise_mixing}  # fmt: skip
        return {**shape, "noise": self.noise, "scale": self.scale}


def physics_config(values: dict) -> DatasetConfig:
    """The kernel blur of ``values`` (``DatasetConfig.to_dict()``); ValueError if it is
    learned."""
    from blurgen.pipeline import DatasetConfig

    config = DatasetConfig.from_dict(values)
    if not all(method.convolves for method in config.blur_methods()):
        kernels = " or ".join(m.name for m in registry.methods() if m.convolves)
        raise ValueError(f"the pretraining blur must be made by kernels ({kernels})")
    return config


@dataclass(frozen=True, kw_only=True)
class DeblurConfig(TrainingConfig):
    """Everything that defines a deblur training run: the fields of
    :class:`TrainingConfig` with DBGAN's defaults, and the data, losses and
    network below. Each field's ``help`` (in its metadata, shown by ``blurgen train-deblur
    --help``) says what it means.
    """

    data: tuple[str, ...] = setting(
        (), help="Pairs files from make-dataset to train on (or --synthesise).", path="file"
    )
    synthesise: tuple[str, ...] = setting(
        (),
        help="Train on pairs made on the fly from these sharp photos, folders or .txt lists, "
        "instead of --data files: pair i is the pair i that make-dataset writes from them "
        "with --preset, --per-image, --synth-patch and --seed.",
        path="any",
    )
    preset: str | None = setting(
        None,
        help="--synthesise: the pairs' make-dataset settings: a shipped preset "
        f"({', '.join(presets.names())}), {presets.NONE} (blurgen's defaults) or a YAML file "
        "of make-dataset settings (as `blurgen calibrate` writes); default "
        f"{DEFAULT_PRESET}. Read once, when the run starts: config.json keeps the settings "
        "(synthesis), and --resume goes on with them even if the file has changed.",
    )
    per_image: int | None = setting(
        None,
        help="--synthesise: pairs made from each photo (make-dataset's --per-image); default: "
        "the preset's, else make-dataset's.",
        min=1,
    )
    synth_patch: int | None = setting(
        None,
        help="--synthesise: side of the pairs made, px (make-dataset's --patch; --patch is the "
        "side of the training crops cut from them); default: the preset's, else "
        "make-dataset's.",
        min=8,
    )
    # The make-dataset config (DatasetConfig.to_dict()) of the pairs made on the fly: resolved
    # from preset, per_image and synth_patch when the run starts, unless given (the CLI gives
    # a resumed run's own), so that the run folder records the pairs whatever the preset's
    # file becomes. No option: without help.
    synthesis: dict | None = field(default=None, hash=False)
    val: tuple[str, ...] = setting(
        (),
        help="Pairs files to validate on; default: hold out "
        "whole source photos holding --val-split of the pairs.",
        path="file",
    )
    val_split: float = setting(
        0.05,
        help="Fraction of the pairs held out for validation "
        "(whole source photos, chosen by the seed) when no --val is "
        "given; 0: train on all the pairs without validation (no best.pt).",
    )
    iters: int = setting(20000, help="Optimisation steps.", min=1)
    transpose: bool = setting(
        True,
        help="Transpose training crops at random: with the random "
        "flips, each pair is seen in all 8 orientations (its 90° "
        "rotations and their mirrors).",
    )
    content_loss: str = setting(
        "mse",
        help="Pixel loss to the sharp image: mse (the paper's) "
        "or l1, which leaves flat areas alone more readily.",
        choices=CONTENT_LOSSES,
    )
    adversarial_weight: float = setting(
        0.01,
        help="Weight of the relativistic-average least-squares adversarial loss (the paper: 0.01).",
    )
    gan: bool = setting(
        True,
        help="Train with the adversarial loss; --no-gan trains on the "
        "content and perceptual losses only.",
    )
    arch: str = setting(
        "rrdb",
        help="The generator: rrdb, the published DBGAN (RRDB blocks, "
        "11.6 M parameters at 64 channels and 16 blocks), or resnet, lighter "
        "(plain residual blocks, 3.0 M).",
        choices=DEBLUR_ARCHS,
    )
    blocks: int = setting(16, help="Generator blocks (16 in the paper).", min=1)
    growth: int = setting(32, help="rrdb: channels each dense layer adds (32 in the paper).", min=1)
    val_every: int = setting(500, help="Steps between validations.", min=1)
    # On the CPU a training step dwarfs its input (an rrdb step of 16 crops of 128 px took 5 s,
    # loading its batch 18 ms: bench/deblur_input.py), so the default spends no processes there.
    workers: int | None = setting(
        None,
        help="Processes that load batches ahead of the training step (0: the training process "
        "loads them); default: 2 when training on CUDA, 0 on the CPU. The batches do not "
        "depend on it.",
        min=0,
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", tuple(str(p) for p in self.data))
        object.__setattr__(self, "val", tuple(str(p) for p in self.val))
        object.__setattr__(self, "synthesise", tuple(str(p) for p in self.synthesise))
        super().__post_init__()
        if bool(self.data) == bool(self.synthesise):
            raise ValueError(
                "give pairs files (--data) or photos to make pairs from (--synthesise), not both"
                if self.data
                else "give pairs files to train on (--data), or photos to make them from "
                "(--synthesise)"
            )
        self._resolve_synthesis()
        if not self.val and not 0 <= self.val_split < 1:
            raise ValueError(f"val_split must be in [0, 1) (0: no validation), got "
                             f"{self.val_split!r}")  # fmt: skip

    def _resolve_synthesis(self) -> None:
        """Check the settings of pairs made on the fly, and resolve their config (once: a
        ``synthesis`` given is kept, in its canonical form)."""
        from blurgen.pipeline import DatasetConfig

        given = [name for name in SYNTHESIS_SETTINGS if getattr(self, name) is not None]
        if not self.synthesise:
            if given or self.synthesis is not None:
                names = given or ["synthesis"]
                verb = "applies" if len(names) == 1 else "apply"
                raise ValueError(f"{', '.join(names)} {verb} only to pairs made on the fly "
                                 "(--synthesise)")  # fmt: skip
            return
        object.__setattr__(self, "preset", self.preset or DEFAULT_PRESET)
        if self.synthesis is None:
            made = synthesis_config(self.preset, self.per_image, self.synth_patch)
        else:
            made = DatasetConfig.from_dict(self.synthesis)
        for name, value in (("synth_patch", made.patch), ("per_image", made.per_image)):
            if getattr(self, name) not in (None, value):
                raise ValueError(f"{name} is {getattr(self, name)}, but synthesis makes "
                                 f"{value}")  # fmt: skip
        if self.patch > made.patch:
            raise ValueError(f"the training crops (patch {self.patch}) must fit in the pairs "
                             f"made (synth_patch {made.patch})")  # fmt: skip
        object.__setattr__(self, "synthesis", made.to_dict())


def synthesis_config(
    preset: str | None, per_image: int | None, synth_patch: int | None
) -> DatasetConfig:
    """The make-dataset config of a deblur run's pairs made on the fly: ``preset`` (a shipped
    preset's name, ``"none"`` or a settings file; None for DEFAULT_PRESET), with ``per_image``
    and ``synth_patch`` (its ``patch``) over the preset's where given.

    Raises:
        ValueError: no such preset, an unreadable file, or a bad setting (the message says
            which).
    """
    overrides = {"patch": synth_patch, "per_image": per_image}
    return presets.load(preset or DEFAULT_PRESET,
                        **{k: v for k, v in overrides.items() if v is not None})  # fmt: skip
