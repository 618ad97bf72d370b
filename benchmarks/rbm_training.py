"""PCD training of a Bernoulli-Bernoulli RBM: diffphys vs scikit-learn's BernoulliRBM vs the
PyTorch `rbms` package (DsysDML/rbms), same data, sizes and hyperparameters, one process.

Data: scikit-learn's digits, binarised (1797 x 64). Model: 64 visible, `--hidden` hidden units
(default 16, so the log-likelihood is exact by enumerating the hidden layer). Algorithm: PCD-1,
minibatches of `--batch`, as many persistent chains as the minibatch (scikit-learn's choice),
plain SGD with learning rate `--lr`, the same initialisation (W ~ 0.01 N(0,1), zero biases).

Measured:
1. updates per second over `--throughput-epochs` epochs, best of `--repeats` runs (steady
   state; diffphys compile time reported separately);
2. time to reach a target exact train log-likelihood: the value scikit-learn reaches after
   `--epochs` epochs; each library's time is the wall time of the shortest run that reaches it
   (diffphys: fraction of steady-state time of a run without recording).

`rbms` computes the gradient the same way but normalises it to unit norm (its `fit_batch_pcd`),
so only its updates per second are compared, with `centered=False`.

Run: `python benchmarks/rbm_training.py [--hidden 16 --batch 64 --lr 0.05 --epochs 20]`.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np
import optax


def _ll(model_np, data):
    from diffphys.models import RBM

    W, a, b = model_np
    m = RBM(jnp.asarray(W, jnp.float32), jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    return float(m.log_likelihood(jnp.asarray(data)))


def bench_diffphys(data, args, n_updates, record_every=None):
    from diffphys.models import RBM
    from diffphys.training import init_chains, pcd, train

    key = jax.random.key(0)
    k1, k2, k3 = jax.random.split(key, 3)
    model = RBM.sample(k1, data.shape[1], args.hidden, scale=0.01)
    chains = init_chains(k2, model, args.batch, data)
    g = pcd(jnp.asarray(data), batch_size=args.batch, k=1)
    opt = optax.sgd(args.lr)

    @jax.jit
    def run(model, chains):
        state, _ = train(k3, model, g, opt, n_updates, aux=chains)
        return state.params

    t0 = time.perf_counter()
    jax.block_until_ready(run(model, chains))
    first = time.perf_counter() - t0
    steady = np.inf
    for _ in range(args.repeats):  # best of: the machine is shared
        t0 = time.perf_counter()
        params = jax.block_until_ready(run(model, chains))
        steady = min(steady, time.perf_counter() - t0)
    out = {"compile": first - steady, "steady": steady, "params": params}
    if record_every:

        @jax.jit
        def traced(model, chains):
            times = np.arange(record_every, n_updates + 1, record_every)
            _, trace = train(
                k3,
                model,
                g,
                opt,
                n_updates,
                aux=chains,
                record_at=times,
                record=lambda s: s.params.log_likelihood(jnp.asarray(data)),
            )
            return trace["time"], trace["record"]

        out["trace"] = jax.device_get(traced(model, chains))
    return out


def bench_sklearn(data, args, epochs):
    from sklearn.neural_network import BernoulliRBM

    rbm = BernoulliRBM(
        n_components=args.hidden,
        learning_rate=args.lr,
        batch_size=args.batch,
        n_iter=epochs,
        random_state=0,
    )
    t0 = time.perf_counter()
    rbm.fit(data)
    dt = time.perf_counter() - t0
    params = (rbm.components_.T, rbm.intercept_visible_, rbm.intercept_hidden_)
    return dt, params


def bench_rbms(data, args, n_updates):
    import torch
    from rbms.bernoulli_bernoulli.classes import BBRBM
    from rbms.training.pcd import fit_batch_pcd

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    x = torch.as_tensor(data, dtype=torch.float32)
    n_v = x.shape[1]
    params = BBRBM(
        weight_matrix=0.01 * torch.randn(n_v, args.hidden),
        vbias=torch.zeros(n_v),
        hbias=torch.zeros(args.hidden),
    )
    for p in params.parameters():
        p.requires_grad_(False)
        p.grad = torch.zeros_like(p)
    opt = torch.optim.SGD(params.parameters(), lr=args.lr, maximize=True)
    chains = params.init_chains(args.batch, start_v=x[: args.batch])
    w = torch.ones(args.batch)

    def step(i):
        nonlocal chains
        idx = torch.randint(0, x.shape[0], (args.batch,))
        chains, _ = fit_batch_pcd(
            (x[idx], w), chains, params, gibbs_steps=1, beta=1.0, centered=False
        )
        opt.step()

    for i in range(20):  # warm-up (torch.jit.script compilation)
        step(i)
    t0 = time.perf_counter()
    for i in range(n_updates):
        step(i)
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--throughput-epochs", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    from diffphys.data import load_digits

    data = load_digits(binarize=True)
    per_epoch = -(-data.shape[0] // args.batch)
    n_updates = args.epochs * per_epoch

    exact = args.hidden <= 20  # exact log-likelihood only by enumerating <= 2^20 hidden states
    if exact:
        _, sk_params = bench_sklearn(data, args, args.epochs)
        target = _ll(sk_params, data)
        dp = bench_diffphys(data, args, n_updates, record_every=per_epoch)
    else:
        target = float("nan")
    # throughput: longer runs, best of `repeats`
    n_thr = args.throughput_epochs * per_epoch
    dp_thr = bench_diffphys(data, args, n_thr)
    sk_time = min(bench_sklearn(data, args, args.throughput_epochs)[0] for _ in range(args.repeats))
    try:
        rb_time = bench_rbms(data, args, n_thr // 10) * 10
    except ImportError as e:  # torch / rbms not installed: bench extra
        rb_time = None
        print(f"(rbms skipped: {e})")

    # time to target: sklearn -- shortest number of epochs whose fit reaches the target
    sk_tt = dp_tt = None
    for e in range(1, args.epochs + 1 if exact else 1):
        t, prm = bench_sklearn(data, args, e)
        if _ll(prm, data) >= target - 1e-6:
            sk_tt = t
            break
    if exact:
        times, lls = dp["trace"]
        hit = np.nonzero(np.asarray(lls) >= target)[0]
        dp_tt = None if hit.size == 0 else dp["steady"] * float(times[hit[0]]) / n_updates

    print(
        f"digits {data.shape}, hidden={args.hidden}, batch={args.batch}, lr={args.lr}, "
        f"PCD-1, {n_updates} updates ({args.epochs} epochs)\n"
    )
    print(
        "| library | updates/s | ratio diffphys/x | time to LL >= "
        f"{target:.3f} (s) | ratio x/diffphys |"
    )
    print("|---|---|---|---|---|")
    dp_rate = n_thr / dp_thr["steady"]
    print(
        f"| diffphys (JAX, lax.scan) | {dp_rate:,.0f} | 1.00 | "
        f"{'n/a' if dp_tt is None else f'{dp_tt:.3f}'} | 1.00 |"
    )
    sk_rate = n_thr / sk_time
    print(
        f"| scikit-learn BernoulliRBM | {sk_rate:,.0f} | {dp_rate / sk_rate:.1f} | "
        f"{'n/a' if sk_tt is None else f'{sk_tt:.3f}'} | "
        f"{'n/a' if (sk_tt is None or dp_tt is None) else f'{sk_tt / dp_tt:.1f}'} |"
    )
    if rb_time is not None:
        rb_rate = n_thr / rb_time
        print(
            f"| rbms (PyTorch, CPU) | {rb_rate:,.0f} | {dp_rate / rb_rate:.1f} | "
            "not compared (normalised gradient) | |"
        )
    print(
        f"\nupdates/s: {n_thr} updates ({args.throughput_epochs} epochs), best of {args.repeats} "
        f"(rbms: {n_thr // 10} updates, one run)"
    )
    print(f"diffphys compile time: {dp_thr['compile']:.2f} s (reported separately, excluded above)")
    if exact:
        print(f"final exact LL: diffphys {float(lls[-1]):.3f}, scikit-learn {target:.3f}")


if __name__ == "__main__":
    main()
