"""Ctrl-C (SIGINT) and SIGTERM: stop cleanly, keep what can be kept, exit 128 + signal number.

While a command runs inside ``Interruptions``, a signal raises :class:`Interrupted` at once,
except inside ``deferred()``: there the first signal is only recorded (training looks at
``requested`` after each epoch, stops, and saves), and a second one raises, for a user who
does not want to wait.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

NAMES = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}


class Interrupted(BaseException):
    """A signal arrived; ``exit_code`` is 130 for SIGINT and 143 for SIGTERM.

    A BaseException but not a KeyboardInterrupt: Click turns the latter into "Aborted!" and
    exit 1, and no ``except Exception`` may swallow it.
    """

    def __init__(self, signum: int):
        super().__init__(NAMES.get(signum, str(signum)))
        self.signum = signum
        self.name = NAMES.get(signum, f"signal {signum}")
        self.exit_code = 128 + signum


class Interruptions:
    """Route SIGINT and SIGTERM into this object for the duration of a ``with`` block."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._deferring = False
        self._previous: dict[int, object] = {}
        self.saved: list[str] = []  # files already written whole, for the message after a hard stop

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return NAMES.get(self.signum, f"signal {self.signum}")

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)

    def _handle(self, signum, frame) -> None:
        if self._deferring and self.signum is None:
            self.signum = signum
            return
        raise Interrupted(signum)

    def __enter__(self) -> "Interruptions":
        for signum in NAMES:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @contextmanager
    def deferred(self):
        """Inside this block the first signal is recorded, not raised."""
        self._deferring = True
        try:
            yield self
        finally:
            self._deferring = False


# Installed by main(); train defers the first signal to finish its epoch and save.
INTERRUPTIONS = Interruptions()
