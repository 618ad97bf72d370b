r"""Diffusion models: the forward Ornstein–Uhlenbeck noising, exact scores and score networks.

Convention (Biroli, Bonnaire, de Bortoli, Mézard, "Dynamical regimes of diffusion models",
arXiv 2402.18491, and their repository tbonnair/Dynamical-Regimes-of-Diffusion-Models): the
forward process is the unit-rate Ornstein–Uhlenbeck (variance-preserving) SDE

$$dx = -x\, dt + \sqrt{2}\, dW_t,$$

whose transition from a data point $a$ is Gaussian,

$$x_t = a\, e^{-t} + \sqrt{\Delta_t}\, z,\qquad \Delta_t = 1 - e^{-2t},\qquad z \sim N(0, I).$$

The noised density is $P_t = P_0 * N(\cdot\,; 0, \Delta_t)$ after the rescaling $a \to a e^{-t}$,
and every score below is $\nabla_x \log P_t(x)$. A VP-SDE with a schedule $\beta(s)$ is the
same process in the time $t = \frac{1}{2}\int_0^s \beta$.

A score is any callable `score(x, t) -> array like x` on one point (no batch axis); the
samplers in `diffphys.models` vmap it over a batch.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from .._errors import ConfigError, ShapeError
from .._types import Array, ArrayLike, Float, Key


def ou_mean_scale(t) -> Float[Array, "..."]:
    """$e^{-t}$: the factor multiplying the data point in the OU marginal."""
    return jnp.exp(-jnp.asarray(t))


def ou_variance(t) -> Float[Array, "..."]:
    r"""$\Delta_t = 1 - e^{-2t}$, the variance of the OU noise added by time t (`-expm1(-2t)`)."""
    return -jnp.expm1(-2.0 * jnp.asarray(t))


def forward_sample(key: Key, x0: Float[Array, "*batch d"], t) -> Float[Array, "*batch d"]:
    r"""Draw $x_t = x_0 e^{-t} + \sqrt{\Delta_t}\, z$ exactly (no discretisation).

    **Arguments:**

    - `key`: PRNG key.
    - `x0`: clean data, any shape.
    - `t`: diffusion time, a scalar or an array broadcastable against `x0[..., :1]`.

    **Returns:** the noised array, same shape as `x0`.
    """
    x0 = jnp.asarray(x0)
    t = jnp.asarray(t, x0.dtype)
    z = jax.random.normal(key, x0.shape, x0.dtype)
    return x0 * ou_mean_scale(t) + jnp.sqrt(ou_variance(t)) * z


def _as_data(data, name="data") -> Array:
    data = jnp.asarray(data)
    if data.ndim != 2 or data.shape[0] < 1:
        raise ShapeError(f"{name} must be a 2D array (n_points, d), got shape {data.shape}.")
    if not jnp.issubdtype(data.dtype, jnp.floating):
        data = data.astype(jnp.float32)
    return data


def _check_point(x, d: int, who: str) -> None:
    if x.shape != (d,):
        raise ShapeError(
            f"{who} takes one point of shape ({d},), got {x.shape}. Batch over points with "
            f"jax.vmap(score, in_axes=(0, None)) or use reverse_sde, which does it for you."
        )


class EmpiricalScore(eqx.Module):
    r"""Exact score of the noised empirical distribution of a finite data set.

    $$P^e_t(x) = \frac{1}{n}\sum_{\mu=1}^n N\!\left(x;\ a_\mu e^{-t},\ \Delta_t I\right),\qquad
    \nabla \log P^e_t(x) = \sum_\mu w_\mu(x, t)\, \frac{a_\mu e^{-t} - x}{\Delta_t},$$

    with posterior weights $w_\mu \propto \exp(-|x - a_\mu e^{-t}|^2 / 2\Delta_t)$. This is the
    score a perfectly trained network would learn (2402.18491, Sec. 2). The sum over data
    points is a streaming log-sum-exp over chunks of `chunk_size` points inside `lax.scan`, so
    memory is O(batch x chunk_size), never O(batch x n): n = 1e5 points in d = 1e3 fit a GPU.

    **Arguments:**

    - `data`: array (n, d) of data points $a_\mu$.
    - `chunk_size`: points per chunk (`None`: all at once). Padding makes any n valid.
    """

    data: Float[Array, "n d"]
    sq_norms: Float[Array, " n"]
    mask: Float[Array, " n"]
    n: int = eqx.field(static=True)
    chunk_size: int = eqx.field(static=True)

    def __init__(self, data, chunk_size: int | None = None):
        data = _as_data(data)
        n = data.shape[0]
        chunk = n if chunk_size is None else int(chunk_size)
        if chunk < 1:
            raise ConfigError(f"chunk_size must be a positive integer or None, got {chunk_size}.")
        chunk = min(chunk, n)
        pad = (-n) % chunk
        self.n = n
        self.chunk_size = chunk
        self.mask = jnp.concatenate([jnp.zeros(n, data.dtype), jnp.full(pad, -jnp.inf, data.dtype)])
        self.data = jnp.concatenate([data, jnp.zeros((pad, data.shape[1]), data.dtype)])
        self.sq_norms = jnp.sum(self.data**2, axis=1)

    @property
    def dim(self) -> int:
        return self.data.shape[1]

    def _stats(self, x, t):
        """Streaming (max logit, sum of exp, sum of exp * a, sum of exp^2, max weight logit)."""
        _check_point(x, self.dim, type(self).__name__)
        x = x.astype(self.data.dtype)
        t = jnp.asarray(t, self.data.dtype)
        s, var = ou_mean_scale(t), ou_variance(t)
        n_chunks = self.data.shape[0] // self.chunk_size
        chunks = (
            self.data.reshape(n_chunks, self.chunk_size, -1),
            self.sq_norms.reshape(n_chunks, self.chunk_size),
            self.mask.reshape(n_chunks, self.chunk_size),
        )
        # logit_mu = -|x - s a_mu|^2 / 2 var, dropping the mu-independent |x|^2 term
        d = self.dim

        def body(carry, chunk):
            m, z, za, z2 = carry
            a, a2, mask = chunk
            logits = (s * (a @ x) - 0.5 * s**2 * a2) / var + mask
            m_new = jnp.maximum(m, jnp.max(logits))
            c = jnp.exp(m - m_new)
            e = jnp.exp(logits - m_new)
            return (m_new, z * c + jnp.sum(e), za * c + e @ a, z2 * c**2 + jnp.sum(e**2)), None

        zero = jnp.zeros((), self.data.dtype)
        init = (jnp.asarray(-jnp.inf, self.data.dtype), zero, jnp.zeros(d, self.data.dtype), zero)
        (m, z, za, z2), _ = jax.lax.scan(body, init, chunks)
        return m, z, za, z2, s, var

    def __call__(self, x: Float[ArrayLike, "*batch d"], t) -> Float[Array, "*batch d"]:
        """The score $\\nabla_x \\log P^e_t(x)$ at one point x and time t > 0."""
        _, z, za, _, s, var = self._stats(x, t)
        return (s * za / z - x) / var

    def log_density(self, x: Float[Array, " d"], t) -> Float[Array, ""]:
        """$\\log P^e_t(x)$, normalised."""
        m, z, _, _, s, var = self._stats(x, t)
        d = self.dim
        return (
            m
            + jnp.log(z)
            - 0.5 * jnp.sum(x**2) / var
            - math.log(self.n)
            - 0.5 * d * jnp.log(2 * jnp.pi * var)
        )

    def posterior_stats(self, x: Float[Array, " d"], t) -> dict[str, Float[Array, ""]]:
        r"""The weights $w_\mu(x, t)$ summarised: largest weight and participation ratio.

        **Returns:** `{"max_weight": max_mu w_mu, "participation": 1 / sum_mu w_mu^2}`. The
        participation ratio counts the data points the backward trajectory from (x, t) can
        still reach; it tends to 1 when the dynamics has collapsed onto one point.
        """
        m, z, _, z2, _, _ = self._stats(x, t)
        return {"max_weight": 1.0 / z, "participation": z**2 / z2}


class GaussianScore(eqx.Module):
    r"""Exact score of Gaussian data $N(m, C)$ under the OU noising.

    $$P_t = N\!\left(m e^{-t},\ C e^{-2t} + \Delta_t I\right),\qquad
    \nabla \log P_t(x) = -\left(C e^{-2t} + \Delta_t I\right)^{-1}(x - m e^{-t}).$$

    $C = U \Lambda U^T$ is diagonalised once, so each evaluation costs O(d^2) and no solve.

    **Arguments:**

    - `mean`: array (d,).
    - `cov`: array (d, d), symmetric positive semi-definite.
    """

    mean: Float[Array, " d"]
    eigvals: Float[Array, " d"]
    eigvecs: Float[Array, "d d"]

    def __init__(self, mean, cov):
        mean = jnp.asarray(mean)
        cov = jnp.asarray(cov, mean.dtype)
        if mean.ndim != 1 or cov.shape != (mean.shape[0], mean.shape[0]):
            raise ShapeError(
                f"GaussianScore needs mean (d,) and cov (d, d), got {mean.shape}, {cov.shape}."
            )
        lam, u = jnp.linalg.eigh(0.5 * (cov + cov.T))
        self.mean, self.eigvals, self.eigvecs = mean, lam, u

    def marginal_variances(self, t) -> Float[Array, " d"]:
        """Eigenvalues of the covariance of $P_t$ (in the eigenbasis of C)."""
        t = jnp.asarray(t, self.mean.dtype)
        return self.eigvals * ou_mean_scale(t) ** 2 + ou_variance(t)

    def __call__(self, x: Float[ArrayLike, "*batch d"], t) -> Float[Array, "*batch d"]:
        _check_point(x, self.mean.shape[0], type(self).__name__)
        t = jnp.asarray(t, self.mean.dtype)
        y = self.eigvecs.T @ (x - self.mean * ou_mean_scale(t))
        return -self.eigvecs @ (y / self.marginal_variances(t))

    def log_density(self, x: Float[Array, " d"], t) -> Float[Array, ""]:
        t = jnp.asarray(t, self.mean.dtype)
        y = self.eigvecs.T @ (x - self.mean * ou_mean_scale(t))
        v = self.marginal_variances(t)
        return -0.5 * jnp.sum(y**2 / v + jnp.log(2 * jnp.pi * v))


class GaussianMixtureScore(eqx.Module):
    r"""Exact score of a mixture of isotropic Gaussians $\sum_k p_k N(m_k, \sigma_k^2 I)$.

    $$P_t(x) = \sum_k p_k N\!\left(x;\ m_k e^{-t},\ \Gamma_k(t) I\right),\qquad
    \Gamma_k(t) = \sigma_k^2 e^{-2t} + \Delta_t.$$

    The two-component symmetric case $m_\pm = \pm m$, $p_\pm = 1/2$ is the model solved in
    2402.18491 (score $\tanh(m_t\cdot x/\Gamma_t)\, m_t/\Gamma_t - x/\Gamma_t$).

    **Arguments:**

    - `means`: array (K, d).
    - `sigma2`: per-component variance, scalar or array (K,).
    - `weights`: mixture weights (K,) (default uniform); normalised here.
    """

    means: Float[Array, "K d"]
    sigma2: Float[Array, " K"]
    log_weights: Float[Array, " K"]

    def __init__(self, means, sigma2=1.0, weights=None):
        means = _as_data(means, "means")
        k = means.shape[0]
        sigma2 = jnp.broadcast_to(jnp.asarray(sigma2, means.dtype), (k,))
        w = jnp.ones(k, means.dtype) if weights is None else jnp.asarray(weights, means.dtype)
        if w.shape != (k,):
            raise ShapeError(f"weights must have shape ({k},), got {w.shape}.")
        self.means, self.sigma2 = means, sigma2
        self.log_weights = jnp.log(w / jnp.sum(w))

    def _logits(self, x, t):
        _check_point(x, self.means.shape[1], type(self).__name__)
        t = jnp.asarray(t, self.means.dtype)
        s = ou_mean_scale(t)
        gamma = self.sigma2 * s**2 + ou_variance(t)
        diff = x[None, :] - s * self.means
        d = x.shape[0]
        logits = (
            self.log_weights
            - 0.5 * jnp.sum(diff**2, axis=1) / gamma
            - 0.5 * d * jnp.log(2 * jnp.pi * gamma)
        )
        return logits, diff, gamma

    def log_density(self, x: Float[Array, " d"], t) -> Float[Array, ""]:
        logits, _, _ = self._logits(x, t)
        return jax.nn.logsumexp(logits)

    def responsibilities(self, x: Float[Array, " d"], t) -> Float[Array, " K"]:
        """Posterior probability of each component given $x_t = x$."""
        logits, _, _ = self._logits(x, t)
        return jax.nn.softmax(logits)

    def __call__(self, x: Float[ArrayLike, "*batch d"], t) -> Float[Array, "*batch d"]:
        logits, diff, gamma = self._logits(x, t)
        r = jax.nn.softmax(logits)
        return -((r / gamma) @ diff)

    def sample(self, key: Key, n: int) -> tuple[Float[Array, "n d"], Array]:
        """Draw n points of the clean mixture. **Returns:** `(points, component labels)`."""
        k1, k2 = jax.random.split(key)
        labels = jax.random.categorical(k1, self.log_weights, shape=(n,))
        z = jax.random.normal(k2, (n, self.means.shape[1]), self.means.dtype)
        return self.means[labels] + jnp.sqrt(self.sigma2[labels])[:, None] * z, labels


def time_embedding(t, n_freq: int) -> Float[Array, "*batch two_n_freq"]:
    r"""Fourier features of $\log t$: $[\sin(2^k \log t), \cos(2^k \log t)]_{k<n}$ scaled by $\pi/8$.

    The OU time spans decades (1e-3 .. 10), so the embedding is periodic in log-time.
    """
    lt = jnp.log(jnp.asarray(t))
    freqs = (jnp.pi / 8) * 2.0 ** jnp.arange(n_freq, dtype=lt.dtype)
    return jnp.concatenate([jnp.sin(freqs * lt), jnp.cos(freqs * lt)])


class ScoreMLP(eqx.Module):
    r"""A score network: an MLP on $[x, \mathrm{emb}(t)]$ predicting the noise.

    With `conditional=True` (a diffusion score) the network outputs $\hat\varepsilon(x, t)$ and
    $s(x, t) = -\hat\varepsilon / \sqrt{\Delta_t}$, the parametrisation in which denoising score
    matching is a regression of the added noise (Ho et al. 2020; Song et al. 2021). With
    `conditional=False` (a stationary score, e.g. for entropy production) it outputs $s(x)$
    directly and ignores t.

    **Arguments:**

    - `dim`: data dimension d.
    - `width`, `depth`: hidden width and number of hidden layers.
    - `n_freq`: number of Fourier frequencies of the time embedding.
    - `conditional`: whether the score depends on t.
    - `key`: PRNG key for the initialisation (keyword-only).
    """

    mlp: eqx.nn.MLP
    dim: int = eqx.field(static=True)
    n_freq: int = eqx.field(static=True)
    conditional: bool = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        width: int = 128,
        depth: int = 2,
        n_freq: int = 8,
        *,
        conditional: bool = True,
        key: Key,
    ):
        if dim < 1 or width < 1 or depth < 1:
            raise ConfigError(f"dim, width, depth must be >= 1, got {dim}, {width}, {depth}.")
        self.dim, self.n_freq, self.conditional = int(dim), int(n_freq), bool(conditional)
        in_size = dim + (2 * n_freq if conditional else 0)
        self.mlp = eqx.nn.MLP(in_size, dim, width, depth, activation=jax.nn.silu, key=key)

    def __call__(self, x: Float[ArrayLike, "*batch d"], t=None) -> Float[Array, "*batch d"]:
        _check_point(x, self.dim, type(self).__name__)
        if not self.conditional:
            return self.mlp(x)
        if t is None:
            raise ConfigError("a conditional ScoreMLP needs the diffusion time t.")
        t = jnp.asarray(t, x.dtype)
        eps = self.mlp(jnp.concatenate([x, time_embedding(t, self.n_freq)]))
        return -eps / jnp.sqrt(ou_variance(t))
