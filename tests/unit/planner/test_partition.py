"""The default planner: communities, packing, refinement, seed guarantee."""

import numpy as np
import pytest

from overcloud_migrate.planner import model
from overcloud_migrate.planner import partition
from overcloud_migrate.planner import problem as problem_mod
from overcloud_migrate.planner import seed
from tests.unit.planner import workloads


def problem(edges, n=6, host_count=2, host_vcpus=8, servers=None):
    return problem_mod.Problem(
        servers or workloads.servers(n),
        workloads.hosts(host_count, vcpus=host_vcpus),
        workloads.traffic(edges))


def test_two_three_tier_apps_known_cut():
    p = problem(workloads.TWO_APPS, host_vcpus=6)
    assignment, units, notes = partition.plan(p)
    assert sorted(units) == [[0, 1, 2], [3, 4, 5]]
    assert p.cut(assignment) == 5
    assert assignment[0] == assignment[1] == assignment[2]
    assert assignment[3] == assignment[4] == assignment[5]
    assert notes == []


def test_room_for_everything_on_one_host_cuts_nothing():
    p = problem(workloads.TWO_APPS, host_vcpus=12)
    assignment, _units, _notes = partition.plan(p)
    assert p.cut(assignment) == 0


def test_capacity_overflow_forces_the_cheapest_split():
    # One 4-VM chain 0-1-2-3 (weights 9, 1, 9) on hosts holding 2 VMs:
    # the only good split cuts the weak middle link.
    edges = {(0, 1): 9, (1, 2): 1, (2, 3): 9}
    p = problem(edges, n=4, host_vcpus=4)
    assignment, units, _notes = partition.plan(p)
    assert p.cut(assignment) == 1
    assert assignment[0] == assignment[1] != assignment[2] == assignment[3]


def test_star_beats_the_seed():
    edges = {(0, 1): 10, (0, 2): 10, (0, 3): 10, (4, 5): 10}
    p = problem(edges, host_vcpus=6)
    assignment, _units, _notes = partition.plan(p)
    assert p.cut(assignment) == 10
    seed_assignment, _ = seed.plan(p)
    assert p.cut(seed_assignment) == 30


def test_isolated_vm_is_its_own_unit():
    edges = {(0, 1): 5, (1, 2): 5}
    p = problem(edges, n=4)
    assignment, units, _notes = partition.plan(p)
    assert [3] in units
    assert p.cut(assignment) == 0


def test_empty_traffic_places_everyone():
    p = problem({}, n=5, host_count=3, host_vcpus=4)
    assignment, units, _notes = partition.plan(p)
    assert units == [[i] for i in range(5)]
    loads = np.bincount(assignment, minlength=3) * 2
    assert (loads <= 4).all() and p.cut(assignment) == 0


def test_refine_moves_a_server_to_its_peers():
    p = problem(workloads.TWO_APPS, host_vcpus=6)
    # vm2 misplaced with the other app, one slot free on host 0.
    start = np.array([0, 0, 1, 1, 1, 1])
    p2 = problem_mod.Problem(workloads.servers(6),
                             [model.Host('a', 6, 16384, 200),
                              model.Host('b', 8, 16384, 200)],
                             workloads.traffic(workloads.TWO_APPS))
    assert p.cut(start) == 80
    better = partition.refine(p2, start)
    assert better.tolist() == [0, 0, 0, 1, 1, 1]


def test_fragmentation_that_defeats_both_planners_is_an_error():
    servers = workloads.servers(3, vcpus=4)
    hosts = [model.Host('a', 6, 16384, 200), model.Host('b', 6, 16384, 200)]
    p = problem_mod.Problem(servers, hosts, {})
    with pytest.raises(model.CapacityError, match='No destination host'):
        partition.plan(p)


@pytest.mark.parametrize('random_seed', range(12))
def test_never_cuts_more_than_the_seed(random_seed):
    rng = np.random.default_rng(random_seed)
    n = 30
    edges = {}
    for _ in range(80):
        a, b = rng.integers(0, n, size=2)
        if a != b:
            edges[(int(a), int(b))] = float(rng.integers(1, 100))
    servers = [model.ServerInfo(f'id{i}', f'vm{i}', (),
                                int(rng.integers(1, 4)), 1024, 10)
               for i in range(n)]
    p = problem_mod.Problem(servers, workloads.hosts(6, vcpus=12),
                            workloads.traffic(edges))
    assignment, _units, _notes = partition.plan(p)
    try:
        seed_assignment, _ = seed.plan(p)
    except model.CapacityError:
        return
    assert p.cut(assignment) <= p.cut(seed_assignment) + 1e-9
    load = np.zeros((6, 3))
    np.add.at(load, assignment, p.demand)
    assert (load <= p.capacity).all()
