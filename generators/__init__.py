"""Dataset generators, one module per dataset (each exposes `GENERATOR`, see generators/base.py).

They are registered by name in biasbench/datasets.py (one line each, with the dataset's family); the
names below are that registry's. Modules are imported on demand so that `biasbench --help` stays fast.
"""

from biasbench.datasets import canonical, get, names, ordered  # noqa: F401
