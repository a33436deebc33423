"""The CUDA path's choices, checked on CPU: GPU numerics are recorded overrides, CPU run ids are unchanged,
batches are the same whichever device holds the order."""

from __future__ import annotations

from decimal import Decimal

import pytest
import torch

from biasbench.errors import UserError
from biasbench.baselines import configure
from biasbench.training.batches import IndexStream, to_device
from biasbench.training.trainer import autocast, configure_backend


def cfg(**kw):
    return configure("erm", "cmnist", Decimal("0.01"), 41, "cpu", 1000, **kw)


def test_amp_and_cudnn_benchmark_are_overrides_and_the_defaults_add_nothing():
    plain = cfg()
    assert plain.overrides == {} and plain.variant() == ""
    bf16, bench, nchw = cfg(amp="bf16"), cfg(cudnn_benchmark=True), cfg(channels_last=False)
    assert bf16.variant() == "amp=bf16" and bench.variant() == "cudnn_benchmark=True"
    assert nchw.variant() == "channels_last=False"
    assert len({plain.run_id("f"), bf16.run_id("f"), bench.run_id("f"), nchw.run_id("f")}) == 4
    with pytest.raises(UserError, match="--amp takes"):
        cfg(amp="fp8")


def test_a_cpu_run_records_its_backend_and_refuses_autocast():
    assert configure_backend(cfg(), torch.device("cpu")) == {"device_type": "cpu", "amp": None, "channels_last": True}
    assert configure_backend(cfg(channels_last=False), torch.device("cpu"))["channels_last"] is False
    with pytest.raises(ValueError, match="CUDA"):
        configure_backend(cfg(amp="bf16"), torch.device("cpu"))
    with autocast(torch.device("cpu"), "bf16"):  # a no-op off CUDA
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_the_index_stream_gives_the_same_batches_with_its_order_on_a_device():
    host = IndexStream(10, 4, seed=3)
    placed = IndexStream(10, 4, seed=3, device=torch.device("cpu"))
    for _ in range(7):  # across epoch boundaries
        assert torch.equal(host.next(), placed.next())
    state = placed.state_dict()
    again = IndexStream(10, 4, seed=3, device=torch.device("cpu"))
    again.load_state_dict(state)
    assert torch.equal(again.next(), host.next())
    assert to_device(torch.arange(3), torch.device("cpu")).tolist() == [0, 1, 2]


def test_amp_on_a_cpu_run_is_a_one_line_error(capsys):
    from helpers import assert_one_line_error, run

    code, _, err = run(capsys, "run", "--method", "erm", "--amp", "bf16", "--device", "cpu")
    assert_one_line_error(code, err, "--amp needs --device cuda")


def test_method_names_are_canonical():
    from biasbench.baselines import canonical

    assert canonical("REST") == "rest" and canonical(" Reweighted-ERM ") == "reweighted_erm"
    with pytest.raises(UserError, match="unknown method"):
        canonical("rests")


@pytest.mark.slow  # end to end: in `make test`; the fast loop keeps the contracts (test_contract.py)
def test_a_contiguous_run_trains_and_records_its_memory_format(tmp_path):
    from biasbench.baselines import get as get_method
    from biasbench.training.trainer import train
    from helpers import tiny_data

    run = configure("erm", "cmnist", Decimal("0.01"), 41, "cpu", 1024, steps=4, eval_every=2,
                    channels_last=False)
    result = train(run, tiny_data(), get_method("erm"), torch.device("cpu"), tmp_path / "c.pt")
    assert result["backend"]["channels_last"] is False and [h["step"] for h in result["history"]] == [2, 4]
