"""The physics: energies, local fields and model-specific moves, one module per family."""

from ._base import AbstractDiscreteModel, AbstractLatticeModel, AbstractModel
from ._lattice import Ising, Potts, random_bond_couplings

__all__ = [
    "AbstractDiscreteModel",
    "AbstractLatticeModel",
    "AbstractModel",
    "Ising",
    "Potts",
    "random_bond_couplings",
]
