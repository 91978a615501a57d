"""At most one log line per interval for a kind of event, with a count of the lines left out.

429s come in floods exactly when the service is overloaded; a line per refusal would cost the
event loop time it does not have and bury everything else in the log. The refusals themselves are
all counted in `sentiment_rejections_total{reason="queue_full"}`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable


class RateLimitedLog:
    """`warning()` writes a line at most every `interval_s`; the next line written says how many were dropped."""

    def __init__(
        self, logger: logging.Logger, what: str, interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = logger
        self.what = what
        self.interval_s = interval_s
        self._clock = clock
        self._last = -math.inf
        self.suppressed = 0  # lines dropped since the last one written

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if now - self._last < self.interval_s:
            self.suppressed += 1
            return
        if self.suppressed:
            message += " (+%d more %s in the last %.1fs, not logged)"
            args = (*args, self.suppressed, self.what, now - self._last)
        self._log.warning(message, *args)
        self._last = now
        self.suppressed = 0

    def flush(self) -> None:
        """Report what was dropped since the last line (at shutdown: nothing will come after)."""
        if self.suppressed:
            self._log.warning("%d more %s were not logged", self.suppressed, self.what)
            self.suppressed = 0
