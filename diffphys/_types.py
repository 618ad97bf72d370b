"""Array type aliases used across diffphys (jaxtyping; checked at run time in the tests)."""

from typing import Any, TypeAlias

from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree, Shaped

Key: TypeAlias = PRNGKeyArray
Spins: TypeAlias = Shaped[Array, "*lattice"]
"""A discrete configuration: spin values (Ising ±1) or state indices (Potts 0..q-1)."""
Config: TypeAlias = PyTree[Any]
"""Any configuration a model accepts (spins, a vector on the sphere, a pytree of layers)."""
Scalar: TypeAlias = Float[Array, ""]
Energies: TypeAlias = Float[Array, "*lattice q"]

__all__ = ["Array", "Config", "Energies", "Float", "Int", "Key", "PyTree", "Scalar", "Spins"]
