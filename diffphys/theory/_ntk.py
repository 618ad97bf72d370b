r"""Closed forms of the lazy (linearised) regime of the grokking student `models.TwoLayer`
(Kumar, Bordelon, Gershman & Pehlevan, ICLR 2024, arXiv 2310.06110): its infinite-width
neural tangent kernel, exact gradient descent of the linearised model and its infinite-time
limit, ridgeless kernel regression.

Derived here (not quoted): for $f(x) = \frac{\alpha}{N}\sum_i \phi(w_i\cdot x)$,
$\phi(z) = z + \frac{\varepsilon}{2}z^2$, the empirical NTK of the hidden weights is
$K(x, x') = \frac{\alpha^2}{N^2}\sum_i \phi'(w_i\cdot x)\phi'(w_i\cdot x')\, x\cdot x'$,
and since $\phi'(z) = 1 + \varepsilon z$ and $E_w[(w\cdot x)(w\cdot x')] = x\cdot x'$ for
$w \sim N(0, I)$, its infinite-width limit in the units of the learning rate
$\eta = N/\alpha^2$ is $\eta K_\infty(x, x') = x\cdot x' + \varepsilon^2 (x\cdot x')^2$.
"""

from __future__ import annotations

import jax.numpy as jnp


def ntk_infinite_width(x1, x2=None, *, eps, alpha=1.0, N=1):
    r"""The infinite-width NTK of `models.TwoLayer` (derived; see the module docstring):
    $K_\infty(x, x') = \frac{\alpha^2}{N}\,\big(x\cdot x' + \varepsilon^2 (x\cdot x')^2\big)$.

    With the defaults (`alpha = N = 1`) it is $\eta K_\infty$, the kernel in the units of the
    paper's learning rate $\eta = N/\alpha^2$.
    """
    x2 = x1 if x2 is None else x2
    g = x1 @ x2.T
    return (alpha**2 / N) * (g + eps**2 * g**2)


def kernel_regression(K_train, y, K_test_train=None):
    r"""Ridgeless kernel regression $\hat f(x) = K(x, X) K(X, X)^{-1} y$, the infinite-time
    limit of the linearised model trained on the centred loss from $f - f_0 = 0$.

    Solved in the eigenbasis of `K_train` (eigenvalues below $10^{-6}$ of the largest, in
    float32 noise, are dropped: the pseudo-inverse, the same limit on the kernel's range).

    **Returns:** predictions on the test inputs (`K_test_train` (Pt, P)) or, without it, on the
    training inputs.
    """
    lam, V = jnp.linalg.eigh(K_train)
    keep = lam > 1e-6 * jnp.max(lam)
    coef = V @ jnp.where(keep, (V.T @ y) / jnp.where(keep, lam, 1.0), 0.0)
    K = K_train if K_test_train is None else K_test_train
    return K @ coef


def linearised_gd(K_train, y, *, learning_rate, t, K_test_train=None):
    r"""Exact full-batch gradient descent of a linearised model on the centred square loss.

    For $L = \frac1P\sum_\mu r_\mu^2$, $r = f - f_0 - y$, the residual after $t$ steps is
    $r_t = (I - \frac{2\eta}{P}K)^t r_0$ with $r_0 = -y$; in the eigenbasis $K = V\Lambda V^\top$
    each mode decays as $(1 - 2\eta\lambda_k/P)^t$, and off the training set
    $f_t(x) - f_0(x) = K(x, X)K^{-1}(y + r_t)$ (derived; standard NTK theory).

    **Arguments:** `K_train` (P, P) NTK Gram matrix; `y` (P,); `learning_rate` $\eta$;
    `t` integer step counts (any shape); `K_test_train` (Pt, P) to predict test inputs.

    **Returns:** `(f_train, f_test)`, the centred predictions at every `t` (`f_test` is
    `None` without `K_test_train`); leading axes those of `t`.
    """
    P = y.shape[0]
    lam, V = jnp.linalg.eigh(K_train)
    lam = jnp.maximum(lam, 0.0)  # round-off below zero on the kernel's null space
    c = V.T @ y
    t = jnp.asarray(t, y.dtype)
    base = 1.0 - 2.0 * learning_rate * lam / P
    tt = t[..., None]
    # integer step counts: a negative base (an oscillating, possibly diverging mode) is fine
    sign = jnp.where((base < 0) & (jnp.mod(tt, 2.0) == 1.0), -1.0, 1.0)
    decay = sign * jnp.abs(base) ** tt  # (*t, P)
    f_train = (c * (1.0 - decay)) @ V.T
    f_test = None
    if K_test_train is not None:
        # (1 - (1 - a lam)^t) / lam, continuous at lam -> 0 (limit a t): no mode is dropped
        a = 2.0 * learning_rate / P
        small = jnp.abs(a * lam) < 1e-6
        gain = jnp.where(small, a * t[..., None], (1.0 - decay) / jnp.where(small, 1.0, lam))
        coef = c * gain
        f_test = coef @ (K_test_train @ V).T
    return f_train, f_test


__all__ = ["kernel_regression", "linearised_gd", "ntk_infinite_width"]
