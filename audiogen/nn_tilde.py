"""The conventions nn~ (acids-ircam/nn_tilde) reads from a TorchScript model, without importing nn_tilde.

nn~ asks a loaded model for ``get_methods()`` and ``get_attributes()``; for each method a buffer
``<method>_params = [in_channels, in_ratio, out_channels, out_ratio]`` (int64) and the label lists
``<method>_input_labels`` / ``<method>_output_labels``; for each attribute a ``<name>_params`` buffer and
``get_<name>`` / ``set_<name>`` methods (written by the subclass, as RAVE's and msprior's exports do); ``sr`` is
the sample rate. Attributes are stored as one-element tuples, nn_tilde's layout. Checked against RAVE 2.3.1's
export (nn_tilde 1.5.6) in tests/test_export.py.
"""

from typing import List, Optional

import torch
from torch import nn


class NnTildeModule(nn.Module):
    def __init__(self, sample_rate: int):
        super().__init__()
        self.sr = int(sample_rate)
        self._methods: List[str] = []
        self._attributes: List[str] = ["none"]  # nn_tilde lists a 'none' attribute first

    def register_method(self, name: str, in_channels: int, in_ratio: int, out_channels: int, out_ratio: int,
                        input_labels: Optional[List[str]] = None, output_labels: Optional[List[str]] = None):
        self.register_buffer(f"{name}_params",
                             torch.tensor([in_channels, in_ratio, out_channels, out_ratio], dtype=torch.long))
        setattr(self, f"{name}_input_labels",
                list(input_labels or [f"(signal) input {i + 1}" for i in range(in_channels)]))
        setattr(self, f"{name}_output_labels",
                list(output_labels or [f"(signal) output {i + 1}" for i in range(out_channels)]))
        self._methods.append(name)

    def register_attribute(self, name: str, default) -> None:
        setattr(self, name, (default,))
        self.register_buffer(f"{name}_params", torch.tensor([0.0]))
        self._attributes.append(name)

    @torch.jit.export
    def get_methods(self) -> List[str]:
        return self._methods

    @torch.jit.export
    def get_attributes(self) -> List[str]:
        return self._attributes
