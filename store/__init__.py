"""The model-directory contract: layout, versions, aliases, manifest, checksums, servable rules, parity records.

Standard library only (no torch, no HTTP): the trainer writes through it, the service reads through it,
and `sentiment-models` inspects it, all with the same rules. docs/model-format.md describes the format.
"""
