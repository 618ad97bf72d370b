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
from ._flow import gradient_flow
from ._inverse import (
    InverseFit,
    exact_likelihood,
    fit_exact,
    fit_mpf,
    fit_pseudolikelihood,
    init_model,
    model_moments,
    mpf,
    pseudolikelihood,
)
from ._inverse_data import (
    SpinData,
    load_spin_data,
    spin_data,
    spin_moments,
    stack_spin_data,
    unique_samples,
)
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
    "InverseFit",
    "SpinData",
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
    "gradient_flow",
    "implicit_score_matching",
    "implicit_score_matching_loss",
    "init_chains",
    "pcd",
    "split_model",
    "train",
    "unique_samples",
    "exact_likelihood",
    "fit_exact",
    "fit_mpf",
    "fit_pseudolikelihood",
    "init_model",
    "load_spin_data",
    "model_moments",
    "mpf",
    "pseudolikelihood",
    "spin_data",
    "spin_moments",
    "stack_spin_data",
]
