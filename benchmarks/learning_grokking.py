"""Ensembles of grokking networks (arXiv 2310.06110): diffphys vs PyTorch, one process.

Task: B networks f(x) = alpha/N sum_i phi(w_i.x), phi(z) = z + eps z^2/2 (N hidden units,
input dimension D, untrained readout), each with its own output scale alpha (log-spaced
2^-5..32, learning rate N/alpha^2), trained by full-batch GD on the centred square loss over
the same P examples of the quadratic teacher.

- diffphys: `training.train` (optax.sgd, the loop in `lax.scan`) vmapped over the B
  networks, one compiled call (compile time reported apart).
- PyTorch (CPU, all threads): the same batched loop written the usual way: weights (B, N, D),
  batched matmuls, `loss.backward()` by autograd, an in-place SGD step with per-network
  learning rates, a Python loop over steps.

Both start from the same weights; the final losses are compared (float32 round-off only).
Reported: students x steps per wall second and per CPU second (process time), best of
`--repeats`, and their ratio.

Run: `python benchmarks/learning_grokking.py [--B 64 --D 100 --N 500 --P 500 --steps 20]`.
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


def setup(args):
    from diffphys import models

    task = models.GrokkingTask.sample(jax.random.key(0), D=args.D, P=args.P, P_test=10)
    alphas = np.geomspace(2.0**-5, 32.0, args.B).astype(np.float32)
    w = jax.random.normal(jax.random.key(1), (args.B, args.N, args.D), jnp.float32)
    return task, alphas, w


def bench_diffphys(task, alphas, w, args):
    from diffphys import models, training

    def one(w, alpha):
        net = models.TwoLayer(w, alpha, jnp.float32(args.eps))
        f0 = net.batch(task.x_train)

        def loss(p, batch, key):
            return models.centred_loss(p, task.x_train, task.y_train, f0)

        state, _ = training.train(
            jax.random.key(2),
            net,
            training.from_loss(loss),
            optax.sgd(net.learning_rate),
            args.steps,
        )
        return state.params.w, loss(state.params, None, None)

    run = jax.jit(jax.vmap(one))
    a = jnp.asarray(alphas)
    t0 = time.perf_counter()
    jax.block_until_ready(run(w, a))
    first = time.perf_counter() - t0
    best_wall, best_cpu = np.inf, np.inf
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(run(w, a))
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return {
        "compile": first - best_wall,
        "wall": best_wall,
        "cpu": best_cpu,
        "loss": np.asarray(out[1]),
    }


def bench_torch(task, alphas, w, args):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    x = torch.as_tensor(np.array(task.x_train))
    y = torch.as_tensor(np.array(task.y_train))
    alpha = torch.as_tensor(alphas)[:, None]
    lr = (args.N / alpha**2)[:, :, None]
    eps = args.eps

    def forward(W):
        h = torch.einsum("pd,bnd->bpn", x, W)
        return alpha * (h + 0.5 * eps * h**2).mean(-1)

    def train():
        W = torch.as_tensor(np.array(w)).requires_grad_(True)
        with torch.no_grad():
            f0 = forward(W)
        for _ in range(args.steps):
            loss = ((forward(W) - f0 - y) ** 2).mean(-1)  # (B,)
            W.grad = None
            loss.sum().backward()
            with torch.no_grad():
                W -= lr * W.grad
        with torch.no_grad():
            return ((forward(W) - f0 - y) ** 2).mean(-1).numpy()  # after the last step

    train()  # warm-up
    best_wall, best_cpu = np.inf, np.inf
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = train()
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return {"wall": best_wall, "cpu": best_cpu, "loss": loss}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--B", type=int, default=64)
    p.add_argument("--D", type=int, default=100)
    p.add_argument("--N", type=int, default=500)
    p.add_argument("--P", type=int, default=500)
    p.add_argument("--eps", type=float, default=0.2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    task, alphas, w = setup(args)
    dp = bench_diffphys(task, alphas, w, args)
    th = bench_torch(task, alphas, w, args)
    rel = float(np.max(np.abs(dp["loss"] - th["loss"]) / np.abs(th["loss"])))
    work = args.B * args.steps
    print(
        f"B = {args.B}, D = {args.D}, N = {args.N}, P = {args.P}, {args.steps} steps; "
        f"load average {os.getloadavg()}; final losses agree to {rel:.1e} (relative)"
    )
    print("| peer | students x steps / wall s | students x steps / CPU s | compile (s) |")
    print("|---|---|---|---|")
    print(
        f"| diffphys (one vmapped `training.train`) | {work / dp['wall']:.1f} | "
        f"{work / dp['cpu']:.1f} | {dp['compile']:.1f} |"
    )
    print(
        f"| PyTorch {__import__('torch').__version__} (batched autograd loop) | "
        f"{work / th['wall']:.1f} | {work / th['cpu']:.1f} | - |"
    )
    print(
        f"| ratio diffphys / PyTorch | {th['wall'] / dp['wall']:.2f} | "
        f"{th['cpu'] / dp['cpu']:.2f} | |"
    )


if __name__ == "__main__":
    main()
