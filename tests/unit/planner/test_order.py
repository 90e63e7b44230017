"""Wave order: adjacency of talking units, heavy units first."""

import itertools

import numpy as np
import pytest

from overcloud_migrate.planner import order
from overcloud_migrate.planner import problem as problem_mod
from tests.unit.planner import workloads


def problem(edges, n, disks=None):
    servers = workloads.servers(n)
    if disks:
        servers = [s.__class__(s.id, s.name, s.ips, s.vcpus, s.ram_mb, d)
                   for s, d in zip(servers, disks)]
    return problem_mod.Problem(servers, workloads.hosts(1, vcpus=64),
                               workloads.traffic(edges))


def test_heavier_unit_of_the_same_size_goes_first():
    p = problem({(0, 1): 5, (2, 3): 50}, 4)
    assert order.order_units(p, [[0, 1], [2, 3]]) == [[2, 3], [0, 1]]


def test_smaller_unit_with_the_same_traffic_goes_first():
    # Smith's rule: traffic per unit of migration time.
    p = problem({(0, 1): 10, (2, 3): 10}, 4, disks=[50, 50, 5, 5])
    assert order.order_units(p, [[0, 1], [2, 3]]) == [[2, 3], [0, 1]]


def test_talking_units_are_adjacent():
    # X={0,1} and Z={4,5} talk (100); Y={2,3} is heavier inside but alone.
    edges = {(0, 1): 30, (2, 3): 40, (4, 5): 10, (1, 4): 100}
    p = problem(edges, 6)
    got = order.order_units(p, [[0, 1], [2, 3], [4, 5]])
    position = {tuple(u): k for k, u in enumerate(got)}
    assert abs(position[(0, 1)] - position[(4, 5)]) == 1
    assert order.cost(p, got) < order.cost(p, [[0, 1], [2, 3], [4, 5]])


def test_local_search_finds_the_best_of_all_orders():
    # Weak X-Z tie (20): moving heavy Y first is worth more (J = 6000,
    # the minimum over all six orders; the greedy start X, Z, Y has 7600).
    edges = {(0, 1): 30, (2, 3): 40, (4, 5): 10, (1, 4): 20}
    p = problem(edges, 6)
    units = [[0, 1], [2, 3], [4, 5]]
    got = order.order_units(p, units)
    assert got == [[2, 3], [0, 1], [4, 5]]
    assert order.cost(p, got) == pytest.approx(6000)
    assert order.cost(p, got) == min(
        order.cost(p, list(perm)) for perm in itertools.permutations(units))


def test_servers_without_traffic_form_one_last_wave():
    p = problem({(0, 1): 1}, 4, disks=[10, 10, 5, 30])
    assert order.order_units(p, [[2], [0, 1], [3]]) == [[0, 1], [3, 2]]


def test_members_largest_disk_first():
    p = problem({(0, 1): 1, (1, 2): 1}, 3, disks=[5, 40, 10])
    assert order.order_units(p, [[0, 1, 2]]) == [[1, 2, 0]]


def test_cost_by_hand():
    # Units A={0,1} (disk 40, inside 10), B={2} (disk 20, inside 0);
    # A-B traffic 3. Order A,B: starts 0, 40; ends 40, 60.
    # J = 3 * |0 - 40| + 10 * 40 + 0 * 60 = 520.
    p = problem({(0, 1): 10, (1, 2): 3}, 3)
    assert order.cost(p, [[0, 1], [2]]) == pytest.approx(520)
    # Order B,A: starts 0, 20; ends 20, 60: J = 3 * 20 + 10 * 60 = 660.
    assert order.cost(p, [[2], [0, 1]]) == pytest.approx(660)


@pytest.mark.parametrize('random_seed', range(5))
def test_result_is_a_local_optimum_of_the_full_cost(random_seed):
    # Checks the O(k) swap delta against the full objective.
    rng = np.random.default_rng(random_seed)
    n = 24
    edges = {}
    for _ in range(40):
        a, b = rng.integers(0, n, size=2)
        if a != b:
            edges[(int(a), int(b))] = float(rng.integers(1, 50))
    p = problem(edges, n, disks=rng.integers(1, 80, size=n).tolist())
    units = [list(range(k, k + 3)) for k in range(0, n, 3)]
    got = order.order_units(p, units)
    best = order.cost(p, got)
    for k in range(len(got) - 1):
        swapped = got[:k] + [got[k + 1], got[k]] + got[k + 2:]
        assert order.cost(p, swapped) >= best - 1e-6
