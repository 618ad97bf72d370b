"""Abstract model classes: what a sampler may ask of a model.

A model is an `equinox.Module` holding its parameters (couplings, fields, patterns) as array
fields and its sizes as static fields. It holds no PRNG key and no batch axis: ensembles are
built with `jax.vmap` from outside.
"""

import abc
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ShapeError
from .._types import Array, Config, Energies, Float, IntScalar, Key, Spins


class AbstractModel(eqx.Module):
    """Anything with an energy. Continuous models only need `energy` (samplers differentiate it).

    Every subclass's `energy(x)` first calls `check_state(x)`, so a configuration of the wrong
    shape is a `ShapeError` that names the expected shape, not a broadcasting error from deep
    inside the energy. The check runs on static shapes: once per trace under `jit`, free at run
    time.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        energy = cls.__dict__.get("energy")
        if (
            energy is None
            or getattr(energy, "__isabstractmethod__", False)
            or getattr(energy, "_checks_state", False)
            or not callable(energy)
        ):
            return

        @functools.wraps(energy)
        def checked_energy(self, x, *args, **kwargs):
            self.check_state(x)
            return energy(self, x, *args, **kwargs)

        checked_energy._checks_state = True
        cls.energy = checked_energy

    @abc.abstractmethod
    def energy(self, x: Config) -> Float[Array, ""]:
        """Energy of one configuration (no batch axis)."""

    def check_state(self, x: Config) -> None:
        """Raise a `ShapeError` when `x` cannot be a configuration of this model."""


class AbstractDiscreteModel(AbstractModel):
    """A model of `n_sites` discrete variables, each taking one of `len(spin_values)` values.

    The state is an array of shape `shape` holding the spin *values* (Ising: -1/+1, Potts:
    0..q-1). Concrete models implement `energy` and, for speed, `site_energies`.
    """

    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, ...]:
        """Shape of one configuration."""

    @property
    @abc.abstractmethod
    def spin_values(self) -> tuple[int, ...]:
        """The values a single variable can take, in index order."""

    @property
    def n_sites(self) -> int:
        return math.prod(self.shape)

    @property
    def q(self) -> int:
        return len(self.spin_values)

    @property
    def dtype(self):
        return jnp.int8

    def value_index(self, x: Spins) -> Array:
        """Map spin values to indices 0..q-1."""
        vals = jnp.asarray(self.spin_values, dtype=jnp.int32)
        return jnp.searchsorted(vals, x.astype(jnp.int32)).astype(jnp.int32)

    def index_value(self, idx: Array) -> Spins:
        """Map indices 0..q-1 to spin values."""
        return jnp.asarray(self.spin_values, dtype=self.dtype)[idx]

    def random_state(self, *, key: Key) -> Spins:
        """A uniformly random configuration (infinite temperature)."""
        return self.index_value(jax.random.randint(key, self.shape, 0, self.q))

    def site_energies(self, x: Spins, i: IntScalar) -> Float[Array, " q"]:
        """Energies of the configurations with flat site `i` set to each value, minus a constant.

        Only differences between entries matter. This default evaluates `energy` q times,
        O(q N); models override it with their O(degree) local field.
        """
        flat = x.reshape(-1)

        def with_value(v):
            return self.energy(flat.at[i].set(v).reshape(self.shape))

        return jax.vmap(with_value)(jnp.asarray(self.spin_values, dtype=x.dtype))

    def check_state(self, x: Config) -> None:
        if not hasattr(x, "shape") or tuple(x.shape) != tuple(self.shape):
            got = getattr(x, "shape", type(x).__name__)
            raise ShapeError(
                f"{type(self).__name__} expects a configuration of shape {self.shape}, got "
                f"{got}. Batch over configurations with jax.vmap or diffphys.ensemble.run."
            )


class AbstractIsingModel(AbstractDiscreteModel):
    """A discrete model of Ising spins: values -1/+1 (index 0/1), stored as int8."""

    @property
    def spin_values(self) -> tuple[int, ...]:
        return (-1, 1)

    def value_index(self, x: Spins) -> Array:
        return ((x.astype(jnp.int32) + 1) // 2).astype(jnp.int32)

    def index_value(self, idx: Array) -> Spins:
        return (2 * idx - 1).astype(self.dtype)


class AbstractLatticeModel(AbstractDiscreteModel):
    """A discrete model on a periodic lattice whose sites can be updated colour by colour.

    `local_energies(x)[..., v]` is the energy of each site's interactions with its neighbours
    if that site took value index v (all sites at once). `colouring` assigns every site a colour
    such that no two sites of one colour interact; checkerboard samplers update one colour at a
    time.
    """

    @abc.abstractmethod
    def local_energies(self, x: Spins) -> Energies:
        """Per-site conditional energies, shape `(*shape, q)`."""

    @property
    def n_colours(self) -> int:
        return 2

    def colouring(self) -> np.ndarray:
        """Integer colour of every site (the two-colour parity of a hypercubic lattice)."""
        for n in self.shape:
            if n % 2:
                raise ShapeError(
                    f"A checkerboard update needs an even linear size on every axis, got lattice "
                    f"{self.shape}. Use an even L, or the single-site metropolis/heat_bath "
                    f"samplers."
                )
        grids = np.indices(self.shape).sum(axis=0)
        return (grids % 2).astype(np.int8)

    def site_energies(self, x: Spins, i: IntScalar) -> Float[Array, " q"]:
        idx = jnp.unravel_index(i, self.shape)
        return self._site_energies_at(x, idx)

    def _site_energies_at(self, x: Spins, idx) -> Float[Array, " q"]:
        return self.local_energies(x)[idx]
