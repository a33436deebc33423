"""Every registered method keeps the trainer's contract: same seed same history, another seed another,
exact resume from a mid-run checkpoint, a result the read-time selection re-makes, its registry entry complete.

A new method is checked here by its registry line alone (CONTRIBUTING.md: adding a method). Tiny data and six
steps per run: part of `make test-fast`."""

from __future__ import annotations

import pytest

from biasbench import methods
from helpers import assert_keeps_the_trainers_contract

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("method", methods.names())
def test_every_method_keeps_the_trainers_contract(method, tmp_path):
    assert_keeps_the_trainers_contract(method, tmp_path)
