"""manifest.json: what a published version holds, and whether the directory still matches it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from store.errors import VerificationError
from store.files import file_inventory

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise VerificationError(path, [f"{MANIFEST} is missing"])
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VerificationError(path, [f"{MANIFEST} is not valid JSON: {exc}"]) from exc
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise VerificationError(path, [f"{MANIFEST} has no 'files' table"])
    return data


def checksum_problems(path: Path, expect_name: str | None = None, expect_version: int | None = None) -> list[str]:
    """Every way the directory differs from its manifest; an empty list means it is intact."""
    try:
        manifest = read_manifest(path)
    except VerificationError as exc:
        return exc.problems
    problems: list[str] = []
    if manifest.get("format_version") != FORMAT_VERSION:
        problems.append(f"unsupported format_version {manifest.get('format_version')!r} (expected {FORMAT_VERSION})")
    if expect_name is not None and manifest.get("name") != expect_name:
        problems.append(f"manifest names model {manifest.get('name')!r}, directory is {expect_name!r}")
    if expect_version is not None and manifest.get("version") != expect_version:
        problems.append(f"manifest says version {manifest.get('version')!r}, directory is {expect_version}")
    expected: dict[str, dict[str, Any]] = manifest["files"]
    actual = file_inventory(path, exclude=frozenset({MANIFEST}))
    # A link could make the service read a file outside the models directory, whatever the
    # manifest says about it: published versions hold regular files only.
    for rel in sorted(rel for rel, info in actual.items() if info["sha256"] == "symlink"):
        problems.append(f"symlink: {rel} (published versions hold regular files only)")
    for rel in sorted(set(expected) - set(actual)):
        problems.append(f"missing file: {rel}")
    for rel in sorted(set(actual) - set(expected)):
        problems.append(f"unexpected file: {rel}")
    for rel in sorted(set(expected) & set(actual)):
        want, got = expected[rel], actual[rel]
        if want.get("size") != got["size"]:
            problems.append(f"altered file: {rel} (size {got['size']}, manifest says {want.get('size')})")
        elif want.get("sha256") != got["sha256"]:
            problems.append(f"altered file: {rel} (sha256 mismatch)")
    return problems
