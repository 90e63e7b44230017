"""devcloud's Cinder: configuration, services and the local-share driver."""

import configparser

import pytest

from overcloud_devcloud import confgen
from overcloud_devcloud import credentials
from overcloud_devcloud import layout as layout_mod
from overcloud_devcloud import services


@pytest.fixture
def layout(tmp_path):
    return layout_mod.Layout(home=tmp_path / 'bed', base_port=40000)


def test_cinder_conf_uses_the_local_share_and_posix_backups(layout):
    secrets = credentials.load_or_create(layout)
    for cloud in layout_mod.CLOUDS:
        conf = confgen.cinder(layout, secrets, cloud)
        parser = configparser.RawConfigParser()
        parser.read_string(confgen.render(conf))
        assert parser.get('DEFAULT', 'enabled_backends') == 'nfs'
        assert parser.get('DEFAULT', 'host') == cloud + '-storage'
        assert parser.get('DEFAULT', 'backup_posix_path') == str(
            layout.backup_dir(cloud))
        assert parser.get('DEFAULT', 'transport_url').endswith('/' + cloud)
        assert parser.get('database', 'connection').endswith(
            '/%s?charset=utf8mb4' % confgen.db_name(cloud, 'cinder'))
        assert parser.get('nfs', 'volume_driver') == \
            'overcloud_devcloud.cinder_nfs.LocalShareNfsDriver'
        assert parser.get('nfs', 'nfs_snapshot_support') == 'true'
        # Snapshots need it 'false' (the driver still never uses sudo).
        assert parser.get('nfs', 'nas_secure_file_operations') == 'false'
        assert parser.get('nova', 'username') == 'cinder'
        # cinder-volume reports its capabilities as soon as it listens.
        assert parser.get('DEFAULT', 'periodic_fuzzy_delay') == '0'


def test_config_files_name_each_clouds_own_share(layout):
    secrets = credentials.load_or_create(layout)
    for cloud in layout_mod.CLOUDS:
        confgen.write_cloud(layout, secrets, cloud)
        shares = (layout.etc(cloud, 'cinder') / 'nfs_shares').read_text()
        assert shares == '127.0.0.1:%s\n' % layout.volume_share(cloud)
        assert layout.volume_share(cloud).is_dir()
        assert layout.backup_dir(cloud).is_dir()
        assert (layout.etc(cloud, 'cinder') / 'api-paste.ini').exists()
    assert layout.volume_share('devcloud-a') != \
        layout.volume_share('devcloud-b')


def test_cinder_services_of_each_cloud(layout):
    for cloud in layout_mod.CLOUDS:
        found = {s.name: s for s in services.cloud_services(layout, cloud)}
        api = found['%s/cinder-api' % cloud]
        assert api.port == layout.ports.api(cloud, 'cinder-api')
        assert '--pyargv' in api.argv
        volume = found['%s/cinder-volume' % cloud]
        assert (volume.api, volume.binary, volume.host) == (
            'block-storage', 'cinder-volume', cloud + '-storage@nfs')
        assert found['%s/cinder-backup' % cloud].host == cloud + '-storage'
    assert layout.url('devcloud-a', 'cinder-api').endswith('/v3')


def test_nova_knows_cinder(layout):
    secrets = credentials.load_or_create(layout)
    section = confgen.nova(layout, secrets, 'devcloud-a')['cinder']
    assert section['auth_type'] == 'password'
    assert section['os_region_name'] == 'RegionOne'


def test_the_driver_maps_the_share_to_its_directory(tmp_path):
    from overcloud_devcloud import cinder_nfs
    share = '127.0.0.1:%s' % (tmp_path / 'volumes')
    driver = cinder_nfs.LocalShareNfsDriver.__new__(
        cinder_nfs.LocalShareNfsDriver)
    assert driver._get_mount_point_for_share(share) == str(
        tmp_path / 'volumes')
    driver._ensure_share_mounted(share)
    assert (tmp_path / 'volumes').is_dir()
    assert driver.driver_volume_type == 'local'


def test_the_driver_reports_multiattach_so_such_volumes_can_be_made():
    """Cinder's scheduler places a volume of a multi-attach type only on a
    backend whose stats say ``multiattach``."""
    from unittest import mock

    from cinder.volume.drivers import nfs

    from overcloud_devcloud import cinder_nfs

    def stats(driver):
        driver._stats = {'volume_backend_name': 'nfs'}

    driver = cinder_nfs.LocalShareNfsDriver.__new__(
        cinder_nfs.LocalShareNfsDriver)
    with mock.patch.object(nfs.NfsDriver, '_update_volume_stats',
                           autospec=True, side_effect=stats):
        driver._update_volume_stats()
    assert driver._stats == {'volume_backend_name': 'nfs',
                             'multiattach': True}
