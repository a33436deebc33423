"""The construction rules of Colored MNIST (biasbench.protocol.CMNISTProtocol), checked on the plan.

Two named rules: "lff" (canonical, LfF's make_attr_labels index for index) and "random"."""

import dataclasses
from decimal import Decimal

import numpy as np
import pytest

from biasbench.generators.cmnist import Plan
from biasbench.protocol import CMNIST, LFF_EXACT_UP_TO
from biasbench.ratios import count_for
from biasbench.sources.mnist import load_mnist
from conftest import SHARED_MNIST, needs_shared_mnist
from lff_reference import lff_attr_labels

RATIOS = [Decimal("0.005"), Decimal("0.01"), Decimal("0.02"), Decimal("0.05"), Decimal("0.3")]
RANDOM = dataclasses.replace(CMNIST, conflicts="random")


@pytest.fixture(scope="module")
def mnist(fixture_mnist):
    return load_mnist(fixture_mnist, allow_unverified=True)


@pytest.fixture(scope="module")
def plan(mnist):
    return Plan(mnist, seed=0, proto=RANDOM)


@pytest.fixture(scope="module")
def lff_plan(mnist):
    return Plan(mnist, seed=0)


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


def check_lff_map(plan: Plan, mnist, ratio: Decimal) -> None:
    """Every training image has LfF's colour; up to LFF_EXACT_UP_TO every LfF conflicting image is in train."""
    lff = lff_attr_labels(mnist.train_labels, 1.0 - float(ratio))
    assert np.array_equal(plan.train_colours(ratio), lff[plan.train_index])
    if ratio <= Decimal(str(LFF_EXACT_UP_TO)):
        lff_conflicting = np.flatnonzero(lff != mnist.train_labels)
        assert np.isin(lff_conflicting, plan.train_index).all()
        ours = plan.train_colours(ratio) != plan.train_labels
        for c in range(10):  # per-class conflicting counts equal LfF's
            assert ours[plan.train_labels == c].sum() == (lff[mnist.train_labels == c] != c).sum()


@pytest.mark.parametrize("ratio", RATIOS)
def test_random_rule_exact_conflict_counts_and_even_colour_spread(plan, ratio):
    check_train_rules(plan, ratio)


@pytest.mark.parametrize("ratio", RATIOS)
def test_lff_rule_is_lffs_map_index_for_index(lff_plan, mnist, ratio):
    check_lff_map(lff_plan, mnist, ratio)


def test_lff_rule_puts_conflicts_first_and_last_in_file_order(lff_plan, mnist):
    colours = lff_plan.train_colours(Decimal("0.05"))
    labels = lff_plan.train_labels
    for c in (0, 9):
        members = colours[labels == c]
        conflicting = np.flatnonzero(members != c)
        # class 0 has no colour below it: its conflicting images are its last ones; class 9's its first ones
        expected = np.arange(len(members) - len(conflicting), len(members)) if c == 0 else np.arange(len(conflicting))
        assert np.array_equal(conflicting, expected)


def test_lff_valid_is_drawn_only_from_images_lff_keeps_aligned(lff_plan, mnist):
    aligned = lff_attr_labels(mnist.train_labels, 1.0 - LFF_EXACT_UP_TO) == mnist.train_labels
    assert aligned[lff_plan.valid_index].all()
    assert len(lff_plan.valid_index) == CMNIST.valid_size
    assert not set(lff_plan.valid_index) & set(lff_plan.train_index)


@pytest.mark.parametrize("split", ["valid", "test"])
def test_lff_unbiased_splits_follow_lffs_rule_with_aligned_share_0_1(lff_plan, split):
    labels = lff_plan.valid_labels if split == "valid" else lff_plan.test_labels
    assert np.array_equal(lff_plan.unbiased_colours(split), lff_attr_labels(labels, 0.1))


def test_the_two_rules_differ_and_each_is_named_in_the_unit_params(mnist, lff_plan, plan):
    from biasbench.generators.cmnist import ColoredMNIST

    r = Decimal("0.05")
    assert not np.array_equal(lff_plan.train_colours(r) != lff_plan.train_labels,
                              plan.train_colours(r) != plan.train_labels)
    assert ColoredMNIST().params(mnist, 0, r)["conflicts"] == "lff"
    assert ColoredMNIST(RANDOM).params(mnist, 0, r)["conflicts"] == "random"


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
@pytest.mark.parametrize("which", ["random", "lff"])
def test_valid_and_test_colours_are_balanced_within_each_class(plan, lff_plan, split, which):
    p = plan if which == "random" else lff_plan
    colours = p.unbiased_colours(split)
    labels = p.valid_labels if split == "valid" else p.test_labels
    for c in range(10):
        counts = np.bincount(colours[labels == c], minlength=10)
        assert counts.max() - counts.min() <= 1


def test_another_seed_gives_another_dataset(mnist, plan):
    other = Plan(mnist, seed=1, proto=RANDOM)
    assert not np.array_equal(other.valid_index, plan.valid_index)
    again = Plan(mnist, seed=0, proto=RANDOM)
    assert np.array_equal(again.train_colours(Decimal("0.01")), plan.train_colours(Decimal("0.01")))


@needs_shared_mnist
def test_real_mnist_split_sizes_and_counts():
    mnist = load_mnist(SHARED_MNIST)
    plan = Plan(mnist, seed=0, proto=RANDOM)
    assert len(plan.train_index) == 55000 and len(plan.valid_index) == 5000
    for ratio in RATIOS[:4]:
        check_train_rules(plan, ratio)
    n_conflicting = {r: int((plan.train_colours(r) != plan.train_labels).sum()) for r in RATIOS[:4]}
    # round(n_c * r) summed over classes is within 5 of 55000 * r
    for r, n in n_conflicting.items():
        assert abs(n - 55000 * float(r)) <= 5


@needs_shared_mnist
def test_real_mnist_lff_rule_is_lffs_map_at_every_ratio_and_for_test():
    mnist = load_mnist(SHARED_MNIST)
    plan = Plan(mnist, seed=0)
    assert len(plan.train_index) == 55000 and len(plan.valid_index) == 5000
    for ratio in RATIOS[:4]:
        check_lff_map(plan, mnist, ratio)
    # LfF's conflicting totals on MNIST-train, per ratio (the whole 60,000 are in its rule)
    totals = [int((plan.train_colours(r) != plan.train_labels).sum()) for r in RATIOS[:4]]
    assert totals == [300, 598, 1199, 3000]
    assert np.array_equal(plan.unbiased_colours("test"), lff_attr_labels(mnist.test_labels, 0.1))
