"""REST (Zhao et al., ECML-PKDD 2023): reweighted ERM trained sparse with RigL's engine.

The paper's objective (§3) is the beta-weighted loss of reweighted ERM; the
sparse network is trained from scratch with prune-and-grow topology updates
every `update_frequency` steps (the protocol profiles hold both).
"""

from biasbench.baselines.reweighted_erm import ReweightedERM
from biasbench.baselines.sparse_training import SparseTraining


class REST(SparseTraining, ReweightedERM):
    """Reweighted ERM with the sparse engine (baselines/sparse_training.py)."""


METHOD = REST
