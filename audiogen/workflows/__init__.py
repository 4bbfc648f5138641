"""What each command does, one module per command: plain functions with typed arguments that the CLI
(``audiogen/cli.py``, option parsing only) and the tests call.

The data flow: ``train`` an autoencoder (or a temporal VAE end to end) -> ``encode`` audio into a latent dataset ->
``train_prior`` on it -> ``sample`` from the prior, decoded by the autoencoder (``decode`` turns any latents back
into audio). Around it: ``evaluate`` (likelihoods; ``evaluate_prior`` for prior runs), ``reconstruct``, ``probe``
(what the latents capture), ``explore`` (interpolations, trajectories), ``index`` (manifests), ``export`` (nn~),
``info``, ``plugins`` (the registry listing) and ``quickstart``.

Layering (tests/test_layering.py): workflows build on the components and the shared infrastructure of the package;
nothing there imports a workflow, and no workflow imports the CLI.
"""
