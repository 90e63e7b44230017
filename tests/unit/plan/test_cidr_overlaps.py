"""The destination subnet overlap precheck: subnets a migration made
(tagged, or on a network it made and tagged before the subnet) do not
count, so two migrations into one project at once do not refuse each
other."""

import types

from overcloud_migrate.plan import model
from overcloud_migrate.plan import prechecks
from overcloud_migrate.plan import replicate


def _plan():
    return model.Plan.from_dict({
        'networks': [{'id': 'n1', 'name': 'web-net'}],
        'subnets': [{'id': 's1', 'name': 'web-subnet', 'network_id': 'n1',
                     'cidr': '10.10.1.0/24'}]})


def _checks(subnets, networks):
    net = types.SimpleNamespace(
        subnets=lambda project_id: subnets,
        networks=lambda project_id: networks)
    checks = prechecks.Prechecks.__new__(prechecks.Prechecks)
    checks.plan, checks.problems = _plan(), []
    checks.dest = types.SimpleNamespace(network=net)
    checks.replicator = types.SimpleNamespace(
        dest_project='p', network_mapping=lambda network: None,
        find=lambda kind, source_id: None, mappings_broken=False)
    checks._mapping_broken = lambda: False
    return checks


def _subnet(name, network_id, tags=()):
    return types.SimpleNamespace(id=name + '-id', name=name,
                                 cidr='10.10.1.0/24', network_id=network_id,
                                 tags=list(tags))


def test_an_operators_overlapping_subnet_is_a_problem():
    checks = _checks([_subnet('theirs', 'n-theirs')],
                     [types.SimpleNamespace(id='n-theirs', tags=[])])
    checks.cidr_overlaps()
    assert [p.name for p in checks.problems] == ['web-subnet']
    assert 'overlaps 10.10.1.0/24 of destination subnet theirs' in \
        checks.problems[0].problem


def test_subnets_another_migration_made_or_is_making_do_not_count():
    marked = types.SimpleNamespace(id='n-other', tags=[replicate.MARK_TAG])
    checks = _checks(
        [_subnet('tagged', 'n-x', tags=[replicate.MARK_TAG]),
         # created a moment ago, its tags not set yet
         _subnet('untagged-yet', 'n-other')], [marked])
    checks.cidr_overlaps()
    assert checks.problems == []
