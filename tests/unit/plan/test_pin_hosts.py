"""--pin-hosts: the planner's placement, mapped to hosts and prechecked.

The destination is a small in-memory fake of the few Compute and Placement
calls the code makes (services, hypervisors, flavors, resource providers),
built from openstacksdk's own resource classes.
"""

import types

from openstack.compute.v2 import flavor as sdk_flavor
from openstack.compute.v2 import hypervisor as sdk_hypervisor
from openstack.compute.v2 import service as sdk_service
import pytest

from overcloud_migrate.plan import cloud_inputs
from overcloud_migrate.plan import model
from overcloud_migrate.plan import ordering
from overcloud_migrate.plan import prechecks
from overcloud_migrate.planner import capacity
from overcloud_migrate.planner import model as planner_model


class FakeCompute:
    def __init__(self, services, hypervisors, flavors, max_version='2.96'):
        self._services = services
        self._hypervisors = hypervisors
        self._flavors = flavors
        self._max = max_version

    def services(self):
        return list(self._services)

    def hypervisors(self, details=False):
        assert details
        return list(self._hypervisors)

    def find_flavor(self, name, ignore_missing=True):
        return self._flavors.get(name)

    def get_endpoint_data(self):
        return types.SimpleNamespace(max_microversion=self._max)


class FakePlacement:
    """Providers as {name: (inventories, usages)}."""

    def __init__(self, providers):
        self._providers = providers

    def resource_providers(self):
        return [types.SimpleNamespace(name=n) for n in self._providers]

    def resource_provider_inventories(self, rp):
        inventories, _usages = self._providers[rp.name]
        return [types.SimpleNamespace(resource_class=rc, total=total,
                                      reserved=0, allocation_ratio=1.0)
                for rc, total in inventories.items()]

    def fetch_resource_provider_usages(self, rp):
        return types.SimpleNamespace(usages=self._providers[rp.name][1])


def destination(hosts, max_version='2.96'):
    """hosts: {name: (state, status, (vcpus, ram, disk), used vcpus)}."""
    services, hypervisors, providers = [], [], {}
    for name, (state, status, size, used) in hosts.items():
        services.append(sdk_service.Service(binary='nova-compute', host=name,
                                            state=state, status=status))
        node = name + '.example.org'   # node names differ from host names
        hypervisors.append(sdk_hypervisor.Hypervisor(
            name=node, service_details={'host': name, 'id': 1}))
        providers[node] = ({'VCPU': size[0], 'MEMORY_MB': size[1],
                            'DISK_GB': size[2]}, {'VCPU': used})
    services.append(sdk_service.Service(binary='nova-scheduler',
                                        host='control', state='up',
                                        status='enabled'))
    tiny = sdk_flavor.Flavor(name='m1.tiny', vcpus=1, ram=512, disk=1,
                             ephemeral=0)
    return types.SimpleNamespace(
        compute=FakeCompute(services, hypervisors, {'m1.tiny': tiny},
                            max_version),
        placement=FakePlacement(providers))


def three_servers():
    return model.Plan(
        flavors=[model.Flavor(id='f1', name='m1.tiny', vcpus=1, ram=512,
                              disk=1)],
        servers=[model.Server(id='v%d' % i, name=name, flavor_id='f1')
                 for i, name in enumerate(('web', 'app', 'db'), 1)])


def check(plan, dest, admin=True, migrated=()):
    checks = prechecks.Prechecks(plan, dest, journal=None, source_key='s',
                                 dest_key='d', admin=admin,
                                 migrated=migrated)
    checks.dest_hosts()
    return checks.problems


UP = ('up', 'enabled')


# -- the mapping: Placement nodes -> compute hosts -> servers ---------------

def test_nodes_are_renamed_to_their_compute_hosts():
    dest = destination({'c1': UP + ((4, 4096, 40), 0),
                        'c2': UP + ((2, 2048, 20), 1)})
    hosts = cloud_inputs.compute_hosts(dest)
    assert sorted(hosts) == ['c1', 'c2']
    assert hosts['c1'].nodes == ('c1.example.org',)
    assert cloud_inputs.node_host_names(hosts) == {
        'c1.example.org': 'c1', 'c2.example.org': 'c2'}
    free = cloud_inputs.placement_hosts(dest)
    assert free == [planner_model.Host('c1', 4, 4096, 40),
                    planner_model.Host('c2', 1, 2048, 20)]


def test_a_host_with_many_nodes_keeps_the_node_names():
    hosts = {'ironic': cloud_inputs.ComputeHost('ironic',
                                                nodes=('n1', 'n2')),
             'kvm': cloud_inputs.ComputeHost('kvm', nodes=('kvm.lan',))}
    assert cloud_inputs.node_host_names(hosts) == {'kvm.lan': 'kvm'}


def test_free_on_sums_nodes_and_unlimited_wins():
    hosts = [planner_model.Host('a', 2, 100, None),
             planner_model.Host('b', 3, 50, 7),
             planner_model.Host('c', 1, 1, 1)]
    assert capacity.free_on(hosts, {'a', 'b'}) == planner_model.Host(
        'a', 5, 150, None)
    assert capacity.free_on(hosts, {'z'}) is None


def test_the_planners_groups_become_dest_hosts():
    """Placement of groups -> hosts is written into each server."""
    servers = [planner_model.ServerInfo('v%d' % i, n, vcpus=1, ram_mb=512,
                                        disk_gb=1)
               for i, n in enumerate(('web', 'app', 'db'), 1)]
    hosts = [planner_model.Host('c1', 2, 1024, 2),
             planner_model.Host('c2', 1, 512, 1)]
    from overcloud_migrate import planner
    result = planner.plan_dependencies(
        servers, hosts, {planner_model.pair('v1', 'v2'): 1000.0})
    plan = three_servers()
    plan.order = result.to_dict()
    plan.apply_order()
    plan.pin_hosts(result.host_of())
    pinned = plan.dest_hosts()
    # web and app talk: one host (the one with room for two); db alone.
    assert pinned['v1'] == pinned['v2'] == 'c1'
    assert pinned['v3'] == 'c2'
    # The same mapping read back from the order of a plan file.
    assert ordering.hosts_from_order(plan.order) == pinned
    assert ordering.describe_hosts(plan) in (
        'web, app -> c1 | db -> c2', 'app, web -> c1 | db -> c2',
        'db -> c2 | web, app -> c1', 'db -> c2 | app, web -> c1')


def test_hosts_from_an_order_without_hosts_are_none():
    order = {'waves': [{'index': 1, 'groups': [{'server_ids': ['v1'],
                                                'host': None}]}]}
    assert ordering.hosts_from_order(order) == {'v1': None}


# -- prechecks ---------------------------------------------------------------

def test_pinned_servers_that_fit_pass():
    dest = destination({'c1': UP + ((2, 2048, 20), 0),
                        'c2': UP + ((1, 512, 1), 0)})
    plan = three_servers()
    plan.pin_hosts({'v1': 'c1', 'v2': 'c1', 'v3': 'c2'})
    assert check(plan, dest) == []


def test_unpinned_plans_ask_nothing_of_the_destination():
    assert check(three_servers(), types.SimpleNamespace()) == []


@pytest.mark.parametrize('hosts,pins,expected', [
    ({'c1': UP + ((4, 4096, 40), 0)}, {'v3': 'nowhere'},
     [('db', "destination host 'nowhere' is not a compute host of the "
             'destination (known: c1)')]),
    ({'c1': ('down', 'enabled', (4, 4096, 40), 0)}, {'v1': 'c1'},
     [('web', "destination host 'c1' is down")]),
    ({'c1': ('up', 'disabled', (4, 4096, 40), 0)}, {'v2': 'c1'},
     [('app', "destination host 'c1' is disabled")]),
])
def test_a_bad_host_is_named_with_its_server(hosts, pins, expected):
    plan = three_servers()
    plan.pin_hosts({s.id: pins.get(s.id) for s in plan.servers})
    problems = check(plan, destination(hosts))
    assert [(p.name, p.problem) for p in problems] == expected


def test_a_full_host_names_every_server_planned_there():
    # c1 has 2 vCPU, 1 of them used: web and app (1 vCPU each) do not fit.
    dest = destination({'c1': UP + ((2, 4096, 40), 1)})
    plan = three_servers()
    plan.pin_hosts({'v1': 'c1', 'v2': 'c1', 'v3': None})
    problems = check(plan, dest)
    assert [(p.name, p.source_id) for p in problems] == [('web', 'v1'),
                                                         ('app', 'v2')]
    assert problems[0].problem == (
        "destination host 'c1' lacks capacity: web, app planned there need "
        '2 vCPU, 1024 MB RAM, 2 GB disk; 1 vCPU, 4096 MB RAM, 40 GB disk '
        'free')


def test_servers_already_migrated_need_no_room():
    dest = destination({'c1': UP + ((2, 4096, 40), 1)})
    plan = three_servers()
    plan.pin_hosts({'v1': 'c1', 'v2': 'c1', 'v3': None})
    assert check(plan, dest, migrated={'v1'}) == []


def test_pinning_needs_admin_in_one_problem():
    plan = three_servers()
    plan.pin_hosts({'v1': 'c1', 'v2': 'c1', 'v3': 'c2'})
    problems = check(plan, types.SimpleNamespace(), admin=False)
    assert len(problems) == 1
    assert problems[0].name == 'web, app, db'
    assert problems[0].problem == prechecks.PIN_NEEDS_ADMIN


def test_pinning_needs_microversion_2_74():
    dest = destination({'c1': UP + ((4, 4096, 40), 0)}, max_version='2.60')
    plan = three_servers()
    plan.pin_hosts({'v1': 'c1', 'v2': None, 'v3': None})
    [problem] = check(plan, dest)
    assert 'microversion 2.60' in problem.problem
    assert 'needs 2.74' in problem.problem
