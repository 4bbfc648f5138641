"""Priors and latent models, both registered as kind ``priors`` (gin ``priors.<name>``), under two contracts:

- ``Prior`` (``audiogen.contracts.Prior``, the modules here): a two-stage model over a latent dataset, trained by
  ``train-prior`` on the frames a frozen autoencoder wrote: ``diffwave`` (with ``samplers.py``), ``diag_gaussian``
  and ``sequence`` (which turns any temporal model below into a ``Prior`` over sequences of vectors).
- ``LatentModel`` / ``AutoregressiveModel`` (``audiogen.contracts``, the modules in ``temporal/``): the core of a
  temporal VAE trained end to end by ``train`` with an encoder, a decoder and the ``elbo`` objective
  (``pipeline.latent_model``): ``cwvae``, ``vrnn``, ``srnn``, and the deterministic ``lstm`` and ``wavenet``
  (``steps.py``: their recurrent layers' batched weight gradients).
"""
