"""Every number of the common protocol, with the reason it was chosen, by reader:
`datasets` (how each dataset is built) and `profiles` (how runs are trained). Imported from here.
"""

from biasbench.protocol.datasets import (  # noqa: F401
    BFFHQ, CANONICAL_CONFLICTS, CANONICAL_SEED, CIFAR10C, CMNIST, CONFLICT_RULES, LFF_EXACT_UP_TO, RATIOS,
    BFFHQProtocol, CIFAR10CProtocol, CMNISTProtocol,
)
from biasbench.protocol.profiles import (  # noqa: F401
    CIFAR_NORM, DENSITY_PRIOR, DENSITY_SWEEP, DISENT_REFERENCE_STEPS, FULL_BUDGET_PROFILES, PROFILES,
    REST_PUBLISHED_DENSITY, TrainProtocol, protocol_for,
)
