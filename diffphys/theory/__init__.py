"""Analytic and self-consistent solutions: exact formulas, replica and DMFT equations."""

from ._ising import T_C as ISING_2D_TC
from ._ising import onsager_energy, onsager_free_energy, yang_magnetization
from ._sk import (
    SK_FINITE_SIZE_EXPONENT,
    SK_GROUND_STATE_ENERGY,
    SK_RS_GROUND_STATE_ENERGY,
    sk_annealed_energy,
    sk_annealed_free_energy,
    sk_at_temperature,
    sk_finite_size_energy,
    sk_fit_finite_size,
    sk_replicon,
    sk_rs_energy,
    sk_rs_entropy,
    sk_rs_free_energy,
    sk_rs_ground_state_energy,
    sk_rs_overlap,
)

__all__ = [
    "ISING_2D_TC",
    "onsager_energy",
    "onsager_free_energy",
    "yang_magnetization",
    "SK_FINITE_SIZE_EXPONENT",
    "SK_GROUND_STATE_ENERGY",
    "SK_RS_GROUND_STATE_ENERGY",
    "sk_annealed_energy",
    "sk_annealed_free_energy",
    "sk_at_temperature",
    "sk_finite_size_energy",
    "sk_fit_finite_size",
    "sk_replicon",
    "sk_rs_energy",
    "sk_rs_entropy",
    "sk_rs_free_energy",
    "sk_rs_ground_state_energy",
    "sk_rs_overlap",
]
