"""biasbench: deterministic datasets and one common protocol for debiasing benchmarks."""

__version__ = "0.1.0"
