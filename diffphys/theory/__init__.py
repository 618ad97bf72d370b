"""Analytic and self-consistent solutions: exact formulas, replica and DMFT equations."""

from ._ising import T_C as ISING_2D_TC
from ._ising import onsager_energy, onsager_free_energy, yang_magnetization

__all__ = ["ISING_2D_TC", "onsager_energy", "onsager_free_energy", "yang_magnetization"]
