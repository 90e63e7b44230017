"""The default planner: communities, capacity-aware packing, refinement.

1. Louvain community detection (networkx, weighted, fixed seed) splits the
   traffic graph into communities: the servers of one service.
2. First-fit-decreasing with affinity: communities, largest first, go to
   the host that already holds most of their traffic among the hosts with
   room (ties: the tightest fit). A community that fits no host fills one
   host with a connected piece grown greedily from its best-connected
   server (each step adds the server with the most traffic to the piece
   that still fits); the rest is placed the same way.
3. Refinement: a server moves to the host it exchanges most traffic with
   when that host has room; repeated until no move lowers the cut.
4. Guarantee: the seed's placement (refined the same way) is computed too,
   and the placement with the smaller traffic cut is kept, so the default
   never cuts more traffic than ``seed``.

Migration units (the waves) are the communities, not the host groups: a
service moves together even when capacity splits it over two hosts.
Communities that exchange at least :data:`MERGE_SHARE` of the smaller
one's traffic are joined into one unit first (Louvain may cut one service
in two; the halves must not be migrated far apart).
"""

import networkx as nx
import numpy as np

from overcloud_migrate.planner import model
from overcloud_migrate.planner import seed as seed_mod

REFINE_PASSES = 8
# Communities exchanging at least this share of the smaller one's traffic
# migrate as one unit (Louvain may split one service in two).
MERGE_SHARE = 0.05


def communities(problem, random_seed=0):
    """Communities of the traffic graph as sorted lists of indexes.

    Servers without traffic are communities of one.
    """
    graph = problem.graph()
    if graph.number_of_edges() == 0:
        return [[i] for i in range(problem.n)]
    found = nx.community.louvain_communities(graph, weight='weight',
                                             seed=random_seed)
    return sorted((sorted(c) for c in found), key=lambda c: c[0])


def migration_units(problem, found):
    """Join communities tied by :data:`MERGE_SHARE` of their traffic."""
    label = np.empty(problem.n, dtype=int)
    for u, members in enumerate(found):
        label[members] = u
    k = len(found)
    total = np.zeros(k)
    cross = {}
    for i, j, w in zip(problem.edge_i.tolist(), problem.edge_j.tolist(),
                       problem.edge_w.tolist()):
        a, b = label[i], label[j]
        total[a] += w
        total[b] += w
        if a != b:
            key = (min(a, b), max(a, b))
            cross[key] = cross.get(key, 0.0) + w
    parent = list(range(k))

    def root(u):
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for (a, b), w in cross.items():
        if w >= MERGE_SHARE * min(total[a], total[b]):
            parent[root(a)] = root(b)
    merged = {}
    for u, members in enumerate(found):
        merged.setdefault(root(u), []).extend(members)
    return sorted((sorted(m) for m in merged.values()), key=lambda m: m[0])


class _Packer:
    def __init__(self, problem):
        self.p = problem
        self.free = problem.capacity.copy()
        self.assignment = np.full(problem.n, -1, dtype=int)
        total_cap = problem.capacity.sum(axis=0)
        total_dem = problem.demand.sum(axis=0)
        scale = np.where(np.isfinite(total_cap), total_cap, total_dem)
        self.scale = np.where(scale > 0, scale, 1.0)

    def size(self, load):
        return float(np.max(load / self.scale))

    def affinity(self, members):
        graph = self.p.graph()
        score = np.zeros(len(self.p.hosts))
        for i in members:
            for j, data in graph[i].items():
                h = self.assignment[j]
                if h >= 0:
                    score[h] += data['weight']
        return score

    def place(self, members):
        while members:
            load = self.p.demand[members].sum(axis=0)
            room = np.all(load <= self.free + 1e-9, axis=1)
            if room.any():
                score = self.affinity(members)
                left = np.where(np.isfinite(self.free), self.free - load, 0.0)
                spare = np.max(left / self.scale, axis=1)
                candidates = np.flatnonzero(room).tolist()
                best = min(candidates, key=lambda h: (-score[h], spare[h], h))
                self._assign(members, best)
                return
            members = self.fill(members)

    def _assign(self, members, host):
        self.assignment[members] = host
        self.free[host] -= self.p.demand[members].sum(axis=0)

    def fill(self, members):
        """Fill one host with a connected piece of ``members``.

        The host with the most traffic to the members (then the most room)
        gets the piece grown from the best-connected member: each step
        adds the member with the most traffic to the piece that still fits.
        Returns the members left over.
        """
        csr = self.p.csr()
        members = np.asarray(members)
        position = {int(i): k for k, i in enumerate(members)}
        demand = self.p.demand[members]
        score = self.affinity(members.tolist())
        room = np.where(np.isfinite(self.free), self.free, 0.0)
        spare = np.min(room / self.scale, axis=1)
        hosts = sorted(range(len(self.p.hosts)),
                       key=lambda h: (-score[h], -spare[h], h))
        strength = np.zeros(len(members))
        for k, i in enumerate(members.tolist()):
            for j, w in csr.neighbours(i):
                if j in position:
                    strength[k] += w
        for host in hosts:
            free = self.free[host].copy()
            fits = np.all(demand <= free + 1e-9, axis=1)
            if not fits.any():
                continue
            gain = strength * 1e-9  # ties: best-connected first
            taken = np.zeros(len(members), dtype=bool)
            k = int(np.argmax(np.where(fits, gain, -np.inf)))
            while True:
                taken[k] = True
                free -= demand[k]
                for j, w in csr.neighbours(int(members[k])):
                    other = position.get(j)
                    if other is not None:
                        gain[other] += w
                fits = ~taken & np.all(demand <= free + 1e-9, axis=1)
                if not fits.any():
                    break
                k = int(np.argmax(np.where(fits, gain, -np.inf)))
            piece = members[taken].tolist()
            self._assign(piece, host)
            return members[~taken].tolist()
        raise model.CapacityError(
            f'No destination host has room left for server '
            f'{self.p.servers[members[0]].name} after packing the others.')


def pack(problem, units):
    """Host index per server, packing ``units`` largest first."""
    packer = _Packer(problem)
    order = sorted(units, key=lambda u: (
        -packer.size(problem.demand[u].sum(axis=0)), u[0]))
    for unit in order:
        packer.place(list(unit))
    return packer.assignment


def refine(problem, assignment):
    """Move single servers to the host they talk to most, with room.

    Each move strictly lowers the traffic cut, so this never undoes the
    packing's work; at most :data:`REFINE_PASSES` passes.
    """
    assignment = np.array(assignment, dtype=int)
    m = len(problem.hosts)
    if not len(problem.edge_w) or m < 2:
        return assignment
    csr = problem.csr()
    free = problem.capacity.copy()
    np.subtract.at(free, assignment, problem.demand)
    # towards[i, h]: traffic between server i and the servers on host h.
    towards = np.zeros((problem.n, m))
    np.add.at(towards, (problem.edge_i, assignment[problem.edge_j]),
              problem.edge_w)
    np.add.at(towards, (problem.edge_j, assignment[problem.edge_i]),
              problem.edge_w)
    strength = towards.sum(axis=1)
    order = np.lexsort((np.arange(problem.n), -strength))
    for _ in range(REFINE_PASSES):
        here_all = towards[np.arange(problem.n), assignment]
        hopeful = set(np.flatnonzero(towards.max(axis=1)
                                     > here_all + 1e-12).tolist())
        if not hopeful:
            break
        moved = False
        for i in order.tolist():
            if i not in hopeful:
                continue
            here = assignment[i]
            row = towards[i]
            for h in np.argsort(-row, kind='stable').tolist():
                if row[h] <= row[here] + 1e-12:
                    break
                if np.all(problem.demand[i] <= free[h] + 1e-9):
                    free[h] -= problem.demand[i]
                    free[here] += problem.demand[i]
                    assignment[i] = h
                    for j, w in csr.neighbours(i):
                        towards[j, here] -= w
                        towards[j, h] += w
                    moved = True
                    break
        if not moved:
            break
    return assignment


def plan(problem):
    """Return ``(assignment, units, notes)`` for the default planner."""
    notes = []
    units = communities(problem)
    try:
        assignment = refine(problem, pack(problem, units))
    except model.CapacityError as exc:
        assignment = None
        packing_error = exc
    try:
        seed_assignment, _ = seed_mod.plan(problem)
        seed_assignment = refine(problem, seed_assignment)
    except model.CapacityError:
        seed_assignment = None
    if assignment is None:
        if seed_assignment is None:
            raise packing_error
        notes.append('Community packing found no room; the seed '
                     "algorithm's placement is used.")
        assignment = seed_assignment
    elif (seed_assignment is not None and problem.cut(seed_assignment)
          < problem.cut(assignment) - 1e-9 * max(problem.total, 1.0)):
        notes.append("The seed algorithm's placement cuts less traffic "
                     'and is used.')
        assignment = seed_assignment
    return assignment, migration_units(problem, units), notes
