"""The seed's grouping method, reimplemented correctly.

Narantuya, Zang, Lim, "Service-Aware Cloud-to-Cloud Migration of Multiple
Virtual Machines", IEEE Access 6, 2018, and the GIST/KISTI prototype:

1. Build the VM-to-VM traffic matrix ``T`` (symmetric, ``n x n``).
2. Project it to two dimensions with PCA, so that VMs with similar traffic
   patterns land close together.
3. Radius grouping: with ``m`` destination hosts, the radius is
   ``r = sqrt(area / (pi * m))`` where ``area`` is the bounding box of the
   projected points (``m`` discs of radius ``r`` cover the box). The VM with
   the most ungrouped neighbours within ``r`` (the best-connected one)
   heads a group of those neighbours; repeat ``m`` times; leftover VMs join
   the nearest head.
4. Hungarian matching of groups to hosts (``linear_sum_assignment``) on the
   cost ``|(cpu_g/cpu_h, ram_g/ram_h, disk_g/disk_h) - (1, 1, 1)|`` plus a
   large penalty when a ratio exceeds 1.
5. Capacity repair: while a group exceeds its host, drop its VM farthest
   from the head; place dropped VMs in the nearest group that still fits.
6. Order: groups whose heads are closest are paired and migrate one after
   the other.

Fixed defects of the prototype:

- numpy returns eigenvectors as the COLUMNS of its matrix; the prototype
  took rows (``eigvecs[k]``), which are not eigenvectors. Here
  ``vecs[:, k]``.
- the data were projected uncentered; PCA centres each column first.
- an already grouped VM could head a second group; heads are now chosen
  among ungrouped VMs.
- the prototype tried every permutation of hosts (``O(m!)``); only the
  Hungarian matching is kept (``O(m^3)``).
- a degenerate projection (all points on a line) gave a zero radius.
"""

import math

import numpy as np
from scipy import linalg
from scipy.optimize import linear_sum_assignment

from overcloud_migrate.planner import model

# Added to the matching cost of a group that does not fit a host.
OVERFLOW_PENALTY = 1e6


# Above this many VMs the two leading eigenvectors come from Lanczos
# iterations on the sparse traffic matrix instead of a dense eigh.
DENSE_LIMIT = 64


def pca_coordinates(matrix, components=2):
    """Centered PCA projection of the rows of ``matrix`` (``n x n``).

    ``matrix`` may be a numpy array or a scipy sparse matrix. The
    covariance of the centered rows is ``C = X^T X / (n - 1)`` with
    ``X = T - mean``; its leading eigenvectors are the principal axes and
    ``X @ W`` the coordinates. Small inputs use ``scipy.linalg.eigh``
    (eigenvectors are the COLUMNS of its result); large ones
    ``scipy.sparse.linalg.eigsh`` on ``v -> X^T (X v) / (n - 1)``, which
    never forms ``X`` or ``C``.
    """
    from scipy import sparse
    n = matrix.shape[0]
    if n < 2:
        return np.zeros((n, components))
    k = min(components, n - 1) if n > DENSE_LIMIT else min(components, n)
    if n <= DENSE_LIMIT or not sparse.issparse(matrix):
        x = np.asarray(matrix.toarray() if sparse.issparse(matrix)
                       else matrix, dtype=float)
        x = x - x.mean(axis=0)
        cov = x.T @ x / (n - 1)
        size = cov.shape[0]
        # eigh returns ascending eigenvalues and eigenvectors as COLUMNS.
        _vals, vecs = linalg.eigh(cov, subset_by_index=[size - k, size - 1])
        coords = x @ vecs[:, ::-1]
    else:
        from scipy.sparse import linalg as sparse_linalg
        t = sparse.csr_matrix(matrix, dtype=float)
        mean = np.asarray(t.mean(axis=0)).ravel()
        tt = t.T.tocsr()

        def apply_x(v):
            return t @ v - mean @ v

        def apply_cov(v):
            xv = apply_x(v)
            return (tt @ xv - mean * xv.sum()) / (n - 1)

        operator = sparse_linalg.LinearOperator((n, n), matvec=apply_cov,
                                                dtype=float)
        vals, vecs = sparse_linalg.eigsh(operator, k=k, which='LA',
                                         v0=np.ones(n) / np.sqrt(n))
        vecs = vecs[:, np.argsort(vals)[::-1]]
        coords = np.column_stack([apply_x(vecs[:, c]) for c in range(k)])
    if coords.shape[1] < components:
        coords = np.hstack([coords,
                            np.zeros((n, components - coords.shape[1]))])
    return coords


def radius(coords, groups):
    """``sqrt(area / (pi * m))`` over the points' bounding box."""
    if len(coords) == 0:
        return 0.0
    span = coords.max(axis=0) - coords.min(axis=0)
    width, length = float(span[0]), float(span[1])
    area = width * length
    if area > 0:
        return math.sqrt(area / (math.pi * groups))
    # All points on a line (or one point): discs of diameter span/m.
    return max(width, length) / (2 * groups)


def radius_groups(coords, count, strength):
    """Return ``(groups, heads, distances, radius)``.

    ``groups`` are lists of point indexes, the head first; ``heads`` the
    head of each group.

    :param strength: per point, its total traffic (ties between heads with
        the same number of neighbours go to the better-connected VM)
    """
    n = len(coords)
    if n == 0:
        return [], [], np.zeros((0, 0)), 0.0
    rad = radius(coords, count)
    dist = np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))
    near = dist <= rad + 1e-12
    free = np.ones(n, dtype=bool)
    groups, heads = [], []
    for _ in range(count):
        if not free.any():
            break
        neighbours = (near & free[None, :]).sum(axis=1)
        neighbours[~free] = -1
        # most neighbours, then most traffic, then lowest index
        order = np.lexsort((np.arange(n), -strength, -neighbours))
        head = int(order[0])
        members = np.flatnonzero(near[head] & free)
        free[members] = False
        groups.append([head] + [int(i) for i in members if i != head])
        heads.append(head)
    for i in np.flatnonzero(free):
        nearest = min(range(len(heads)), key=lambda g: dist[i, heads[g]])
        groups[nearest].append(int(i))
    return groups, heads, dist, rad


def _ratio(load, capacity):
    with np.errstate(divide='ignore', invalid='ignore'):
        r = np.where(capacity > 0, load / capacity,
                     np.where(load > 0, np.inf, 0.0))
    return np.where(np.isinf(capacity), 0.0, r)


def match_cost(loads, capacity):
    """Hungarian cost matrix groups x hosts (the prototype's measure)."""
    cost = np.zeros((len(loads), len(capacity)))
    for g, load in enumerate(loads):
        for h, cap in enumerate(capacity):
            r = _ratio(load, cap)
            over = bool(np.any(r > 1))
            finite = np.where(np.isfinite(r), r, 0.0)
            cost[g, h] = (float(np.linalg.norm(finite - 1.0))
                          + (OVERFLOW_PENALTY if over else 0.0))
    return cost


def plan(problem):
    """Seed grouping and placement; returns ``(assignment, units)``.

    ``assignment`` is the host index of every server; ``units`` the groups
    in the seed's migration order. Raises :class:`model.CapacityError`
    when the repair step cannot place every server.
    """
    n, m = problem.n, len(problem.hosts)
    if n == 0:
        return np.zeros(0, dtype=int), []
    count = min(m, n)
    coords = pca_coordinates(problem.sparse_matrix()
                             if n > DENSE_LIMIT else problem.matrix())
    strength = np.zeros(n)
    np.add.at(strength, problem.edge_i, problem.edge_w)
    np.add.at(strength, problem.edge_j, problem.edge_w)
    groups, heads, dist, rad = radius_groups(coords, count, strength)
    loads = [problem.demand[g].sum(axis=0) for g in groups]
    rows, cols = linear_sum_assignment(match_cost(loads, problem.capacity))
    host_of_group = dict(zip(rows.tolist(), cols.tolist()))
    # Capacity repair, step 1: drop the farthest VMs from overfull groups.
    removed = []
    for g, members in enumerate(groups):
        host = host_of_group[g]
        members.sort(key=lambda i: dist[heads[g], i])
        while members and not problem.fits(
                problem.demand[members].sum(axis=0), host):
            removed.append(members.pop())
    # Step 2: put each dropped VM in the nearest group that still fits;
    # hosts left without a group (m > groups) take a new group.
    spare = [h for h in range(m) if h not in host_of_group.values()]
    for i in removed:
        order = sorted(range(len(groups)),
                       key=lambda g: dist[i, heads[g]] - rad)
        for g in order:
            load = problem.demand[groups[g]].sum(axis=0) + problem.demand[i]
            if problem.fits(load, host_of_group[g]):
                groups[g].append(i)
                break
        else:
            host = next((h for h in spare
                         if problem.fits(problem.demand[i], h)), None)
            if host is None:
                raise model.CapacityError(
                    f'The seed algorithm could not place server '
                    f'{problem.servers[i].name}: no group with room is '
                    f'left after the capacity repair.')
            spare.remove(host)
            host_of_group[len(groups)] = host
            groups.append([i])
            heads.append(i)
    assignment = np.empty(n, dtype=int)
    for g, members in enumerate(groups):
        assignment[members] = host_of_group[g]
    units = [groups[g] for g in group_order(heads, dist) if groups[g]]
    return assignment, units


def group_order(heads, dist):
    """The prototype's order: pair the closest heads, pairs by distance."""
    remaining = list(range(len(heads)))
    pairs = sorted(((dist[heads[a], heads[b]], a, b)
                    for ai, a in enumerate(remaining)
                    for b in remaining[ai + 1:]))
    order = []
    for _d, a, b in pairs:
        if a not in order and b not in order:
            order.extend([a, b])
    order.extend(g for g in remaining if g not in order)
    return order
