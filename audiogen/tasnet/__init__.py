"""Conv-TasNet (Luo & Mesgarani 2019): ``blocks.py`` holds the building blocks shared by its coders,
``encoders.tasnet`` and ``decoders.tasnet`` (``audiogen/encoders/tasnet.py``, ``audiogen/decoders/tasnet.py``)."""
