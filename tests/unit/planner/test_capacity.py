"""Host capacities: files, Placement data and the demand check."""

import pytest

from overcloud_migrate.planner import capacity
from overcloud_migrate.planner import model
from tests.unit.planner import workloads


def load(tmp_path, text, name='hosts.yaml'):
    path = tmp_path / name
    path.write_text(text)
    return capacity.load_host_capacity(str(path))


def test_mapping_list_and_json_forms(tmp_path):
    expected = [model.Host('c1', 8, 16384, 100), model.Host('c2', 4, 0, 50)]
    assert load(tmp_path, 'hosts:\n'
                '  c1: {vcpus: 8, ram_mb: 16384, disk_gb: 100}\n'
                '  c2: {vcpus: 4, ram_mb: 0, disk_gb: 50}\n') == expected
    assert load(tmp_path, '- {name: c1, vcpus: 8, ram_mb: 16384, '
                'disk_gb: 100}\n- {name: c2, vcpus: 4, ram_mb: 0, '
                'disk_gb: 50}\n') == expected
    assert load(tmp_path, '{"c1": {"vcpus": 8, "ram_mb": 16384, '
                '"disk_gb": 100}, "c2": {"vcpus": 4, "ram_mb": 0, '
                '"disk_gb": 50.0}}', name='h.json') == expected


@pytest.mark.parametrize('text, message', [
    ('c1: {vcpus: -2, ram_mb: 1, disk_gb: 1}', 'vcpus must be >= 0'),
    ('c1: {vcpus: 2, ram_mb: 17179869184, disk_gb: 1}',
     'ram_mb = 17179869184 is not a believable host size.*MB of RAM'),
    ('c1: {vcpus: 1000000, ram_mb: 1, disk_gb: 1}', 'not a believable'),
    ('c1: {vcpus: 2, ram_mb: 1, disk_gb: .inf}', 'disk_gb must be >= 0'),
    ('c1: {vcpus: yes, ram_mb: 1, disk_gb: 1}', 'must be a number'),
    ('c1: {vcpus: 2.5, ram_mb: 1, disk_gb: 1}', 'whole number'),
    ('c1: {vcpus: 2, ram_mb: 1}', 'missing disk_gb'),
    ('c1: {vcpus: 2, ram_mb: 1, disk_gb: 1, ram_gb: 4}',
     'unknown field\\(s\\) ram_gb'),
    ('- {name: a, vcpus: 1, ram_mb: 1, disk_gb: 1}\n'
     '- {name: a, vcpus: 1, ram_mb: 1, disk_gb: 1}', 'listed twice'),
    ('- {vcpus: 1, ram_mb: 1, disk_gb: 1}', 'host 1 has no name'),
    ('[]', 'no hosts are listed'),
    ('just text', 'expected a list of hosts'),
    ('c1: [1, 2', 'not valid YAML or JSON'),
])
def test_bad_capacities_are_refused(tmp_path, text, message):
    with pytest.raises(model.PlannerError, match=message):
        load(tmp_path, text)


def test_missing_file(tmp_path):
    with pytest.raises(model.PlannerError, match='Cannot read host capacity'):
        capacity.load_host_capacity(str(tmp_path / 'nope.yaml'))


def test_placement_free_capacity():
    providers = [
        {'name': 'cn2',
         'inventories': {
             'VCPU': {'total': 8, 'reserved': 0, 'allocation_ratio': 4.0},
             'MEMORY_MB': {'total': 16384, 'reserved': 512,
                           'allocation_ratio': 1.5},
             'DISK_GB': {'total': 100, 'reserved': 0,
                         'allocation_ratio': 1.0}},
         'usages': {'VCPU': 30, 'MEMORY_MB': 4096, 'DISK_GB': 120}},
        {'name': 'cn1',
         'inventories': {
             'VCPU': {'total': 4, 'reserved': 1, 'allocation_ratio': 1.0},
             'MEMORY_MB': {'total': 2048, 'reserved': 0,
                           'allocation_ratio': 1.0}},
         'usages': {}},
        {'name': 'cn1-pci', 'inventories': {'PCI_DEVICE': {'total': 2}}},
    ]
    hosts = capacity.hosts_from_placement(providers)
    # cn2: 8*4-30 = 2 vCPU; (16384-512)*1.5-4096 = 19712 MB; disk over-used.
    assert hosts == [model.Host('cn1', 3, 2048, None),
                     model.Host('cn2', 2, 19712, 0)]
    with pytest.raises(model.PlannerError, match='no compute node'):
        capacity.hosts_from_placement(providers[2:])


def test_demand_above_capacity_says_by_how_much():
    servers = workloads.servers(5, vcpus=4, ram_mb=4096, disk_gb=10)
    hosts = workloads.hosts(2, vcpus=8, ram_mb=65536, disk_gb=25)
    with pytest.raises(model.CapacityError) as err:
        capacity.check_demand(servers, hosts)
    message = str(err.value)
    assert '20 vCPU needed, 16 free (4 short)' in message
    assert '50 GB of disk needed, 50 free' not in message
    assert 'RAM' not in message


def test_disk_shortfall_and_unlimited_dimension():
    servers = workloads.servers(3, disk_gb=40)
    hosts = [model.Host('a', 8, 16384, 50), model.Host('b', 8, 16384, 60)]
    with pytest.raises(model.CapacityError,
                       match='120 GB of disk needed, 110 free \\(10 short'):
        capacity.check_demand(servers, hosts)
    capacity.check_demand(servers, [model.Host('a', 8, 16384, None)])


def test_server_bigger_than_every_host():
    servers = workloads.servers(1, vcpus=16)
    with pytest.raises(model.CapacityError,
                       match='vm0 .*does not fit on any single'):
        capacity.check_demand(servers, workloads.hosts(3, vcpus=8))
