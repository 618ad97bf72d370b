r"""Closed-form steady states of linear (Ornstein–Uhlenbeck) diffusions: the Lyapunov
covariance and the exact entropy production rate, the references of
`models.entropy_production_rate` (Seifert, Rep. Prog. Phys. 75, 126001 (2012))."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .._errors import ConfigError


def lyapunov_covariance(a, diffusion) -> np.ndarray:
    r"""Stationary covariance of $dx = -Ax\,dt + \sqrt{2D}\,dW$: $A\Sigma + \Sigma A^T = 2D$."""
    a = np.asarray(a, dtype=np.float64)
    dmat = np.diag(np.broadcast_to(np.asarray(diffusion, dtype=np.float64), a.shape[:1]))
    if np.any(np.linalg.eigvals(a).real <= 0):
        raise ConfigError("the drift matrix A must have eigenvalues with positive real part.")
    return scipy.linalg.solve_continuous_lyapunov(a, 2 * dmat)


def linear_entropy_production(a, diffusion) -> float:
    r"""Exact entropy production rate of $dx = -Ax\,dt + \sqrt{2D}\,dW$ in its steady state.

    $v(x) = (-A + D\Sigma^{-1})x =: Mx$, so $\sigma = \mathrm{tr}(D^{-1} M \Sigma M^T)$; it
    vanishes iff $D^{-1}A$ is symmetric (detailed balance).
    """
    a = np.asarray(a, dtype=np.float64)
    dvec = np.broadcast_to(np.asarray(diffusion, dtype=np.float64), a.shape[:1])
    sigma = lyapunov_covariance(a, dvec)
    m = -a + np.diag(dvec) @ np.linalg.inv(sigma)
    return float(np.trace(np.diag(1 / dvec) @ m @ sigma @ m.T))


__all__ = ["linear_entropy_production", "lyapunov_covariance"]
