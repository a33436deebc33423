"""Models and the protocol profiles: the numbers the sources give, resolved into run configs."""

from __future__ import annotations

from decimal import Decimal

import pytest
import torch

from biasbench.errors import UserError
from biasbench.datasets import DATASETS, FAMILIES
from biasbench.protocol import PROFILES, protocol_for
from biasbench.baselines import configure
from biasbench.training.models import count_params, create


def test_simple_cnn_has_rest_table_1_parameter_count():
    model = create("simple_cnn", 10)
    assert count_params(model) == 661_898  # 0.661 M (REST Table 1)
    assert model(torch.zeros(4, 3, 28, 28)).shape == (4, 10)
    assert model.features(torch.zeros(4, 3, 28, 28)).shape == (4, 256)


def test_resnet18_parameter_counts_and_width_scaling():
    # torchvision's resnet18 with 10 classes; REST Table 1's "11.17 M" is the CIFAR stem's count, although its
    # code (resnet18vw) builds the ImageNet stem: the code is followed (biasbench/DECISIONS.md)
    assert count_params(create("resnet18", 10, image_size=32)) == 11_181_642
    assert count_params(create("resnet18_cifar", 10, image_size=32)) == 11_173_962
    small = create("resnet18", 10, image_size=32, width=16)
    assert count_params(small) < count_params(create("resnet18", 10, image_size=32)) / 10
    assert small(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    big_input = create("resnet18", 2, image_size=128, width=8)
    assert big_input(torch.zeros(2, 3, 128, 128)).shape == (2, 2)


def test_resnet18_is_the_references_network_with_the_imagenet_stem_at_32px():
    """REST's resnet18vw and DisEnt's torchvision resnet18: 7x7/2 conv + max-pool even at 32x32, 1x1 last map."""
    from biasbench.training import flops

    model = create("resnet18", 10, image_size=32).eval()
    stem_conv = model.stem[0]
    assert (stem_conv.kernel_size, stem_conv.stride) == ((7, 7), (2, 2))
    assert isinstance(model.stem[3], torch.nn.MaxPool2d)
    assert model.stages(model.stem(torch.zeros(1, 3, 32, 32))).shape[-2:] == (1, 1)
    total, _ = flops.count(lambda: model(torch.zeros(1, 3, 32, 32)), [model])
    assert total == pytest.approx(7.40e7, rel=0.01)  # torchvision resnet18's FLOPs at 32x32 (PROTOCOL.md)
    cifar = create("resnet18_cifar", 10, image_size=32).eval()
    total_cifar, _ = flops.count(lambda: cifar(torch.zeros(1, 3, 32, 32)), [cifar])
    assert total_cifar == pytest.approx(1.11e9, rel=0.01)  # the CIFAR stem: a named option only
    # kaiming-normal (fan_out) init: std sqrt(2 / (k x k x out)) as resnet18vw's conv init
    w = model.stages[7].conv2.weight
    assert float(w.std()) == pytest.approx((2 / (3 * 3 * w.shape[0])) ** 0.5, rel=0.05)
    for p in ("paper", "rest-code", "cpu"):
        assert protocol_for(p, "cifar10c").model == "resnet18" and protocol_for(p, "bffhq").model == "resnet18"


def test_mlp_is_lff_three_hidden_layers_of_100():
    model = create("mlp", 10)
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(2352, 100), (100, 100), (100, 100), (100, 10)]


def test_unknown_model_is_a_user_error():
    with pytest.raises(UserError, match="simple_cnn"):
        create("vgg", 10)


def test_profiles_cover_every_dataset_family_and_so_every_registered_dataset():
    for name, profile in PROFILES.items():
        assert set(profile) == set(FAMILIES), name
        for dataset in DATASETS.ordered():
            assert protocol_for(name, dataset) is profile[DATASETS.info(dataset).family]


def test_paper_profile_follows_the_rest_text():
    cmnist, cifar, bffhq = (protocol_for("paper", d) for d in ("cmnist", "cifar10c", "bffhq"))
    assert (cmnist.optimizer, cmnist.weight_decay, cmnist.adam_betas) == ("adam", 1e-4, (0.9, 0.999))
    assert (cmnist.lr, cifar.lr, bffhq.lr) == (1e-2, 1e-3, 1e-3)
    assert cmnist.beta == {"0.5pct": 10, "1pct": 30, "2pct": 50, "5pct": 80}
    assert set(bffhq.beta.values()) == {80}
    assert bffhq.headline == "conflicting" and cmnist.headline == "unbiased"
    assert cmnist.update_frequency == 1000 and len(cmnist.seeds) == 3


def test_rest_code_profile_follows_the_released_scripts():
    p = protocol_for("rest-code", "cmnist")
    assert (p.optimizer, p.momentum, p.weight_decay, p.schedule) == ("sgd", 0.9, 0.0, "plateau")
    assert (p.plateau_factor, p.plateau_patience, p.batch_size, p.epochs) == (0.1, 5, 256, 100)
    assert p.reweight == "resample" and set(p.beta.values()) == {80}
    assert p.seeds == (41, 42, 43)


def test_budget_in_epochs_resolves_to_steps_and_per_epoch_evaluation():
    cfg = configure("erm", "cmnist", Decimal("0.01"), 41, "rest-code", 55000)
    assert cfg.steps == 100 * 215 and cfg.eval_every == 215
    cpu = configure("reweighted_erm", "cmnist", Decimal("0.005"), 41, "cpu", 55000)
    assert (cpu.steps, cpu.eval_every, cpu.beta) == (600, 100, 10.0)


def test_run_id_changes_with_config_and_data_but_not_with_unused_overrides():
    base = configure("erm", "cmnist", Decimal("0.01"), 41, "cpu", 55000)
    same = configure("erm", "cmnist", Decimal("0.01"), 41, "cpu", 55000, beta=5.0)
    assert base.run_id("f") == same.run_id("f") and base.beta is None  # ERM does not use beta
    assert base.run_id("f") != base.run_id("g")
    short = configure("erm", "cmnist", Decimal("0.01"), 41, "cpu", 55000, steps=50)
    assert short.run_id("f") != base.run_id("f") and short.variant() == "steps=50"
    seed = configure("erm", "cmnist", Decimal("0.01"), 42, "cpu", 55000)
    assert seed.run_id("f") != base.run_id("f")


@pytest.mark.parametrize("kw,needle", [({"steps": -1}, "--steps"), ({"steps": 0}, "--steps"),
                                       ({"eval_every": 0}, "--eval-every")])
def test_bad_overrides_are_user_errors(kw, needle):
    with pytest.raises(UserError, match=needle):
        configure("erm", "cmnist", Decimal("0.01"), 41, "cpu", 55000, **kw)


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(UserError, match="cpu, disent, paper, rest-code"):
        configure("erm", "cmnist", Decimal("0.01"), 41, "fast", 55000)
