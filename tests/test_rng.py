import numpy as np

from biasbench import rng


def test_keys_are_a_pure_function_of_seed_stream_and_index():
    idx = np.array([5, 0, 123456, 5])
    a = rng.hash_keys(0, "s", idx)
    assert a[0] == a[3]
    assert np.array_equal(a, rng.hash_keys(0, "s", idx))
    assert np.array_equal(a[[1, 2]], rng.hash_keys(0, "s", np.array([0, 123456])))  # no position dependence
    assert not np.array_equal(a, rng.hash_keys(1, "s", idx))
    assert not np.array_equal(a, rng.hash_keys(0, "t", idx))


def _splitmix64_reference(seed: int, stream: str, i: int) -> int:
    """SplitMix64 with Python integers, written from the published algorithm."""
    import hashlib

    mask = (1 << 64) - 1
    base = int.from_bytes(hashlib.sha256(f"{seed}\x00{stream}".encode()).digest()[:8], "little")
    z = (base + (i + 1) * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_keys_match_an_independent_splitmix64():
    idx = np.array([0, 1, 59999, 2**40])
    keys = rng.hash_keys(0, "cmnist/conflict", idx)
    assert [int(k) for k in keys] == [_splitmix64_reference(0, "cmnist/conflict", int(i)) for i in idx]


def test_uniform_range_and_moments():
    u = rng.uniform(3, "u", np.arange(200_000))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005
    assert abs(u.var() - 1 / 12) < 0.002


def test_standard_normal_has_unit_moments_and_independent_columns():
    z = rng.standard_normal(7, "n", np.arange(100_000), 3)
    assert z.shape == (100_000, 3)
    assert np.all(np.abs(z.mean(axis=0)) < 0.02)
    assert np.all(np.abs(z.std(axis=0) - 1) < 0.02)
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 0.02
    assert np.abs(z).max() <= 6.0


def test_rank_is_a_permutation_ordered_by_key():
    idx = np.arange(1000) * 3
    order = rng.rank(0, "r", idx)
    assert sorted(order.tolist()) == list(range(1000))
    keys = rng.hash_keys(0, "r", idx)[order]
    assert np.all(keys[:-1] <= keys[1:])
