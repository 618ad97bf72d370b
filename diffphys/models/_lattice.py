"""Spin models on periodic hypercubic lattices: Ising (uniform, random-bond, Edwards–Anderson)
and the q-state Potts model."""

import math

import equinox as eqx
import jax.numpy as jnp

from .._errors import ConfigError, ShapeError, check_nonnegative
from .._types import Array, Energies, Float, Key, Spins
from ._base import AbstractIsingModel, AbstractLatticeModel


def _check_lattice(lattice) -> tuple[int, ...]:
    try:
        lattice = tuple(int(n) for n in lattice)
    except TypeError:
        raise ConfigError(
            f"lattice must be a tuple of linear sizes such as (64, 64), got {lattice!r}."
        ) from None
    if not lattice or any(n < 2 for n in lattice):
        raise ConfigError(f"every linear size of the lattice must be >= 2, got {lattice}.")
    return lattice


def _bonds(J, lattice, dtype) -> Array:
    d = len(lattice)
    J = jnp.asarray(J, dtype=dtype)
    if J.ndim == 0:
        return jnp.full((d, *lattice), J)
    if J.shape == (d,):
        return jnp.broadcast_to(J.reshape(d, *([1] * d)), (d, *lattice))
    if J.shape != (d, *lattice):
        raise ShapeError(
            f"J must be a scalar, one coupling per axis of shape ({d},), or one coupling per bond "
            f"of shape {(d, *lattice)} (J[a, x] couples x to x + e_a), got {J.shape}."
        )
    return J


def _neighbour(idx: tuple, axis: int, step: int, lattice) -> tuple:
    return tuple((c + step) % n if a == axis else c for a, (c, n) in enumerate(zip(idx, lattice)))


class Ising(AbstractLatticeModel, AbstractIsingModel):
    r"""Ising model on a periodic hypercubic lattice, spins $s_x = \pm 1$.

    $$E(s) = -\sum_x \sum_{a=1}^{d} J_{a,x}\, s_x s_{x+e_a} - \sum_x h_x s_x .$$

    Uniform `J` is the ferromagnet (2D critical point $T_c = 2/\ln(1+\sqrt 2)$, Onsager 1944);
    per-bond `J` drawn at random gives random-bond and Edwards–Anderson spin glasses.

    **Arguments:**

    - `lattice`: linear sizes, e.g. `(64, 64)` or `(16, 16, 16)`.
    - `J`: a scalar, one value per axis `(d,)`, or one value per bond `(d, *lattice)`.
    - `h`: a scalar or one field per site `lattice`.
    """

    J: Float[Array, "d *lattice"]  # noqa: F821 (a jaxtyping shape, not a name)
    h: Float[Array, "*lattice"]
    lattice: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, lattice, J=1.0, h=0.0, *, dtype=jnp.float32):
        self.lattice = _check_lattice(lattice)
        self.J = _bonds(J, self.lattice, dtype)
        h = jnp.asarray(h, dtype=dtype)
        if h.ndim and h.shape != self.lattice:
            raise ShapeError(f"h must be a scalar or of shape {self.lattice}, got {h.shape}.")
        self.h = jnp.broadcast_to(h, self.lattice)

    @classmethod
    def edwards_anderson(
        cls, key: Key, lattice, *, couplings: str = "gaussian", h=0.0, dtype=jnp.float32
    ) -> "Ising":
        r"""An Edwards–Anderson spin glass (Edwards & Anderson 1975): independent random bonds
        $J_{a,x}$ on every nearest-neighbour edge of the periodic lattice.

        **Arguments:**

        - `key`: the disorder key (one key, one sample of the couplings).
        - `lattice`: linear sizes, e.g. `(16, 16)` or `(8, 8, 8)`.
        - `couplings`: `"gaussian"` ($J \sim N(0, 1)$) or `"pm1"` ($J = \pm 1$ with
          probability 1/2 each).
        - `h`: a uniform field or one field per site.

        Batches of disorder samples: `jax.vmap(lambda k: Ising.edwards_anderson(k, L))(keys)`.
        """
        return cls(
            lattice,
            J=random_bond_couplings(key, lattice, kind=couplings, dtype=dtype),
            h=h,
            dtype=dtype,
        )

    @classmethod
    def random_field(cls, key: Key, lattice, *, sigma: float, J=1.0, dtype=jnp.float32) -> "Ising":
        r"""The random-field Ising model (Imry & Ma 1975): uniform couplings `J` and independent
        Gaussian fields $h_x \sim N(0, \sigma^2)$ at every site.

        **Arguments:**

        - `key`: the disorder key.
        - `lattice`: linear sizes.
        - `sigma`: the standard deviation of the fields, >= 0.
        - `J`: the couplings (a scalar, per axis or per bond, as in `Ising`).
        """
        import jax

        check_nonnegative("sigma", sigma)
        lattice = _check_lattice(lattice)
        h = sigma * jax.random.normal(key, lattice, dtype)
        return cls(lattice, J=J, h=h, dtype=dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.lattice

    def energy(self, x: Spins) -> Float[Array, ""]:
        s = x.astype(self.J.dtype)
        bonds = sum(
            jnp.sum(self.J[a] * s * jnp.roll(s, -1, axis=a)) for a in range(len(self.lattice))
        )
        return -bonds - jnp.sum(self.h * s)

    def local_field(self, x: Spins) -> Float[Array, "*lattice"]:
        r"""$f_x = h_x + \sum_a (J_{a,x} s_{x+e_a} + J_{a,x-e_a} s_{x-e_a})$ at every site."""
        s = x.astype(self.J.dtype)
        f = self.h
        for a in range(len(self.lattice)):
            f = f + self.J[a] * jnp.roll(s, -1, axis=a) + jnp.roll(self.J[a] * s, 1, axis=a)
        return f

    def local_energies(self, x: Spins) -> Energies:
        f = self.local_field(x)
        return jnp.stack([f, -f], axis=-1)

    def _site_energies_at(self, x: Spins, idx) -> Float[Array, " q"]:
        s = x.astype(self.J.dtype)
        f = self.h[idx]
        for a in range(len(self.lattice)):
            up = _neighbour(idx, a, 1, self.lattice)
            down = _neighbour(idx, a, -1, self.lattice)
            f = f + self.J[(a, *idx)] * s[up] + self.J[(a, *down)] * s[down]
        return jnp.stack([f, -f])

    def magnetization(self, x: Spins) -> Float[Array, ""]:
        """Magnetisation per spin."""
        return jnp.mean(x.astype(self.J.dtype))

    @property
    def critical_temperature(self) -> float:
        """Onsager's $T_c = 2/\\ln(1+\\sqrt2)$ for the uniform 2D ferromagnet with J = 1."""
        if len(self.lattice) != 2:
            raise ConfigError("the exact critical temperature is known for d = 2 only.")
        return 2.0 / math.log(1.0 + math.sqrt(2.0))


class Potts(AbstractLatticeModel):
    r"""q-state Potts model on a periodic square (or hypercubic) lattice, $s_x \in \{0..q-1\}$.

    $$E(s) = -\sum_x \sum_a J_{a,x}\, \delta(s_x, s_{x+e_a}) - \sum_x h_{x, s_x}.$$

    For uniform J = 1 in 2D the transition is at $T_c = 1/\ln(1+\sqrt q)$ (Baxter 1973),
    continuous for q <= 4 and first order for q > 4.

    **Arguments:**

    - `lattice`: linear sizes.
    - `q`: number of states, q >= 2 (q = 2 is the Ising model with coupling J/2).
    - `J`: scalar, per axis `(d,)` or per bond `(d, *lattice)`.
    - `h`: field per state `(q,)` or per site and state `(*lattice, q)`.
    """

    J: Float[Array, "d *lattice"]  # noqa: F821 (a jaxtyping shape, not a name)
    h: Float[Array, "*lattice q"]
    lattice: tuple[int, ...] = eqx.field(static=True)
    n_states: int = eqx.field(static=True)

    def __init__(self, lattice, q: int, J=1.0, h=0.0, *, dtype=jnp.float32):
        if int(q) != q or q < 2:
            raise ConfigError(f"The Potts model needs an integer q >= 2 states, got q={q!r}.")
        self.n_states = int(q)
        self.lattice = _check_lattice(lattice)
        self.J = _bonds(J, self.lattice, dtype)
        h = jnp.asarray(h, dtype=dtype)
        if h.ndim and h.shape not in ((self.n_states,), (*self.lattice, self.n_states)):
            raise ShapeError(
                f"h must be a scalar, of shape ({q},) or {(*self.lattice, q)}, got {h.shape}."
            )
        self.h = jnp.broadcast_to(h, (*self.lattice, self.n_states))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.lattice

    @property
    def spin_values(self) -> tuple[int, ...]:
        return tuple(range(self.n_states))

    def value_index(self, x: Spins) -> Array:
        return x.astype(jnp.int32)

    def index_value(self, idx: Array) -> Spins:
        return idx.astype(self.dtype)

    def energy(self, x: Spins) -> Float[Array, ""]:
        bonds = sum(
            jnp.sum(self.J[a] * (x == jnp.roll(x, -1, axis=a)).astype(self.J.dtype))
            for a in range(len(self.lattice))
        )
        field = jnp.sum(jnp.take_along_axis(self.h, x[..., None].astype(jnp.int32), -1))
        return -bonds - field

    def local_energies(self, x: Spins) -> Energies:
        onehot = (x[..., None] == jnp.arange(self.n_states, dtype=x.dtype)).astype(self.J.dtype)
        e = -self.h
        for a in range(len(self.lattice)):
            Ja = self.J[a][..., None]
            e = e - Ja * jnp.roll(onehot, -1, axis=a) - jnp.roll(Ja * onehot, 1, axis=a)
        return e

    def _site_energies_at(self, x: Spins, idx) -> Float[Array, " q"]:
        vals = jnp.arange(self.n_states, dtype=x.dtype)
        e = -self.h[idx]
        for a in range(len(self.lattice)):
            up = _neighbour(idx, a, 1, self.lattice)
            down = _neighbour(idx, a, -1, self.lattice)
            dt = self.J.dtype
            e = e - self.J[(a, *idx)] * (vals == x[up]).astype(dt)
            e = e - self.J[(a, *down)] * (vals == x[down]).astype(dt)
        return e

    @property
    def critical_temperature(self) -> float:
        """$T_c = 1/\\ln(1+\\sqrt q)$ for the uniform 2D model with J = 1."""
        if len(self.lattice) != 2:
            raise ConfigError("the exact critical temperature is known for d = 2 only.")
        return 1.0 / math.log(1.0 + math.sqrt(self.n_states))

    def order_parameter(self, x: Spins) -> Float[Array, ""]:
        r"""$m = (q \max_v \rho_v - 1)/(q - 1)$, with $\rho_v$ the fraction of sites in state v."""
        rho = jnp.mean(
            (x.reshape(-1, 1) == jnp.arange(self.n_states, dtype=x.dtype)).astype(self.J.dtype), 0
        )
        return (self.n_states * jnp.max(rho) - 1) / (self.n_states - 1)


def random_bond_couplings(key, lattice, *, kind: str = "gaussian", dtype=jnp.float32) -> Array:
    """Per-bond couplings of an Edwards–Anderson spin glass, shape `(d, *lattice)`:
    Gaussian N(0, 1) (`kind="gaussian"`) or ±1 (`kind="pm1"`, also spelled `"bimodal"`)."""
    import jax

    lattice = _check_lattice(lattice)
    shape = (len(lattice), *lattice)
    if kind == "gaussian":
        return jax.random.normal(key, shape, dtype)
    if kind in ("pm1", "bimodal"):
        return jax.random.rademacher(key, shape, dtype)
    raise ConfigError(f"couplings must be 'gaussian' or 'pm1', got {kind!r}.")


__all__ = ["Ising", "Potts", "random_bond_couplings"]
