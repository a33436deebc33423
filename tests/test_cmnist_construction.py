"""The construction rules of Colored MNIST (biasbench.protocol.CMNISTProtocol), checked on the plan."""

from decimal import Decimal

import numpy as np
import pytest

from biasbench.generators.cmnist import Plan
from biasbench.protocol import CMNIST
from biasbench.ratios import count_for
from biasbench.sources.mnist import load_mnist
from conftest import SHARED_MNIST, needs_shared_mnist

RATIOS = [Decimal("0.005"), Decimal("0.01"), Decimal("0.02"), Decimal("0.05"), Decimal("0.3")]


@pytest.fixture(scope="module")
def plan(fixture_mnist):
    return Plan(load_mnist(fixture_mnist, allow_unverified=True), seed=0)


def check_train_rules(plan: Plan, ratio: Decimal) -> None:
    colours = plan.train_colours(ratio)
    conflicting = colours != plan.train_labels
    for c in range(10):
        in_class = plan.train_labels == c
        n_c = int(in_class.sum())
        assert conflicting[in_class].sum() == count_for(n_c, ratio)
        used = np.bincount(colours[in_class & conflicting], minlength=10)
        assert used[c] == 0
        others = np.delete(used, c)
        assert others.max() - others.min() <= 1  # spread evenly over the other nine


@pytest.mark.parametrize("ratio", RATIOS)
def test_exact_conflict_counts_and_even_colour_spread(plan, ratio):
    check_train_rules(plan, ratio)


def test_conflict_sets_are_nested_and_keep_their_colour(plan):
    previous = None
    for ratio in RATIOS:
        colours = plan.train_colours(ratio)
        conflicting = colours != plan.train_labels
        if previous is not None:
            prev_colours, prev_conflicting = previous
            assert np.all(conflicting[prev_conflicting])
            assert np.array_equal(colours[prev_conflicting], prev_colours[prev_conflicting])
        previous = (colours, conflicting)


def test_valid_is_held_out_of_train_and_test_is_all_of_mnist_test(plan):
    assert len(plan.valid_index) == CMNIST.valid_size
    assert not set(plan.valid_index) & set(plan.train_index)
    assert len(plan.valid_index) + len(plan.train_index) == 7000
    assert np.array_equal(plan.test_index, np.arange(1000))


@pytest.mark.parametrize("split", ["valid", "test"])
def test_valid_and_test_colours_are_balanced_within_each_class(plan, split):
    colours = plan.unbiased_colours(split)
    labels = plan.valid_labels if split == "valid" else plan.test_labels
    for c in range(10):
        counts = np.bincount(colours[labels == c], minlength=10)
        assert counts.max() - counts.min() <= 1


def test_another_seed_gives_another_dataset(fixture_mnist, plan):
    other = Plan(load_mnist(fixture_mnist, allow_unverified=True), seed=1)
    assert not np.array_equal(other.valid_index, plan.valid_index)
    again = Plan(load_mnist(fixture_mnist, allow_unverified=True), seed=0)
    assert np.array_equal(again.train_colours(Decimal("0.01")), plan.train_colours(Decimal("0.01")))


@needs_shared_mnist
def test_real_mnist_split_sizes_and_counts():
    plan = Plan(load_mnist(SHARED_MNIST), seed=0)
    assert len(plan.train_index) == 55000 and len(plan.valid_index) == 5000
    for ratio in RATIOS[:4]:
        check_train_rules(plan, ratio)
    n_conflicting = {r: int((plan.train_colours(r) != plan.train_labels).sum()) for r in RATIOS[:4]}
    # round(n_c * r) summed over classes is within 5 of 55000 * r
    for r, n in n_conflicting.items():
        assert abs(n - 55000 * float(r)) <= 5
