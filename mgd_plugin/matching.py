"""Channel matching solver for Matching Guided Distillation (MGD).

Problem
-------
``cost`` is a matrix ``D`` of shape ``(S, T)``: ``D[i, j]`` is the cost of
matching student channel ``i`` with teacher channel ``j`` (``S <= T``).

* Dense matching (``sparse=False``): find ``pi`` of shape ``(T,)`` assigning
  every teacher channel to a student channel so that every student receives
  ``floor(T/S)`` or ``ceil(T/S)`` teacher channels (no teacher channel is
  dropped) and ``sum_j D[pi[j], j]`` is minimal.
* Sparse matching (``sparse=True``): find ``sigma`` of shape ``(S,)`` of
  distinct teacher channels minimising ``sum_i D[i, sigma[i]]``.

Method
------
Both are min-cost flow problems, solved with OR-Tools' ``SimpleMinCostFlow``
(arcs added in bulk from NumPy arrays).  Dense: each student node supplies
``q = T // S`` units, an extra node supplies ``r = T % S`` units through a
capacity-1, cost-0 arc to every student, each teacher demands one unit;
student -> teacher arcs have capacity 1.  Sparse: each student supplies one
unit, each teacher has a capacity-1, cost-0 arc to a sink demanding ``S``.

Solving on all ``S * T`` arcs is the slow part (~0.5 s for 512 x 2048), and
almost all of them are useless: a teacher channel is nearly always matched
to one of its few cheapest students.  So the flow is first solved on a
pruned arc set, then *proved* optimal for the full problem:

1. Candidates: per teacher (dense) or per student (sparse), the
   ``_CANDIDATES`` cheapest arcs under two guesses of the dual potentials,
   plus a fixed feasible assignment so the pruned problem is never
   infeasible.
2. Solve the pruned flow; get node potentials by Bellman-Ford on its
   residual graph, compressed onto the ``S + 1`` student/extra nodes
   (every teacher has a single residual way out, to its owner).
3. Price every arc of the full graph with these potentials.  If no reduced
   cost is negative, the potentials certify that the pruned optimum is
   optimal for the full graph (LP duality).  Otherwise add, for every
   violated teacher (student), its ``_CANDIDATES`` cheapest new arcs by
   reduced cost, and go back to 2.  Random or feature-based costs need one
   round; inputs with massive exact ties a few; after ``_MAX_ROUNDS`` the
   full graph is solved instead.

The result is the exact optimum of the full integer problem, not a
heuristic.

Integer costs
-------------
OR-Tools needs integer costs.  ``D`` is shifted to be non-negative and
scaled so that its range maps onto ``[0, M]``:
``C = rint((D - D.min()) * M / (D.max() - D.min()))``, with
``M = min(2**40, 2**62 // (4 * (num_nodes + 1) ** 2))`` (about ``1.8e11``
for 512 x 2048).  OR-Tools multiplies costs by ``num_nodes + 1`` internally
(and refuses costs where that overflows); ``M`` leaves another factor
``4 * (num_nodes + 1)`` of int64 headroom for its node prices.  Totals
(at most ``T * M``) and our potentials (at least ``-S * M``) fit as well.

"Exact" means: the returned assignment is an exact optimum for ``C``.  Each
entry of ``C`` is off by at most half a unit (``span / (2 M)`` in the units
of ``D``, ``span = D.max() - D.min()``), so the float total of the returned
assignment exceeds the float optimum by at most ``n * span / M`` where
``n`` is the number of matched pairs (``T`` dense, ``S`` sparse), about
``1e-8 * span`` for 512 x 2048.  Ties (and near-ties below that resolution)
may be broken differently from other solvers.
"""
import numpy as np
from ortools.graph.python import min_cost_flow

__all__ = ['match_channels']

# Pruned solves before giving up on pruning; typical inputs need 1, heavily
# tied ones a handful.
_MAX_ROUNDS = 8
# Larger than any reduced cost (|C| <= M, |potentials| <= (S + 1) * M).
_NOT_CANDIDATE = np.int64(2**62)
# Arcs kept per teacher (dense) or per student (sparse) in the first solve.
# Measured on random 512 x 2048 costs, the optimum never used a student
# ranked worse than 9th for its teacher; the pricing step fixes any miss.
_CANDIDATES = 12


def match_channels(cost, sparse=False):
    """Match student channels (rows) to teacher channels (columns).

    Args:
        cost: array-like ``(S, T)`` of finite floats, ``1 <= S <= T``.
        sparse: if False, assign every teacher channel to a student channel
            with balanced group sizes (``floor``/``ceil`` of ``T / S``); if
            True, give each student channel one distinct teacher channel.

    Returns:
        np.ndarray[int64]: shape ``(T,)`` student index per teacher channel
        (dense), or shape ``(S,)`` distinct teacher index per student channel
        (sparse).  Exactly optimal up to the integer conversion described in
        the module docstring.

    Raises:
        ValueError: bad shape, empty input, ``S > T``, non-finite costs, or
            a solver status other than OPTIMAL.
    """
    d = np.asarray(cost, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(
            f'cost must be a 2-D (student, teacher) matrix, got {d.ndim} '
            f'dimension(s) with shape {d.shape}')
    s, t = d.shape
    if s == 0 or t == 0:
        raise ValueError(f'cost matrix is empty (shape {d.shape})')
    if s > t:
        raise ValueError(
            f'more student channels than teacher channels (S={s} > T={t}); '
            'each student channel needs at least one teacher channel')
    # min/max propagate NaN and expose infinities: no separate finite pass.
    lo, hi = d.min(), d.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError('cost matrix contains NaN or infinite values')

    c = _to_int_costs(d, lo, hi, num_nodes=s + t + 1)
    if sparse:
        return _Sparse(c).run()
    return _Dense(c).run()


def _to_int_costs(d, lo, hi, num_nodes):
    scale = min(2**40, 2**62 // (4 * (num_nodes + 1)**2))
    span = hi - lo
    if span == 0:
        return np.zeros(d.shape, np.int64)
    x = d - lo
    x *= scale / span
    np.rint(x, out=x)
    return x.astype(np.int64)


class _Problem:
    """Pruned solve + pricing loop shared by the dense and sparse modes.

    Subclasses define the flow network and describe the pruned solution by
    an ``owner`` per teacher (its student, or the extra node ``S``) and
    ``base`` = cost of the arc that brings the teacher its unit (0 for the
    extra node).  Every residual path student ``i`` -> teacher ``j`` ->
    ``owner[j]`` then costs ``C[i, j] - base[j]``, which compresses the
    residual graph onto ``S + 1`` nodes.
    """

    def __init__(self, c):
        self.c = c
        self.s, self.t = c.shape

    def run(self):
        if _CANDIDATES >= self.line_length:
            return self.run_full()
        s, t = self.s, self.t
        rows, cols = self.feasible_arcs()
        kept = np.zeros((s, t), bool)
        kept[rows, cols] = True
        new_rows, new_cols = self.initial_arcs()
        for _ in range(_MAX_ROUNDS):
            # Drop repeats (parallel arcs would only slow the solver).
            flat = np.unique(new_rows * t + new_cols)
            new_rows, new_cols = np.divmod(flat, t)
            fresh = ~kept[new_rows, new_cols]
            new_rows, new_cols = new_rows[fresh], new_cols[fresh]
            kept[new_rows, new_cols] = True
            rows = np.concatenate([rows, new_rows])
            cols = np.concatenate([cols, new_cols])

            used = self.solve(rows, cols) > 0
            owner, base, extra_edges = self.describe(rows[used], cols[used])
            # Potentials from the pruned residual graph (exists: the pruned
            # solution is optimal for the pruned graph, no negative cycle).
            keep = owner[cols] != rows
            src = np.concatenate([rows[keep], extra_edges[0]])
            dst = np.concatenate([owner[cols[keep]], extra_edges[1]])
            w = np.concatenate([
                self.c[rows[keep], cols[keep]] - base[cols[keep]],
                extra_edges[2]
            ])
            pot = _bellman_ford(s + 1, src, dst, w)
            # Reduced costs of all arcs.  Kept arcs are >= 0 by construction;
            # a negative one elsewhere means the pruned optimum is not a full
            # optimum.  If none, the potentials certify optimality.
            red = self.c + pot[:s, None]
            red -= (base + pot[owner])[None, :]
            lines = self.violated_lines(red)
            if lines.size == 0:
                return self.result(rows[used], cols[used])
            # The cheapest arcs of a violated line include a negative, hence
            # new, one: every round grows the arc set, so the loop ends.
            # Kept arcs are not candidates again (ties would pick them).
            red[kept] = _NOT_CANDIDATE
            new_rows, new_cols = self.cheapest(red, lines)
        # Pathological inputs (e.g. massive exact ties) only: bound the work.
        return self.run_full()

    def run_full(self):
        s, t = self.s, self.t
        rows = np.repeat(np.arange(s), t)
        cols = np.tile(np.arange(t), s)
        used = self.solve(rows, cols) > 0
        return self.result(rows[used], cols[used])

    def solve(self, rows, cols):
        s, t = self.s, self.t
        g = min_cost_flow.SimpleMinCostFlow()
        n = rows.size
        g.add_arcs_with_capacity_and_unit_cost(
            rows.astype(np.int32), (cols + s).astype(np.int32),
            np.ones(n, np.int64), self.c[rows, cols])
        self.add_rest(g)
        status = g.solve()
        if status != g.OPTIMAL:
            raise ValueError(
                f'OR-Tools min-cost flow did not reach OPTIMAL (status '
                f'{status!r}) on a {s} x {t} matching problem')
        return g.flows(np.arange(n))


class _Dense(_Problem):

    @property
    def line_length(self):
        return self.s

    def feasible_arcs(self):
        # Round-robin j -> j % S has group sizes floor/ceil(T/S).
        teachers = np.arange(self.t)
        return teachers % self.s, teachers

    def cheapest(self, red, lines):
        """The ``_CANDIDATES`` cheapest arcs of each teacher in ``lines``.

        Per teacher, ordering students by reduced cost is ordering them by
        ``C[i, j] + pot[i]``: the teacher-side terms are constant.
        """
        k = _CANDIDATES
        # Rows of the transpose are contiguous: much faster to partition
        # than along axis 0.
        sub = red.T if lines is None else red.T[lines]
        best = np.argpartition(np.ascontiguousarray(sub), k - 1, axis=1)[:, :k]
        if lines is None:
            lines = np.arange(self.t)
        return best.ravel(), np.repeat(lines, k)

    def initial_arcs(self):
        # Two guesses of the optimal student potentials u (the order of
        # C[i, j] - u[i] per teacher): u = 0, and u[i] = the q-th smallest
        # cost of row i, since student i needs about q teachers.  The second
        # keeps students that are cheap (or dear) for every teacher from
        # crowding out (or being left out of) the candidate sets.
        q = max(1, self.t // self.s)
        u = np.partition(self.c, q - 1, axis=1)[:, q - 1]
        rows1, cols1 = self.cheapest(self.c, None)
        rows2, cols2 = self.cheapest(self.c - u[:, None], None)
        return np.concatenate([rows1, rows2]), np.concatenate([cols1, cols2])

    def violated_lines(self, red):
        return np.flatnonzero(red.min(axis=0) < 0)

    def add_rest(self, g):
        s, t = self.s, self.t
        q, r = divmod(t, s)
        nodes = np.arange(s + t + (r > 0), dtype=np.int32)
        supplies = np.concatenate(
            [np.full(s, q, np.int64),
             np.full(t, -1, np.int64)])
        if r:
            g.add_arcs_with_capacity_and_unit_cost(
                np.full(s, s + t, np.int32), np.arange(s, dtype=np.int32),
                np.ones(s, np.int64), np.zeros(s, np.int64))
            supplies = np.append(supplies, np.int64(r))
        g.set_nodes_supplies(nodes, supplies)

    def describe(self, rows, cols):
        s, t = self.s, self.t
        owner = np.empty(t, np.int64)
        owner[cols] = rows
        base = self.c[owner, np.arange(t)]
        # Extra node s: arc s -> i is unused (residual s -> i) when i got the
        # small group, used (residual i -> s) when it got the large one.
        sizes = np.bincount(owner, minlength=s)
        if t % s:
            small = np.flatnonzero(sizes == t // s)
            large = np.flatnonzero(sizes != t // s)
            src = np.concatenate([np.full(small.size, s), large])
            dst = np.concatenate([small, np.full(large.size, s)])
        else:
            src = dst = np.empty(0, np.int64)
        return owner, base, (src, dst, np.zeros(src.size, np.int64))

    def result(self, rows, cols):
        pi = np.empty(self.t, np.int64)
        pi[cols] = rows
        return pi


class _Sparse(_Problem):

    @property
    def line_length(self):
        return self.t

    def feasible_arcs(self):
        # Diagonal i -> i.
        students = np.arange(self.s)
        return students, students

    def cheapest(self, red, lines):
        """The ``_CANDIDATES`` cheapest arcs of each student in ``lines``."""
        k = _CANDIDATES
        sub = red if lines is None else red[lines]
        best = np.argpartition(sub, k - 1, axis=1)[:, :k]
        if lines is None:
            lines = np.arange(self.s)
        return np.repeat(lines, k), best.ravel()

    def initial_arcs(self):
        # As in dense mode, a second guess of the teacher potentials (each
        # teacher's cheapest cost) covers teachers that are cheap (or dear)
        # for every student.
        v = self.c.min(axis=0)
        rows1, cols1 = self.cheapest(self.c, None)
        rows2, cols2 = self.cheapest(self.c - v[None, :], None)
        return np.concatenate([rows1, rows2]), np.concatenate([cols1, cols2])

    def violated_lines(self, red):
        return np.flatnonzero(red.min(axis=1) < 0)

    def add_rest(self, g):
        s, t = self.s, self.t
        sink = s + t
        g.add_arcs_with_capacity_and_unit_cost(
            np.arange(s, s + t, dtype=np.int32), np.full(t, sink, np.int32),
            np.ones(t, np.int64), np.zeros(t, np.int64))
        supplies = np.concatenate(
            [np.ones(s, np.int64),
             np.zeros(t, np.int64), [-s]])
        g.set_nodes_supplies(np.arange(s + t + 1, dtype=np.int32), supplies)

    def describe(self, rows, cols):
        s, t = self.s, self.t
        # Unused teachers belong to the sink (node s), reached at cost 0.
        owner = np.full(t, s, np.int64)
        owner[cols] = rows
        base = np.zeros(t, np.int64)
        base[cols] = self.c[rows, cols]
        # Sink -> used teacher -> its student: reverse arcs, cost -C.
        src = np.full(rows.size, s, np.int64)
        return owner, base, (src, rows, -self.c[rows, cols])

    def result(self, rows, cols):
        sigma = np.empty(self.s, np.int64)
        sigma[rows] = cols
        return sigma


def _bellman_ford(n, src, dst, w):
    """Shortest distances from a virtual root joined to every node by 0."""
    dist = np.zeros(n, np.int64)
    for _ in range(n + 1):
        new = dist.copy()
        np.minimum.at(new, dst, dist[src] + w)
        if np.array_equal(new, dist):
            return dist
        dist = new
    raise RuntimeError('negative cycle in the residual graph of an OR-Tools '
                       'solution reported optimal')
