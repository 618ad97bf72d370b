"""Model-agnostic sampling kernels as `init`/`step` pairs, and the chain driver `run`.

The model-specific fast kernels are reachable from here too, so that every sampler is one
import away: `sampling.fused_checkerboard` (the fused C++ Ising kernel),
`sampling.ising_checkerboard_metropolis` (multispin-coded), `sampling.multispin_checkerboard`
(an ensemble of samples, one bit each), `sampling.sk_metropolis` (SK / Hopfield local-field
sweeps, pure JAX or native), `sampling.potts_sequential` (dense pairwise Potts local-field
sweeps, native or pure JAX), `sampling.pspin_metropolis` (Ising p = 3 spin glass, field-matrix
sweeps, native or pure JAX), `sampling.swendsen_wang` and `sampling.wolff` (cluster updates). They live in `diffphys.models`, next to the models whose
structure they exploit, and are imported from there on first use.
"""

from ._base import SamplingAlgorithm, replicas, run, sweep_sites
from ._discrete import DiscreteInfo, DiscreteState, checkerboard, heat_bath, metropolis
from ._langevin import LangevinInfo, LangevinState, langevin, project_to_sphere
from ._tempering import TemperingInfo, TemperingState, parallel_tempering, swap_rates

__all__ = [
    "DiscreteInfo",
    "DiscreteState",
    "LangevinInfo",
    "LangevinState",
    "SamplingAlgorithm",
    "TemperingInfo",
    "TemperingState",
    "checkerboard",
    "heat_bath",
    "langevin",
    "metropolis",
    "parallel_tempering",
    "project_to_sphere",
    "replicas",
    "run",
    "swap_rates",
    "sweep_sites",
]

_FROM_MODELS = (
    "fused_checkerboard",
    "ising_checkerboard_metropolis",
    "multispin_checkerboard",
    "potts_sequential",
    "pspin_metropolis",
    "sk_metropolis",
    "swendsen_wang",
    "wolff",
)


def __getattr__(name):
    # models import sampling, so the model-specific kernels are re-exported lazily
    if name in _FROM_MODELS:
        from .. import models

        return getattr(models, name)
    raise AttributeError(f"module 'diffphys.sampling' has no attribute {name!r}")


def __dir__():
    return sorted([*__all__, *_FROM_MODELS])
