"""Supervised dense Hebbian networks (Agliari, Barra et al., arXiv 2212.00606)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffphys
from diffphys import models


def test_examples_have_the_requested_quality(key):
    """Reference: E[eta_i xi_i] = r by construction (P(chi = +1) = (1 + r)/2)."""
    arch = models.random_patterns(key, 3, 2000)
    ex = models.noisy_examples(jax.random.fold_in(key, 1), arch, 50, 0.3)
    q = float(jnp.mean(ex * arch[:, None, :]))
    # 3 * 50 * 2000 = 3e5 bits: standard error sqrt(1 - r^2) / sqrt(3e5) = 1.7e-3
    assert q == pytest.approx(0.3, abs=5 * 1.7e-3)


def test_supervised_hamiltonian_is_normalised_class_mean_memory(key):
    """Reference: H_sup = -N / (p R^(p/2)) sum_mu (mean_a eta^{mu a} . s / N)^p, evaluated directly."""
    arch = models.random_patterns(key, 2, 30)
    ex = models.noisy_examples(jax.random.fold_in(key, 1), arch, 7, 0.4)
    model = models.dense_hebbian(ex, 3, supervised=True, quality=0.4)
    s = arch[0].astype(jnp.int8)
    R = 0.4**2 + (1 - 0.4**2) / 7
    mbar = np.asarray(ex, np.float64).mean(1) @ np.asarray(s, np.float64) / 30
    ref = -30 / (3 * R**1.5) * np.sum(mbar**3)
    assert float(model.energy(s)) == pytest.approx(ref, rel=1e-4)
    unsup = models.dense_hebbian(ex, 3, supervised=False, quality=0.4)
    m_all = np.asarray(ex, np.float64).reshape(14, 30) @ np.asarray(s, np.float64) / 30
    assert float(unsup.energy(s)) == pytest.approx(
        -30 / (3 * R**1.5 * 7) * np.sum(m_all**3), rel=1e-4
    )


def test_low_load_retrieval_matches_majority_vote(key):
    """Reference: at vanishing load the T = 0 network started at the archetype relaxes to the sign
    of the class mean; its overlap with the archetype is the exact majority-vote value
    (-> erf(1/sqrt(2 rho)), Agliari et al. 2022). N = 2000, K = 2, r = 0.3, M = 25; tolerance 5
    standard errors of the mean over 4 samples (binomial, sqrt((1 - m^2) / N) per sample)."""
    n, r, M = 2000, 0.3, 25

    def one(k):
        k_a, k_e, k_d = jax.random.split(k, 3)
        arch = models.random_patterns(k_a, 2, n)
        ex = models.noisy_examples(k_e, arch, M, r)
        model = models.dense_hebbian(ex, 3, supervised=True, quality=r)
        x, _, _ = models.retrieve(model, arch[0].astype(jnp.int8), key=k_d, mode="sync")
        return jnp.mean(x.astype(jnp.float32) * arch[0])

    m = np.asarray(diffphys.ensemble.run(one, jax.random.split(key, 4)))
    theory = float(diffphys.theory.supervised_overlap_low_load(M, r)[0])
    se = np.sqrt((1 - theory**2) / n) / 2
    assert abs(m.mean() - theory) < 5 * se + 1e-3, (m, theory)


def test_digits_loader_and_classifier():
    """Reference: scikit-learn's digits (1797 images, 64 pixels, 10 classes: chance = 0.1). A p = 3
    supervised dense Hebbian network of the centred class means of 20 images per class,
    read out after T = 0 dynamics from each held-out image, classifies far above chance (> 0.4;
    measured 0.62 on this split)."""
    x, y = models.load_digits_binary()
    assert x.shape == (1797, 64) and set(np.unique(x)) == {-1, 1}
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(y))
    test, train = perm[:150], perm[150:]
    idx = np.stack([train[y[train] == c][:20] for c in range(10)])
    ex = jnp.asarray(x[idx], jnp.float32)
    ex = ex - ex.reshape(-1, 64).mean(0)
    model = models.dense_hebbian(ex, 3, supervised=True)

    def classify(k, x0):
        _, m, _ = models.retrieve(model, x0, key=k, max_sweeps=30)
        return jnp.argmax(m)

    keys = jax.random.split(jax.random.key(0), 150)
    pred = np.asarray(diffphys.ensemble.run(classify, keys, jnp.asarray(x[test]), chunk_size=1))
    assert np.mean(pred == y[test]) > 0.4
