"""Builds the optional C++ kernels (diffphys/_native/*_ffi.cc) during `pip install`.

Everything else is in pyproject.toml. The extension needs only a C++17 compiler: the three XLA
FFI headers it includes are vendored in diffphys/_native/include (jaxlib is not importable in
pip's isolated build environment). OpenMP is used when the compiler accepts -fopenmp. No
-march=native: the hot loop has AVX-512/AVX2/baseline clones chosen at run time. If the build
fails the install still succeeds and diffphys uses its pure-JAX kernels
(`diffphys._native.reason()` says why).
"""

import os
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
INCLUDE = os.path.join("diffphys", "_native", "include")


class OptionalBuildExt(build_ext):
    def _accepts(self, flag: str) -> bool:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "t.cc")
            with open(src, "w") as f:
                f.write("int main() { return 0; }\n")
            try:
                self.compiler.compile([src], output_dir=tmp, extra_postargs=[flag])
                return True
            except Exception:
                return False

    def build_extension(self, ext):
        try:
            if self._accepts("-fopenmp"):
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
            super().build_extension(ext)
        except Exception as err:  # no compiler, or a failed compile: keep the pure-JAX path
            print(
                f"diffphys: native kernels not built ({err}); the pure-JAX kernels will be used.",
                file=sys.stderr,
            )


setup(
    ext_modules=[
        Extension(
            "diffphys._native._ising_ffi",
            sources=[
                os.path.join("diffphys", "_native", "ising_ffi.cc"),
                os.path.join("diffphys", "_native", "sk_ffi.cc"),
                os.path.join("diffphys", "_native", "ising_multispin.cc"),
                os.path.join("diffphys", "_native", "potts_ffi.cc"),
                os.path.join("diffphys", "_native", "cluster_ffi.cc"),
                os.path.join("diffphys", "_native", "pspin_ffi.cc"),
            ],
            depends=[os.path.join("diffphys", "_native", h) for h in ("philox.h", "ffi_batch.h")],
            extra_compile_args=["-std=c++17", "-O3", "-fvisibility=hidden", "-isystem", INCLUDE],
            language="c++",
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
