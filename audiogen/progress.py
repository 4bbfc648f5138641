"""Progress bars for long commands: on stderr (stdout stays for results), shown only where a command turned them on
(``audiogen decode``, ``sample``, ``probe``, ``reconstruct`` unless --no-progress), on rank 0 only.

Library code wraps its long loops in :func:`bar`; it stays silent when called from Python or tests."""

from __future__ import annotations

import contextlib
import sys
import time

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
    """Lightning's training bar, written to stderr like every other bar (Lightning writes it to stdout), counting
    the run's steps towards ``max_steps`` (Lightning's counts each epoch's batches: on a small corpus a new bar
    every few steps, and no sight of the end)."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    class StderrProgressBar(TQDMProgressBar):
        _shown_at = 0.0
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

        def on_train_epoch_start(self, trainer, *args):
            if trainer.max_steps is None or trainer.max_steps < 0:  # no step budget: Lightning's per-epoch bar
                return super().on_train_epoch_start(trainer, *args)
            bar = self.train_progress_bar
            if bar.total != trainer.max_steps:  # the first epoch (of a fresh or resumed run)
                bar.reset(total=trainer.max_steps)
                bar.n = bar.initial = trainer.global_step  # a resumed run's rate counts this session's steps
            bar.set_description(f"Step (epoch {trainer.current_epoch})", refresh=False)  # shown with the next step

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.max_steps is None or trainer.max_steps < 0:
                return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            step, bar, now = trainer.global_step, self.train_progress_bar, time.monotonic()
            # a few refreshes a second: Lightning's every-step refresh (and its metrics) cost a third of a small
            # model's step time
            if bar is not None and self.is_enabled and (now - self._shown_at >= 0.5 or step == bar.total):
                self._shown_at = now
                _update(bar, step)
                bar.set_postfix(self.get_metrics(trainer, pl_module))

    return StderrProgressBar()


def _update(bar, n: int) -> None:
    if not bar.disable:
        bar.n = n
        bar.refresh()
