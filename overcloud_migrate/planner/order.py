"""Migration order: which unit (wave) moves first.

Each unit (a community of servers) migrates as one wave. Let ``P_u`` be
the time to move unit ``u`` (its disk total; migration time is disk over
bandwidth), ``S_u`` its start and ``C_u = S_u + P_u`` its end when units
move one after the other, ``W_u`` the traffic inside ``u`` and ``w_uv``
the traffic between two units. The order minimises

    J = sum_{u<v} w_uv * |S_u - S_v|  +  sum_u W_u * C_u

The first term is traffic split between the two sites while two
talking units wait for each other: keep them adjacent. The second is the
weighted completion time of each unit's traffic: heavily communicating
units move early (Smith's rule, ``W_u / P_u`` decreasing, is optimal for
that term alone). Both are minimised greedily: start with the unit of
highest ratio ``(W_u + sum_v w_uv) / P_u``; then take the unit with the
most traffic to the units already placed, and when no unit has any, the
next by ratio; then swap neighbouring units while a swap lowers ``J``
(for up to :data:`MAX_LOCAL_SEARCH` units). Servers with no traffic at all form one last wave: they
depend on nobody and may all move in parallel.

Within a unit, servers are listed largest disk first (longest processing
time first shortens the wave when it runs ``--parallel`` at a time).
"""

import numpy as np

# Local search only on plans with at most this many waves, this many passes.
MAX_LOCAL_SEARCH = 400
MAX_PASSES = 20


def _unit_data(problem, units):
    k = len(units)
    label = np.empty(problem.n, dtype=int)
    for u, members in enumerate(units):
        label[members] = u
    size = np.array([max(problem.demand[m, 2].sum(), 1e-9 * len(m))
                     for m in units])
    inside = np.zeros(k)
    cross = np.zeros((k, k))
    if len(problem.edge_w):
        a = label[problem.edge_i]
        b = label[problem.edge_j]
        same = a == b
        np.add.at(inside, a[same], problem.edge_w[same])
        np.add.at(cross, (a[~same], b[~same]), problem.edge_w[~same])
        np.add.at(cross, (b[~same], a[~same]), problem.edge_w[~same])
    return size, inside, cross


def _cost(perm, size, inside, cross):
    size = size[perm]
    start = np.concatenate([[0.0], np.cumsum(size)[:-1]])
    gap = np.abs(start[:, None] - start[None, :])
    return float((cross[np.ix_(perm, perm)] * gap).sum() / 2
                 + (inside[perm] * (start + size)).sum())


def cost(problem, units):
    """The objective ``J`` of an ordered list of units (lower is better)."""
    size, inside, cross = _unit_data(problem, units)
    return _cost(np.arange(len(units)), size, inside, cross)


def _improve(perm, size, inside, cross):
    """Adjacent interchanges while one lowers ``J`` (bounded passes).

    Swapping neighbours ``a`` (first) and ``b`` changes ``J`` by
    ``W_a P_b - W_b P_a`` (completion term) plus
    ``P_b (w_a,before - w_a,after) + P_a (w_b,after - w_b,before)
    + w_ab (P_b - P_a)`` (split term), where ``w_a,before`` is ``a``'s
    traffic to units placed before the pair; so each try costs O(k).
    """
    perm = np.array(perm, dtype=int)
    for _ in range(MAX_PASSES):
        better = False
        for k in range(len(perm) - 1):
            a, b = perm[k], perm[k + 1]
            before = perm[:k]
            after = perm[k + 2:]
            delta = (inside[a] * size[b] - inside[b] * size[a]
                     + size[b] * (cross[a, before].sum()
                                  - cross[a, after].sum())
                     + size[a] * (cross[b, after].sum()
                                  - cross[b, before].sum())
                     + cross[a, b] * (size[b] - size[a]))
            if delta < -1e-9:
                perm[k], perm[k + 1] = b, a
                better = True
        if not better:
            break
    return perm.tolist()


def order_units(problem, units):
    """Order ``units`` (lists of server indexes); see the module text.

    Returns new lists: servers without any traffic gathered in one last
    unit, members largest disk first.
    """
    units = [list(u) for u in units]
    graph = problem.graph()
    lonely = [u for u in units if all(not graph[i] for i in u)]
    units = [u for u in units if not all(not graph[i] for i in u)]
    ordered = []
    if units:
        size, inside, cross = _unit_data(problem, units)
        ratio = (inside + cross.sum(axis=1)) / size
        remaining = np.ones(len(units), dtype=bool)
        link = np.zeros(len(units))
        picked = []
        while remaining.any():
            candidates = np.flatnonzero(remaining)
            best = max(candidates.tolist(),
                       key=lambda u: (link[u], ratio[u], -u))
            picked.append(best)
            remaining[best] = False
            link += cross[best]
        if len(picked) <= MAX_LOCAL_SEARCH:
            picked = _improve(picked, size, inside, cross)
        ordered = [units[u] for u in picked]
    loose = sorted(i for u in lonely for i in u)
    if loose:
        ordered.append(loose)
    disk = problem.demand[:, 2]
    return [sorted(u, key=lambda i: (-disk[i], i)) for u in ordered]
