"""The one owner of "which version serves": start-up and every swap go through `activate`.

The batcher (new requests run on the active classifier), the model-info gauge, /health and
/v1/models all follow from here, so they can never disagree about the active version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.metrics import Metrics

if TYPE_CHECKING:  # the classifier imports torch; the registry itself does not need it
    from app.engine.batcher import Batcher
    from inference.classifier import TextClassifier
    from inference.loader import LoadedModel


def layout(loaded: LoadedModel) -> str:
    return "packed" if loaded.packed else "padded"


class ActiveModel:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._classifier: TextClassifier | None = None
        self._batcher: Batcher | None = None

    @property
    def classifier(self) -> TextClassifier | None:
        return self._classifier

    @property
    def loaded(self) -> LoadedModel | None:
        return self._classifier.loaded if self._classifier is not None else None

    def attach(self, batcher: Batcher) -> None:
        """From now on activations also move the batcher (it exists only once warm-up has passed)."""
        self._batcher = batcher
        if self._classifier is not None:
            batcher.set_model(self._classifier)

    def activate(self, classifier: TextClassifier) -> TextClassifier | None:
        """Serve `classifier` from now on; returns the one it replaces (requests pinned to it still finish)."""
        previous = self._classifier
        self._classifier = classifier
        if self._batcher is not None:
            self._batcher.set_model(classifier)
        loaded = classifier.loaded
        src = loaded.source
        self._metrics.set_model(src.name, src.version, loaded.device, loaded.dtype, layout(loaded))
        return previous
