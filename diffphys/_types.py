"""Array type aliases used across diffphys (jaxtyping; checked at run time in the tests)."""

from typing import Any, TypeAlias

from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree, Real, Shaped, UInt

Key: TypeAlias = PRNGKeyArray
Spins: TypeAlias = Shaped[Array, "*lattice"]
"""A discrete configuration: spin values (Ising ±1) or state indices (Potts 0..q-1)."""
Config: TypeAlias = PyTree[Any]
"""Any configuration a model accepts (spins, a vector on the sphere, a pytree of layers)."""
Scalar: TypeAlias = Float[Array, ""]
RealScalar: TypeAlias = Real[ArrayLike, ""]
"""A real parameter: a Python or NumPy number, or a 0-d array (a traced one when vmapped over)."""
IntScalar: TypeAlias = Int[ArrayLike, ""]
"""An integer parameter: a Python or NumPy integer, or a 0-d integer array (possibly traced)."""
Energies: TypeAlias = Float[Array, "*lattice q"]

__all__ = ["Array", "ArrayLike", "Config", "Energies", "Float", "Int", "IntScalar", "Key", "PyTree", "Real",
           "RealScalar", "Scalar", "Spins", "UInt"]
