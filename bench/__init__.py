"""Benchmark harness: this service against the model's ceiling, a naive server and a batching peer.

`python -m bench.run --mode quick|full` (or `make bench-quick` / `make bench`); docs/performance.md
explains the method and records the numbers.
"""
