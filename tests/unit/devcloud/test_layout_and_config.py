import base64
import configparser
import hashlib

import pytest

from overcloud_devcloud import bootstrap
from overcloud_devcloud import broker
from overcloud_devcloud import confgen
from overcloud_devcloud import credentials
from overcloud_devcloud import layout as layout_mod


@pytest.fixture
def layout(tmp_path):
    return layout_mod.Layout(home=tmp_path / 'bed', base_port=40000)


def test_home_and_ports_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(layout_mod.HOME_ENV, str(tmp_path / 'h'))
    monkeypatch.setenv(layout_mod.BASE_PORT_ENV, '41000')
    layout = layout_mod.Layout()
    assert layout.home == tmp_path / 'h'
    assert layout.ports.mariadb == 41000
    assert layout.url('devcloud-b', 'keystone') == 'http://127.0.0.1:41020/v3'


def test_default_home_is_the_user_data_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(layout_mod.HOME_ENV, raising=False)
    monkeypatch.setenv('XDG_DATA_HOME', str(tmp_path))
    assert layout_mod.Layout().home == tmp_path / 'overcloud-devcloud'


@pytest.mark.parametrize('value', ['abc', '80', '70000'])
def test_bad_base_port_is_refused_with_the_variable_named(monkeypatch, value):
    monkeypatch.setenv(layout_mod.BASE_PORT_ENV, value)
    with pytest.raises(ValueError, match=layout_mod.BASE_PORT_ENV):
        layout_mod.Layout()


def test_default_ports_are_below_the_outgoing_connection_range(
        monkeypatch, tmp_path):
    # Linux hands out 32768-60999 to client sockets; a service port there
    # can be taken by one while the service restarts.
    monkeypatch.delenv(layout_mod.BASE_PORT_ENV, raising=False)
    layout = layout_mod.Layout(home=tmp_path / 'fresh')
    ports = [layout.ports.base + offset for offset in range(30)]
    assert max(ports) < 32768
    assert min(ports) > 1024


def test_a_bed_keeps_the_base_port_it_was_set_up_with(monkeypatch, tmp_path):
    home = tmp_path / 'bed'
    home.mkdir()
    (home / layout_mod.BASE_PORT_FILE).write_text('36300\n')
    monkeypatch.delenv(layout_mod.BASE_PORT_ENV, raising=False)
    assert layout_mod.Layout(home=home).ports.base == 36300
    monkeypatch.setenv(layout_mod.BASE_PORT_ENV, '36300')
    assert layout_mod.Layout(home=home).ports.base == 36300
    monkeypatch.setenv(layout_mod.BASE_PORT_ENV, '27300')
    with pytest.raises(ValueError) as caught:
        layout_mod.Layout(home=home)
    assert 'set up on base port 36300, not 27300' in str(caught.value)
    assert '--purge' in str(caught.value)


def test_every_port_is_distinct(layout):
    ports = layout.ports.all()
    assert len(ports) == 4 + 6 * len(layout_mod.CLOUDS)
    assert min(ports) == 40000


def test_secrets_are_created_once_and_private(layout):
    first = credentials.load_or_create(layout)
    assert credentials.load_or_create(layout) == first
    assert layout.secrets_file.stat().st_mode & 0o777 == 0o600
    assert first['devcloud-a']['admin'] != first['devcloud-b']['admin']


def test_cloud_configs_parse_and_point_at_their_own_cloud(layout):
    secrets = credentials.load_or_create(layout)
    for cloud in layout_mod.CLOUDS:
        nova = confgen.nova(layout, secrets, cloud)
        assert nova['database']['connection'].endswith(
            '/%s?charset=utf8mb4' % confgen.db_name(cloud, 'nova'))
        compute = confgen.nova(layout, secrets, cloud, compute=True)
        assert 'database' not in compute and 'api_database' not in compute
        assert nova['keystone_authtoken']['auth_url'] == \
            layout.url(cloud, 'keystone')
        assert nova['DEFAULT']['transport_url'].endswith('/' + cloud)
        parser = configparser.RawConfigParser()
        parser.read_string(confgen.render(confgen.neutron(layout, secrets,
                                                          cloud)))
        assert parser.get('DEFAULT', 'core_plugin') == 'ml2'


def test_each_compute_host_has_its_own_identity_disks_and_log(layout):
    secrets = credentials.load_or_create(layout)
    assert layout_mod.compute_hosts('devcloud-a') == ('devcloud-a-compute',)
    hosts = layout_mod.compute_hosts('devcloud-b')
    assert hosts == ('devcloud-b-compute', 'devcloud-b-compute-2')
    confs = [confgen.nova(layout, secrets, 'devcloud-b', compute=True,
                          host=h)['DEFAULT'] for h in hosts]
    assert [c['host'] for c in confs] == list(hosts)
    for option in ('state_path', 'instances_path', 'log_file'):
        assert confs[0][option] != confs[1][option], option
    # The first host keeps the paths of a one-compute bed (warm restarts
    # of an existing bed find their servers).
    assert confs[0]['state_path'] == str(
        layout.cloud_dir('devcloud-b') / 'nova')
    assert confs[0]['instances_path'] == str(
        layout.instances_dir('devcloud-b'))
    assert layout.compute_conf('devcloud-b', hosts[0]).name == \
        'nova-compute.conf'
    assert layout.compute_conf('devcloud-b', hosts[1]).name == \
        'nova-compute-2.conf'
    # A server's disk is found on whichever host holds it.
    disk = layout.server_disk('devcloud-b', 'uuid-1', host=hosts[1])
    disk.parent.mkdir(parents=True)
    disk.write_bytes(b'x')
    assert layout.server_disk('devcloud-b', 'uuid-1') == disk


def test_render_refuses_newlines():
    with pytest.raises(ValueError):
        confgen.render({'DEFAULT': {'x': 'a\nb'}})


def test_rabbit_password_hash_matches_rabbitmq_scheme():
    salt = b'\x01\x02\x03\x04'
    encoded = broker.password_hash('s3cret', salt=salt)
    raw = base64.b64decode(encoded)
    assert raw[:4] == salt
    assert raw[4:] == hashlib.sha256(salt + b's3cret').digest()


def test_clouds_yaml_has_admin_and_member_per_cloud(layout):
    secrets = credentials.load_or_create(layout)
    clouds = bootstrap.clouds_yaml(layout, secrets)['clouds']
    assert set(clouds) == {'devcloud-a', 'devcloud-a-member',
                           'devcloud-b', 'devcloud-b-member'}
    assert clouds['devcloud-b-member']['auth']['username'] == 'demo'
    assert clouds['devcloud-a']['auth']['auth_url'] == \
        layout.url('devcloud-a', 'keystone')


def test_image_is_deterministic_and_mostly_zero():
    data = bootstrap.image_bytes()
    assert data == bootstrap.image_bytes()
    assert len(data) == bootstrap.IMAGE_SIZE
    assert data[510:512] == b'\x55\xaa'
    assert data.count(0) > len(data) // 3
