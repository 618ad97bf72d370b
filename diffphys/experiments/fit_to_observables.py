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
    "T_target": Param([3.0, 1.8], "temperatures whose Onsager energy is the target", gt=0),
    "T_init": Param(2.4, "starting temperature of every fit", gt=0),
    "n_chains": Param(32, "persistent chains (samples per gradient step; two halves)", ge=4),
    "n_sweeps": Param(4, "checkerboard sweeps between gradient steps", ge=1),
    "n_iter": Param(300, "Adam steps on beta", ge=4),
    "learning_rate": Param(0.01, "Adam learning rate on beta", gt=0),
    "n_seeds": Param(4, "independent fits (error bar)", ge=2),
}


def _validate(cfg: dict) -> None:
    if cfg["L"] % 2:
        raise ConfigError(f"checkerboard updates need even L, got L={cfg['L']}.")


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


@experiment(
    "fit-to-observables",
    params=PARAMS,
    validate=_validate,
    runtime="about 1 min",
    summary=lambda ds: _summary(ds),
    figure=lambda ds: _figure(ds),
)
def fit_to_observables(ctx: RunContext, cfg: dict) -> xr.Dataset:
    """Fit beta of a 2D Ising lattice to a target energy per site (fluctuation gradients)."""
    Ts = cfg["T_target"]
    ctx.set_total(len(Ts))
    n = cfg["n_iter"]
    traj, fitted, fitted_err = [], [], []
    for T in Ts:
        u_t = float(theory.onsager_energy(np.asarray(T)))

        def work(T=T, u_t=u_t):
            keys = jax.random.split(ctx.key("T", T), cfg["n_seeds"])
            with jax.numpy_dtype_promotion("standard"):  # optax's bias correction: int * float
                b = jax.jit(jax.vmap(lambda k: _fit(k, jnp.float32(u_t), cfg)))(keys)
            return {"beta": b}

        b = np.asarray(ctx.task(f"T={T}", work)["beta"], np.float64)  # (seeds, iter)
        t_fit = 1.0 / np.mean(b[:, (3 * n) // 4 :], axis=1)
        traj.append(np.mean(1.0 / b, axis=0))
        fitted.append(np.mean(t_fit))
        fitted_err.append(np.std(t_fit, ddof=1) / np.sqrt(len(t_fit)))
    T_arr = np.asarray(Ts, np.float64)
    ds = xr.Dataset(
        {
            "T_fit": (("T_target",), np.asarray(fitted)),
            "T_fit_err": (("T_target",), np.asarray(fitted_err)),
            "T_trajectory": (("T_target", "step"), np.stack(traj)),
            "energy_target": (("T_target",), theory.onsager_energy(T_arr)),
        },
        coords={"T_target": T_arr, "step": np.arange(1, n + 1)},
    )
    io.annotate(
        ds,
        T_target=("temperature whose exact energy is the target", "J/k_B"),
        step=("Adam step", "1"),
        T_fit=("fitted T, 1/<beta> over the last quarter of the steps, mean over seeds",
               "J/k_B"),
        T_trajectory=("temperature during the fit, mean over seeds", "J/k_B"),
        energy_target=("target energy per site (Onsager, infinite lattice)", "J"),
    )
    ds.attrs["L"] = int(cfg["L"])
    return ds


def _summary(ds: xr.Dataset) -> dict:
    z = (ds["T_fit"] - ds["T_target"]) / ds["T_fit_err"]
    return {
        "L": ds.attrs["L"],
        "T_target": [float(t) for t in ds["T_target"].values],
        "T_fit": [float(t) for t in ds["T_fit"].values],
        "T_fit_err": [float(t) for t in ds["T_fit_err"].values],
        "z": [float(v) for v in z.values],
    }


def _figure(ds: xr.Dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, T in enumerate(ds["T_target"].values):
        ax.plot(ds["step"], ds["T_trajectory"].sel(T_target=T), color=f"C{i}",
                label=f"T* = {T:g}: fit {float(ds['T_fit'][i]):.3f} ± "
                      f"{float(ds['T_fit_err'][i]):.3f}")
        ax.axhline(T, color=f"C{i}", ls=":")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("T")
    ax.legend(fontsize=8)
    ax.set_title(f"2D Ising L = {ds.attrs['L']}: T from the Onsager energy (fluctuation grad)")
    fig.tight_layout()
    return fig
