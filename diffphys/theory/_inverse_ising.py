r"""Closed-form inverse Ising: couplings and fields from means and pair correlations.

The model is `diffphys.models.SK(J, h)` at beta = 1,
$P(s) \propto \exp\big(\sum_i h_i s_i + \sum_{i<j} J_{ij} s_i s_j\big)$, $s_i = \pm 1$. The inputs
are the means $m_i = \langle s_i\rangle$ and the (non-connected) pair correlations
$C_{ij} = \langle s_i s_j\rangle$ (diagonal ignored, taken as 1); every formula uses the
connected correlation $c_{ij} = C_{ij} - m_i m_j$, $c_{ii} = 1 - m_i^2$.

- naive mean field (nMF; Kappen & Rodríguez, Neural Comput. 10, 1137 (1998)):
  $J_{ij} = -(c^{-1})_{ij}$, $h_i = \operatorname{artanh} m_i - \sum_j J_{ij} m_j$;
- TAP (Kappen & Rodríguez 1998; Tanaka, PRE 58, 2302 (1998)): the Thouless–Anderson–Palmer
  free energy gives $(c^{-1})_{ij} = -J_{ij} - 2 J_{ij}^2 m_i m_j$ for $i \ne j$, solved for the
  root that tends to nMF as $m_i m_j \to 0$,
  $J_{ij} = \big(\sqrt{1 - 8 m_i m_j (c^{-1})_{ij}} - 1\big)/(4 m_i m_j)$, and
  $h_i = \operatorname{artanh} m_i - \sum_j J_{ij} m_j + m_i \sum_j J_{ij}^2 (1 - m_j^2)$;
- Sessak–Monasson (J. Phys. A 42, 055001 (2009)), the small-correlation expansion resummed
  over loops (nMF) and over pairs (independent pairs), minus the term the two count twice:
  $J_{ij} = -(c^{-1})_{ij} + J^{\rm IP}_{ij} - c_{ij}/\big((1-m_i^2)(1-m_j^2) - c_{ij}^2\big)$,
  with the exact two-spin coupling
  $J^{\rm IP}_{ij} = \tfrac14 \ln \frac{p_{++}\,p_{--}}{p_{+-}\,p_{-+}}$ of the pair's
  marginal $p_{ab} = \tfrac14(1 + a m_i + b m_j + ab\,C_{ij})$.

The formulas are quoted in the form of Nguyen, Zecchina & Berg, "Inverse statistical problems:
from the inverse Ising problem to data science", Adv. Phys. 66, 197 (2017), Sec. 5. For two
spins the loop and pair-subtraction terms cancel ($-(c^{-1})_{12} = c_{12}/(c_{11}c_{22} -
c_{12}^2)$), so Sessak–Monasson is exact there. The Sessak–Monasson fields are not given in
closed form by that review; here they are the TAP fields
$h_i = \operatorname{artanh} m_i - \sum_j J_{ij} m_j + m_i \sum_j J_{ij}^2 (1 - m_j^2)$ evaluated
at the Sessak–Monasson couplings (a choice made here: their error is $O(J^3)$, measured in
`tests/test_inverse_ising.py`, where the pair-sum fields of `independent_pair_inverse` are exact
for two spins but only $O(J^2)$ in general).

**Potts (q states).** `mean_field_inverse` also accepts one-site frequencies $m_i(a)$, shape
(N, q), and two-site frequencies $C_{ij}(a, b)$, shape (N, N, q, q), of the model
`models.PairwisePotts`, $P(s) \propto \exp[\sum_i h_i(s_i) + \sum_{i<j} J_{ij}(s_i, s_j)]$. The
connected correlations $c_{ij}(a, b) = C_{ij}(a, b) - m_i(a) m_j(b)$ ($c_{ii}(a, b) =
\delta_{ab} m_i(a) - m_i(a) m_i(b)$) are singular on all q states (each block sums to zero
over a), so they are restricted to q-1 states (state q-1 dropped, the "lattice-gas" gauge
$J_{ij}(a, q-1) = J_{ij}(q-1, b) = 0$) and inverted as one $N(q-1)\times N(q-1)$ matrix: the
mean-field DCA couplings of Morcos et al., PNAS 108, E1293 (2011) (their Eq. 5, also
Weigt et al., PNAS 106, 67 (2009)),

$$J_{ij}(a, b) = -(c^{-1})_{ia, jb},\qquad a, b = 0..q-2,\ i \ne j,$$

with the fields from the mean-field equations $m_i(a) \propto \exp[h_i(a) + \sum_{j \ne i}
\sum_b J_{ij}(a, b) m_j(b)]$, $h_i(a) = \ln\frac{m_i(a)}{m_i(q-1)} - \sum_{j\ne i}\sum_b
J_{ij}(a, b) m_j(b)$ (Morcos et al. 2011). The result is returned in the zero-sum gauge
(`PairwisePotts.zero_sum_gauge`), where it does not depend on which state was dropped
(checked in `tests/test_inverse_ising.py`). For q = 2 it is the Ising nMF above under the
map $J^{\rm Potts}_{ij}(a,b) = J_{ij}\sigma_a\sigma_b$, $h^{\rm Potts}_i(a) = h_i\sigma_a$,
$\sigma = (-1, +1)$.

**Potts TAP (derived here).** The papers on TAP-corrected DCA were not reachable from this
session, so the second-order inversion is derived from the Plefka expansion (Plefka, J. Phys. A
15, 1971 (1982); Georges & Yedidia, J. Phys. A 24, 2173 (1991)) of the Legendre transform
$\Gamma(m) = \max_h[\sum_{ia} h_i(a) m_i(a) - \ln Z(h)]$ of the one-hot Potts model. With
$x_i = m_i + \delta_i$ and $C_i = \operatorname{diag}(m_i) - m_i m_i^T$ the one-site covariance,
the first order is the mean energy and the second order is minus half the variance under the
product measure of the pair energies with their parts linear in one $\delta_i$ removed (those
are absorbed by the fields), i.e. of $\delta_i^T J_{ij}\delta_j$:

$$\Gamma(m) = \sum_{i,a} m_i(a)\ln m_i(a) - \sum_{i<j} m_i^T J_{ij} m_j
  - \tfrac12\sum_{i<j}\operatorname{tr}\big(J_{ij}^T C_i J_{ij} C_j\big) + O(J^3),$$

gauge invariant (each $C_i$ annihilates constants; for Ising it is the TAP term
$-\tfrac12 J_{ij}^2(1-m_i^2)(1-m_j^2)$). In the lattice-gas gauge (state q-1 dropped, the
$m_i(a)$, $a < q-1$, independent) $\partial_{m_i(a)}\Gamma = h_i(a)$ and
$\partial_{m_i(a)}\partial_{m_j(b)}\Gamma = (c^{-1})_{ia,jb}$ give, with
$g = m_i^T J_{ij}$, $B = J_{ij} - \mathbf 1 g^T$ (rows $B_a$, all restricted to q-1 states),

$$(c^{-1})_{ia,jb} = -J_{ij}(a,b) - \tfrac12 T_{ij}(a,b),\quad
  T_{ij}(a,b) = B_{ab}^2 - g_b^2 - 2B_{ab}(B_a\cdot m_j) + 2 g_b (g\cdot m_j),$$

$$h_i(a) = \ln\frac{m_i(a)}{m_i(q-1)} - \sum_{j\ne i}\big[(J_{ij}m_j)_a
  + \tfrac12\big(B_a^T C_j B_a - g^T C_j g\big)\big].$$

The coupling equations are solved pair by pair by the fixed-point iteration
$J \leftarrow -c^{-1} - T(J)/2$ from the nMF couplings (it converges to the root continuous
with nMF when the correction is a contraction, i.e. at weak coupling; for q = 2 it is the Ising
quadratic above and converges when $8 m_i m_j (c^{-1})_{ij} > -3$; a pair that does not converge
in 500 iterations gets NaN couplings, and its two sites NaN fields, where the Ising TAP instead
clips the discriminant). For q = 2 the result is the Ising TAP inversion under the map above
(checked to 1e-8), and for q = 3 its error scales as $\epsilon^3$ (checked), both in
`tests/test_inverse_ising.py`.

**Potts Sessak–Monasson (derived here).** The Potts papers (Cocco & Monasson's adaptive
cluster expansion, Barton et al., Bioinformatics 32, 3089 (2016); Cocco, Monasson & Weigt,
PLoS Comput. Biol. 9, e1003176 (2013)) were not found by this session's search, so the Potts
version is built from the structure of the quoted Ising formula, which is (checked identity)
$J^{\rm SM} = J^{\rm nMF}[\text{all } N] + \sum_{\rm pairs}\big(J^{\rm exact}[ij] -
J^{\rm nMF}[ij]\big)$: the mean-field inversion of all the data, plus, for each pair, its exact
two-site inversion minus the mean-field inversion of the pair alone (for Ising the last is
$-[(c_{(ij)})^{-1}]_{12} = c_{ij}/(c_{ii}c_{jj} - c_{ij}^2)$, the subtracted term above; this
pair-truncated cluster expansion around the mean-field entropy is how the ACE papers describe
Sessak–Monasson, stated from memory, not checked against their text). Each term has a Potts
analogue in the lattice-gas gauge (reference state $r = q-1$):

$$J_{ij}(a, b) = -(c^{-1})_{ia,jb}
  + \ln\frac{C_{ij}(a,b)\,C_{ij}(r,r)}{C_{ij}(a,r)\,C_{ij}(r,b)}
  - \Big(-\big[c_{(ij)}^{-1}\big]_{ia,jb}\Big),\qquad a, b < r,$$

with $c$ the $N(q-1)$ matrix of the Potts nMF, $c_{(ij)}$ its $2(q-1)\times 2(q-1)$
submatrix of sites $i, j$, and the middle term the exact coupling of a two-site Potts model
with frequencies $C_{ij}$ (`independent_pair_inverse`). All three are gauge covariant, so the
zero-sum result does not depend on the dropped state; the fields are the Potts TAP fields
(above) at these couplings, as for Ising. Properties, each checked in
`tests/test_inverse_ising.py`: (i) for N = 2 the first and last terms cancel and the couplings
are exact; (ii) for q = 2 every term is 4x its Ising counterpart ($n_i = (1 - s_i)/2$ has
connected correlations $c/4$), so the result is the Ising Sessak–Monasson inversion;
(iii) order in the couplings. The second-order Plefka equations above hold for the pair alone
with its exact pair coupling $K_{ij} = J_{ij} + O(J^2)$, so the pair terms add $-\tfrac12
T_{ij}(K_{ij}) = -\tfrac12 T_{ij}(J_{ij}) + O(J^3)$ to $-c^{-1}$: the Sessak–Monasson couplings
solve the TAP equations to second order and their error is at most $O(J^3)$ (derived).
Measured, the coupling error is $O(J^4)$ (slopes 3.97–4.01 on five planted q = 3 models; the
Ising Sessak–Monasson shows the same). For Ising the third order is derived here from the
third-order Plefka term $-\sum_{i<j<k} J_{ij}J_{jk}J_{ki}(1-m_i^2)(1-m_j^2)(1-m_k^2)$ of
$\Gamma$ (Georges & Yedidia 1991, recalled, not re-derived): it adds $-4m_im_j\sum_k
J_{ij}J_{jk}J_{ki}(1-m_k^2)$ to $(c^{-1})_{ij}$, which is exactly the cross term of the
pair correction $-2m_im_jK_{ij}^2$ with $K_{ij} = J_{ij} + \sum_k J_{ik}J_{kj}(1-m_k^2) +
O(J^3)$ (the second cumulant of the eliminated spin), while the pair-only terms are exact to
all orders; the same cancellation for Potts is only measured. The fields (TAP formula) have
error $O(J^3)$.

nMF is exact to first order in the couplings (its error is $O(J^2)$ when the means are
nonzero), TAP to second order (error $O(J^3)$) and Sessak–Monasson couplings to third (error
$O(J^4)$, fields $O(J^3)$); at low temperature all three are biased (Nguyen et al. 2017,
Fig. 5), which `diffphys inverse-ising` shows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, ShapeError
from .._types import Array, Float


def _check(m, C) -> tuple[Array, Array]:
    m = jnp.asarray(m)
    C = jnp.asarray(C)
    if not jnp.issubdtype(m.dtype, jnp.floating):
        m = m.astype(jnp.float32)
    C = C.astype(m.dtype)
    if m.ndim != 1 or m.shape[0] < 2:
        raise ShapeError(f"m must be a vector of N >= 2 spin means, got shape {m.shape}.")
    n = m.shape[0]
    if C.shape != (n, n):
        raise ShapeError(f"C must be the ({n}, {n}) matrix of <s_i s_j>, got shape {C.shape}.")
    try:
        mn = np.asarray(m)
    except Exception:  # traced: no eager value check
        return m, C
    if np.any(np.abs(mn) >= 1) or not np.all(np.isfinite(mn)):
        raise ConfigError(
            "every mean must satisfy |m_i| < 1 (a spin frozen in the data has an infinite field);"
            " drop such spins or regularise the means (e.g. pseudocounts)."
        )
    return m, C


def connected_correlation(m, C) -> Float[Array, "n n"]:
    r"""$c_{ij} = C_{ij} - m_i m_j$ off the diagonal and $1 - m_i^2$ on it."""
    return _connected(*_check(m, C))


def _offdiag(a):
    return a * (1 - jnp.eye(a.shape[0], dtype=a.dtype))


def mean_field_inverse(m, C):
    r"""Naive mean-field inversion: $J = -c^{-1}$ off the diagonal (Kappen & Rodríguez 1998;
    Potts: Morcos et al. 2011).

    $$J_{ij} = -(c^{-1})_{ij}\ (i\ne j),\qquad h_i = \operatorname{artanh} m_i - \sum_j J_{ij}m_j,$$

    with $c$ the connected correlation matrix (`connected_correlation`). For q-state Potts
    frequencies, $J_{ij}(a, b) = -(c^{-1})_{ia, jb}$ on q-1 states, see the module docstring.

    **Arguments:**

    - `m`: means $\langle s_i\rangle$, shape (N,), each $|m_i| < 1$; or Potts one-site
      frequencies $m_i(a)$, shape (N, q), each in (0, 1) and each row summing to one.
    - `C`: pair correlations $\langle s_i s_j\rangle$, shape (N, N) (diagonal ignored); or
      Potts two-site frequencies $C_{ij}(a, b)$, shape (N, N, q, q) (diagonal blocks ignored;
      `training.spin_moments` gives both).

    **Returns:** `(h, J)`: Ising: fields (N,) and symmetric couplings (N, N) with zero
    diagonal, in the convention of `models.SK(J, h)` at beta = 1. Potts: fields (N, q) and
    couplings (N, N, q, q) in the zero-sum gauge, for `models.PairwisePotts(h, J)`.
    """
    if jnp.ndim(m) == 2:
        return _nmf_potts(*_check_potts(m, C))
    return _nmf(*_check(m, C))


def _check_potts(m, C) -> tuple[Array, Array]:
    m = jnp.asarray(m)
    if not jnp.issubdtype(m.dtype, jnp.floating):
        m = m.astype(jnp.float32)
    C = jnp.asarray(C).astype(m.dtype)
    n, q = m.shape
    if n < 2 or q < 2:
        raise ShapeError(f"Potts m must have shape (N, q) with N, q >= 2, got {m.shape}.")
    if C.shape != (n, n, q, q):
        raise ShapeError(
            f"Potts C must be the {(n, n, q, q)} array of two-site frequencies, got {C.shape}."
        )
    try:
        mn = np.asarray(m)
    except Exception:  # traced: no eager value check
        return m, C
    if not np.all(np.isfinite(mn)) or np.any(mn <= 0) or np.any(mn >= 1):
        raise ConfigError(
            "every Potts frequency must satisfy 0 < m[i, a] < 1 (a state never or always seen "
            "has an infinite field); merge or drop such states or add pseudocounts."
        )
    if np.any(np.abs(mn.sum(1) - 1) > 1e-3):
        raise ConfigError("Potts frequencies m[i, :] must sum to 1 over the q states.")
    return m, C


@jax.jit
def _nmf_potts(m, C):
    n, q = m.shape
    eye = jnp.eye(n, dtype=m.dtype)[:, :, None, None]
    self_block = jnp.eye(q, dtype=m.dtype) * m[:, :, None]  # delta_ab m_i(a)
    full = C * (1 - eye) + eye * self_block[:, None]  # diagonal blocks from the one-site law
    c = full - jnp.einsum("ia,jb->ijab", m, m)
    r = q - 1  # state q-1 dropped: lattice-gas gauge
    cr = c[:, :, :r, :r].transpose(0, 2, 1, 3).reshape(n * r, n * r)
    Jr = -jnp.linalg.inv(cr).reshape(n, r, n, r).transpose(0, 2, 1, 3)
    Jr = Jr * (1 - eye)
    Jr = 0.5 * (Jr + Jr.transpose(1, 0, 3, 2))
    J = jnp.zeros((n, n, q, q), m.dtype).at[:, :, :r, :r].set(Jr)
    h = jnp.log(m) - jnp.log(m[:, -1:]) - jnp.einsum("ijab,jb->ia", J, m)
    return _zero_sum(h, J)


def _zero_sum(h, J):
    """The zero-sum gauge of (h, J) (the formula of `models.PairwisePotts.zero_sum_gauge`)."""
    row = jnp.mean(J, axis=3, keepdims=True)
    col = jnp.mean(J, axis=2, keepdims=True)
    both = jnp.mean(J, axis=(2, 3), keepdims=True)
    h = h + jnp.sum(row[..., 0] - both[..., 0], axis=1)
    return h - jnp.mean(h, axis=1, keepdims=True), J - row - col + both


def _connected(m, C):
    eye = jnp.eye(m.shape[0], dtype=m.dtype)
    return (C - jnp.outer(m, m)) * (1 - eye) + jnp.diag(1 - m**2)


@jax.jit
def _nmf(m, C):
    J = _offdiag(-jnp.linalg.inv(_connected(m, C)))
    J = 0.5 * (J + J.T)
    return jnp.arctanh(m) - J @ m, J


def tap_inverse(m, C):
    r"""TAP inversion (Kappen & Rodríguez 1998; Tanaka 1998; Potts: derived here, see
    `_tap_potts`).

    Solves $(c^{-1})_{ij} = -J_{ij} - 2J_{ij}^2 m_i m_j$ for each pair,

    $$J_{ij} = \frac{\sqrt{1 - 8 m_i m_j (c^{-1})_{ij}} - 1}{4 m_i m_j}$$

    (the root continuous with nMF at $m_i m_j = 0$; a negative discriminant, which happens when
    the data are far from the weak-coupling regime, is clipped to 0), and
    $h_i = \operatorname{artanh} m_i - \sum_j J_{ij} m_j + m_i \sum_j J_{ij}^2 (1 - m_j^2)$.

    For q-state Potts frequencies (m of shape (N, q), C of shape (N, N, q, q)) the
    second-order Plefka inversion of the Potts model (derived in the module docstring): per
    pair the $(q-1)^2$ quadratic equations $(c^{-1})_{ia,jb} = -J_{ij}(a,b) -
    \tfrac12 T_{ij}(a,b)$ are solved by fixed-point iteration from the nMF couplings; a pair
    whose iteration does not converge (data far from weak coupling) gets NaN couplings, and the
    fields of its sites are NaN. For q = 2 this is the Ising TAP inversion above.

    **Arguments:** as `mean_field_inverse`.

    **Returns:** `(h, J)`, Potts: in the zero-sum gauge.
    """
    if jnp.ndim(m) == 2:
        return _tap_potts(*_check_potts(m, C))
    return _tap(*_check(m, C))


def _potts_restricted(m, C):
    """Connected correlations restricted to the first q-1 states, as (N r, N r), r = q - 1."""
    n, q = m.shape
    eye = jnp.eye(n, dtype=m.dtype)[:, :, None, None]
    self_block = jnp.eye(q, dtype=m.dtype) * m[:, :, None]
    full = C * (1 - eye) + eye * self_block[:, None]
    c = full - jnp.einsum("ia,jb->ijab", m, m)
    r = q - 1
    return c[:, :, :r, :r].transpose(0, 2, 1, 3).reshape(n * r, n * r)


def _plefka_pair(J, mi, mj):
    """For one ordered pair (i, j) in the lattice-gas gauge (r = q - 1 states): T(a, b) =
    d^2/dm_i(a) dm_j(b) of tr(J^T C_i J C_j), and d/dm_i(a) of it, with C_k = diag(m_k) -
    m_k m_k^T. With g = m_i^T J and B = J - 1 g^T (rows B_a):
    T(a, b) = B_ab^2 - g_b^2 - 2 B_ab (B_a . m_j) + 2 g_b (g . m_j) and
    d/dm_i(a) = B_a^T C_j B_a - g^T C_j g."""
    g = mi @ J
    B = J - g[None, :]
    Bm = B @ mj
    T = B**2 - g[None, :] ** 2 - 2 * B * Bm[:, None] + 2 * g[None, :] * (g @ mj)
    Cj = jnp.diag(mj) - jnp.outer(mj, mj)
    dfi = jnp.einsum("ay,yw,aw->a", B, Cj, B) - g @ Cj @ g
    return T, dfi


@jax.jit
def _tap_potts(m, C):
    n, q = m.shape
    r = q - 1
    mr = m[:, :r]
    A = jnp.linalg.inv(_potts_restricted(m, C)).reshape(n, r, n, r).transpose(0, 2, 1, 3)
    off = 1 - jnp.eye(n, dtype=m.dtype)
    A = A * off[:, :, None, None]
    A = 0.5 * (A + A.transpose(1, 0, 3, 2))
    mi = jnp.broadcast_to(mr[:, None], (n, n, r)).reshape(n * n, r)
    mj = jnp.broadcast_to(mr[None, :], (n, n, r)).reshape(n * n, r)
    Ap = A.reshape(n * n, r, r)
    tol = 1e3 * jnp.finfo(m.dtype).eps

    def step(Jp):
        return -Ap - 0.5 * jax.vmap(_plefka_pair)(Jp, mi, mj)[0]

    def cond(state):
        k, Jp, delta = state
        return (k < 500) & (delta > tol)

    def body(state):
        k, Jp, _ = state
        Jn = step(Jp)
        # pairs that blew up (NaN) are left behind: they are flagged below
        d = jnp.abs(Jn - Jp) / (1 + jnp.abs(Jn))
        return k + 1, Jn, jnp.max(jnp.where(jnp.isfinite(d), d, 0.0))

    _, Jp, _ = jax.lax.while_loop(cond, body, (0, -Ap, jnp.asarray(jnp.inf, m.dtype)))
    # per pair: converged where the fixed-point residual is at the rounding level
    res = jnp.max(jnp.abs(step(Jp) - Jp), axis=(1, 2))
    ok = jnp.isfinite(res) & (res <= 10 * tol * (1 + jnp.max(jnp.abs(Ap), axis=(1, 2))))
    Jr = jnp.where(ok[:, None, None], Jp, jnp.nan).reshape(n, n, r, r) * off[:, :, None, None]
    Jr = 0.5 * (Jr + Jr.transpose(1, 0, 3, 2))
    return _potts_tap_fields_gauged(m, Jr)


def _potts_tap_fields_gauged(m, Jr):
    """The second-order Plefka (TAP) fields at lattice-gas couplings Jr, shape (N, N, r, r)
    (zero diagonal blocks), r = q - 1; returns (h, J) in the zero-sum gauge."""
    n, q = m.shape
    r = q - 1
    mr = m[:, :r]
    off = 1 - jnp.eye(n, dtype=m.dtype)
    mi = jnp.broadcast_to(mr[:, None], (n, n, r)).reshape(n * n, r)
    mj = jnp.broadcast_to(mr[None, :], (n, n, r)).reshape(n * n, r)
    _, dfi = jax.vmap(_plefka_pair)(Jr.reshape(n * n, r, r), mi, mj)
    dfi = (dfi.reshape(n, n, r) * off[:, :, None]).sum(1)
    hr = jnp.log(mr) - jnp.log(m[:, -1:]) - jnp.einsum("ijab,jb->ia", Jr, mr) - 0.5 * dfi
    J = jnp.zeros((n, n, q, q), m.dtype).at[:, :, :r, :r].set(Jr)
    h = jnp.zeros((n, q), m.dtype).at[:, :r].set(hr)
    return _zero_sum(h, J)


def _tap_fields(m, J):
    return jnp.arctanh(m) - J @ m + m * ((J**2) @ (1 - m**2))


@jax.jit
def _tap(m, C):
    a = _offdiag(jnp.linalg.inv(_connected(m, C)))
    a = 0.5 * (a + a.T)
    mm = jnp.outer(m, m)
    x = 8.0 * mm * a  # 1 - x is the discriminant
    disc = jnp.maximum(1.0 - x, 0.0)
    small = jnp.abs(x) < 1e-4
    # (sqrt(1 - x) - 1) / (4 mm) = -2a / (1 + sqrt(1 - x)): no cancellation as mm -> 0
    J = jnp.where(small, -a * (1.0 + x / 4.0), -2.0 * a / (1.0 + jnp.sqrt(disc)))
    J = _offdiag(J)
    return _tap_fields(m, J), J


def _pair_marginals(m, C):
    """p_ab for a, b in {+, -}: four (N, N) arrays p_pp, p_pm, p_mp, p_mm."""
    mi = m[:, None]
    mj = m[None, :]
    p_pp = 0.25 * (1 + mi + mj + C)
    p_pm = 0.25 * (1 + mi - mj - C)
    p_mp = 0.25 * (1 - mi + mj - C)
    p_mm = 0.25 * (1 - mi - mj + C)
    return p_pp, p_pm, p_mp, p_mm


def independent_pair_inverse(m, C):
    r"""Independent-pair inversion: each pair fitted as if it were alone (exact for N = 2).

    $J_{ij} = \tfrac14\ln\frac{p_{++}p_{--}}{p_{+-}p_{-+}}$ and the pair-sum fields
    $h_i = \operatorname{artanh} m_i + \sum_{j\ne i}(h^{(j)}_i - \operatorname{artanh} m_i)$ with
    $h^{(j)}_i = \tfrac14\ln\frac{p_{++}p_{+-}}{p_{-+}p_{--}}$, where $p_{ab}$ is the empirical
    marginal of $(s_i, s_j)$ (Roudi, Aurell & Hertz, Front. Comput. Neurosci. 3, 22 (2009)).

    For q-state Potts frequencies the same construction with the exact two-site Potts solution
    in the lattice-gas gauge (reference state $r = q-1$; derived here, elementary),
    $J_{ij}(a, b) = \ln\frac{C_{ij}(a,b)\,C_{ij}(r,r)}{C_{ij}(a,r)\,C_{ij}(r,b)}$ and
    $h^{(j)}_i(a) = \ln\frac{C_{ij}(a,r)}{C_{ij}(r,r)}$ in the pair sum with
    $\ln\frac{m_i(a)}{m_i(r)}$ in place of $\operatorname{artanh} m_i$; returned in the
    zero-sum gauge. For q = 2 it is the Ising inversion above under the map of
    `mean_field_inverse`.

    **Arguments:** as `mean_field_inverse`; every pair marginal must be positive (for Potts
    frequencies this is checked: a `ConfigError` asks for pseudocounts).

    **Returns:** `(h, J)`: Ising (N,), (N, N); Potts (N, q), (N, N, q, q), zero-sum gauge.
    """
    if jnp.ndim(m) == 2:
        m, C = _check_potts(m, C)
        _check_pair_frequencies(C)
        return _ip_potts(m, C)
    return _ip(*_check(m, C))


def _check_pair_frequencies(C) -> None:
    try:
        Cn = np.asarray(C)
    except Exception:  # traced: no eager value check
        return
    off = ~np.eye(Cn.shape[0], dtype=bool)
    if not np.all(np.isfinite(Cn[off])) or np.any(Cn[off] <= 0):
        raise ConfigError(
            "every two-site Potts frequency C[i, j, a, b] (i != j) must be positive for the "
            "independent-pair and Sessak-Monasson inversions (a pair of states never seen "
            "together has an infinite pair coupling); add pseudocounts to the frequencies."
        )


def _potts_pair_lattice_gas(C):
    """The exact two-site solution of every ordered pair (i, j) from its frequencies C_ij(a, b),
    lattice-gas gauge (reference state r = q - 1): couplings (N, N, r, r), zero diagonal blocks,
    and the fields h_i^(j)(a) = ln C_ij(a, r)/C_ij(r, r), shape (N, N, r)."""
    n, _, q, _ = C.shape
    r = q - 1
    eye = jnp.eye(n, dtype=bool)[:, :, None, None]
    L = jnp.log(jnp.where(eye, 1.0, C))  # diagonal blocks unused
    J = L[:, :, :r, :r] + L[:, :, r:, r:] - L[:, :, :r, r:] - L[:, :, r:, :r]
    J = jnp.where(eye, 0.0, J)
    return 0.5 * (J + J.transpose(1, 0, 3, 2)), L[:, :, :r, r] - L[:, :, r:, r]


@jax.jit
def _ip_potts(m, C):
    n, q = m.shape
    r = q - 1
    Jr, h_pair = _potts_pair_lattice_gas(C)
    h0 = jnp.log(m[:, :r]) - jnp.log(m[:, -1:])
    off = 1 - jnp.eye(n, dtype=m.dtype)
    hr = h0 + jnp.sum((h_pair - h0[:, None]) * off[:, :, None], axis=1)
    J = jnp.zeros((n, n, q, q), m.dtype).at[:, :, :r, :r].set(Jr)
    h = jnp.zeros((n, q), m.dtype).at[:, :r].set(hr)
    return _zero_sum(h, J)


@jax.jit
def _ip(m, C):
    p_pp, p_pm, p_mp, p_mm = _pair_marginals(m, C)
    eye = jnp.eye(m.shape[0], dtype=m.dtype)
    safe = [jnp.where(eye > 0, 1.0, p) for p in (p_pp, p_pm, p_mp, p_mm)]
    p_pp, p_pm, p_mp, p_mm = safe
    J = _offdiag(0.25 * (jnp.log(p_pp) + jnp.log(p_mm) - jnp.log(p_pm) - jnp.log(p_mp)))
    h_pair = 0.25 * (jnp.log(p_pp) + jnp.log(p_pm) - jnp.log(p_mp) - jnp.log(p_mm))
    h0 = jnp.arctanh(m)
    h = h0 + jnp.sum(_offdiag(h_pair - h0[:, None]), axis=1)
    return h, J


def sessak_monasson_inverse(m, C):
    r"""Sessak–Monasson small-correlation inversion (Sessak & Monasson, J. Phys. A 42, 055001
    (2009), in the form of Nguyen, Zecchina & Berg, Adv. Phys. 66, 197 (2017); Potts: derived
    here, see the module docstring).

    $$J_{ij} = -(c^{-1})_{ij} + J^{\rm IP}_{ij}
      - \frac{c_{ij}}{(1-m_i^2)(1-m_j^2) - c_{ij}^2},$$

    the nMF loop resummation plus the independent-pair couplings (`independent_pair_inverse`)
    minus the pair term counted by both. The couplings are exact for two spins. The fields are
    the TAP fields at these couplings (a choice, see the module docstring).

    For q-state Potts frequencies (m of shape (N, q), C of shape (N, N, q, q)) the same three
    terms in the lattice-gas gauge: the mean-field DCA couplings $-(c^{-1})_{ia,jb}$, plus the
    exact two-site couplings of each pair, minus the mean-field inversion of the pair alone
    (its $2(q-1)\times 2(q-1)$ correlation matrix); the fields are the Potts TAP fields
    (`tap_inverse`) at these couplings. Exact couplings for N = 2; at weak coupling a coupling
    error $O(J^3)$ derived and $O(J^4)$ measured (nMF: $O(J^2)$, TAP: $O(J^3)$), fields
    $O(J^3)$; for q = 2 the Ising inversion above.

    **Arguments:** as `mean_field_inverse`; for Potts frequencies every two-site frequency
    must be positive (else a `ConfigError` asks for pseudocounts).

    **Returns:** `(h, J)`: Ising (N,), (N, N); Potts (N, q), (N, N, q, q), zero-sum gauge.
    """
    if jnp.ndim(m) == 2:
        m, C = _check_potts(m, C)
        _check_pair_frequencies(C)
        return _sm_potts(m, C)
    return _sm(*_check(m, C))


@jax.jit
def _sm_potts(m, C):
    n, q = m.shape
    r = q - 1
    cr = _potts_restricted(m, C)
    loops = -jnp.linalg.inv(cr).reshape(n, r, n, r).transpose(0, 2, 1, 3)  # mean-field DCA
    pair_exact, _ = _potts_pair_lattice_gas(C)
    # the mean-field inversion of each pair alone: [[c_ii, c_ij], [c_ji, c_jj]]^-1, (1, 2) block
    c4 = cr.reshape(n, r, n, r).transpose(0, 2, 1, 3)
    ci = jnp.broadcast_to(c4[jnp.arange(n), jnp.arange(n)][:, None], (n, n, r, r))
    cj = ci.transpose(1, 0, 2, 3)
    M = jnp.concatenate(
        [jnp.concatenate([ci, c4], axis=3), jnp.concatenate([c4.transpose(1, 0, 2, 3), cj], 3)],
        axis=2,
    )
    eye = jnp.eye(n, dtype=bool)[:, :, None, None]
    M = jnp.where(eye, jnp.eye(2 * r, dtype=m.dtype), M)  # i = j: singular and unused
    pair_mf = -jnp.linalg.inv(M)[:, :, :r, r:]
    Jr = jnp.where(eye, 0.0, loops + pair_exact - pair_mf)
    Jr = 0.5 * (Jr + Jr.transpose(1, 0, 3, 2))
    return _potts_tap_fields_gauged(m, Jr)


@jax.jit
def _sm(m, C):
    c = _connected(m, C)
    _, J_mf = _nmf(m, C)
    _, J_ip = _ip(m, C)
    d = jnp.outer(1 - m**2, 1 - m**2) - c**2
    d = jnp.where(jnp.eye(m.shape[0], dtype=bool), 1.0, d)
    J = _offdiag(J_mf + J_ip - c / d)
    return _tap_fields(m, J), J


__all__ = [
    "connected_correlation",
    "independent_pair_inverse",
    "mean_field_inverse",
    "sessak_monasson_inverse",
    "tap_inverse",
]
