"""The planning problem as arrays, shared by the algorithms."""

import networkx as nx
import numpy as np

from overcloud_migrate.planner import model


class Problem:
    """Servers, hosts and traffic indexed ``0..n-1`` and ``0..m-1``."""

    def __init__(self, servers, hosts, traffic):
        self.servers = list(servers)
        self.hosts = list(hosts)
        self.ids = [s.id for s in self.servers]
        self.index = {sid: i for i, sid in enumerate(self.ids)}
        if len(self.index) != len(self.ids):
            raise model.PlannerError('A server is listed twice.')
        self.demand = np.array([s.demand for s in self.servers],
                               dtype=float).reshape(-1, 3)
        self.capacity = np.array([h.capacity for h in self.hosts],
                                 dtype=float).reshape(-1, 3)
        rows, cols, weights = [], [], []
        for (a, b), w in traffic.items():
            if a in self.index and b in self.index and a != b and w > 0:
                rows.append(self.index[a])
                cols.append(self.index[b])
                weights.append(float(w))
        self.edge_i = np.array(rows, dtype=int)
        self.edge_j = np.array(cols, dtype=int)
        self.edge_w = np.array(weights, dtype=float)
        self._graph = None
        self._csr = None

    @property
    def n(self):
        return len(self.servers)

    @property
    def total(self):
        return float(self.edge_w.sum())

    def matrix(self):
        """Dense symmetric traffic matrix."""
        t = np.zeros((self.n, self.n))
        np.add.at(t, (self.edge_i, self.edge_j), self.edge_w)
        np.add.at(t, (self.edge_j, self.edge_i), self.edge_w)
        return t

    def sparse_matrix(self):
        """Symmetric traffic matrix as scipy CSR."""
        from scipy import sparse
        both_r = np.concatenate([self.edge_i, self.edge_j])
        both_c = np.concatenate([self.edge_j, self.edge_i])
        both_w = np.concatenate([self.edge_w, self.edge_w])
        return sparse.csr_matrix((both_w, (both_r, both_c)),
                                 shape=(self.n, self.n))

    def graph(self):
        """networkx graph of all servers; edge attribute ``weight``."""
        if self._graph is None:
            g = nx.Graph()
            g.add_nodes_from(range(self.n))
            for i, j, w in zip(self.edge_i.tolist(), self.edge_j.tolist(),
                               self.edge_w.tolist()):
                if g.has_edge(i, j):
                    g[i][j]['weight'] += w
                else:
                    g.add_edge(i, j, weight=w)
            self._graph = g
        return self._graph

    def csr(self):
        """Adjacency lists (both directions) for fast neighbour loops."""
        if self._csr is None:
            self._csr = _Adjacency(self.n, self.edge_i, self.edge_j,
                                   self.edge_w)
        return self._csr

    def cut(self, label):
        """Traffic between servers whose ``label`` differs."""
        label = np.asarray(label)
        if not len(self.edge_w):
            return 0.0
        return float(self.edge_w[label[self.edge_i]
                                 != label[self.edge_j]].sum())

    def fits(self, load, host):
        return bool(np.all(load <= self.capacity[host] + 1e-9))

    def build_plan(self, algorithm, basis, assignment, units, notes=()):
        """Turn host indexes and ordered units into a :class:`model.DependencyPlan`.

        :param assignment: host index per server
        :param units: ordered lists of server indexes; each becomes a
            wave, split into one group per destination host
        """
        assignment = np.asarray(assignment)
        waves = []
        for number, unit in enumerate(units, start=1):
            by_host = {}
            for i in unit:
                by_host.setdefault(int(assignment[i]), []).append(i)
            groups = []
            for host, members in sorted(by_host.items(),
                                        key=lambda kv: -len(kv[1])):
                groups.append(self._group(members, host, assignment))
            waves.append(model.Wave(number, groups))
        cut = self.cut(assignment)
        return model.DependencyPlan(
            algorithm=algorithm, basis=basis, waves=waves,
            traffic_total=self.total, traffic_inside=self.total - cut,
            traffic_cut=cut, notes=list(notes))

    def _group(self, members, host, assignment):
        inside = np.zeros(self.n, dtype=bool)
        inside[members] = True
        on_host = assignment == host
        a, b = self.edge_i, self.edge_j
        w = self.edge_w
        both = inside[a] & inside[b]
        one = inside[a] ^ inside[b]
        other = one & ~(on_host[a] & on_host[b])
        load = self.demand[members].sum(axis=0)
        return model.Group(
            server_ids=[self.ids[i] for i in members],
            host=self.hosts[host].name if self.hosts else None,
            vcpus=int(load[0]), ram_mb=int(load[1]), disk_gb=int(load[2]),
            traffic_inside=float(w[both].sum()),
            traffic_cut=float(w[other].sum()))


class _Adjacency:
    """Symmetric adjacency in CSR arrays; duplicate pairs are summed."""

    def __init__(self, n, rows, cols, weights):
        from scipy import sparse
        both_r = np.concatenate([rows, cols])
        both_c = np.concatenate([cols, rows])
        both_w = np.concatenate([weights, weights])
        matrix = sparse.csr_matrix((both_w, (both_r, both_c)), shape=(n, n))
        matrix.sum_duplicates()
        self.indptr = matrix.indptr
        self.indices = matrix.indices.tolist()
        self.data = matrix.data.tolist()

    def neighbours(self, i):
        lo, hi = self.indptr[i], self.indptr[i + 1]
        return zip(self.indices[lo:hi], self.data[lo:hi])
