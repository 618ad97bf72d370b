r"""Dense Hebbian networks learning from noisy examples (Agliari, Albanese, Alemanno, Alessandrelli,
Barra, Giannotti, Lotito, Pedreschi, "Dense Hebbian neural networks: a replica symmetric picture
of supervised learning", arXiv 2212.00606, and its unsupervised companion arXiv 2211.14067).

K archetypes $\xi^\mu \in \{\pm1\}^N$ are never shown; the network sees M examples per
archetype, $\eta^{\mu,a}_i = \chi^{\mu,a}_i\xi^\mu_i$ with $P(\chi = \pm1) = (1\pm r)/2$ (quality
r). With $\bar\eta^\mu = \frac1M\sum_a\eta^{\mu,a}$ and $\mathcal R = r^2 + \frac{1-r^2}{M}$ the
two Hamiltonians are

$$H_{sup} = -\frac{N}{p\,\mathcal R^{p/2}}\sum_\mu\Big(\frac{\bar\eta^\mu\cdot\sigma}{N}\Big)^p,
\qquad H_{unsup} = -\frac{N}{p\,\mathcal R^{p/2} M}\sum_{\mu,a}
  \Big(\frac{\eta^{\mu,a}\cdot\sigma}{N}\Big)^p,$$

i.e. `DenseAssociativeMemory`s whose patterns are the normalised class means (supervised) or
all examples with weights 1/M (unsupervised). The dataset entropy
$\rho = (1-r^2)/(M r^2)$ controls learning: at vanishing load the T = 0 network started at an
archetype relaxes to the sign of the class mean, whose overlap with the archetype is the
majority-vote probability (`theory.supervised_overlap_low_load`), $\mathrm{erf}(1/\sqrt{2\rho})$ for
large M.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, ShapeError
from .._types import Array, Key
from ._hopfield import DenseAssociativeMemory


def noisy_examples(key: Key, archetypes, n_examples: int, quality) -> Array:
    r"""M noisy examples of each archetype: $\eta^{\mu,a} = \chi^{\mu,a}\odot\xi^\mu$,
    $P(\chi_i = +1) = (1 + r)/2$.

    **Arguments:**

    - `key`: PRNG key.
    - `archetypes`: `(K, N)` ±1 archetypes.
    - `n_examples`: M, examples per archetype.
    - `quality`: r in [0, 1] (r = 1: the archetype itself; r = 0: pure noise).

    **Returns:** `(K, M, N)` float32 ±1 examples.
    """
    archetypes = jnp.asarray(archetypes, jnp.float32)
    if archetypes.ndim != 2:
        raise ShapeError(f"archetypes must have shape (K, N), got {archetypes.shape}.")
    k, n = archetypes.shape
    p_same = (1.0 + jnp.asarray(quality, jnp.float32)) / 2
    chi = jnp.where(jax.random.bernoulli(key, p_same, (k, int(n_examples), n)), 1.0, -1.0)
    return chi.astype(jnp.float32) * archetypes[:, None, :]


def dense_hebbian(examples, p: int = 2, *, supervised: bool = True, quality=None):
    r"""The dense Hebbian network built from labelled (supervised) or unlabelled examples.

    **Arguments:**

    - `examples`: `(K, M, N)` examples grouped by class (±1).
    - `p`: interaction order (p = 2: the Hebbian Hopfield network of Agliari et al.).
    - `supervised`: store the K class means (True) or all K M examples with weight 1/M.
    - `quality`: r, used for the normalisation $\mathcal R^{-p/2}$ of the Hamiltonian; when
      None the empirical $\mathcal R = \langle(\bar\eta\cdot\bar\eta)/N\rangle$ is used. It only
      sets the temperature scale.

    **Returns:** a `DenseAssociativeMemory`.
    """
    examples = jnp.asarray(examples, jnp.float32)
    if examples.ndim != 3:
        raise ShapeError(
            f"examples must have shape (K, M, N) (grouped by class), got {examples.shape}."
        )
    k, m, n = examples.shape
    mean = examples.mean(axis=1)
    if quality is None:
        R = jnp.mean(jnp.sum(mean * mean, axis=1) / n)
    else:
        try:
            bad = not 0 <= float(quality) <= 1
        except Exception:  # traced (e.g. vmapped over qualities): cannot check eagerly
            bad = False
        if bad:
            raise ConfigError(f"quality must be in [0, 1], got {quality!r}.")
        r = jnp.asarray(quality, jnp.float32)
        R = r * r + (1 - r * r) / m
    scale = 1.0 / jnp.sqrt(R)
    if supervised:
        return DenseAssociativeMemory(mean * scale, p=p, binary=False)
    weights = jnp.full((k * m,), 1.0 / m, jnp.float32)
    return DenseAssociativeMemory(
        examples.reshape(k * m, n) * scale, p=p, weights=weights, binary=False
    )


def load_digits_binary(threshold: float = 8.0):
    """scikit-learn's handwritten digits (1797 images of 8x8 pixels, values 0..16), binarised.

    **Returns:** `(images, labels)`: `(1797, 64)` int8 ±1 (+1 where the pixel > threshold) and
    `(1797,)` int labels 0..9.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.where(d.data > threshold, 1, -1).astype(np.int8)
    return x, d.target.astype(np.int64)


__all__ = [
    "dense_hebbian",
    "load_digits_binary",
    "noisy_examples",
]
