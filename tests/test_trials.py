"""Trials: distinct genomes, the running variance of their Sharpe ratios, a uniform reservoir sample."""

from __future__ import annotations

import numpy as np

from genetic_sizer.evolution.trials import Trials


def _genomes(n, k=4, seed=0):
    w = np.random.default_rng(seed).random((n, k))
    return w / w.sum(axis=1, keepdims=True)


def test_repeated_genomes_are_one_trial_and_the_variance_is_numpys():
    w = _genomes(30)
    s = np.random.default_rng(1).normal(0.05, 0.02, 30)
    t = Trials(4, seed=3)
    assert t.add(w[:20], s[:20]) == 20
    assert t.add(np.vstack([w[10:30], w[:5]]), np.concatenate([s[10:30], s[:5]])) == 10  # 15 were seen already
    assert t.n == 30
    np.testing.assert_allclose(t.sharpe_variance, s.var(ddof=1), rtol=1e-12)
    assert t.summary() == {"n": 30, "sharpe_variance": t.sharpe_variance}
    np.testing.assert_array_equal(t.sample, w)  # under capacity: every distinct genome, in order


def test_variance_is_nan_before_two_trials():
    t = Trials(4, seed=0)
    assert np.isnan(t.sharpe_variance)
    t.add(_genomes(1), [0.1])
    assert np.isnan(t.sharpe_variance) and t.n == 1


def test_reservoir_is_a_uniform_sample_of_distinct_genomes():
    n, cap, runs = 40, 8, 3000
    w = _genomes(n)
    hits = np.zeros(n)
    for seed in range(runs):
        t = Trials(4, seed=seed, capacity=cap)
        for lo in range(0, n, 7):  # batches of several sizes
            t.add(w[lo : lo + 7], np.zeros(len(w[lo : lo + 7])))
        assert t.sample.shape == (cap, 4)
        idx = [int(np.flatnonzero((w == row).all(axis=1))[0]) for row in t.sample]
        assert len(set(idx)) == cap
        hits[idx] += 1
    p = hits / runs  # each genome is kept with probability cap / n = 0.2
    se = np.sqrt(0.2 * 0.8 / runs)
    assert np.abs(p - 0.2).max() < 5 * se


def test_state_restores_exactly_and_continues_identically():
    w = _genomes(200)
    s = np.linspace(-1, 1, 200)
    a = Trials(4, seed=9, capacity=16)
    a.add(w[:120], s[:120])
    head, arrays = a.state()
    b = Trials(4, seed=12345, capacity=1)  # whatever it was built with, restore wins
    b.restore(head, arrays)
    a.add(w[80:], s[80:])
    b.add(w[80:], s[80:])
    assert a.summary() == b.summary() and a.keys == b.keys
    np.testing.assert_array_equal(a.sample, b.sample)


def test_the_same_weights_with_other_genes_are_another_trial():
    """With strategy genes a row is (weights, genes): a strategy that keeps the same weights another way was tried
    too, and counts."""
    w = _genomes(3)
    rows = np.hstack([np.vstack([w, w]), [[0.05, 1.0]] * 3 + [[0.1, 1.0]] * 3])
    t = Trials(4 + 2, seed=0)
    assert t.add(rows, np.arange(6.0)) == 6
    assert t.add(rows[:2], [0.0, 1.0]) == 0 and t.n == 6
    np.testing.assert_array_equal(t.sample, rows)


def test_a_batch_counts_a_repeated_row_once_and_matches_one_at_a_time():
    """Rows repeated inside one call are one trial (the first); adding in batches of any size gives the count, the
    sample (under capacity) and, to rounding, the variance of adding one genome at a time."""
    w = _genomes(50)
    s = np.random.default_rng(2).normal(0.03, 0.05, 50)
    rows = np.vstack([w[:10], w[:10], w[10:]])
    sharpe = np.concatenate([s[:10], s[:10] + 1.0, s[10:]])  # the repeats' values are never used
    whole = Trials(4, seed=1)
    assert whole.add(rows, sharpe) == 50
    single = Trials(4, seed=1)
    assert sum(single.add(r[None], [x]) for r, x in zip(rows, sharpe, strict=True)) == 50
    assert whole.n == single.n == 50 and whole.keys == single.keys
    np.testing.assert_allclose(whole.sharpe_variance, s.var(ddof=1), rtol=1e-12)
    np.testing.assert_allclose(single.sharpe_variance, s.var(ddof=1), rtol=1e-12)
    np.testing.assert_array_equal(whole.sample, w)
    np.testing.assert_array_equal(single.sample, w)


def test_keys_of_a_batch_are_the_keys_of_its_rows():
    """The batch hashing gives each row the key a row alone gets (checkpointed keys stay valid across versions)."""
    from genetic_sizer.evolution.trials import _key, _keys

    w = np.vstack([_genomes(7), -_genomes(2), np.zeros((1, 4))])
    assert _keys(w) == [_key(r) for r in w] and _keys(w[:0]) == []
    assert _keys(np.asfortranarray(w)) == [_key(r) for r in w]


def test_the_reservoir_is_algorithm_r_replaced_row_by_row():
    """The sample equals a plain loop of Algorithm R on the same draws (one ``integers`` call per batch, as documented):
    the c-th distinct genome replaces slot j < capacity, in order, so a slot drawn twice in a batch keeps the later
    genome; repeated rows (in a batch and across batches) are skipped before drawing."""
    cap, seed = 4, 11
    rng = np.random.default_rng(2)
    batches = [rng.random((k, 3)) for k in (3, 9, 1, 12, 30, 7)]
    batches.append(np.vstack([batches[1][:4], batches[4][5:9], rng.random((5, 3)), rng.random((1, 3))[[0, 0]]]))
    t = Trials(3, seed=seed, capacity=cap)
    draws = np.random.default_rng([seed, 0x7472_6961_6C73])  # the trials' own stream
    sample, seen = [], set()
    for b in batches:
        t.add(b, np.zeros(len(b)))
        fresh = []
        for row in b:
            if row.tobytes() not in seen:
                seen.add(row.tobytes())
                fresh.append(row)
        late = [r for r in fresh if len(sample) >= cap or sample.append(r)]  # fill, then the rest replace
        c0 = len(seen) - len(late)
        slots = draws.integers(0, np.arange(c0 + 1, len(seen) + 1)) if late else []
        for r, j in zip(late, slots, strict=True):
            if j < cap:
                sample[j] = r
        np.testing.assert_array_equal(t.sample, np.array(sample))
    assert t.n == len(seen)
