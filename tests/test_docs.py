"""Docs live with the code: the README's first lines and its configuration table stay true."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_readme_configuration_table_matches_settings() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/settings_table.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`SENTIMENT_{name.upper()}`" in readme


def test_readme_starts_with_the_run_and_test_commands() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:8]
    assert any(line.startswith("make serve") for line in head)
    assert any(line.startswith("make test") for line in head)
    makefile = (ROOT / "Makefile").read_text()
    assert "\nserve:" in makefile and "\ntest:" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
