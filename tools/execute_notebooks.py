"""Execute notebooks top to bottom and store them with their outputs.

python tools/execute_notebooks.py notebooks/ising.ipynb [more.ipynb ...]
"""

import sys
import time

import nbformat
from nbclient import NotebookClient


def execute(path: str, timeout: int = 600) -> float:
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": "."}}
    ).execute()
    nbformat.write(nb, path)
    return time.perf_counter() - t0


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(f"{p}: {execute(p):.1f} s")
