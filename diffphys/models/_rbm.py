r"""Restricted Boltzmann machines: Bernoulli ({0,1}), spin (±1), Gaussian and Potts visible units,
Bernoulli {0,1} hidden units; free energies, block Gibbs sampling and exact enumeration.

Convention (the one of Bachtis, Biroli, Decelle, Seoane, arXiv 2405.14689 and of the `rbms`
package): the joint energy of visible units $v$ (N of them) and hidden units $h$ (M of them) is

$$E(v, h) = -\sum_i a_i(v_i) - \sum_\mu b_\mu h_\mu - \sum_{i\mu} w_{i\mu}(v_i)\, h_\mu
            \;[+ \tfrac12 \sum_i v_i^2 \text{ for Gaussian units}],$$

with $a_i(v) = a_i v$, $w_{i\mu}(v) = W_{i\mu} v$ for Bernoulli/spin/Gaussian visible units and
$a_i(v) = a_{iv}$, $w_{i\mu}(v) = W_{iv\mu}$ for Potts units $v \in \{0..q-1\}$, and
$p(v, h) = e^{-\beta E(v, h)} / Z$. Summing out one layer gives the free energies

$$F(v) = -\sum_i a_i(v_i) [+\tfrac12|v|^2] - \sum_\mu \log(1 + e^{b_\mu + \sum_i w_{i\mu}(v_i)}),
\qquad F(h) = -\sum_\mu b_\mu h_\mu - \sum_i \log \sum_{v} e^{a_i(v) + \sum_\mu w_{i\mu}(v) h_\mu},$$

and $\log Z = \log \sum_v e^{-F(v)} = \log \sum_h e^{-F(h)}$, computed exactly by enumerating the
smaller discrete layer (at most 20 units).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, ShapeError, check_positive
from .._types import Array, Float, Key, RealScalar
from ..sampling import SamplingAlgorithm
from ._base import AbstractModel

VISIBLE_TYPES = ("bernoulli", "spin", "gaussian", "potts")
MAX_ENUMERATED_UNITS = 20
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class RBM(AbstractModel):
    r"""A restricted Boltzmann machine with Bernoulli {0,1} hidden units.

    $E(v, h) = -a\cdot v - b\cdot h - v^\top W h$ (plus $|v|^2/2$ for Gaussian visible units of
    unit variance; Potts units use one-hot weights $W_{iv\mu}$, see the module docstring).

    **Arguments:**

    - `W`: weights, shape `(N, M)`, or `(N, q, M)` for `visible="potts"`.
    - `a`: visible biases, shape `(N,)`, or `(N, q)` for Potts (default 0).
    - `b`: hidden biases, shape `(M,)` (default 0).
    - `visible`: `"bernoulli"` ({0,1}), `"spin"` (±1), `"gaussian"` (real, unit variance) or
      `"potts"` (0..q-1).

    Use `RBM.sample(key, n_visible, n_hidden, ...)` for the usual small random initialisation.
    """

    W: Float[Array, "..."]
    a: Float[Array, "..."]
    b: Float[Array, " M"]
    visible: str = eqx.field(static=True)

    def __init__(self, W, a=None, b=None, *, visible: str = "bernoulli"):
        if visible not in VISIBLE_TYPES:
            raise ConfigError(f"visible must be one of {VISIBLE_TYPES}, got {visible!r}.")
        W = jnp.asarray(W)
        if not jnp.issubdtype(W.dtype, jnp.floating):
            W = W.astype(jnp.float32)
        want = 3 if visible == "potts" else 2
        if W.ndim != want:
            raise ShapeError(
                f"W must have shape {'(N, q, M)' if visible == 'potts' else '(N, M)'} for "
                f"visible={visible!r}, got {W.shape}."
            )
        a_shape, b_shape = W.shape[:-1], W.shape[-1:]
        a = jnp.zeros(a_shape, W.dtype) if a is None else jnp.asarray(a, W.dtype)
        b = jnp.zeros(b_shape, W.dtype) if b is None else jnp.asarray(b, W.dtype)
        if a.shape != a_shape or b.shape != b_shape:
            raise ShapeError(
                f"with W of shape {W.shape}, a must have shape {a_shape} and b shape {b_shape}; "
                f"got a {a.shape}, b {b.shape}."
            )
        self.W, self.a, self.b, self.visible = W, a, b, visible

    @classmethod
    def sample(
        cls,
        key: Key,
        n_visible: int,
        n_hidden: int,
        *,
        visible: str = "bernoulli",
        q: int = 2,
        scale: float = 1e-2,
        data=None,
        dtype=jnp.float32,
    ) -> RBM:
        """Random weights `W ~ scale * N(0, 1)`, zero hidden biases, and visible biases either 0
        or, given `data` (shape `(n_samples, N)`), the independent-site fit to the data
        (log-odds of the mean for Bernoulli, arctanh for spins, the mean for Gaussian, log
        frequencies for Potts), the usual starting point (Hinton 2010, "A practical guide")."""
        if n_visible < 1 or n_hidden < 1:
            raise ConfigError(f"need n_visible, n_hidden >= 1, got {n_visible}, {n_hidden}.")
        shape = (n_visible, q, n_hidden) if visible == "potts" else (n_visible, n_hidden)
        W = scale * jax.random.normal(key, shape, dtype)
        a = None if data is None else independent_site_bias(data, visible, q=q).astype(dtype)
        return cls(W, a, None, visible=visible)

    # ---- sizes -------------------------------------------------------------------------
    @property
    def n_visible(self) -> int:
        return self.W.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[-1]

    @property
    def q(self) -> int:
        """Number of states of a discrete visible unit (2 for Bernoulli and spin)."""
        return self.W.shape[1] if self.visible == "potts" else 2

    @property
    def visible_values(self) -> tuple[int, ...]:
        if self.visible == "spin":
            return (-1, 1)
        if self.visible == "gaussian":
            raise ConfigError("Gaussian visible units are continuous: there is no value list.")
        return tuple(range(self.q))

    def check_state(self, v) -> None:
        if not hasattr(v, "shape") or tuple(v.shape) != (self.n_visible,):
            raise ShapeError(
                f"an RBM visible configuration has shape ({self.n_visible},), got "
                f"{getattr(v, 'shape', type(v).__name__)}; batch with jax.vmap."
            )

    # ---- fields and energies -------------------------------------------------------------
    def _v(self, v):
        """Visible configuration in the model's float dtype (Potts: integer indices kept)."""
        if self.visible == "potts":
            return jnp.asarray(v).astype(jnp.int32)
        return jnp.asarray(v).astype(self.W.dtype)

    def hidden_input(self, v) -> Float[Array, " M"]:
        r"""$I_\mu(v) = b_\mu + \sum_i w_{i\mu}(v_i)$, the field on each hidden unit."""
        v = self._v(v)
        if self.visible == "potts":
            w = jnp.take_along_axis(self.W, v[:, None, None], axis=1)[:, 0, :]
            return self.b + jnp.sum(w, axis=0)
        return self.b + v @ self.W

    def visible_input(self, h) -> Float[Array, "..."]:
        r"""$a_i(\cdot) + \sum_\mu w_{i\mu}(\cdot) h_\mu$: shape `(N,)`, or `(N, q)` for Potts."""
        h = jnp.asarray(h).astype(self.W.dtype)
        return self.a + self.W @ h

    def _visible_term(self, v):
        v = self._v(v)
        if self.visible == "potts":
            lin = jnp.sum(jnp.take_along_axis(self.a, v[:, None], axis=1))
            return lin
        lin = jnp.dot(self.a, v)
        if self.visible == "gaussian":
            lin = lin - 0.5 * jnp.dot(v, v)
        return lin

    def energy(self, state) -> Float[Array, ""]:
        """Joint energy E(v, h) of `state = (v, h)` (a tuple or an `RBMState`)."""
        v, h = state[0], state[1]
        self.check_state(v)
        h = jnp.asarray(h).astype(self.W.dtype)
        return -self._visible_term(v) - jnp.dot(self.hidden_input(v), h)

    energy._checks_state = True  # its state is (v, h): checked above, not by the base class

    def free_energy(self, v, beta=1.0) -> Float[Array, ""]:
        r"""$F(v) = -\frac1\beta\log\sum_h e^{-\beta E(v,h)}$ (hidden units summed out)."""
        beta = jnp.asarray(beta, self.W.dtype)
        return -self._visible_term(v) - jnp.sum(jax.nn.softplus(beta * self.hidden_input(v))) / beta

    def log_visible_partition(self, field, beta=1.0) -> Float[Array, " N"]:
        r"""$\frac1\beta\log\sum_{v_i} e^{\beta(\phi_i(v_i))}$ per visible unit for the field
        $\phi$ = `visible_input(h)` (Gaussian: $\int dv\, e^{\beta(\phi v - v^2/2)}$)."""
        beta = jnp.asarray(beta, self.W.dtype)
        bf = beta * field
        if self.visible == "bernoulli":
            out = jax.nn.softplus(bf)
        elif self.visible == "spin":
            out = jnp.logaddexp(bf, -bf)
        elif self.visible == "gaussian":
            out = 0.5 * bf * field - 0.5 * jnp.log(beta) + _LOG_SQRT_2PI
        else:
            out = jax.nn.logsumexp(bf, axis=-1)
        return out / beta

    def hidden_free_energy(self, h, beta=1.0) -> Float[Array, ""]:
        r"""$F(h) = -b\cdot h - \frac1\beta\sum_i \log\sum_{v_i} e^{\beta(a_i(v_i) + \sum_\mu
        w_{i\mu}(v_i) h_\mu)}$ (visible units summed or integrated out)."""
        h = jnp.asarray(h).astype(self.W.dtype)
        return -jnp.dot(self.b, h) - jnp.sum(
            self.log_visible_partition(self.visible_input(h), beta)
        )

    # ---- conditionals --------------------------------------------------------------------
    def sample_hidden(self, key: Key, v, beta=1.0):
        """Draw h ~ p(h | v) at inverse temperature beta: Bernoulli(sigmoid(beta I(v)))."""
        beta = jnp.asarray(beta, self.W.dtype)
        p = jax.nn.sigmoid(beta * self.hidden_input(v))
        u = jax.random.uniform(key, p.shape, p.dtype)
        return (u < p).astype(self.W.dtype)

    def sample_visible(self, key: Key, h, beta=1.0):
        """Draw v ~ p(v | h) at inverse temperature beta."""
        beta = jnp.asarray(beta, self.W.dtype)
        field = self.visible_input(h)
        if self.visible == "bernoulli":
            u = jax.random.uniform(key, field.shape, field.dtype)
            return (u < jax.nn.sigmoid(beta * field)).astype(self.W.dtype)
        if self.visible == "spin":
            u = jax.random.uniform(key, field.shape, field.dtype)
            return jnp.where(u < jax.nn.sigmoid(2 * beta * field), 1.0, -1.0).astype(self.W.dtype)
        if self.visible == "gaussian":
            z = jax.random.normal(key, field.shape, field.dtype)
            return field + z / jnp.sqrt(beta)
        return jax.random.categorical(key, beta * field, axis=-1).astype(jnp.int32)

    def visible_dtype(self):
        return jnp.int32 if self.visible == "potts" else self.W.dtype

    # ---- exact enumeration -----------------------------------------------------------------
    def log_partition(self, beta=1.0, *, layer: str | None = None, chunk: int = 2**12):
        r"""Exact $\log Z(\beta)$ by enumerating the smaller discrete layer (at most 20 units).

        **Arguments:**

        - `beta`: inverse temperature.
        - `layer`: `"hidden"` or `"visible"` to force the enumerated layer; default the smaller
          one (always hidden for Gaussian visible units).
        - `chunk`: configurations per vectorised block (bounds memory).

        **Returns:** a scalar, differentiable with respect to the parameters.
        """
        layer = self._pick_layer(layer)
        beta = jnp.asarray(beta, self.W.dtype)
        if layer == "hidden":
            n, q = self.n_hidden, 2

            def neg_f(c):
                return -beta * self.hidden_free_energy(c.astype(self.W.dtype), beta)

            values = (0, 1)
        else:
            n, q = self.n_visible, self.q
            values = self.visible_values

            def neg_f(c):
                return -beta * self.free_energy(c, beta)

        total = q**n
        idx = jnp.arange(total, dtype=jnp.int32)
        powers = jnp.asarray(q ** np.arange(n), jnp.int32)
        vals = jnp.asarray(values, jnp.int32)

        def block(i):
            digits = (i[:, None] // powers) % q
            return jax.vmap(neg_f)(vals[digits])

        chunk = min(chunk, total)
        n_chunks = -(-total // chunk)
        pad = n_chunks * chunk - total
        idx = jnp.concatenate([idx, jnp.zeros(pad, jnp.int32)]).reshape(n_chunks, chunk)
        logw = jax.lax.map(block, idx).reshape(-1)
        mask = jnp.arange(n_chunks * chunk) < total
        logw = jnp.where(mask, logw, -jnp.inf)
        return jax.nn.logsumexp(logw)

    def sample_exact(self, key: Key, n_samples: int):
        r"""Exact samples of $p(v)$ for a model with at most 20 hidden units: $h$ from its
        exact marginal $p(h) \propto e^{-F(h)}$ (all $2^M$ hidden configurations enumerated),
        then $v \sim p(v|h)$.

        **Returns:** visible configurations, shape `(n_samples, N)` (integer states for Potts
        units).
        """
        m = self.n_hidden
        if m > MAX_ENUMERATED_UNITS:
            raise ConfigError(
                f"sample_exact enumerates 2^{m} hidden configurations, more than "
                f"2^{MAX_ENUMERATED_UNITS}: use block Gibbs sampling for large models."
            )
        idx = jnp.arange(2**m, dtype=jnp.int32)
        hs = ((idx[:, None] >> jnp.arange(m, dtype=jnp.int32)) & 1).astype(self.W.dtype)
        logits = -jax.vmap(self.hidden_free_energy)(hs)
        kh, kv = jax.random.split(key)
        h = hs[jax.random.categorical(kh, logits, shape=(n_samples,))]
        return jax.vmap(self.sample_visible)(jax.random.split(kv, n_samples), h)

    def _pick_layer(self, layer):
        if layer is None:
            if self.visible == "gaussian":
                layer = "hidden"
            else:
                vis_cost = self.n_visible * math.log2(self.q)
                layer = "hidden" if self.n_hidden <= vis_cost else "visible"
        if layer not in ("hidden", "visible"):
            raise ConfigError(f"layer must be 'hidden' or 'visible', got {layer!r}.")
        if layer == "visible" and self.visible == "gaussian":
            raise ConfigError("Gaussian visible units cannot be enumerated; use layer='hidden'.")
        bits = self.n_hidden if layer == "hidden" else self.n_visible * math.log2(self.q)
        if bits > MAX_ENUMERATED_UNITS + 1e-9:
            raise ConfigError(
                f"exact log Z enumerates 2^{bits:g} configurations of the {layer} layer, more "
                f"than 2^{MAX_ENUMERATED_UNITS}: use diffphys.training.ais for large models."
            )
        return layer

    def log_likelihood(self, data, log_z=None, beta=1.0):
        r"""Mean log-likelihood $\frac1n\sum_d [-\beta F(v_d)] - \log Z$ of `data` (n, N).

        `log_z` defaults to the exact `log_partition(beta)` (small models only); pass an AIS
        estimate for large models. For Gaussian units this is a log-density.
        """
        if log_z is None:
            log_z = self.log_partition(beta)
        beta = jnp.asarray(beta, self.W.dtype)
        return jnp.mean(jax.vmap(lambda v: -beta * self.free_energy(v, beta))(data)) - log_z


def independent_site_bias(data, visible: str, *, q: int = 2, eps: float = 1e-3) -> Array:
    """Visible biases of the independent-site model that matches the data's one-site marginals."""
    data = np.asarray(data)
    if visible == "bernoulli":
        m = np.clip(data.mean(0), eps, 1 - eps)
        return jnp.asarray(np.log(m) - np.log1p(-m))
    if visible == "spin":
        return jnp.asarray(np.arctanh(np.clip(data.mean(0), -1 + eps, 1 - eps)))
    if visible == "gaussian":
        return jnp.asarray(data.mean(0))
    if visible == "potts":
        counts = np.stack([(data == c).mean(0) for c in range(q)], axis=-1)
        logf = np.log(counts + eps)
        return jnp.asarray(logf - logf.mean(-1, keepdims=True))
    raise ConfigError(f"visible must be one of {VISIBLE_TYPES}, got {visible!r}.")


class RBMState(NamedTuple):
    """Block-Gibbs state of one chain: visible and hidden configurations and E(v, h)."""

    v: Array
    h: Array
    energy: Float[Array, ""]


class RBMInfo(NamedTuple):
    """Diagnostics of one block-Gibbs step: the joint energy E(v, h) after it."""

    energy: Float[Array, ""]


def block_gibbs(beta: RealScalar = 1.0, *, k: int = 1) -> SamplingAlgorithm:
    r"""Alternating (block) Gibbs sampling of an RBM: all hidden units given v, then all
    visible units given h. One step is `k` such sweeps.

    The state carries the joint energy $E(v, h)$, so the sampler can be wrapped in
    `diffphys.sampling.parallel_tempering` (the swap rule then uses the joint energy, which is
    exact for a chain on $(v, h)$ at inverse temperature $\beta$).

    Many chains are one `jax.vmap` away: `jax.vmap(alg.step, (0, 0, None))(keys, states, rbm)`
    turns the matrix-vector products into one matrix-matrix product per half-sweep.

    **Arguments:**

    - `beta`: inverse temperature (overridable per step: `step(..., beta=b)`).
    - `k`: sweeps per step.

    `init(v, rbm)` sets h to the most probable hidden configuration given v (h_mu = 1 where
    I_mu(v) > 0); the first step resamples it.
    """
    check_positive("beta", beta)
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}.")

    def init(v, model: RBM) -> RBMState:
        model.check_state(v)
        v = jnp.asarray(v).astype(model.visible_dtype())
        h = (model.hidden_input(v) > 0).astype(model.W.dtype)
        return RBMState(v, h, model.energy((v, h)))

    def step(key, state: RBMState, model: RBM, beta=beta):
        def sweep(i, vh):
            v, _ = vh
            kh, kv = jax.random.split(jax.random.fold_in(key, i))
            h = model.sample_hidden(kh, v, beta)
            v = model.sample_visible(kv, h, beta)
            return v, h

        v, h = jax.lax.fori_loop(0, k, sweep, (state.v, state.h))
        e = model.energy((v, h))
        return RBMState(v, h, e), RBMInfo(e)

    return SamplingAlgorithm(init, step)


def sample_chains(key: Key, model: RBM, v0, n_steps: int, *, beta=1.0) -> RBMState:
    """Run `n_steps` block-Gibbs sweeps of many chains at once from `v0` (shape `(chains, N)`)
    inside one `lax.scan`; returns the batched final `RBMState`."""
    alg = block_gibbs(beta)
    states = jax.vmap(alg.init, in_axes=(0, None))(v0, model)
    n = v0.shape[0]

    def body(s, t):
        keys = jax.random.split(jax.random.fold_in(key, t), n)
        s, _ = jax.vmap(alg.step, in_axes=(0, 0, None))(keys, s, model)
        return s, None

    states, _ = jax.lax.scan(body, states, jnp.arange(n_steps))
    return states


__all__ = [
    "MAX_ENUMERATED_UNITS",
    "RBM",
    "RBMInfo",
    "RBMState",
    "VISIBLE_TYPES",
    "block_gibbs",
    "independent_site_bias",
    "sample_chains",
]
