"""Turning a published version into a classifier: hardware, precision, tokenisation, padding or
packing, the forward callable, parity measurement. torch + transformers; no HTTP.

Modules that callers without torch need (errors, options, padding, tokens' `Tokenized`) import no
torch at module level: the batching engine uses them.
"""
