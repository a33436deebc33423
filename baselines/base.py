"""The method interface, as methods import it: defined with the trainer that calls it
(biasbench/training/method.py), so that training never imports a method module."""

from biasbench.training.method import Batch, Method, Stage, TrainInfo

__all__ = ["Batch", "Method", "Stage", "TrainInfo"]
