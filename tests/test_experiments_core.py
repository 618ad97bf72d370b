"""The experiment runner and CLI: config checking, atomic results, interrupt and resume."""

import json
import os
import re
import signal

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from diffphys import ConfigError, UnknownExperimentError, experiments, io
from diffphys.cli import main

TINY = {"L": [8, 12], "T": [1.8, 2.6], "n_sweeps": 200, "n_therm": 50, "n_segments": 3}


def test_unknown_experiment_and_keys_give_clear_errors(tmp_path, capsys):
    with pytest.raises(UnknownExperimentError, match="Available: .*ising2d"):
        experiments.run("no-such-thing")
    with pytest.raises(ConfigError, match="unknown config key.*Valid keys"):
        experiments.run("ising2d", Lsize=[4])
    with pytest.raises(ConfigError, match="T must be > 0"):
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
    assert not io.missing_metadata(ds)  # CF: long_name and units on every variable
    assert ds["energy_per_spin"].attrs["ancillary_variables"] == "energy_per_spin_err"
    for name in ("energy_per_spin", "abs_magnetization", "binder"):
        assert ds[name].dims == ("L", "T")
        assert ds[f"{name}_err"].dims == ("L", "T")
    assert ds.attrs["experiment"] == "ising2d" and ds.attrs["seed"] == 0
    assert ds.attrs["config"]["n_sweeps"] == 200  # decoded from JSON by io.read_dataset
    assert "diffphys_version" in ds.attrs
    summary = json.loads((out / "summary.json").read_text())
    assert "T_c_binder" in summary
    assert summary["run"]["config"]["n_sweeps"] == 200 and summary["run"]["seed"] == 0
    assert {"diffphys_version", "jax_version", "experiment"} <= set(summary["run"])
    umask = os.umask(0)
    os.umask(umask)
    for f in ("results.nc", "summary.json", "figure.png"):
        assert (out / f).stat().st_mode & 0o777 == 0o666 & ~umask, f
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

    with pytest.raises(ConfigError, match=r"differ.*seed: 3 -> 4"):
        experiments.run("ising2d", out=out, seed=4, resume=True, **TINY)
    with pytest.raises(ConfigError, match=r"n_sweeps: 200 -> 300"):
        experiments.run("ising2d", out=out, seed=3, resume=True, **{**TINY, "n_sweeps": 300})
    resumed = experiments.run("ising2d", out=out, seed=3, resume=True, **TINY)
    for name in ref.data_vars:
        np.testing.assert_array_equal(resumed[name].values, ref[name].values)


def test_list_shows_every_experiment_and_none_is_broken(capsys):
    assert main(["list"]) == 0
    assert not experiments.BROKEN
    printed = capsys.readouterr().out
    for name in experiments.names():
        assert name in printed


def test_every_parameter_is_documented_and_every_default_valid():
    """`diffphys list -v` shows a description for every key and the expected run time; the
    defaults pass validation."""
    for name in experiments.names():
        exp = experiments.get(name)
        assert exp.runtime, f"{name}: give @experiment(runtime=...) measured at the default size"
        undocumented = [k for k, p in exp.params.items() if not p.doc]
        assert not undocumented, (name, undocumented)
        assert experiments.resolve_config(exp, {}) == exp.defaults


def test_bad_values_are_rejected_before_anything_compiles(tmp_path, capsys, monkeypatch):
    """Bounds, choices and cross-key checks fail in `resolve_config`, in one line, before any
    task runs (no task is allowed to), and nothing is left in `--out`."""
    from diffphys.experiments import _core

    def no_task(*args, **kwargs):
        raise AssertionError("a task ran although the config is invalid")

    monkeypatch.setattr(_core.RunContext, "task", no_task)
    exp = experiments.get("ising2d")
    for sets, msg in [
        (["rule=foo"], "rule must be one of"),
        (["L=[16.5]"], "must be an integer"),
        (["T=[-1]"], "must be > 0"),
        (["L=[7]"], "even L"),
        (["n_sweeps=nan"], "cannot parse|finite"),
        (["L=[]"], "non-empty"),
    ]:
        out = tmp_path / "bad"
        args = ["run", "ising2d", "--out", str(out), "--no-progress"]
        assert main(args + [f"--set={s}" for s in sets]) == 2, sets
        err = capsys.readouterr().err
        assert re.search(msg, err) and err.count("\n") == 1, (sets, err)
        assert not out.exists()
    assert exp.params["rule"].choices == ("metropolis", "heat_bath")


def test_out_that_cannot_hold_results_is_a_clear_error(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(["run", "ising2d", "--out", str(a_file), "--no-progress"]) == 2
    assert "existing file" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root can write anywhere
            assert main(["run", "ising2d", "--out", str(locked / "run"), "--no-progress"]) == 2
            assert "cannot write" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_a_failed_fresh_run_leaves_nothing_behind(tmp_path, monkeypatch):
    from diffphys.experiments import _core

    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure before the first checkpoint")

    monkeypatch.setattr(_core.RunContext, "task", boom)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        experiments.run("ising2d", out=out, **TINY)
    assert not out.exists()


_junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data())
def test_validators_raise_config_error_and_nothing_else(data):
    """Property: any value (JSON-like junk, or the text a user might type after --set) for any
    key of any experiment either validates or raises `ConfigError`: never another exception."""
    name = data.draw(st.sampled_from(experiments.names()))
    exp = experiments.get(name)
    key = data.draw(st.sampled_from(sorted(exp.params)))
    value = data.draw(_junk | _junk.map(lambda v: json.dumps(v)) | st.text(max_size=12))
    try:
        cfg = experiments.resolve_config(exp, {key: value})
    except ConfigError:
        return
    assert set(cfg) == set(exp.params)
