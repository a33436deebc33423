"""Metrics, reweighting, batching and augmentation: small pieces with exact expected values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from biasbench.baselines import reweighting
from biasbench.training.batches import IndexStream, Preprocess
from biasbench.training.metrics import summarize


def test_group_metrics_by_hand():
    # 2 classes x 2 biases; groups (label, bias): (0,0) aligned x4, (1,1) aligned x4, (0,1) x2, (1,0) x1; (1,0) wrong
    label = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1])
    bias = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0])
    pred = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0])
    aligned = label == bias
    m = summarize(pred, label, bias, aligned, loss_sum=5.5, n_classes=2, n_bias=2)
    # group accuracies: (0,0) 3/4, (0,1) 1/2, (1,0) 0/1, (1,1) 4/4
    assert m["unbiased"] == pytest.approx((0.75 + 0.5 + 0.0 + 1.0) / 4)
    assert m["worst_group"] == 0.0
    assert m["aligned"] == pytest.approx(7 / 8) and m["conflicting"] == pytest.approx(1 / 3)
    assert m["accuracy"] == pytest.approx(8 / 11) and m["loss"] == pytest.approx(0.5)
    assert m["groups"]["total"] == [[4, 2], [1, 4]] and m["groups"]["correct"] == [[3, 1], [0, 4]]


def test_empty_groups_do_not_count():
    label = torch.tensor([0, 1])
    m = summarize(torch.tensor([0, 0]), label, label, torch.tensor([True, True]), 0.0, 3, 3)
    assert m["unbiased"] == 0.5 and m["worst_group"] == 0.0 and math.isnan(m["conflicting"])


def test_weighted_loss_is_the_batch_mean_of_beta_weighted_losses():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    aligned = torch.tensor([True, False, True])
    per = F.cross_entropy(logits, y, reduction="none")
    expected = (per[0] + 30 * per[1] + per[2]) / 3
    assert reweighting.weighted_cross_entropy(logits, y, aligned, 30.0) == pytest.approx(float(expected))
    assert reweighting.weighted_cross_entropy(logits, y, aligned, 1.0) == pytest.approx(float(per.mean()))


def test_resampling_draws_conflicting_samples_beta_times_as_often():
    aligned = torch.ones(1000, dtype=torch.bool)
    aligned[:10] = False
    stream = IndexStream(1000, 500, seed=0, weights=reweighting.sample_weights(aligned, 80.0))
    drawn = torch.cat([stream.next() for _ in range(200)])
    share = float((~aligned[drawn]).float().mean())
    assert share == pytest.approx(800 / 1790, abs=0.01)  # 10*80 / (10*80 + 990)


def test_index_stream_epochs_are_permutations_and_resume_exactly():
    stream = IndexStream(10, 4, seed=3)
    first = torch.cat([stream.next() for _ in range(5)])  # 20 = two epochs
    assert sorted(first[:10].tolist()) == list(range(10)) and sorted(first[10:].tolist()) == list(range(10))
    a = IndexStream(10, 4, seed=3)
    for _ in range(3):
        a.next()
    b = IndexStream(10, 4, seed=3)
    b.load_state_dict(a.state_dict())
    assert all(torch.equal(a.next(), b.next()) for _ in range(7))


def test_random_crop_cuts_windows_of_the_padded_image_and_flip_mirrors():
    images = torch.randint(1, 255, (16, 3, 8, 8), dtype=torch.uint8)
    pre = Preprocess(8, ("crop4",), None, seed=0, device=torch.device("cpu"))
    out = pre(images, train=True)
    padded = F.pad(images.float() / 255, (4, 4, 4, 4))
    for i in range(16):
        windows = [padded[i, :, y : y + 8, x : x + 8] for y in range(9) for x in range(9)]
        assert any(torch.equal(out[i], w) for w in windows)
    assert not torch.equal(out, images.float() / 255)  # some crop moved
    flip = Preprocess(8, ("flip",), None, seed=0, device=torch.device("cpu"))
    flipped = flip(images, train=True)
    for i in range(16):
        x = images[i].float() / 255
        assert torch.equal(flipped[i], x) or torch.equal(flipped[i], x.flip(-1))
    assert torch.equal(pre(images, train=False), images.float() / 255)  # no augmentation at eval


def test_augmentation_is_reproducible_from_its_state():
    images = torch.randint(0, 255, (8, 3, 8, 8), dtype=torch.uint8)
    a = Preprocess(8, ("crop4", "flip"), None, seed=5, device=torch.device("cpu"))
    b = Preprocess(8, ("crop4", "flip"), None, seed=5, device=torch.device("cpu"))
    a(images, True)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(images, True), b(images, True))
