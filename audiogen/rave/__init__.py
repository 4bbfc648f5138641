"""RAVE is read from its TorchScript export (``torchscript.py``: loading, chunked coding, seeding, which model
files a checkpoint may load); its coders are ``encoders.rave`` and ``decoders.rave`` (``audiogen/encoders/rave.py``,
``audiogen/decoders/rave.py``)."""
