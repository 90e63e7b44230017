import json

import pytest

from overcloud_migrate.plan import model


def sample():
    return model.Plan(
        source=model.CloudRef(name='a', auth_url='http://x', project='p'),
        networks=[model.Network(id='n1', name='web', mtu=1400)],
        subnets=[model.Subnet(id='s1', name='web', network_id='n1',
                              cidr='10.0.0.0/24', gateway_ip='10.0.0.1')],
        security_groups=[model.SecurityGroup(id='g1', name='web', rules=[
            model.SecurityGroupRule(direction='ingress', protocol='tcp',
                                    port_range_min=80, port_range_max=80,
                                    remote_group_id='g1')])],
        flavors=[model.Flavor(id='m1.tiny', name='m1.tiny', vcpus=1, ram=512,
                              disk=1, extra_specs={'hw:cpu_policy': 'shared'})],
        ports=[model.Port(id='p1', network_id='n1', mac_address='fa:16:3e:00',
                          fixed_ips=[model.FixedIP('s1', '10.0.0.5')])],
        servers=[model.Server(id='v1', name='web', flavor_id='m1.tiny',
                              image_id='i1', port_ids=['p1'],
                              metadata={'tier': 'web'})])


@pytest.mark.parametrize('suffix', ['.yaml', '.json'])
def test_plan_round_trips_through_a_file(tmp_path, suffix):
    plan = sample()
    path = tmp_path / ('plan' + suffix)
    plan.dump(path)
    assert model.Plan.load(path) == plan
    if suffix == '.json':
        assert json.loads(path.read_text())['version'] == model.PLAN_VERSION


def test_dump_replaces_a_plan_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'plan.yaml'
    path.write_text('an older plan')
    sample().dump(path)
    assert model.Plan.load(path) == sample()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['plan.yaml']


def test_dump_into_a_missing_directory_names_the_file(tmp_path):
    path = tmp_path / 'nowhere' / 'plan.json'
    with pytest.raises(model.PlanError) as caught:
        sample().dump(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize('edit,message', [
    (lambda d: d.update(version=2), 'plan.version'),
    (lambda d: d['networks'][0].update(mtu='big'),
     "plan.networks[0].mtu: expected an integer, got 'big'"),
    (lambda d: d['networks'][0].update(shared='yes'),
     'plan.networks[0].shared: expected true or false'),
    (lambda d: d['servers'][0].pop('flavor_id'),
     'plan.servers[0].flavor_id: required field missing'),
    (lambda d: d['ports'][0]['fixed_ips'][0].update(subnet_id='s9'),
     'plan.ports[0].fixed_ips[0].subnet_id: subnet s9 is not in the plan'),
    (lambda d: d['security_groups'][0]['rules'][0].update(
        remote_group_id='g9'), 'remote_group_id: group g9 is not in the plan'),
    (lambda d: d['servers'][0].update(port_ids=['p9']),
     'plan.servers[0].port_ids: port p9 is not in the plan'),
    (lambda d: d['servers'][0].update(boot_source='floppy'),
     "'image' or 'volume'"),
    (lambda d: d.update(routers='none'), 'plan.routers: expected a list'),
    (lambda d: d['subnets'].append(7), 'plan.subnets[1]: expected a mapping'),
])
def test_bad_plans_name_the_field(edit, message):
    data = sample().to_dict()
    edit(data)
    with pytest.raises(model.PlanError) as caught:
        model.Plan.from_dict(data)
    assert message in str(caught.value)


def test_load_reports_syntax_errors_with_the_file(tmp_path):
    path = tmp_path / 'bad.json'
    path.write_text('{"servers": [')
    with pytest.raises(model.PlanError, match='bad.json is not valid JSON'):
        model.Plan.load(path)
    with pytest.raises(model.PlanError, match='Cannot read the plan file'):
        model.Plan.load(tmp_path / 'absent.yaml')


def test_external_networks_come_from_routers_and_floating_ips():
    plan = sample()
    plan.routers.append(model.Router(id='r1', name='r',
                                     external_network_id='ext1'))
    plan.floating_ips.append(model.FloatingIP(
        id='f1', floating_ip_address='172.24.4.10',
        floating_network_id='ext2'))
    assert plan.external_network_ids() == ['ext1', 'ext2']


def test_rule_signature_uses_the_mapped_remote_group():
    rule = model.SecurityGroupRule(direction='ingress', protocol='TCP',
                                   remote_group_id='src-group')
    assert rule.signature()[-1] == 'src-group'
    assert rule.signature(remote_group='dest-group')[-1] == 'dest-group'
    assert rule.signature()[2] == 'tcp'


# -- dest_host: the destination compute host of a server --------------------

def test_dest_host_round_trips_and_defaults_to_none(tmp_path):
    plan = sample()
    assert plan.servers[0].dest_host is None
    assert plan.dest_hosts() == {}
    plan.servers[0].dest_host = 'compute-2'
    path = tmp_path / 'plan.yaml'
    plan.dump(path)
    loaded = model.Plan.load(path)
    assert loaded.servers[0].dest_host == 'compute-2'
    assert loaded.dest_hosts() == {'v1': 'compute-2'}


@pytest.mark.parametrize('value,message', [
    (7, 'plan.servers[0].dest_host: expected a string, got 7'),
    ('', "plan.servers[0].dest_host: expected a compute host name"),
    ('two words', "got 'two words'"),
    (' compute-1', "got ' compute-1'"),
    ('x' * 256, 'at most 255 characters'),
])
def test_a_bad_dest_host_names_its_path(value, message):
    data = sample().to_dict()
    data['servers'][0]['dest_host'] = value
    with pytest.raises(model.PlanError) as caught:
        model.Plan.from_dict(data)
    assert message in str(caught.value)


def test_a_bad_dest_host_in_a_file_names_the_file(tmp_path):
    data = sample().to_dict()
    data['servers'][0]['dest_host'] = 'no such\thost'
    path = tmp_path / 'plan.json'
    path.write_text(json.dumps(data))
    with pytest.raises(model.PlanError,
                       match=r'plan.json is invalid: plan.servers\[0\]'
                             r'.dest_host'):
        model.Plan.load(path)


def test_pin_hosts_sets_and_clears_every_server():
    plan = sample()
    plan.servers.append(model.Server(id='v2', name='db',
                                     flavor_id='m1.tiny'))
    plan.pin_hosts({'v1': 'compute-1', 'v2': 'compute-2'})
    assert plan.dest_hosts() == {'v1': 'compute-1', 'v2': 'compute-2'}
    plan.pin_hosts({'v1': None, 'v2': None})
    assert plan.dest_hosts() == {}


def test_pin_hosts_refuses_a_partial_or_bad_mapping():
    plan = sample()
    with pytest.raises(model.PlanError, match='no destination host is '
                                              'planned for web'):
        plan.pin_hosts({})
    with pytest.raises(model.PlanError,
                       match=r'plan.servers\[0\].dest_host'):
        plan.pin_hosts({'v1': 'bad host'})
    assert plan.servers[0].dest_host is None


def test_the_order_is_read_once_into_typed_groups():
    plan = sample()
    plan.order = {'algorithm': 'default', 'waves': [
        {'index': 1, 'groups': [{'server_ids': ['v1'], 'host': 'h1',
                                 'vcpus': 1}]}]}
    assert plan.order_waves() == [[model.OrderGroup(('v1',), 'h1')]]
    assert plan.waves() == [['v1']]
    assert model.parse_order({}) == []


def test_a_damaged_order_names_its_path():
    with pytest.raises(model.PlanError,
                       match=r'plan.order.waves\[0\].groups\[0\].server_ids'):
        model.parse_order({'waves': [{'groups': [{'server_ids': 'v1'}]}]})
