"""Temporal latent models (``audiogen.contracts.LatentModel``): the cores of temporal VAEs trained end to end
(``pipeline.latent_model = @priors.cwvae()``), also usable over latent datasets through ``priors.sequence``."""
