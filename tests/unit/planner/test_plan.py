"""plan_dependencies: the entry point used by the commands."""

import pytest

from overcloud_migrate import planner
from overcloud_migrate.planner import model
from tests.unit.planner import workloads


def test_two_apps_waves_groups_hosts_and_totals():
    servers = workloads.servers(7)  # vm6 talks to nobody
    plan = planner.plan_dependencies(servers, workloads.hosts(3, vcpus=6),
                                     workloads.traffic(workloads.TWO_APPS))
    assert plan.server_order() == [['id0', 'id1', 'id2'],
                                   ['id3', 'id4', 'id5'], ['id6']]
    assert plan.traffic_total == 295
    assert plan.traffic_cut == 5 and plan.traffic_inside == 290
    first, second, third = plan.groups
    assert (first.traffic_inside, first.traffic_cut) == (180, 5)
    assert (second.traffic_inside, second.traffic_cut) == (110, 5)
    assert (first.vcpus, first.ram_mb, first.disk_gb) == (6, 6144, 60)
    hosts = plan.host_of()
    assert len({hosts['id0'], hosts['id3'], hosts['id6']}) == 3
    assert not plan.estimate and plan.notes == []
    data = plan.to_dict()
    assert data['waves'][0]['groups'][0]['server_ids'] == ['id0', 'id1',
                                                           'id2']


def test_seed_algorithm_gives_its_own_plan():
    plan = planner.plan_dependencies(
        workloads.servers(6), workloads.hosts(2, vcpus=6),
        workloads.traffic(workloads.TWO_APPS), algorithm='seed')
    assert plan.algorithm == 'seed'
    assert sorted(len(w.server_ids) for w in plan.waves) == [3, 3]


def test_split_app_stays_in_one_wave_over_two_hosts():
    # A 4-VM app on hosts that hold 3 VMs: one wave, two groups.
    edges = {(0, 1): 9, (1, 2): 9, (2, 3): 1}
    plan = planner.plan_dependencies(workloads.servers(4),
                                     workloads.hosts(2, vcpus=6),
                                     workloads.traffic(edges))
    assert len(plan.waves) == 1
    assert [sorted(g.server_ids) for g in plan.groups] == [
        ['id0', 'id1', 'id2'], ['id3']]
    assert plan.traffic_cut == 1


def test_estimate_and_no_traffic_are_said():
    servers = workloads.servers(2)
    plan = planner.plan_dependencies(servers, workloads.hosts(1), {},
                                     basis=model.BASIS_ESTIMATE)
    assert plan.estimate and 'ESTIMATE' in plan.notes[0]
    plan = planner.plan_dependencies(servers, workloads.hosts(1), {})
    assert plan.basis == model.BASIS_NONE
    assert 'No traffic' in plan.notes[0]
    assert plan.server_order() == [['id0', 'id1']]


def test_no_servers_and_bad_arguments():
    plan = planner.plan_dependencies([], workloads.hosts(1), {})
    assert plan.waves == [] and plan.traffic_cut == 0
    with pytest.raises(model.PlannerError, match='Unknown algorithm'):
        planner.plan_dependencies([], workloads.hosts(1), {},
                                  algorithm='magic')
    with pytest.raises(model.CapacityError, match='No destination hosts'):
        planner.plan_dependencies(workloads.servers(1), [], {})


def test_demand_above_capacity_is_refused_before_planning():
    with pytest.raises(model.CapacityError, match='8 short'):
        planner.plan_dependencies(workloads.servers(8),
                                  workloads.hosts(1, vcpus=8), {})
