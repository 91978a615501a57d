"""The batching engine: admission, batch formation, inference workers. No HTTP, no torch.

It drives any object with the `BatchModel` shape (app/engine/batcher.py); inference/classifier.py
provides the real one, the tests a fake.
"""
