"""Audio I/O, input codings and waveform datasets."""

from audiogen.audio.coding import InputCoding, LinearPCM, MuLaw
from audiogen.audio.dataset import (
    AudioDataset,
    LengthGroupedBatchSampler,
    collate_audio,
)
from audiogen.audio.io import (
    AUDIO_EXTENSIONS,
    LIST_EXTENSIONS,
    AudioInfo,
    check_policy,
    expand_inputs,
    frames_at_rate,
    load_audio,
    probe,
    resample,
    save_audio,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "LIST_EXTENSIONS",
    "AudioInfo",
    "AudioDataset",
    "InputCoding",
    "LengthGroupedBatchSampler",
    "LinearPCM",
    "MuLaw",
    "check_policy",
    "collate_audio",
    "expand_inputs",
    "frames_at_rate",
    "load_audio",
    "probe",
    "resample",
    "save_audio",
]
