"""The training machinery the training workflows (``audiogen train``, ``train-prior``) share: the Lightning modules
(``module``), resumable batching (``loaders``) and the run folder with its lock, resume and ``fit`` (``run``).
Nothing here imports a workflow."""
