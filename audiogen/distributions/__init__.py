"""Output distributions over audio samples: what a decoder's parameter channels mean, and how they are scored.

Every class here is an ``audiogen.contracts.OutputDistribution`` without learnable parameters:

* discretized on the model grid ``y_k = -1 + 2k / (2**bits - 1)`` shared by every input coding
  (``dmol``, ``discretized_logistic``, ``discretized_laplace_mixture``, ``categorical``): ``log_prob`` is a
  log probability *mass* and the masses over the ``2**bits`` grid values sum to one;
* continuous densities (``gaussian``, ``gaussian_mixture``): ``log_prob`` is a log *density*, not comparable
  with the masses above;
* ``bernoulli`` for binary sequences (not audio).

Common interface: ``num_params``, ``log_prob(params (B, P, T), target (B, 1, T)) -> (B, 1, T)`` in nats,
``sample(params, generator=None) -> (B, 1, T)``, ``mean(params) -> (B, 1, T)``.
"""

from audiogen.distributions.bernoulli import Bernoulli
from audiogen.distributions.categorical import Categorical
from audiogen.distributions.gaussian import Gaussian, GaussianMixture
from audiogen.distributions.laplace import DiscretizedLaplaceMixture
from audiogen.distributions.logistic import (
    DiscretizedLogistic,
    DiscretizedLogisticMixture,
)

# Registered names (audiogen.builtin); gin names are ``distributions.<name>``.
BUILTIN = {
    "dmol": DiscretizedLogisticMixture,
    "discretized_logistic": DiscretizedLogistic,
    "discretized_laplace_mixture": DiscretizedLaplaceMixture,
    "gaussian": Gaussian,
    "gaussian_mixture": GaussianMixture,
    "categorical": Categorical,
    "bernoulli": Bernoulli,
}

__all__ = ["BUILTIN", "Bernoulli", "Categorical", "DiscretizedLaplaceMixture", "DiscretizedLogistic",
           "DiscretizedLogisticMixture", "Gaussian", "GaussianMixture"]
