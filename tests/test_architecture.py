"""The layer contract (docs/architecture.md) holds, and breaking it fails the lint."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("store", "inference", "app", "training")
MAX_MODULE_LINES = 400


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _imported_top_levels(path: Path) -> set[str]:
    """Top-level names of every import in the file, including imports inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )


def test_the_store_is_standard_library_only() -> None:
    allowed = set(sys.stdlib_module_names) | {"store", "__future__"}
    for path in _modules("store"):
        assert _imported_top_levels(path) <= allowed, (
            f"{path.relative_to(REPO)} imports {_imported_top_levels(path) - allowed}"
        )


def test_no_module_is_over_the_size_limit() -> None:
    for package in PACKAGES:
        for path in _modules(package):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert lines <= MAX_MODULE_LINES, f"{path.relative_to(REPO)} has {lines} lines (> {MAX_MODULE_LINES})"


def test_the_import_contracts_hold() -> None:
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("store/files.py", "import app.config", "Layers"),  # the store importing the service
        ("inference/scores.py", "import training.config", "Layers"),  # inference importing the trainer
        ("app/metrics.py", "import training.report", "Layers"),  # the service importing the trainer
        ("app/engine/tickets.py", "import torch", "batching engine"),  # the engine importing torch
        ("inference/padding.py", "import inference.scores", None),  # allowed: within a layer, no cycle
        ("inference/scores.py", "import inference.parity", "cycles"),  # parity imports scores: a cycle
    ],
)
def test_a_wrong_way_import_breaks_the_lint(tmp_path: Path, module: str, line: str, broken: str | None) -> None:
    for name in PACKAGES:
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    result = _lint_imports(tmp_path)
    if broken is None:
        assert result.returncode == 0, result.stdout
    else:
        assert result.returncode != 0, result.stdout
        assert any(broken in row and "BROKEN" in row for row in result.stdout.splitlines()), result.stdout
