"""Helpers shared by the tests (importable; conftest files only turn them into fixtures)."""
