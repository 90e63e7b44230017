"""The seed's PCA, radius grouping, Hungarian matching and repair."""

import numpy as np
import pytest

from overcloud_migrate.planner import model
from overcloud_migrate.planner import problem as problem_mod
from overcloud_migrate.planner import seed
from tests.unit.planner import workloads

# Two apps whose three VMs all talk to each other, at different volumes.
TRIANGLES = {(0, 1): 10, (1, 2): 10, (0, 2): 10,
             (3, 4): 4, (4, 5): 4, (3, 5): 4}


def matrix(edges, n=6):
    t = np.zeros((n, n))
    for (a, b), w in edges.items():
        t[a, b] = t[b, a] = w
    return t


def test_pca_matches_an_independent_svd():
    rng = np.random.default_rng(7)
    x = rng.random((9, 9))
    x = x + x.T
    centered = x - x.mean(axis=0)
    u, s, _vt = np.linalg.svd(centered)
    reference = u[:, :2] * s[:2]
    coords = seed.pca_coordinates(x)
    # Equal up to the sign of each component.
    for k in range(2):
        assert np.allclose(np.abs(coords[:, k]), np.abs(reference[:, k]))


def test_sparse_lanczos_path_matches_dense():
    from scipy import sparse
    rng = np.random.default_rng(3)
    n = seed.DENSE_LIMIT + 40
    t = np.zeros((n, n))
    for _ in range(400):
        a, b = rng.integers(0, n, size=2)
        if a != b:
            t[a, b] = t[b, a] = rng.integers(1, 100)
    dense = seed.pca_coordinates(t)
    lanczos = seed.pca_coordinates(sparse.csr_matrix(t))
    for k in range(2):
        assert np.allclose(np.abs(dense[:, k]), np.abs(lanczos[:, k]),
                           atol=1e-6)


def test_eigenvector_rows_instead_of_columns_groups_differently():
    t = matrix(TRIANGLES)
    strength = t.sum(axis=1)
    groups, _heads, _d, _r = seed.radius_groups(
        seed.pca_coordinates(t), 2, strength)
    assert sorted(map(sorted, groups)) == [[0, 1, 2], [3, 4, 5]]
    # The prototype's defect: rows of numpy's eigenvector matrix.
    x = t - t.mean(axis=0)
    vals, vecs = np.linalg.eigh(x.T @ x / 5)
    top = np.argsort(vals)[::-1][:2]
    wrong = x @ vecs[top, :].T
    bad_groups = seed.radius_groups(wrong, 2, strength)[0]
    assert sorted(map(sorted, bad_groups)) != [[0, 1, 2], [3, 4, 5]]


def test_radius_covers_bounding_box_and_degenerate_line():
    coords = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 2.0]])
    assert seed.radius(coords, 2) == pytest.approx(np.sqrt(8 / (np.pi * 2)))
    line = np.array([[0.0, 0.0], [6.0, 0.0]])
    assert seed.radius(line, 3) == pytest.approx(1.0)
    assert seed.radius(np.zeros((2, 2)), 2) == 0.0


def problem(edges, n=6, host_count=2, host_vcpus=6, **kw):
    return problem_mod.Problem(workloads.servers(n, **kw),
                               workloads.hosts(host_count, vcpus=host_vcpus),
                               workloads.traffic(edges))


def test_two_apps_on_two_hosts_cut_nothing():
    p = problem(TRIANGLES)
    assignment, units = seed.plan(p)
    assert sorted(map(sorted, units)) == [[0, 1, 2], [3, 4, 5]]
    assert p.cut(assignment) == 0
    assert len(set(assignment.tolist())) == 2


def test_matching_puts_the_big_group_on_the_big_host():
    servers = workloads.servers(6)
    servers[0] = model.ServerInfo('id0', 'vm0', (), 8, 2048, 20)
    hosts = [model.Host('small', 6, 16384, 200),
             model.Host('big', 12, 16384, 200)]
    p = problem_mod.Problem(servers, hosts, workloads.traffic(TRIANGLES))
    assignment, _units = seed.plan(p)
    # vm0-2 need 12 vCPU: only "big" holds them.
    assert assignment[:3].tolist() == [1, 1, 1]
    assert p.cut(assignment) == 0


def test_capacity_repair_respects_every_host():
    # A star (hub 0, leaves 1-3) and a pair on two 3-VM hosts. PCA puts
    # VMs with the same traffic pattern together: the three leaves (each
    # talks only to the hub) form one group; the hub's group overflows and
    # the repair moves its farthest VMs. The seed cuts 30 here; the
    # default planner cuts 10 (see test_partition).
    edges = {(0, 1): 10, (0, 2): 10, (0, 3): 10, (4, 5): 10}
    p = problem(edges, host_vcpus=6)
    assignment, _units = seed.plan(p)
    assert np.bincount(assignment, minlength=2).tolist() == [3, 3]
    assert len(set(assignment[[1, 2, 3]].tolist())) == 1
    assert p.cut(assignment) == 30


def test_repair_that_cannot_place_raises():
    # Three 4-vCPU VMs, hosts of 6 vCPU and 4 vCPU: 2 groups, the third VM
    # has room nowhere once the others are placed.
    servers = workloads.servers(3, vcpus=4)
    hosts = [model.Host('a', 6, 16384, 200), model.Host('b', 4, 16384, 200)]
    p = problem_mod.Problem(servers, hosts, {})
    with pytest.raises(model.CapacityError, match='seed algorithm could not'):
        seed.plan(p)


def test_single_vm_and_no_servers():
    p = problem({}, n=1)
    assignment, units = seed.plan(p)
    assert units == [[0]] and assignment.tolist() in ([0], [1])
    p = problem({}, n=0)
    assignment, units = seed.plan(p)
    assert units == [] and len(assignment) == 0


def test_group_order_pairs_closest_heads():
    dist = np.array([[0, 5, 1, 9], [5, 0, 6, 2], [1, 6, 0, 7],
                     [9, 2, 7, 0]], dtype=float)
    assert seed.group_order([0, 1, 2, 3], dist) == [0, 2, 1, 3]
    assert seed.group_order([0, 1, 2], dist) == [0, 2, 1]
