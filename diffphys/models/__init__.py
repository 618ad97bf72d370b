"""The physics: energies, local fields and model-specific moves, one module per family."""

from ._base import AbstractDiscreteModel, AbstractLatticeModel, AbstractModel
from ._diffusion import (
    EmpiricalScore,
    GaussianMixtureScore,
    GaussianScore,
    ScoreMLP,
    forward_sample,
    ou_mean_scale,
    ou_variance,
    time_embedding,
)
from ._diffusion_sampling import (
    log_likelihood,
    probability_flow,
    reverse_sde,
    reverse_sde_step,
    reverse_sde_times,
)
from ._lattice import Ising, Potts, random_bond_couplings
from ._nonreciprocal import (
    NonreciprocalInfo,
    NonreciprocalSK,
    NonreciprocalState,
    nonreciprocal_langevin,
)
from ._spherical import (
    SphericalLangevinInfo,
    SphericalLangevinState,
    SphericalPSpin,
    project_to_sphere,
    spherical_langevin,
)
from ._ising_fast import IsingCheckerboardState, ising_checkerboard_metropolis
from ._sk import MAX_COUPLINGS, SK, PSpin, SKState, sk_metropolis
from ._rbm import RBM, RBMInfo, RBMState, block_gibbs, independent_site_bias, sample_chains

__all__ = [
    "NonreciprocalInfo",
    "NonreciprocalSK",
    "NonreciprocalState",
    "nonreciprocal_langevin",
    "SphericalLangevinInfo",
    "SphericalLangevinState",
    "SphericalPSpin",
    "project_to_sphere",
    "spherical_langevin",
    "MAX_COUPLINGS",
    "PSpin",
    "SK",
    "SKState",
    "sk_metropolis",
    "EmpiricalScore",
    "GaussianMixtureScore",
    "GaussianScore",
    "ScoreMLP",
    "forward_sample",
    "ou_mean_scale",
    "ou_variance",
    "time_embedding",
    "log_likelihood",
    "probability_flow",
    "reverse_sde",
    "reverse_sde_step",
    "reverse_sde_times",
    "AbstractDiscreteModel",
    "AbstractLatticeModel",
    "AbstractModel",
    "Ising",
    "IsingCheckerboardState",
    "ising_checkerboard_metropolis",
    "Potts",
    "RBM",
    "RBMInfo",
    "RBMState",
    "block_gibbs",
    "independent_site_bias",
    "sample_chains",
    "random_bond_couplings",
]
