"""Training loops: plain optax inside `lax.scan`, vmapped over seeds and hyperparameters."""

from ._ais import AISResult, ais, ais_reverse
from ._ebm import cd, exact_gradient, init_chains, pcd
from ._flow import gradient_flow
from ._loop import TrainState, from_loss, train
from ._score import (
    denoising_score_matching,
    dsm_loss,
    implicit_score_matching,
    implicit_score_matching_loss,
    split_model,
)

__all__ = [
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
]
