"""The topology estimate from security groups and networks."""

import pytest

from overcloud_migrate.planner import topology


def test_remote_group_and_network_ties():
    servers = ['web1', 'web2', 'app1', 'db1', 'lone']
    security_groups = {'web1': ['sg-web'], 'web2': ['sg-web'],
                       'app1': ['sg-app'], 'db1': ['sg-db'],
                       'lone': ['sg-lone']}
    # app admits web; db admits app.
    remote = {'sg-app': ['sg-web'], 'sg-db': ['sg-app'],
              'sg-web': ['sg-unknown']}
    networks = {'web1': ['net-front'], 'web2': ['net-front'],
                'app1': ['net-front', 'net-back'], 'db1': ['net-back'],
                'lone': ['net-other']}
    t = topology.estimate_traffic(servers, networks, security_groups, remote)
    w = topology.SECURITY_GROUP_WEIGHT
    n = topology.NETWORK_WEIGHT
    assert t[('app1', 'web1')] == pytest.approx(w / 2 + n / 2)
    assert t[('app1', 'db1')] == pytest.approx(w + n)
    assert t[('web1', 'web2')] == pytest.approx(n / 2)
    assert not any('lone' in key for key in t)


def test_self_referencing_group_is_weak_and_large_sets_tie_nobody():
    servers = [f's{i}' for i in range(5)]
    groups = {s: ['default'] for s in servers}
    t = topology.estimate_traffic(servers, {}, groups,
                                  {'default': ['default']})
    assert len(t) == 10
    assert t[('s0', 's1')] == pytest.approx(
        topology.SECURITY_GROUP_WEIGHT / 4)
    many = [f'm{i}' for i in range(topology.MAX_CLIQUE + 1)]
    assert topology.estimate_traffic(
        many, {s: ['flat'] for s in many}, {}, {}) == {}


def test_only_planned_servers_are_tied():
    t = topology.estimate_traffic(['a'], {'a': ['n'], 'b': ['n']}, {}, {})
    assert t == {}
