"""Training loops: plain optax inside `lax.scan`, vmapped over seeds and hyperparameters."""

from ._ais import AISResult, ais, ais_reverse
from ._boltzmann import (
    FitResult,
    MCHState,
    boltzmann_learning,
    fit_boltzmann,
    fit_mch,
    init_mch,
    init_spins,
    monte_carlo_histogram,
)
from ._ebm import cd, exact_gradient, init_chains, pcd
from ._loop import TrainState, from_loss, train
from ._observable_grad import fluctuation_surrogate, langevin_pathwise
from ._score import (
    denoising_score_matching,
    dsm_loss,
    implicit_score_matching,
    implicit_score_matching_loss,
    split_model,
)

__all__ = [
    "langevin_pathwise",
    "fluctuation_surrogate",
    "monte_carlo_histogram",
    "init_spins",
    "init_mch",
    "fit_mch",
    "fit_boltzmann",
    "boltzmann_learning",
    "MCHState",
    "FitResult",
    "AISResult",
    "TrainState",
    "ais",
    "ais_reverse",
    "cd",
    "denoising_score_matching",
    "dsm_loss",
    "exact_gradient",
    "from_loss",
    "implicit_score_matching",
    "implicit_score_matching_loss",
    "init_chains",
    "pcd",
    "split_model",
    "train",
]
