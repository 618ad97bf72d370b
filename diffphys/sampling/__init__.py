"""Model-agnostic sampling kernels as `init`/`step` pairs, and the chain driver `run`."""

from ._base import SamplingAlgorithm, replicas, run, sweep_sites
from ._discrete import DiscreteInfo, DiscreteState, checkerboard, heat_bath, metropolis
from ._langevin import LangevinInfo, LangevinState, langevin
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
    "replicas",
    "run",
    "swap_rates",
    "sweep_sites",
]
