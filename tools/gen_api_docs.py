"""Write the API reference pages `docs/api/*.md` from the public `__all__` of every subpackage.

Each public name is placed on the page of its model family by the private module that defines
it (`FAMILIES` below), so a new public function lands on its family's page without editing the
docs. A name from a module that no family claims is an error: add the module to `FAMILIES`.

    python tools/gen_api_docs.py          # rewrite docs/api/*.md
    python tools/gen_api_docs.py --check  # exit 1 if they are out of date (run by the tests)
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = [
    "models",
    "sampling",
    "theory",
    "training",
    "exact",
    "observables",
    "ensemble",
    "io",
    "data",
    "curvature",
    "spectra",
    "experiments",
]
# page -> (title, introduction, defining modules)
FAMILIES = {
    "engine": (
        "Engine: sampling, ensembles, observables, results",
        "The model-agnostic machinery: `init`/`step` samplers and the chain driver, `vmap` and "
        "sharding over a batch, estimators with error bars, enumeration, and the results "
        "format. See also the guide pages on writing your own model or sampler and on the "
        "parallel-tempering state layout.",
        [
            "diffphys.sampling._base",
            "diffphys.sampling._discrete",
            "diffphys.sampling._langevin",
            "diffphys.sampling._tempering",
            "diffphys.ensemble",
            "diffphys.observables",
            "diffphys.exact",
            "diffphys.io",
            "diffphys.models._base",
            "diffphys.training._loop",
            "diffphys.experiments",
            "diffphys.experiments._core",
            "diffphys._errors",
            "diffphys._loop",
        ],
    ),
    "lattice": (
        "Lattice spins: Ising, Potts, Edwards–Anderson",
        "Ising and Potts models on periodic lattices, local, checkerboard, fused C++ and cluster "
        "kernels, the exact 2D solutions and the differentiable transfer matrix. Experiments: "
        "`ising2d`, `fisher-curvature`; notebook: engine tour.",
        [
            "diffphys.models._lattice",
            "diffphys.models._cluster",
            "diffphys.models._cluster_native",
            "diffphys.models._ising_fast",
            "diffphys.models._ising_fused",
            "diffphys.models._ising_multispin",
            "diffphys.theory._ising",
            "diffphys._transfer",
            "diffphys.theory._fisher",
        ],
    ),
    "spin_glasses": (
        "Spin glasses: SK, p-spin, spherical, non-reciprocal",
        "Mean-field spin glasses and their theory: replica-symmetric and AT-line formulas, "
        "Cugliandolo–Kurchan DMFT on uniform and decimated grids, non-reciprocal DMFT. "
        "Experiments: `sk-parallel-tempering`, `sk-ground-state`, `spherical-aging`, "
        "`nonreciprocal-spin-glass`.",
        [
            "diffphys.models._sk",
            "diffphys.models._pspin_native",
            "diffphys.models._spherical",
            "diffphys.models._nonreciprocal",
            "diffphys.theory._sk",
            "diffphys.theory._dmft",
            "diffphys.theory._dmft_grid",
            "diffphys.theory._dmft_nonreciprocal",
        ],
    ),
    "memories": (
        "Associative memories: Hopfield, dense and exponential",
        "Hopfield networks and their dense and exponential generalisations, retrieval dynamics "
        "and the AGS and capacity theory. Experiments: `hopfield-capacity`, `dense-capacity`, "
        "`exponential-capacity`, `basins`, `supervised-hebbian`.",
        [
            "diffphys.models._hopfield",
            "diffphys.models._hopfield_supervised",
            "diffphys.models._exponential_memory",
            "diffphys.models._memory_dynamics",
            "diffphys.models._modern_hopfield",
            "diffphys.theory._hopfield",
        ],
    ),
    "boltzmann": (
        "Boltzmann machines",
        "Restricted and spherical Boltzmann machines, their exact and AIS partition functions, "
        "CD/PCD training and data loaders. Experiments: `rbm-cascade`, `spherical-bm-ensembles`.",
        [
            "diffphys.models._rbm",
            "diffphys.models._spherical_bm",
            "diffphys.theory._spherical_bm",
            "diffphys.training._ebm",
            "diffphys.training._ais",
            "diffphys.data",
        ],
    ),
    "diffusion": (
        "Diffusion and score models",
        "Noising processes, exact and learned scores, reverse SDE and probability flow, KDE "
        "statistics and entropy production. Experiments: `diffusion-speciation`, "
        "`diffusion-collapse`, `kde-regimes`, `entropy-production`.",
        [
            "diffphys.models._diffusion",
            "diffphys.models._diffusion_sampling",
            "diffphys.models._kde",
            "diffphys.models._entropy_production",
            "diffphys.theory._entropy_production",
            "diffphys.theory._diffusion",
            "diffphys.theory._kde",
            "diffphys.training._score",
        ],
    ),
    "learning": (
        "Learning theory: students, curvature, spectra",
        "Students of learning-theory problems trained by the optax loop: phase retrieval, the "
        "grokking two-layer network and its linearisation, random recurrent networks with their "
        "DMFT, Hessian curvature and weight spectra. Experiments: `phase-retrieval`, `grokking`, "
        "`random-rnn`, `weight-spectra`.",
        [
            "diffphys.models._phase_retrieval",
            "diffphys.models._two_layer",
            "diffphys.theory._ntk",
            "diffphys.models._rnn",
            "diffphys.theory._rnn",
            "diffphys.theory._rnn_covariance",
            "diffphys.theory._phase_retrieval",
            "diffphys.training._flow",
            "diffphys.curvature",
            "diffphys.spectra",
        ],
    ),
    "fitting": (
        "Parameter fitting: inverse Ising and Potts, observables",
        "Estimators of couplings and fields from data (exact likelihood, pseudo-likelihood, "
        "MPF, Boltzmann learning, MCH, closed-form inversions) and derivatives of observables "
        "through samplers. Experiments: `inverse-ising`, `fit-to-observables`.",
        [
            "diffphys.models._potts_pairwise",
            "diffphys.models._potts_sequential",
            "diffphys.training._inverse",
            "diffphys.training._inverse_data",
            "diffphys.training._boltzmann",
            "diffphys.training._observable_grad",
            "diffphys.theory._inverse_ising",
        ],
    ),
}


def _public(sub: str) -> list[str]:
    mod = importlib.import_module(f"diffphys.{sub}")
    names = getattr(mod, "__all__", None)
    if names is None:  # a flat module without __all__: its own public functions and classes
        names = [
            n
            for n, o in vars(mod).items()
            if not n.startswith("_")
            and getattr(o, "__module__", None) == mod.__name__
            and (inspect.isfunction(o) or inspect.isclass(o))
        ]
    return sorted(names)


def collect() -> tuple[dict[str, list[str]], list[str]]:
    """`{page: [dotted public names]}` and the names no family claims."""
    owner = {m: page for page, (_, _, mods) in FAMILIES.items() for m in mods}
    pages: dict[str, list[str]] = {page: [] for page in FAMILIES}
    orphans = []
    for sub in SUBPACKAGES:
        mod = importlib.import_module(f"diffphys.{sub}")
        for name in _public(sub):
            obj = getattr(mod, name)
            defined = getattr(obj, "__module__", None)
            if not (inspect.isclass(obj) or inspect.isfunction(obj) or callable(obj)):
                defined = mod.__name__  # a constant: listed with its subpackage's module
                defined = {
                    "diffphys.models": "diffphys.models._sk",
                    "diffphys.theory": "diffphys.theory._sk",
                    "diffphys.exact": "diffphys.exact",
                }.get(defined, defined)
            page = owner.get(defined) or owner.get(mod.__name__)
            if page is None:
                orphans.append(f"diffphys.{sub}.{name} (defined in {defined})")
            else:
                pages[page].append(f"diffphys.{sub}.{name}")
    return pages, orphans


def render(page: str, names: list[str]) -> str:
    title, intro, _ = FAMILIES[page]
    lines = [
        f"# {title}",
        "",
        intro,
        "",
        "<!-- generated by tools/gen_api_docs.py: edit the docstrings, not this page -->",
        "",
    ]
    by_sub: dict[str, list[str]] = {}
    for dotted in names:
        by_sub.setdefault(dotted.rsplit(".", 1)[0], []).append(dotted)
    for sub in sorted(by_sub, key=lambda s: SUBPACKAGES.index(s.split(".")[1])):
        lines += [f"## `{sub}`", ""]
        for dotted in by_sub[sub]:
            lines += [f"::: {dotted}", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the pages are stale")
    args = parser.parse_args(argv)
    pages, orphans = collect()
    if orphans:
        print(
            "public names on no docs page (add their module to FAMILIES in "
            "tools/gen_api_docs.py):\n  " + "\n  ".join(orphans),
            file=sys.stderr,
        )
        return 1
    stale = []
    for page, names in pages.items():
        path = ROOT / "docs" / "api" / f"{page}.md"
        text = render(page, names)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(str(path.relative_to(ROOT)))
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print(
            "stale API pages (run python tools/gen_api_docs.py): " + ", ".join(stale),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
