"""Fixed-shape windows for ``audiogen encode``: every forward call of a job has one of a few shapes.

Files of ever-new lengths encoded whole make the backend build new kernels (oneDNN primitives) for every call, and
a call on 15 s of audio drives a convolution's activations out of cache. So each file, zero-padded to a multiple
of ``hop`` like the encoders pad it themselves, is cut into windows of a few sizes (halvings of the largest), with
one batch size per size so that every call holds about ``call_samples`` samples. A window has the encoder's
receptive field of real input as margin on each side that is not an end of the file, and the frames kept from the
windows tile the file, so the result equals encoding the file whole (up to float summation order). Windows of
consecutive files fill the batches; :class:`WindowBatcher` runs a call when a batch is full and puts the frames
back in their files.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Hashable

import numpy as np
import torch

MAX_SIZES = 10  # window sizes per job, down to an eighth of the largest


@dataclass(frozen=True)
class Window:
    start: int  # first sample, in the file zero-padded to a multiple of hop
    size: int  # samples (one of the job's sizes)
    first: int  # first kept frame, in the file
    stop: int  # end of the kept frames (exclusive), in the file


class WindowShapes:
    """The window sizes of a job (with their batch sizes) and how a file is cut into windows of those sizes.

    ``context`` is the encoder's ``receptive_field``: samples of real input each kept frame needs on each side.
    Sizes step down from the largest by a factor 2^(1/3), ``MAX_SIZES`` of them, so that two windows of some
    sizes cover most files closely (every window boundary inside a file costs two margins of recomputation).
    """

    def __init__(self, hop: int, context: int, call_samples: int):
        self.hop = hop
        self.margin = math.ceil(context / hop) * hop
        # margins take at most a quarter of the largest window, even when that is longer than one call's worth
        largest = max(call_samples // hop * hop, 8 * self.margin, hop)
        sizes = {int(largest * 2 ** (-k / 3)) // hop * hop for k in range(MAX_SIZES)}
        # an inner window keeps at least one frame
        self.sizes = sorted((w for w in sizes if w >= 2 * self.margin + hop), reverse=True)
        self.batch = {w: max(1, call_samples // w) for w in self.sizes}  # never more than a call's worth
        self._ascending = self.sizes[::-1]

    def _two(self, n: int, fits: list[int]) -> tuple[int, int] | None:
        """The two windows (first, last) of fewest samples covering ``n`` samples: a + b >= n + 2 margins."""
        best = None
        for a in fits:
            i = bisect.bisect_left(fits, n + 2 * self.margin - a)
            if i < len(fits) and (best is None or a + fits[i] < sum(best)):
                best = (a, fits[i])
        return best

    def plan(self, n: int) -> list[Window] | None:
        """Windows covering a file of ``n`` samples (a multiple of hop), or None when the file is too short for
        them (it is then encoded whole). One window when ``n`` is a size; else a first and a last window of any
        sizes, with as many windows of the largest size between them as needed (then one more, when that takes
        fewer samples through the encoder)."""
        if n in self.batch:
            return self._place(n, [n])
        c = self.margin
        fits = self._ascending[: bisect.bisect_right(self._ascending, n)]
        if not fits:
            return None
        top = fits[-1]
        # inner windows needed so that first + last can cover the rest: rest + 2c <= 2 * top
        q0 = max(0, math.ceil((n + 2 * c - 2 * top) / (top - 2 * c)))
        best = None
        for q in (q0, q0 + 1):
            pair = self._two(n - q * (top - 2 * c), fits)
            if pair is not None:
                seq = [pair[0], *[top] * q, pair[1]]
                if best is None or sum(seq) < sum(best):
                    best = seq
        return None if best is None else self._place(n, best)

    def _place(self, n: int, sizes: list[int]) -> list[Window]:
        c, kept, out = self.margin, 0, []
        for i, w in enumerate(sizes):
            start = n - w if i == len(sizes) - 1 else 0 if i == 0 else min(kept - c, n - w)
            lo = start + c if start > 0 else 0  # a file's own start needs no margin
            hi = start + w - c if start + w < n else n
            assert 0 <= start and lo <= kept, (n, sizes)
            if hi > kept:
                out.append(Window(start, w, kept // self.hop, hi // self.hop))
                kept = hi
        assert kept == n, (n, sizes)
        return out


class WindowBatcher:
    """Collects windows of several files, one forward call per full batch of a size; frames go to their file.

    ``add_file`` first (the file's frame count), then its windows with ``add``; ``done`` lists the files whose
    frames are all in. ``flush`` runs the partial batches (at the end of a shard, so a shard's bytes never depend on
    the shards around it, whichever process encodes them)."""

    def __init__(self, encoder: torch.nn.Module, shapes: WindowShapes, device: torch.device | str = "cpu"):
        self.encoder, self.shapes, self.device = encoder, shapes, torch.device(device)
        self.inputs = {w: np.zeros((shapes.batch[w], 1, w), np.float32) for w in shapes.sizes}
        self.pending: dict[int, list[tuple[Hashable, Window]]] = {w: [] for w in shapes.sizes}
        self.frames: dict[Hashable, np.ndarray] = {}
        self.missing: dict[Hashable, int] = {}
        self.done: list[Hashable] = []
        self.calls = 0

    def add_file(self, key: Hashable, frames: int, windows: int) -> None:
        self.frames[key] = np.empty((frames, self.encoder.latent_size), np.float32)
        self.missing[key] = windows
        if windows == 0:
            self.done.append(key)

    def drop(self, key: Hashable) -> None:
        """Forget a file (it failed part-way): its pending windows are still run, their frames discarded."""
        self.frames.pop(key, None)
        self.missing.pop(key, None)

    def add(self, key: Hashable, window: Window, audio: np.ndarray) -> None:
        """``audio``: the window's ``size`` samples."""
        pending = self.pending[window.size]
        self.inputs[window.size][len(pending), 0] = audio
        pending.append((key, window))
        if len(pending) == self.shapes.batch[window.size]:
            self._run(window.size)

    def flush(self) -> None:
        for w in self.shapes.sizes:
            if self.pending[w]:
                self._run(w)

    def _run(self, w: int) -> None:
        pending = self.pending[w]
        x = torch.from_numpy(self.inputs[w][: len(pending)]).to(self.device)
        with torch.inference_mode():
            z = self.encoder(x).float().cpu().numpy()  # (B, C, w / hop)
        self.calls += 1
        hop = self.shapes.hop
        for i, (key, win) in enumerate(pending):
            if key not in self.frames:  # dropped
                continue
            o = win.first - win.start // hop
            self.frames[key][win.first: win.stop] = z[i, :, o: o + win.stop - win.first].T
            self.missing[key] -= 1
            if not self.missing[key]:
                self.done.append(key)
        pending.clear()

    def take(self, key: Hashable) -> np.ndarray:
        """The frames of a finished file (frames, C), forgotten here."""
        self.missing.pop(key)
        return self.frames.pop(key)
