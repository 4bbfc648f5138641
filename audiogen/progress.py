"""Progress bars for long commands: on stderr (stdout stays for results), shown only where a command turned them on
(``audiogen decode``, ``sample``, ``probe``, ``reconstruct`` unless --no-progress), on rank 0 only.

Library code wraps its long loops in :func:`bar`; it stays silent when called from Python or tests."""

from __future__ import annotations

import contextlib
import sys

_shown = [False]


@contextlib.contextmanager
def shown(enabled: bool = True):
    """Show the bars of the loops run inside the block."""
    before = _shown[0]
    _shown[0] = bool(enabled)
    try:
        yield
    finally:
        _shown[0] = before


def bar(iterable=None, total: int | None = None, desc: str = "", unit: str = "it"):
    """``tqdm(iterable)`` on stderr when bars are shown, else a silent one (same interface)."""
    from tqdm.auto import tqdm

    from audiogen.distributed import is_main_process

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True,
                disable=not (_shown[0] and is_main_process()))


def stderr_progress_bar():
    """Lightning's training bar, written to stderr like every other bar (Lightning writes it to stdout)."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    class StderrProgressBar(TQDMProgressBar):
        def _on_stderr(self, make):
            with contextlib.redirect_stdout(sys.stderr):  # Lightning passes file=sys.stdout when it builds a bar
                return make()

        def init_sanity_tqdm(self):
            return self._on_stderr(super().init_sanity_tqdm)

        def init_train_tqdm(self):
            return self._on_stderr(super().init_train_tqdm)

        def init_predict_tqdm(self):
            return self._on_stderr(super().init_predict_tqdm)

        def init_validation_tqdm(self):
            return self._on_stderr(super().init_validation_tqdm)

        def init_test_tqdm(self):
            return self._on_stderr(super().init_test_tqdm)

    return StderrProgressBar()
