"""`openstack overcloud migrate`, part 1, on devcloud: plan, prechecks and
an exact, idempotent copy of the 3-tier project's network world.

The real ``openstack`` command runs as a subprocess, as an operator would
run it.  Tests run in file order: refusals that need an empty destination
first, then the replication, then what depends on it.
"""

import json
import os
import uuid

import pytest
import yaml

from tests.functional import helpers

#: about how long this module takes on CI, in seconds (tests/conftest.py
#: hands the long ones out first)
SECONDS = 800
PREFIX = 'mn'
SERVERS = helpers.servers_of(PREFIX)
#: sets the destination's quotas and compares everything in the project
#: before and after: in a project of its own (tests/functional/conftest.py),
#: beside the other modules
PROJECT = 'om-test-mn'
inventory = helpers.inventory


@pytest.fixture(scope='module')
def journal_url(tmp_path_factory):
    return helpers.journal_url(tmp_path_factory.mktemp('journal') /
                               'journal.sqlite')


def migrate(journal_url, *args, cloud='devcloud-a', env=None):
    """Run the real command; returns (exit code, stdout, stderr)."""
    return helpers.overcloud('migrate', *args, journal=journal_url,
                             cloud=cloud, env=env, timeout=600)


def rollback_all(journal_url):
    """Roll back every migration in the journal, newest first."""
    code, out, err = helpers.overcloud('migration', 'list', '-f', 'json',
                                       journal=journal_url, timeout=600)
    assert code == 0, err
    migrations = sorted(json.loads(out), key=lambda m: m['Created'],
                        reverse=True)
    for migration in migrations:
        code, _out, err = helpers.overcloud(
            'migration', 'rollback', migration['ID'], journal=journal_url,
            timeout=600)
        assert code == 0, err
    return len(migrations)


def rows_of(stdout):
    return json.loads(stdout)


def assert_refused(result, *fragments):
    code, _out, err = result
    assert code != 0, err
    assert 'Traceback' not in err, err
    for fragment in fragments:
        assert fragment in err, err


# -- before anything is replicated -------------------------------------------

def test_dry_run_prints_the_plan_and_changes_nothing(clouds, journal_url):
    _src, dst, _project = clouds
    before = inventory(dst)
    code, out, err = migrate(journal_url, *SERVERS, '--dest-cloud',
                             'devcloud-b', '--dry-run', '-f', 'json')
    assert code == 0, err
    rows = rows_of(out)
    assert inventory(dst) == before
    # the same columns a real run reports
    assert set(rows[0]) == {'Type', 'Name', 'Source ID', 'Action',
                            'Destination ID', 'Status', 'Bytes', 'MB/s',
                            'Downtime (s)', 'Destination Host', 'Phases'}
    assert {r['Status'] for r in rows} == {'planned'}
    created = {(r['Type'], r['Name']) for r in rows if r['Action'] == 'create'}
    assert {('network', 'mn-web-net'), ('network', 'mn-app-net'),
            ('router', 'mn-router'), ('security_group', 'mn-db-sg'),
            ('port', 'mn-web-port'), ('keypair', 'mn-key')} <= created
    assert [r['Name'] for r in rows if r['Type'] == 'server'] == SERVERS


def test_plan_file_round_trips_and_records_everything(clouds, journal_url,
                                                      tmp_path):
    _src, _dst, project = clouds
    plan_file = tmp_path / 'plan.yaml'
    code, _out, err = migrate(journal_url, *SERVERS, '--dest-cloud',
                              'devcloud-b', '--dry-run', '--plan-file',
                              str(plan_file), '-f', 'json')
    assert code == 0, err
    plan = yaml.safe_load(plan_file.read_text())
    servers = {s['name']: s for s in plan['servers']}
    web = servers['mn-web']
    assert web['metadata'] == {'tier': 'web', 'app': PREFIX}
    assert web['key_name'] == 'mn-key' and web['boot_source'] == 'image'
    ports = {p['id']: p for p in plan['ports']}
    web_port = ports[web['port_ids'][0]]
    assert web_port['fixed_ips'][0]['ip_address'] == '10.10.1.10'
    assert web_port['mac_address'] == project.ports['web'].mac_address
    assert web_port['allowed_address_pairs'][0]['ip_address'] == '10.10.1.50'
    assert plan['floating_ips'][0]['floating_ip_address'] == \
        project.floating_ip.floating_ip_address
    assert plan['flavors'][0]['name'] == 'm1.tiny'
    assert plan['images'][0]['disk_format'] == 'raw'
    assert len(plan['security_groups']) == 3
    router = plan['routers'][0]
    assert router['routes'] == [{'destination': '203.0.113.0/24',
                                 'nexthop': '10.10.2.254'}]
    assert sorted(i['ip_address'] for i in router['interfaces']) == \
        ['10.10.1.1', '10.10.2.1']
    # The same plan applied with --from-plan plans the same rows.
    code, out, err = migrate(journal_url, '--from-plan', str(plan_file),
                             '--dest-cloud', 'devcloud-b', '--dry-run',
                             '-f', 'json')
    assert code == 0, err
    assert len(rows_of(out)) > 20


def test_cidr_overlap_and_name_collision_are_reported_together(
        clouds, journal_url):
    _src, dst, _project = clouds
    squat_net = dst.network.create_network(name='mn-squat-net')
    try:
        dst.network.create_subnet(network_id=squat_net.id, ip_version=4,
                                  cidr='10.10.1.128/25')
        squat_sg = dst.network.create_security_group(name='mn-web-sg')
        try:
            before = inventory(dst)
            result = migrate(journal_url, *SERVERS, '--dest-cloud',
                             'devcloud-b')
            assert_refused(result, 'prechecks failed', 'nothing was changed',
                           'CIDR 10.10.1.0/24 overlaps 10.10.1.128/25',
                           'a security group with this name already exists')
            assert inventory(dst) == before
        finally:
            dst.network.delete_security_group(squat_sg)
    finally:
        for subnet in dst.network.subnets(network_id=squat_net.id):
            dst.network.delete_subnet(subnet)
        dst.network.delete_network(squat_net)


def test_short_quota_is_reported_with_the_numbers(clouds, journal_url):
    _src, dst, _project = clouds
    project_id = dst.current_project_id
    dst.set_compute_quotas(project_id, instances=1)
    try:
        before = inventory(dst)
        result = migrate(journal_url, *SERVERS, '--dest-cloud', 'devcloud-b')
        assert_refused(result, 'instances', 'needs 3 more, but only 1 of 1')
        assert inventory(dst) == before
    finally:
        dst.delete_compute_quotas(project_id)


@pytest.mark.parametrize('dest_cloud', ['devcloud-b-member', 'devcloud-b'])
def test_a_flavor_map_to_a_missing_flavor_is_refused(clouds, journal_url,
                                                     dest_cloud):
    """A typo in --flavor-map never makes a flavor, admin or not."""
    _src, dst, _project = clouds
    before = inventory(dst)
    result = migrate(journal_url, *SERVERS, '--dest-cloud', dest_cloud,
                     '--flavor-map', 'm1.tiny=noflavor',
                     cloud='devcloud-a-member'
                     if dest_cloud.endswith('-member') else 'devcloud-a')
    assert_refused(result, "is mapped to 'noflavor', which does not exist "
                   'at the destination')
    assert dst.compute.find_flavor('noflavor', ignore_missing=True) is None
    assert inventory(dst) == before


# -- bad input: each refused with a clear sentence, nothing changed ----------

def _plan(journal_url, tmp_path, name='plan.yaml'):
    plan_file = tmp_path / name
    code, _out, err = migrate(journal_url, *SERVERS, '--dest-cloud',
                              'devcloud-b', '--dry-run', '--plan-file',
                              str(plan_file))
    assert code == 0, err
    return plan_file, yaml.safe_load(plan_file.read_text())


def _bad_clouds_yaml(tmp_path):
    """A clouds.yaml with a wrong password and an unreachable cloud."""
    real = yaml.safe_load(open(os.environ['OS_CLIENT_CONFIG_FILE']))
    clouds = dict(real['clouds'])
    wrong = json.loads(json.dumps(clouds['devcloud-b']))
    wrong['auth']['password'] = 'not-the-password'
    gone = json.loads(json.dumps(clouds['devcloud-b']))
    gone['auth']['auth_url'] = 'http://127.0.0.1:9/v3'
    clouds.update({'wrong-password': wrong, 'unreachable': gone})
    path = tmp_path / 'clouds.yaml'
    path.write_text(yaml.safe_dump({'clouds': clouds}))
    return {'OS_CLIENT_CONFIG_FILE': str(path)}


BAD_INPUTS = [
    ('unknown server', lambda j, t: migrate(
        j, 'mn-nope', '--dest-cloud', 'devcloud-b'),
     ["No server with the name or ID 'mn-nope'"]),
    ('unknown destination cloud', lambda j, t: migrate(
        j, *SERVERS, '--dest-cloud', 'nowhere'),
     ["destination cloud 'nowhere'"]),
    ('no destination cloud', lambda j, t: migrate(j, *SERVERS),
     ['--dest-cloud']),
    ('same cloud twice', lambda j, t: migrate(
        j, *SERVERS, '--dest-cloud', 'devcloud-a'),
     ['same cloud, project and region']),
    ('wrong password', lambda j, t: migrate(
        j, *SERVERS, '--dest-cloud', 'wrong-password',
        env=_bad_clouds_yaml(t)),
     ["cloud 'wrong-password'", 'refused the credentials']),
    ('unreachable destination', lambda j, t: migrate(
        j, *SERVERS, '--dest-cloud', 'unreachable', env=_bad_clouds_yaml(t)),
     ["cloud 'unreachable' (http://127.0.0.1:9/v3)", 'cannot be reached']),
    ('nothing named', lambda j, t: migrate(j, '--dest-cloud', 'devcloud-b'),
     ['Name at least one server']),
    ('plan and servers', lambda j, t: migrate(
        j, 'mn-web', '--from-plan', 'x.yaml', '--dest-cloud', 'devcloud-b'),
     ['not both']),
    ('bad map syntax', lambda j, t: migrate(
        j, *SERVERS, '--dest-cloud', 'devcloud-b', '--network-map', 'oops'),
     ["expected SOURCE=DESTINATION, got 'oops'"]),
    ('missing plan file', lambda j, t: migrate(
        j, '--from-plan', str(t / 'absent.yaml'), '--dest-cloud',
        'devcloud-b'),
     ['Cannot read the plan file']),
    ('mapped network missing', lambda j, t: migrate(
        j, *SERVERS, '--dest-cloud', 'devcloud-b', '--network-map',
        'mn-web-net=no-such-net'),
     ["mapped to 'no-such-net', which does not exist"]),
    ('external network missing', lambda j, t: migrate(
        j, *SERVERS, '--dest-cloud', 'devcloud-b', '--external-network',
        'no-such-ext'),
     ['no-such-ext', 'not an external network']),
]


@pytest.mark.parametrize('name,run,fragments', BAD_INPUTS,
                         ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_refused_and_changes_nothing(clouds, journal_url,
                                                  tmp_path, name, run,
                                                  fragments):
    _src, dst, _project = clouds
    before = inventory(dst)
    assert_refused(run(journal_url, tmp_path), *fragments)
    assert inventory(dst) == before


def _edited_plan_refused(clouds, journal_url, tmp_path, edit, *fragments):
    _src, dst, _project = clouds
    plan_file, plan = _plan(journal_url, tmp_path)
    edit(plan)
    plan_file.write_text(yaml.safe_dump(plan))
    before = inventory(dst)
    assert_refused(migrate(journal_url, '--from-plan', str(plan_file),
                           '--dest-cloud', 'devcloud-b'), *fragments)
    assert inventory(dst) == before


def test_plan_with_syntax_error(clouds, journal_url, tmp_path):
    plan_file = tmp_path / 'broken.yaml'
    plan_file.write_text('servers: [unclosed\n')
    assert_refused(migrate(journal_url, '--from-plan', str(plan_file),
                           '--dest-cloud', 'devcloud-b'),
                   'is not valid YAML')


def test_plan_with_unknown_field(clouds, journal_url, tmp_path):
    _edited_plan_refused(
        clouds, journal_url, tmp_path,
        lambda p: p['networks'][0].update(colour='blue'),
        'plan.networks[0]: unknown field(s) colour')


def test_plan_with_wrong_type(clouds, journal_url, tmp_path):
    _edited_plan_refused(
        clouds, journal_url, tmp_path,
        lambda p: p['flavors'][0].update(vcpus='many'),
        "plan.flavors[0].vcpus: expected an integer, got 'many'")


def test_plan_with_dangling_reference(clouds, journal_url, tmp_path):
    _edited_plan_refused(
        clouds, journal_url, tmp_path,
        lambda p: p['subnets'][0].update(network_id='not-a-network'),
        'plan.subnets[0].network_id: network not-a-network is not in the plan')


def test_plan_for_a_server_that_no_longer_exists(clouds, journal_url,
                                                 tmp_path):
    _edited_plan_refused(
        clouds, journal_url, tmp_path,
        lambda p: p['servers'][0].update(id=str(uuid.uuid4())),
        'no longer exists in the source cloud')


def test_a_volume_backed_server_without_its_boot_volume_is_refused(
        clouds, journal_url, tmp_path):
    _edited_plan_refused(
        clouds, journal_url, tmp_path,
        lambda p: p['servers'][1].update(boot_source='volume'),
        "plan.servers[1].volumes: a server with boot_source 'volume' needs "
        'a volume with boot_index 0')


# -- the replication -----------------------------------------------------------

def _by_name(items):
    return {i.name: i for i in items}


@pytest.mark.parametrize('kind', ['network', 'port'])
def test_a_crash_right_after_a_create_duplicates_nothing(clouds, tmp_path,
                                                         kind):
    """Killed between Neutron's create and the journal: the next run adopts
    the resource that create made instead of making a second one."""
    src, dst, project = clouds
    journal = helpers.journal_url(tmp_path / 'crash.sqlite')
    before = inventory(dst)
    code, _out, err = migrate(
        journal, *SERVERS, '--dest-cloud', 'devcloud-b', '--network-only',
        env={'OVERCLOUD_MIGRATE_FAULT': 'kill:after:create:%s' % kind})
    assert code == 137, err
    listed = getattr(dst.network, kind + 's')

    def lister():                      # the module's project's
        return listed(project_id=dst.current_project_id)

    def own():                         # not router gateway/interface ports
        return {r.id for r in lister()
                if not getattr(r, 'device_owner', None)}
    made = own() - set(before[kind + 's'])
    assert len(made) == 1              # it died right after that create

    code, out, err = migrate(journal, *SERVERS, '--dest-cloud', 'devcloud-b',
                             '--network-only', '-f', 'json')
    assert code == 0, err
    rows = [r for r in rows_of(out) if r['Type'] == kind]
    adopted = [r for r in rows if r['Status'].startswith('adopted')]
    assert [r['Destination ID'] for r in adopted] == list(made)
    for row in rows:                   # one copy each, tagged
        copies = [r for r in lister() if 'om:src:%s' % row['Source ID']
                  in (r.tags or [])]
        assert [c.id for c in copies] == [row['Destination ID']]
    assert len(own() - set(before[kind + 's'])) == len(rows)

    assert rollback_all(journal) == 2      # the killed run and the rerun
    assert inventory(dst) == before


def test_replication_copies_every_attribute(clouds, journal_url):
    src, dst, project = clouds
    code, out, err = migrate(journal_url, *SERVERS, '--dest-cloud',
                             'devcloud-b', '-f', 'json')
    assert code == 0, err
    rows = rows_of(out)
    assert 'planned' not in {r['Status'] for r in rows}

    s_net, d_net = src.network, dst.network
    for tier in ('web', 'app'):
        source = project.networks[tier]
        dest = d_net.find_network(source.name, ignore_missing=False)
        assert (dest.mtu, dest.is_admin_state_up,
                dest.is_port_security_enabled) == \
            (source.mtu, source.is_admin_state_up,
             source.is_port_security_enabled)
        assert 'om:src:%s' % source.id in dest.tags
        s_sub = project.subnets[tier]
        d_sub = next(d_net.subnets(network_id=dest.id))
        for attr in ('cidr', 'gateway_ip', 'allocation_pools',
                     'dns_nameservers', 'host_routes', 'is_dhcp_enabled',
                     'ip_version', 'name'):
            assert getattr(d_sub, attr) == getattr(
                s_net.get_subnet(s_sub.id), attr), attr

    s_router = s_net.get_router(project.router.id)
    d_router = d_net.find_router(s_router.name, ignore_missing=False)
    public = d_net.find_network('public', ignore_missing=False)
    assert d_router.external_gateway_info['network_id'] == public.id
    assert d_router.routes == s_router.routes

    def interfaces(net, router):
        return sorted(f['ip_address'] for p in net.ports(
            device_id=router.id, device_owner='network:router_interface')
            for f in p.fixed_ips)
    assert interfaces(d_net, d_router) == interfaces(s_net, s_router)

    s_groups = {g.id: g.name for g in s_net.security_groups()}
    d_groups = {g.id: g.name for g in d_net.security_groups()}

    def rules(net, groups, name):
        group = next(g for g in net.security_groups(name=name))
        return sorted((r.direction, r.ether_type, r.protocol,
                       r.port_range_min, r.port_range_max,
                       r.remote_ip_prefix, groups.get(r.remote_group_id))
                      for r in net.security_group_rules(
                          security_group_id=group.id))
    for tier in ('web', 'app', 'db'):
        name = '%s-%s-sg' % (PREFIX, tier)
        assert rules(d_net, d_groups, name) == rules(s_net, s_groups, name)

    assert dst.compute.get_keypair('mn-key').public_key == \
        src.compute.get_keypair('mn-key').public_key

    for tier, port in project.ports.items():
        source = s_net.get_port(port.id)
        dest = d_net.find_port(source.name, ignore_missing=False)
        assert dest.mac_address == source.mac_address
        assert [f['ip_address'] for f in dest.fixed_ips] == \
            [f['ip_address'] for f in source.fixed_ips]
        assert dest.allowed_address_pairs == source.allowed_address_pairs
        assert sorted(d_groups[g] for g in dest.security_group_ids) == \
            sorted(s_groups[g] for g in source.security_group_ids)

    web_port = d_net.find_port('%s-web-port' % PREFIX, ignore_missing=False)
    fips = list(d_net.ips(port_id=web_port.id))
    assert len(fips) == 1 and fips[0].fixed_ip_address == '10.10.1.10'
    # devcloud-a and -b share the external CIDR and this is admin: kept.
    assert fips[0].floating_ip_address == \
        project.floating_ip.floating_ip_address


def test_second_run_creates_nothing(clouds, journal_url):
    _src, dst, _project = clouds
    before = inventory(dst)
    code, out, err = migrate(journal_url, *SERVERS, '--dest-cloud',
                             'devcloud-b', '-f', 'json')
    assert code == 0, err
    actions = {r['Action'] for r in rows_of(out) if r['Type'] != 'server'}
    assert actions <= {'reuse', 'map'}
    assert inventory(dst) == before


def test_a_new_journal_finds_the_copies_again_by_tag(clouds, tmp_path):
    _src, dst, _project = clouds
    before = inventory(dst)
    fresh = helpers.journal_url(tmp_path / 'other.sqlite')
    code, out, err = migrate(fresh, *SERVERS, '--dest-cloud', 'devcloud-b',
                             '-f', 'json')
    assert code == 0, err
    assert {r['Action'] for r in rows_of(out)
            if r['Type'] != 'server'} <= {'reuse', 'map'}
    assert inventory(dst) == before
