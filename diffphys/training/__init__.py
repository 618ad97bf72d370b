"""Training loops: plain optax inside `lax.scan`, vmapped over seeds and hyperparameters."""

from ._loop import TrainState, from_loss, train

__all__ = ["TrainState", "from_loss", "train"]
