r"""`fit-to-observables`: recover the temperature of a 2D Ising lattice from its energy per site.

Target: Onsager's exact energy per site $u^*(T^*)$ of the infinite lattice at a known
$T^*$ (finite-size corrections are exponentially small in $L/\xi$ away from $T_c$: at
$T^* = 3$ the L = 8 lattice has that energy at T = 3.05 (transfer matrix); for L = 16 the shift,
$\sim e^{-L/\xi}$ with $\xi \approx 2$, is estimated below the error bar, not computed). The
inverse temperature is fitted by Adam on the loss $(\bar u(\beta) - u^*)^2$, with $\bar u$ the
mean energy per site of persistent checkerboard Metropolis chains at the current beta
(`sampling.checkerboard`, a few sweeps per step) and its beta-derivative from the fluctuation
estimator `training.fluctuation_surrogate`, $\partial_\beta \bar u = -\overline{(u - \bar u)
(E - \bar E)}$; the two factors of the loss gradient $2(\bar u - u^*)\partial_\beta \bar u$
come from disjoint halves of the chains, so the gradient is unbiased. The fitted T is
1 / (mean beta over the last quarter of the steps); independent seeds (vmapped) give the
error bar. Theory beside simulation: $T^*$ itself.

Second half: recover the coupling $K = \beta J$ of the simple-cubic 3D Ising model (periodic
$L^3$, J = 1, beta = K) from its measured susceptibility. The observable is the high-temperature
(paramagnetic, zero-field) reduced susceptibility $\chi = N\langle m^2\rangle = \frac1N
\sum_{ij}\langle s_i s_j\rangle$ ($= k_B T$ times the thermodynamic one; it is the quantity
whose high-temperature series `theory.ising3d_susceptibility_series` gives, and a mean of a
per-configuration observable, so the fluctuation estimator applies; the connected form
$N(\langle m^2\rangle - \langle|m|\rangle^2)$ is a nonlinear function of two means and is not
used). Per independent fit (seed): the target $\chi^*$ is measured by checkerboard Metropolis
chains at the planted $K^*$ (burn-in, then a time average over `n_target_sweeps` sweeps of all
chains); then Adam fits K from `K_init` on $(\bar\chi(K) - \chi^*)^2$ exactly as for the 2D
temperature, with $\partial_K\bar\chi = -\overline{(N m^2 - \overline{N m^2})(E_1 -
\bar E_1)}$ ($E_1$ the J = 1 energy) from `training.fluctuation_surrogate` and the two factors
from disjoint halves of the persistent chains. The fitted K is the mean over the last quarter of
the steps; its scatter over seeds includes the noise of each seed's own target measurement, so
the error bar covers both. Theory beside simulation: the planted $K^*$ and the series $\chi$
of the infinite lattice truncated at $v^{16}$ (`chi_series`): the truncation misses about 5% at
$K^* = 0.18$ (the default run measures 8.51(5) on L = 8 against 8.06) and much more at 0.21,
near $\beta_c J = 0.2216546$; the test `tests/test_fit_observables_3d.py` checks the measured
$\chi$ against the series at $K = 0.15$, where the tail is below 0.3%.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from .. import io, models, sampling, theory, training
from .._errors import ConfigError
from ._core import Param, RunContext, experiment

PARAMS = {
    "L": Param(16, "linear size of the periodic L x L lattice (even)", ge=4),
    "T_target": Param(
        [3.0, 1.8], "temperatures whose Onsager energy is the target (2D half)", gt=0,
        nonempty=False,
    ),
    "T_init": Param(2.4, "starting temperature of every fit", gt=0),
    "n_chains": Param(32, "persistent chains (samples per gradient step; two halves)", ge=4),
    "n_sweeps": Param(4, "checkerboard sweeps between gradient steps", ge=1),
    "n_iter": Param(300, "Adam steps on beta", ge=4),
    "learning_rate": Param(0.01, "Adam learning rate on beta", gt=0),
    "n_seeds": Param(4, "independent fits (error bar)", ge=2),
    "L3": Param(8, "linear size of the periodic L3^3 simple-cubic lattice (even; 3D half)", ge=4),
    "K_target": Param(
        [0.18, 0.21], "planted couplings beta J* of the 3D half (paramagnetic: < 0.2216546)",
        gt=0, le=0.2216, nonempty=False,
    ),
    "K_init": Param(0.15, "starting beta J of every 3D fit", gt=0, le=0.2216),
    "learning_rate_3d": Param(0.002, "Adam learning rate on beta J (3D half)", gt=0),
    "n_target_sweeps": Param(400, "sweeps measuring the target chi at K* (per seed)", ge=10),
}


def _validate(cfg: dict) -> None:
    if cfg["L"] % 2:
        raise ConfigError(f"checkerboard updates need even L, got L={cfg['L']}.")
    if cfg["L3"] % 2:
        raise ConfigError(f"checkerboard updates need even L3, got L3={cfg['L3']}.")
    if not cfg["T_target"] and not cfg["K_target"]:
        raise ConfigError("nothing to fit: give T_target (2D half) or K_target (3D half).")


def _fit(key, u_target, cfg):
    L = cfg["L"]
    model = models.Ising((L, L))
    alg = sampling.checkerboard()
    opt = optax.adam(cfg["learning_rate"])
    beta0 = jnp.asarray(1.0 / cfg["T_init"], jnp.float32)
    k0, key = jax.random.split(key)
    x0 = jax.vmap(lambda k: model.random_state(key=k))(jax.random.split(k0, cfg["n_chains"]))
    states = jax.vmap(lambda x: alg.init(x, model))(x0)

    half = cfg["n_chains"] // 2

    def loss(beta, xs):
        # d/dbeta (<u> - u*)^2 = 2 (<u> - u*) d<u>/dbeta, the two factors from disjoint halves
        # of the chains: a product of independent estimates is unbiased (one half alone
        # correlates the two factors, an O(1/n_chains) bias of the fixed point).
        def surrogate(x):
            return training.fluctuation_surrogate(
                lambda y: model.energy(y) * 1.0, lambda y: model.energy(y) / (L * L), x,
                beta=beta,
            )

        u_a = jax.lax.stop_gradient(surrogate(xs[:half]))
        return 2.0 * (u_a - u_target) * surrogate(xs[half:])

    def step(carry, k):
        beta, opt_state, states = carry
        keys = jax.random.split(k, cfg["n_chains"])
        states = jax.vmap(
            lambda kk, s: sampling.run(kk, alg, s, model, cfg["n_sweeps"], beta=beta)[0]
        )(keys, states)
        g = jax.grad(loss)(beta, states.x)
        upd, opt_state = opt.update(g, opt_state)
        beta = jnp.maximum(optax.apply_updates(beta, upd), 1e-3)
        return (beta, opt_state, states), beta

    _, betas = jax.lax.scan(step, (beta0, opt.init(beta0), states),
                            jax.random.split(key, cfg["n_iter"]))
    return betas


def _chain_states(key, model, alg, n):
    x0 = jax.vmap(lambda k: model.random_state(key=k))(jax.random.split(key, n))
    return jax.vmap(lambda x: alg.init(x, model))(x0)


def _sweep_all(key, alg, states, model, n_sweeps, beta):
    keys = jax.random.split(key, states.x.shape[0])
    return jax.vmap(
        lambda kk, s: sampling.run(kk, alg, s, model, n_sweeps, beta=beta)[0]
    )(keys, states)


def _sweeps(key, alg, state, model, n_sweeps, beta):
    """`n_sweeps` steps of `alg` (a `fori_loop`: cheaper to compile than `sampling.run`)."""

    def body(i, st):
        return alg.step(jax.random.fold_in(key, i), st, model, beta=beta)[0]

    return jax.lax.fori_loop(0, n_sweeps, body, state)


def _chi(model, x):
    r"""$N m^2 = (\sum_i s_i)^2 / N$ of one configuration."""
    s = jnp.sum(x.astype(jnp.float32))
    return s * s / x.size


def measure_susceptibility_3d(key, K, *, L: int, n_chains: int, n_burn: int, n_sweeps: int):
    r"""Measure $\chi = N\langle m^2\rangle$ of the periodic $L^3$ Ising model at beta J = K.

    Checkerboard Metropolis chains from random states; one `lax.scan` of `n_burn + n_sweeps`
    sweeps (one compiled sweep) time-averages $N m^2$ over the last `n_sweeps` of each chain.

    **Returns:** `(chi, per_chain)`: the mean over chains and the (n_chains,) chain averages
    (independent, so their standard error is the error bar).
    """
    model = models.Ising((L, L, L))
    alg = sampling.checkerboard()
    k0, k1 = jax.random.split(key)
    states = _chain_states(k0, model, alg, n_chains)

    def body(carry, inp):
        st, acc = carry
        k, t = inp
        st = _sweep_all(k, alg, st, model, 1, K)
        c = jax.vmap(lambda x: _chi(model, x))(st.x)
        return (st, acc + jnp.where(t >= n_burn, c, 0.0)), None

    n = n_burn + n_sweeps
    (_, acc), _ = jax.lax.scan(
        body, (states, jnp.zeros(n_chains, jnp.float32)),
        (jax.random.split(k1, n), jnp.arange(n)),
    )
    per_chain = acc / n_sweeps
    return jnp.mean(per_chain), per_chain


def _fit_3d(key, K_target, cfg):
    """Measure chi* at `K_target`, then Adam on K from `K_init` towards it (module docstring).

    One `lax.scan` with one compiled sweep (XLA compile time dominates small runs): the
    `n_chains` target chains (at K*) and the `n_chains` fit chains (at the current K) are
    swept together, `n_sweeps` sweeps per step, with a per-chain beta. Phase 1 (the first
    `n_pre` steps) burns in both sets and time-averages N m^2 of the target chains after a
    quarter of it (the fit chains meanwhile equilibrate at K_init, K frozen); phase 2 (`n_iter`
    steps) freezes chi* and takes one Adam step per step. Returns `(chi_target, K_trajectory)`.
    """
    L, n, nsw = cfg["L3"], cfg["n_chains"], cfg["n_sweeps"]
    model = models.Ising((L, L, L))
    alg = sampling.checkerboard()
    opt = optax.adam(cfg["learning_rate_3d"])
    n_meas = -(-cfg["n_target_sweeps"] // nsw)  # measurements, one per step
    n_burn = max(n_meas // 4, 10)
    n_pre = n_burn + n_meas
    k_init, key = jax.random.split(key)
    K0 = jnp.asarray(cfg["K_init"], jnp.float32)
    K_t = jnp.asarray(K_target, jnp.float32)
    states = _chain_states(k_init, model, alg, 2 * n)
    half = n // 2

    def loss(K, xs, chi_t):
        # d/dK (<chi> - chi*)^2 = 2 (<chi> - chi*) d<chi>/dK, the factors from disjoint halves
        def surrogate(x):
            return training.fluctuation_surrogate(
                lambda y: model.energy(y) * 1.0, lambda y: _chi(model, y), x, beta=K,
            )

        c_a = jax.lax.stop_gradient(surrogate(xs[:half]))
        return 2.0 * (c_a - chi_t) * surrogate(xs[half:])

    def step(carry, inp):
        K, opt_state, states, acc = carry
        k, t = inp
        betas = jnp.concatenate([jnp.full((n,), K_t), jnp.full((n,), K)])
        keys = jax.random.split(k, 2 * n)
        states = jax.vmap(lambda kk, s, b: _sweeps(kk, alg, s, model, nsw, b))(
            keys, states, betas
        )
        chis = jax.vmap(lambda x: _chi(model, x))(states.x[:n])
        measuring = (t >= n_burn) & (t < n_pre)
        acc = acc + jnp.where(measuring, jnp.mean(chis), 0.0)
        chi_t = acc / n_meas
        g = jax.grad(loss)(K, states.x[n:], chi_t)
        upd, new_opt = opt.update(g, opt_state)
        fitting = t >= n_pre
        K = jnp.where(fitting, jnp.maximum(optax.apply_updates(K, upd), 1e-3), K)
        opt_state = jax.tree.map(lambda a, b: jnp.where(fitting, a, b), new_opt, opt_state)
        return (K, opt_state, states, acc), K

    n_tot = n_pre + cfg["n_iter"]
    (_, _, _, acc), Ks = jax.lax.scan(
        step, (K0, opt.init(K0), states, jnp.float32(0.0)),
        (jax.random.split(key, n_tot), jnp.arange(n_tot)),
    )
    return acc / n_meas, Ks[n_pre:]


def fit_coupling_3d(cfg):
    r"""Compiled independent fits of the 3D half, vmapped over seeds.

    `cfg` needs `L3`, `n_chains`, `n_sweeps`, `n_iter`, `n_target_sweeps`, `K_init`,
    `learning_rate_3d` (module docstring). **Returns:** `fn(keys, K_target) -> (chi_target,
    K_trajectory)` with shapes `(seeds,)` and `(seeds, n_iter)`: per key, $\chi^*$ measured
    at `K_target` by its own chains, then K fitted to it. One compilation serves every K*.
    """
    fit = jax.jit(jax.vmap(lambda k, K: _fit_3d(k, K, cfg), in_axes=(0, None)))

    def fn(keys, K_target):
        with jax.numpy_dtype_promotion("standard"):  # optax's bias correction: int * float
            return fit(keys, jnp.float32(K_target))

    return fn


@experiment(
    "fit-to-observables",
    params=PARAMS,
    validate=_validate,
    runtime="about 1.5 min (92 CPU-s measured)",
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def fit_to_observables(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """Fit beta of a 2D Ising lattice to a target energy per site, and beta J of a 3D Ising
    lattice to a target susceptibility (fluctuation gradients)."""
    Ts, Ks = cfg["T_target"], cfg["K_target"]
    ctx.set_total(len(Ts) + len(Ks))
    n = cfg["n_iter"]
    traj = np.zeros((len(Ts), n))
    fitted, fitted_err = np.zeros(len(Ts)), np.zeros(len(Ts))
    fit2 = jax.jit(jax.vmap(lambda k, u: _fit(k, u, cfg), in_axes=(0, None)))  # one compile
    for i, T in enumerate(Ts):
        u_t = float(theory.onsager_energy(np.asarray(T)))

        def work(T=T, u_t=u_t):
            keys = jax.random.split(ctx.key("T", T), cfg["n_seeds"])
            with jax.numpy_dtype_promotion("standard"):  # optax's bias correction: int * float
                b = fit2(keys, jnp.float32(u_t))
            return {"beta": b}

        b = np.asarray(ctx.task(f"T={T}", work)["beta"], np.float64)  # (seeds, iter)
        t_fit = 1.0 / np.mean(b[:, (3 * n) // 4 :], axis=1)
        traj[i] = np.mean(1.0 / b, axis=0)
        fitted[i] = np.mean(t_fit)
        fitted_err[i] = np.std(t_fit, ddof=1) / np.sqrt(len(t_fit))

    k_traj = np.zeros((len(Ks), n))
    k_fit, k_err = np.zeros(len(Ks)), np.zeros(len(Ks))
    chi_t, chi_t_err = np.zeros(len(Ks)), np.zeros(len(Ks))
    fit3 = fit_coupling_3d(cfg) if Ks else None
    for i, K in enumerate(Ks):

        def work3(K=K):
            c, k = fit3(jax.random.split(ctx.key("K", K), cfg["n_seeds"]), K)
            return {"chi_target": c, "K": k}

        r = ctx.task(f"K={K}", work3)
        k = np.asarray(r["K"], np.float64)  # (seeds, iter)
        c = np.asarray(r["chi_target"], np.float64)
        ks = np.mean(k[:, (3 * n) // 4 :], axis=1)
        k_traj[i] = np.mean(k, axis=0)
        k_fit[i], k_err[i] = np.mean(ks), np.std(ks, ddof=1) / np.sqrt(len(ks))
        chi_t[i], chi_t_err[i] = np.mean(c), np.std(c, ddof=1) / np.sqrt(len(c))

    T_arr = np.asarray(Ts, np.float64)
    K_arr = np.asarray(Ks, np.float64)
    ds = xr.Dataset(
        {
            "T_fit": (("T_target",), fitted),
            "T_fit_err": (("T_target",), fitted_err),
            "T_trajectory": (("T_target", "step"), traj),
            "energy_target": (("T_target",), theory.onsager_energy(T_arr)),
            "K_fit": (("K_target",), k_fit),
            "K_fit_err": (("K_target",), k_err),
            "K_trajectory": (("K_target", "step"), k_traj),
            "chi_target": (("K_target",), chi_t),
            "chi_target_err": (("K_target",), chi_t_err),
            "chi_series": (("K_target",), theory.ising3d_susceptibility_series(K_arr)),
        },
        coords={"T_target": T_arr, "K_target": K_arr, "step": np.arange(1, n + 1)},
    )
    io.annotate(
        ds,
        T_target=("temperature whose exact energy is the target (2D)", "J/k_B"),
        step=("Adam step", "1"),
        T_fit=("fitted T, 1/<beta> over the last quarter of the steps, mean over seeds",
               "J/k_B"),
        T_trajectory=("temperature during the fit, mean over seeds", "J/k_B"),
        energy_target=("target energy per site (Onsager, infinite lattice)", "J"),
        K_target=("planted coupling beta J* of the 3D lattice", "1"),
        K_fit=("fitted beta J, mean over the last quarter of the steps, mean over seeds", "1"),
        K_trajectory=("beta J during the 3D fit, mean over seeds", "1"),
        chi_target=("target susceptibility N<m^2> measured at K*, mean over seeds", "1"),
        chi_series=("high-temperature series of chi (infinite simple-cubic lattice, v^16)",
                    "1"),
    )
    ds.attrs["L"] = int(cfg["L"])
    ds.attrs["L3"] = int(cfg["L3"])
    return ds


def _summary(ds: xr.Dataset) -> dict:
    z = (ds["T_fit"] - ds["T_target"]) / ds["T_fit_err"]
    z3 = (ds["K_fit"] - ds["K_target"]) / ds["K_fit_err"]
    return {
        "L": ds.attrs["L"],
        "T_target": [float(t) for t in ds["T_target"].values],
        "T_fit": [float(t) for t in ds["T_fit"].values],
        "T_fit_err": [float(t) for t in ds["T_fit_err"].values],
        "z": [float(v) for v in z.values],
        "L3": ds.attrs["L3"],
        "K_target": [float(t) for t in ds["K_target"].values],
        "K_fit": [float(t) for t in ds["K_fit"].values],
        "K_fit_err": [float(t) for t in ds["K_fit_err"].values],
        "K_z": [float(v) for v in z3.values],
        "chi_target": [float(t) for t in ds["chi_target"].values],
        "chi_target_err": [float(t) for t in ds["chi_target_err"].values],
    }


def _figure(ds: xr.Dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax3) = plt.subplots(1, 2, figsize=(11, 4))
    for i, T in enumerate(ds["T_target"].values):
        ax.plot(ds["step"], ds["T_trajectory"].sel(T_target=T), color=f"C{i}",
                label=f"T* = {T:g}: fit {float(ds['T_fit'][i]):.3f} ± "
                      f"{float(ds['T_fit_err'][i]):.3f}")
        ax.axhline(T, color=f"C{i}", ls=":")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("T")
    if ds.sizes["T_target"]:
        ax.legend(fontsize=8)
    ax.set_title(f"2D Ising L = {ds.attrs['L']}: T from the Onsager energy", fontsize=9)
    for i, K in enumerate(ds["K_target"].values):
        ax3.plot(ds["step"], ds["K_trajectory"].sel(K_target=K), color=f"C{i}",
                 label=f"βJ* = {K:g}: fit {float(ds['K_fit'][i]):.4f} ± "
                       f"{float(ds['K_fit_err'][i]):.4f} (χ* = {float(ds['chi_target'][i]):.2f})")
        ax3.axhline(K, color=f"C{i}", ls=":")
    ax3.set_xlabel("Adam step")
    ax3.set_ylabel("βJ")
    if ds.sizes["K_target"]:
        ax3.legend(fontsize=8)
    ax3.set_title(f"3D Ising L = {ds.attrs['L3']}: βJ from χ = N<m²>", fontsize=9)
    fig.suptitle("fluctuation-estimator gradients through persistent checkerboard chains",
                 fontsize=10)
    fig.tight_layout()
    return fig
