"""``python -m mfgnet.compare``: overrides anywhere on the line, every config validated before the
first solve, and the output folder replaced in one rename (never half rewritten)."""

from __future__ import annotations

import json

import pytest

import mfgnet.evaluation.comparison as comparison
import mfgnet.runner as runner
from mfgnet.compare import main, split_overrides
from mfgnet.problems import ProblemError


def test_overrides_after_solver_names_are_overrides(tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = main(["problem=hopf_cole", "--solvers", "grid", "grid:solver.cells=16", "solver.time_steps=8",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "grid" / "metrics.json").read_text())
    assert metrics["nodes"] == 16 and metrics["time_steps"] == 8
    assert "| grid |" in (out / "comparison.md").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["cmp"]  # no temporary folder left


def test_override_for_a_solver_not_compared_is_refused():
    with pytest.raises(ProblemError, match="neural"):
        split_overrides(["neural:solver.steps=3"], ["grid"])


@pytest.mark.parametrize("bad", ["neural:solver.steps=-1", "neural:solver.stepz=3", "neural:sampler.n_interior=0"])
def test_every_config_is_validated_before_the_first_solve(tmp_path, monkeypatch, capsys, bad):
    def no_solve(*args, **kwargs):
        raise AssertionError("a solve started before every config was validated")

    monkeypatch.setattr(runner, "execute_run", no_solve)
    rc = main(["problem=hopf_cole", "--solvers", "grid", "neural", bad, "grid:solver.cells=16",
               "--out", str(tmp_path / "cmp")])
    err = capsys.readouterr().err
    assert rc == 2 and "solver neural" in err, err
    assert not (tmp_path / "cmp").exists()


def test_interrupted_compare_leaves_the_old_folder(tmp_path, monkeypatch):
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "old.txt").write_text("previous comparison")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(comparison, "plot_densities", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["problem=hopf_cole", "--solvers", "grid", "solver.cells=16", "--out", str(out)])
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["cmp"]
    monkeypatch.undo()
    assert main(["problem=hopf_cole", "solver.cells=16", "--solvers", "grid", "--out", str(out)]) == 0
    assert not (out / "old.txt").exists() and (out / "comparison.md").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["cmp"]
