"""The experiment runner and CLI: config checking, atomic results, interrupt and resume."""

import json
import os
import signal

import numpy as np
import pytest

from diffphys import ConfigError, UnknownExperimentError, experiments, io
from diffphys.cli import main

TINY = {"L": [8, 12], "T": [1.8, 2.6], "n_sweeps": 200, "n_therm": 50, "n_segments": 3}


def test_unknown_experiment_and_keys_give_clear_errors(tmp_path, capsys):
    with pytest.raises(UnknownExperimentError, match="Available: .*ising2d"):
        experiments.run("no-such-thing")
    with pytest.raises(ConfigError, match="unknown config key.*Valid keys"):
        experiments.run("ising2d", Lsize=[4])
    with pytest.raises(ConfigError, match="positive"):
        experiments.run("ising2d", **{**TINY, "T": [-1.0, 2.0]})
    with pytest.raises(ConfigError, match="even L"):
        experiments.run("ising2d", **{**TINY, "L": [7]})
    assert main(["run", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert main(["run", "ising2d", "--set", "n_sweeps=abc", "--out", str(tmp_path)]) == 2
    assert "n_sweeps" in capsys.readouterr().err


def test_set_values_are_parsed_against_the_defaults():
    exp = experiments.get("ising2d")
    cfg = experiments.resolve_config(exp, {"L": "16,32", "n_sweeps": "100", "T": "[2.0]"})
    assert cfg["L"] == [16, 32] and cfg["n_sweeps"] == 100 and cfg["T"] == [2.0]
    with pytest.raises(ConfigError, match="integer"):
        experiments.resolve_config(exp, {"n_sweeps": "1.5"})


def test_cli_run_writes_results_summary_and_figure(tmp_path, capsys):
    out = tmp_path / "run"
    sets = [f"--set={k}={json.dumps(v)}" for k, v in TINY.items()]
    assert main(["run", "ising2d", "--out", str(out), "--no-progress", *sets]) == 0
    printed = capsys.readouterr().out
    assert "T_c_exact" in printed
    ds = io.read_dataset(out / "results.nc")
    for name in ("energy_per_spin", "abs_magnetization", "binder"):
        assert ds[name].dims == ("L", "T")
        assert ds[f"{name}_err"].dims == ("L", "T")
    assert ds.attrs["experiment"] == "ising2d" and ds.attrs["seed"] == 0
    assert ds.attrs["config"]["n_sweeps"] == 200  # decoded from JSON by io.read_dataset
    assert "diffphys_version" in ds.attrs
    summary = json.loads((out / "summary.json").read_text())
    assert "T_c_binder" in summary
    assert (out / "figure.png").stat().st_size > 10_000
    assert not (out / ".checkpoints").exists()
    assert not [p for p in os.listdir(out) if p.startswith(".") and p != ".checkpoints"]


def test_interrupt_then_resume_gives_identical_results(tmp_path, monkeypatch):
    """A real SIGINT during a task stops the run after that task's checkpoint; --resume
    finishes it with results identical to an uninterrupted run with the same seed."""
    ref = experiments.run("ising2d", out=tmp_path / "ref", seed=3, **TINY)

    from diffphys.experiments import _core

    original = _core.RunContext.task
    calls = {"n": 0}

    def task_with_signal(self, name, fn, like=None):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, name, fn, like)

    monkeypatch.setattr(_core.RunContext, "task", task_with_signal)
    out = tmp_path / "interrupted"
    with pytest.raises(_core.Interrupted):
        experiments.run("ising2d", out=out, seed=3, **TINY)
    assert not (out / "results.nc").exists()
    assert len(list((out / ".checkpoints").iterdir())) == 3  # run.json + two tasks
    monkeypatch.setattr(_core.RunContext, "task", original)

    with pytest.raises(ConfigError, match="different"):
        experiments.run("ising2d", out=out, seed=4, resume=True, **TINY)
    resumed = experiments.run("ising2d", out=out, seed=3, resume=True, **TINY)
    for name in ref.data_vars:
        np.testing.assert_array_equal(resumed[name].values, ref[name].values)


def test_list_shows_every_experiment_and_none_is_broken(capsys):
    assert main(["list"]) == 0
    assert not experiments.BROKEN
    printed = capsys.readouterr().out
    for name in experiments.names():
        assert name in printed
