"""Loader of the optional compiled kernels (`*_ffi.cc`, `ising_multispin.cc`; `pip install -e .`).

The shared library is an ordinary setuptools extension (`setup.py`) loaded with `ctypes`; its
XLA FFI handlers are registered with `jax.ffi` on first use. Where it was not built (no C++
compiler at install time), `available()` is False, `reason()` says why in one line, and the
fused kernels fall back to their pure-JAX implementation.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import pathlib

_HERE = pathlib.Path(__file__).resolve().parent
_TARGETS = {
    "diffphys_ising_uniform": "DiffphysIsingUniform",
    "diffphys_ising_bonds": "DiffphysIsingBonds",
    "diffphys_sk_sweep_f32": "DiffphysSkSweepF32",
    "diffphys_sk_sweep_f64": "DiffphysSkSweepF64",
    "diffphys_ising_multispin": "DiffphysIsingMultispin",
    "diffphys_potts_sweep_f32": "DiffphysPottsSweepF32",
    "diffphys_potts_sweep_f64": "DiffphysPottsSweepF64",
    "diffphys_wolff_ising": "DiffphysWolffIsing",
    "diffphys_pspin_sweep_f32": "DiffphysPSpinSweepF32",
    "diffphys_pspin_sweep_f64": "DiffphysPSpinSweepF64",
}


def _library_path() -> pathlib.Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = _HERE / f"_ising_ffi{suffix}"
        if path.exists():
            return path
    return None


@functools.cache
def _load() -> tuple[bool, str]:
    path = _library_path()
    if path is None:
        return False, (
            "diffphys: the native kernels are not built (no C++ compiler during `pip install`?); "
            "reinstall with `pip install -e .` where g++ is available. Using the pure-JAX kernels."
        )
    try:
        import jax

        lib = ctypes.CDLL(str(path))
        for name, symbol in _TARGETS.items():
            jax.ffi.register_ffi_target(
                name, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu"
            )
    except Exception as err:  # a stale or foreign build
        return False, f"diffphys: the native kernels at {path} could not be loaded ({err})."
    return True, ""


def available() -> bool:
    """Whether the compiled FFI kernels are built and registered with JAX (CPU only)."""
    return _load()[0]


def reason() -> str:
    """One line saying why `available()` is False (empty when it is True)."""
    return _load()[1]
