"""Tests for mgd_plugin.matching.match_channels (exact channel matching)."""
import itertools
import re

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from mgd_plugin import matching
from mgd_plugin.matching import match_channels

# Totals must agree with the float optimum to this relative tolerance; the
# integer conversion error bound (n * span / M, module docstring) is far
# below it at these sizes.
RTOL = 1e-9


def dense_total(cost, pi):
    return cost[pi, np.arange(cost.shape[1])].sum()


def assert_same_total(ours, ref):
    assert abs(ours - ref) <= RTOL * max(1.0, abs(ref)), (ours, ref)


def assert_balanced(pi, s, t):
    assert pi.dtype == np.int64 and pi.shape == (t, )
    sizes = np.bincount(pi, minlength=s)
    assert sizes.size == s
    assert set(sizes.tolist()) <= {t // s, -(-t // s)}
    assert sizes.sum() == t


def brute_force_dense(cost):
    """Minimum over all balanced assignments, by enumeration."""
    s, t = cost.shape
    every = np.array(list(itertools.product(range(s), repeat=t)))
    sizes = (every[:, :, None] == np.arange(s)).sum(1)
    ok = ((sizes == t // s) | (sizes == -(-t // s))).all(1)
    totals = cost[every[ok], np.arange(t)].sum(1)
    return totals.min()


def scipy_dense(cost):
    """Independent optimum with SciPy, for any S <= T.

    Rows: q = T // S mandatory copies of each student row, plus one optional
    copy per student.  Columns: the T teachers plus S - r dummy columns
    (r = T % S) that only optional copies may take (cost 0; mandatory copies
    pay a prohibitive cost).  The square problem must fill every column, so
    exactly S - r optional copies sit on dummies and r take a teacher: every
    student gets q or q + 1 teachers, and conversely every such balanced
    assignment is a feasible square assignment with the same cost.  For
    r == 0 it is the usual tiling with g = T / S copies.
    """
    s, t = cost.shape
    q, r = divmod(t, s)
    if r == 0:
        rows, cols = linear_sum_assignment(np.repeat(cost, q, axis=0))
        return cost[rows // q, cols].sum()
    forbid = 10 * (np.abs(cost).max() * t + 1)
    mandatory = np.hstack(
        [np.repeat(cost, q, axis=0),
         np.full((s * q, s - r), forbid)])
    optional = np.hstack([cost, np.zeros((s, s - r))])
    rows, cols = linear_sum_assignment(np.vstack([mandatory, optional]))
    student = np.where(rows < s * q, rows // q, rows - s * q)
    real = cols < t
    return cost[student[real], cols[real]].sum()


@pytest.fixture
def count_solves(monkeypatch):
    """One entry per min-cost-flow solve: its number of student-teacher
    arcs (S * T for a solve on the full graph)."""
    calls = []
    real = matching._Problem.solve

    def counting(self, rows, cols):
        # Never parallel arcs: they would only slow the solver down.
        assert np.unique(rows * self.t + cols).size == rows.size
        calls.append(len(rows))
        return real(self, rows, cols)

    monkeypatch.setattr(matching._Problem, 'solve', counting)
    return calls


@pytest.fixture
def few_candidates(monkeypatch):
    """Prune hard (1 candidate arc) so the pricing loop does real work."""
    monkeypatch.setattr(matching, '_CANDIDATES', 1)
    calls = []
    real = matching._bellman_ford

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(matching, '_bellman_ford', counting)
    return calls


SMALL = [(2, 4), (3, 6), (2, 5), (3, 7), (3, 4), (1, 3), (4, 4)]


@pytest.mark.parametrize('s,t', SMALL)
@pytest.mark.parametrize('seed', range(3))
def test_dense_matches_brute_force(s, t, seed):
    cost = np.random.default_rng(seed).random((s, t))
    pi = match_channels(cost)
    assert_balanced(pi, s, t)
    assert_same_total(dense_total(cost, pi), brute_force_dense(cost))


@pytest.mark.parametrize('s,t', [(2, 5), (3, 7), (3, 6), (4, 4)])
@pytest.mark.parametrize('seed', range(3))
def test_dense_pricing_matches_brute_force(s, t, seed, few_candidates):
    cost = np.random.default_rng(100 + seed).random((s, t))
    pi = match_channels(cost)
    assert few_candidates, 'pruned path not taken'
    assert_balanced(pi, s, t)
    assert_same_total(dense_total(cost, pi), brute_force_dense(cost))


def test_scipy_dense_helper_matches_brute_force():
    # The non-divisible SciPy formulation is itself checked once here.
    for s, t in [(2, 5), (3, 7), (3, 4)]:
        cost = np.random.default_rng(7).random((s, t))
        assert_same_total(scipy_dense(cost), brute_force_dense(cost))


@pytest.mark.parametrize('s,t', [(16, 64), (32, 96), (30, 100), (48, 64),
                                 (64, 64)])
@pytest.mark.parametrize('seed', range(2))
def test_dense_matches_scipy(s, t, seed):
    cost = np.random.default_rng(seed).random((s, t))
    pi = match_channels(cost)
    assert_balanced(pi, s, t)
    assert_same_total(dense_total(cost, pi), scipy_dense(cost))


def test_dense_default_pruning_matches_scipy():
    cost = np.random.default_rng(0).random((128, 512))
    pi = match_channels(cost)
    assert_balanced(pi, 128, 512)
    assert_same_total(dense_total(cost, pi), scipy_dense(cost))


@pytest.mark.parametrize('s,t', [(512, 2048), (500, 2048)])
def test_dense_readme_size_matches_scipy(s, t):
    # The size the README's speed claim is about (ResNet-50 -> ResNet-18's
    # last stage), and its uneven variant (groups of 4 and 5).
    cost = np.random.default_rng(s).random((s, t))
    pi = match_channels(cost)
    assert_balanced(pi, s, t)
    assert_same_total(dense_total(cost, pi), scipy_dense(cost))


@pytest.mark.parametrize('s,t', [(32, 96), (30, 100)])
def test_dense_pricing_matches_scipy(s, t, few_candidates):
    cost = np.random.default_rng(3).random((s, t))
    pi = match_channels(cost)
    assert_balanced(pi, s, t)
    assert_same_total(dense_total(cost, pi), scipy_dense(cost))


def hub_costs(s, t, hubs, seed, axis):
    """Random costs with ``hubs`` rows (axis 0) or columns (axis 1) of exact
    zeros: tied, cheapest for everyone, and too few to serve everyone, so
    the optimum needs arcs outside the first candidate sets."""
    cost = np.random.default_rng(seed).random((s, t))
    if axis == 0:
        cost[:hubs] = 0.0
    else:
        cost[:, :hubs] = 0.0
    return cost


def test_dense_pricing_with_default_candidates(count_solves):
    cost = hub_costs(48, 96, 16, seed=5, axis=0)
    pi = match_channels(cost)
    assert len(count_solves) > 1, 'pricing added no arcs'
    assert_balanced(pi, 48, 96)
    assert_same_total(dense_total(cost, pi), scipy_dense(cost))


def test_dense_round_limit_falls_back_to_full(count_solves, monkeypatch):
    monkeypatch.setattr(matching, '_MAX_ROUNDS', 1)
    cost = hub_costs(40, 100, 15, seed=5, axis=0)
    pi = match_channels(cost)
    assert len(count_solves) == 2  # one pruned solve, then the full one
    assert_balanced(pi, 40, 100)
    assert_same_total(dense_total(cost, pi), scipy_dense(cost))


def test_dense_structured_costs():
    # Costs as MGD builds them: 2 - 2 * cosine of normalised feature maps.
    rng = np.random.default_rng(11)
    s_feat = rng.standard_normal((24, 50))
    t_feat = np.repeat(s_feat, 3, axis=0) + 0.3 * rng.standard_normal((72, 50))
    s_feat /= np.linalg.norm(s_feat, axis=1, keepdims=True)
    t_feat /= np.linalg.norm(t_feat, axis=1, keepdims=True)
    cost = 2 - 2 * s_feat @ t_feat.T
    pi = match_channels(cost)
    assert_balanced(pi, 24, 72)
    assert_same_total(dense_total(cost, pi), scipy_dense(cost))


def test_dense_ties_and_constant():
    pi = match_channels(np.zeros((3, 7)))
    assert_balanced(pi, 3, 7)
    pi = match_channels(np.ones((4, 8)) * 5.0)
    assert_balanced(pi, 4, 8)


def sparse_check(cost, sigma):
    s, t = cost.shape
    assert sigma.dtype == np.int64 and sigma.shape == (s, )
    assert len(set(sigma.tolist())) == s
    assert sigma.min() >= 0 and sigma.max() < t
    rows, cols = linear_sum_assignment(cost)
    assert_same_total(cost[np.arange(s), sigma].sum(), cost[rows, cols].sum())


@pytest.mark.parametrize('s,t', [(1, 1), (1, 5), (3, 7), (16, 64), (32, 96),
                                 (64, 64), (100, 400)])
def test_sparse_matches_scipy(s, t):
    cost = np.random.default_rng(s + t).random((s, t))
    sparse_check(cost, match_channels(cost, sparse=True))


@pytest.mark.parametrize('s,t', [(3, 7), (16, 64), (40, 40)])
def test_sparse_pricing_matches_scipy(s, t, few_candidates):
    cost = np.random.default_rng(s * t).random((s, t))
    sparse_check(cost, match_channels(cost, sparse=True))
    assert few_candidates, 'pruned path not taken'


def test_sparse_pricing_with_default_candidates(count_solves):
    cost = hub_costs(40, 100, 15, seed=5, axis=1)
    sparse_check(cost, match_channels(cost, sparse=True))
    assert len(count_solves) > 1, 'pricing added no arcs'


def test_integer_and_list_input():
    ints = np.random.default_rng(2).integers(0, 50, size=(3, 7))
    pi = match_channels(ints)
    assert_balanced(pi, 3, 7)
    assert_same_total(
        dense_total(ints.astype(float), pi),
        brute_force_dense(ints.astype(float)))
    as_list = ints.tolist()
    assert_same_total(
        dense_total(ints.astype(float), match_channels(as_list)),
        brute_force_dense(ints.astype(float)))
    sigma = match_channels(as_list, sparse=True)
    sparse_check(ints.astype(float), sigma)


def test_negative_costs():
    cost = np.random.default_rng(4).random((3, 7)) * 10 - 20
    pi = match_channels(cost)
    assert_same_total(dense_total(cost, pi), brute_force_dense(cost))


@pytest.mark.parametrize('bad,words', [
    (np.zeros(5), '2-D'),
    (np.zeros((2, 3, 4)), '2-D'),
    (np.float64(1.0), '2-D'),
    (np.zeros((0, 4)), 'empty'),
    (np.zeros((3, 0)), 'empty'),
    (np.zeros((5, 3)), 'S=5 > T=3'),
    ([[0.0, np.nan], [1.0, 2.0]], 'NaN or infinite'),
    ([[0.0, np.inf], [1.0, 2.0]], 'NaN or infinite'),
    ([[0.0, -np.inf], [1.0, 2.0]], 'NaN or infinite'),
])
@pytest.mark.parametrize('sparse', [False, True])
def test_value_errors(bad, words, sparse):
    with pytest.raises(ValueError, match=re.escape(words)):
        match_channels(bad, sparse=sparse)


def test_solver_failure_raises(monkeypatch):
    real_module = matching.min_cost_flow

    class Failing:
        """Delegates to the real solver but reports INFEASIBLE."""

        def __init__(self):
            self._real = real_module.SimpleMinCostFlow()

        def __getattr__(self, name):
            return getattr(self._real, name)

        def solve(self):
            return real_module.SimpleMinCostFlow.INFEASIBLE

    class FakeModule:
        SimpleMinCostFlow = Failing

    monkeypatch.setattr(matching, 'min_cost_flow', FakeModule)
    with pytest.raises(ValueError, match='OPTIMAL'):
        match_channels(np.random.default_rng(0).random((3, 7)))


# --------------------------------------------------------------------------
# The documented mechanics, not just the optimum (found by mutation testing:
# a broken pricing step still returns the optimum through the full-graph
# fallback, only slowly).
# --------------------------------------------------------------------------
@pytest.mark.parametrize('sparse', [False, True])
def test_random_costs_need_one_pruned_solve(count_solves, sparse):
    # The module docstring: random or feature-based costs need one round.
    s, t = 128, 512
    cost = np.random.default_rng(1).random((s, t))
    result = match_channels(cost, sparse=sparse)
    assert len(count_solves) == 1
    # Two candidate sets and one feasible arc per teacher (dense) or
    # student (sparse).
    lines = s if sparse else t
    assert count_solves[0] <= (2 * matching._CANDIDATES + 1) * lines
    if sparse:
        sparse_check(cost, result)
    else:
        assert_same_total(dense_total(cost, result), scipy_dense(cost))


@pytest.mark.parametrize('axis', [0, 1])
def test_pricing_rounds_grow_the_pruned_graph(count_solves, axis):
    # Tied hubs need pricing rounds; each adds arcs, none falls back to the
    # full graph.
    s, t = 48, 96
    cost = hub_costs(s, t, 16, seed=5, axis=axis)
    result = match_channels(cost, sparse=axis == 1)
    assert 1 < len(count_solves) <= matching._MAX_ROUNDS
    # Each round adds arcs for the violated lines only, not for all.
    lines = s if axis == 1 else t
    added = np.diff(count_solves)
    assert (added > 0).all()
    assert (added < matching._CANDIDATES * lines).all()
    assert count_solves[-1] < s * t
    if axis == 1:
        sparse_check(cost, result)
    else:
        assert_same_total(dense_total(cost, result), scipy_dense(cost))


@pytest.mark.parametrize('num_nodes', [4, 200, 2561, 10**4])
def test_integer_costs_are_the_documented_rounding(num_nodes):
    cost = np.random.default_rng(num_nodes).uniform(-3.0, 5.0, (7, 9))
    lo, hi = cost.min(), cost.max()
    c = matching._to_int_costs(cost, lo, hi, num_nodes)
    # M = min(2**40, 2**62 // (4 * (num_nodes + 1)**2)): OR-Tools scales
    # by num_nodes + 1, and 4 * (num_nodes + 1) more is left for prices.
    m = min(2**40, 2**62 // (4 * (num_nodes + 1)**2))
    assert c.dtype == np.int64
    assert c.min() == 0 and c.max() == m
    exact = (cost - lo) * (m / (hi - lo))
    assert np.abs(c - exact).max() <= 0.5


def test_constant_costs_become_integer_zeros():
    c = matching._to_int_costs(np.full((2, 3), 7.5), 7.5, 7.5, 6)
    assert c.dtype == np.int64 and not c.any()


def test_bellman_ford_needs_n_rounds_on_a_chain():
    # 0 -> 1 -> ... -> n-1, each arc -1: node k ends at distance -k after
    # n - 1 relaxing rounds, and one more round proves it.
    n = 6
    dist = matching._bellman_ford(n, np.arange(n - 1), np.arange(1, n),
                                  np.full(n - 1, -1, np.int64))
    assert dist.tolist() == [0, -1, -2, -3, -4, -5]
    assert dist.dtype == np.int64


def test_bellman_ford_names_a_negative_cycle():
    with pytest.raises(RuntimeError) as info:
        matching._bellman_ford(2, np.array([0, 1]), np.array([1, 0]),
                               np.array([-1, -1], np.int64))
    assert str(info.value) == (
        'negative cycle in the residual graph of an OR-Tools solution '
        'reported optimal')


@pytest.mark.parametrize('sparse', [False, True])
def test_error_messages_in_full(sparse):
    with pytest.raises(ValueError) as info:
        match_channels(np.zeros((5, 3)), sparse=sparse)
    assert str(info.value) == (
        'more student channels than teacher channels (S=5 > T=3); each '
        'student channel needs at least one teacher channel')
    with pytest.raises(ValueError) as info:
        match_channels([[0.0, np.nan]], sparse=sparse)
    assert str(info.value) == 'cost matrix contains NaN or infinite values'


@pytest.mark.parametrize('sparse', [False, True])
def test_no_pruning_when_every_arc_is_a_candidate(count_solves, sparse):
    # _CANDIDATES arcs per line cover whole lines: one full solve.
    k = matching._CANDIDATES
    s, t = (k, 3 * k) if not sparse else (3, k)
    cost = np.random.default_rng(0).random((s, t))
    match_channels(cost, sparse=sparse)
    assert count_solves == [s * t]
