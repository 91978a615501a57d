"""Errors of the inference layer (torch-free, so callers can catch them without importing torch)."""

from __future__ import annotations


class ModelLoadError(Exception):
    """The configured model cannot be served; the message says what is wrong and how to fix it."""


class OutOfMemory(Exception):
    """A forward pass ran out of device memory for this batch; a smaller batch may still fit."""
