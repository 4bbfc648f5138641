"""Training objectives (plugin kind ``objectives``, hook ``register_objectives``) and the annealing schedules of
their weights (kind ``anneal``, hook ``register_anneal``), registered like every other component by
``audiogen.builtin``:

- ``spectral.py``: ``spectral_loss``, multi-scale spectral reconstruction loss of autoencoders;
- ``elbo.py``: ``elbo``, the negative ELBO of temporal VAEs, with KL weight and free nats;
- ``anneal.py``: ``anneal.constant`` / ``linear`` / ``cosine``, a scalar over training steps (KL weight, free nats);
- ``infonce.py``: ``infonce``, CPC's contrastive objective for encoder pretraining.

Which call an objective answers depends on the pipeline: see ``audiogen.contracts.check_objective``.
"""
