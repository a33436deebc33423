"""RigL (Evci et al., ICML 2020): ERM trained sparse from scratch, magnitude drop, gradient growth."""

from biasbench.baselines.erm import ERM
from biasbench.baselines.sparse_training import SparseTraining


class RigL(SparseTraining, ERM):
    """ERM with the sparse engine (baselines/sparse_training.py)."""


METHOD = RigL
