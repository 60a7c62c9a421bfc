"""What ``blurgen calibrate`` searches: each parameter's range and meaning, gathered from their
owners (the kernel size, each blur method's model and share, the degradation), without the
search's heavy imports, so that the command line can list them in its help."""

from __future__ import annotations

from . import methods as registry
from .degradation import DEGRADATION_PARAMETERS, NOT_FITTED_BY_DEFAULT
from .settings import Parameter


def _parameters() -> dict[str, Parameter]:
    """The kernel size, each method's model parameters, the methods' shares, the
    degradation's parameters."""
    methods = registry.methods()
    return {
        "kernel_size": Parameter(9, 101, True, "kernel side in px"),
        **{name: p for method in methods for name, p in method.calibration.items()},
        **{method.name: method.share for method in methods if method.share},
        **DEGRADATION_PARAMETERS,
    }


PARAMETERS = _parameters()
# Left out unless asked for: the shares of methods that fit only on request and their models'
# parameters, and the degradation's parameters that switch the ISP on.
DEFAULT_FIT = tuple(
    name for name in PARAMETERS
    if not any((m.name == name or name in m.calibration) and not m.share_fitted
               for m in registry.methods())
    and name not in NOT_FITTED_BY_DEFAULT
)  # fmt: skip


def described() -> str:
    """The parameters as a sentence for ``--help``: each name with its meaning, and which are
    left out by default."""
    listed = "; ".join(f"{name}: {p.help}" if p.help else name for name, p in PARAMETERS.items())
    left_out = [name for name in PARAMETERS if name not in DEFAULT_FIT]
    return f"{listed}. Default: all but {', '.join(left_out)}."
