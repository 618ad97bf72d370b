"""Statistical helpers shared by the sampler tests: exact-distribution goodness of fit.

A sampler is tested by running many independent chains, indexing each final configuration and
comparing the histogram with the exact Boltzmann probabilities from enumeration
(`diffphys.exact.probabilities`) by Pearson's chi-square test, states whose expected count is
small being pooled into one bin (the usual validity condition of the test).
"""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from diffphys import exact, sampling


def state_index(model, x):
    """The index of configuration `x` in `exact.all_configurations(model)` order."""
    idx = model.value_index(x).reshape(-1)
    return jnp.sum(idx * model.q ** jnp.arange(model.n_sites, dtype=jnp.int32))


def chi2_pvalue(counts, probs, min_expected: float = 5.0) -> float:
    """Chi-square goodness-of-fit p-value of `counts` against `probs`, pooling states with
    expected counts below `min_expected` into one bin."""
    counts = np.asarray(counts, np.float64)
    exp_counts = np.asarray(probs, np.float64) * counts.sum()
    small = exp_counts < min_expected
    obs = np.append(counts[~small], counts[small].sum())
    expc = np.append(exp_counts[~small], exp_counts[small].sum())
    if expc[-1] == 0:
        obs, expc = obs[:-1], expc[:-1]
    return stats.chisquare(obs, expc * obs.sum() / expc.sum()).pvalue


def final_state_indices(key, alg, model, n_steps: int, beta, n_chains: int):
    """Indices of the final states of `n_chains` independent chains of `alg` started from
    uniformly random configurations and run for `n_steps` steps at `beta`."""

    def chain(k):
        k0, k1 = jax.random.split(k)
        s = alg.init(model.random_state(key=k0), model)
        s, _ = sampling.run(k1, alg, s, model, n_steps, beta=beta)
        return state_index(model, s.x)

    return jax.jit(jax.vmap(chain))(jax.random.split(key, n_chains))


def sampler_pvalue(key, alg, model, n_steps: int, beta, n_chains: int) -> float:
    """Chi-square p-value of the final states of independent chains against enumeration."""
    idx = final_state_indices(key, alg, model, n_steps, beta, n_chains)
    probs = np.asarray(exact.probabilities(model, beta), np.float64)
    return chi2_pvalue(np.bincount(np.asarray(idx), minlength=probs.size), probs)
