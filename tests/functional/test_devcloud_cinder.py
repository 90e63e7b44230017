"""devcloud's Cinder proves itself: volumes whose bytes are real files.

Volumes live as files on each cloud's share (``Layout.volume_share``); the
test-bed Nova driver records, per server, the file each attached volume is
to the guest (``Layout.server_volumes``).  "The guest writes" below means
writing through that file, as a DTN or a ``guest write`` tool would.
"""

import hashlib
import json
import os
import subprocess

import pytest

from overcloud_devcloud import bootstrap
from overcloud_devcloud import confgen

WAIT = 180
GIB = 1024 ** 3


def _volume(conn, cleanup, name, size=1, **attrs):
    volume = conn.block_storage.create_volume(name=name, size=size, **attrs)
    cleanup(lambda: _delete_volume(conn, volume))
    return conn.block_storage.wait_for_status(volume, 'available',
                                              failures=['error'], wait=WAIT)


def _delete_volume(conn, volume):
    volume = conn.block_storage.find_volume(volume.id)
    if volume is None:
        return
    for snapshot in conn.block_storage.snapshots(volume_id=volume.id):
        _delete_snapshot(conn, snapshot)
    conn.block_storage.delete_volume(volume, ignore_missing=True)
    conn.block_storage.wait_for_delete(volume, wait=WAIT)


def _delete_snapshot(conn, snapshot):
    conn.block_storage.delete_snapshot(snapshot, ignore_missing=True)
    conn.block_storage.wait_for_delete(snapshot, wait=WAIT)


def _network(conn, cleanup, prefix, cidr):
    net = conn.network.create_network(name=prefix + '-net')
    cleanup(lambda: conn.network.delete_network(net))
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4,
                                        cidr=cidr, name=prefix + '-subnet')
    cleanup(lambda: conn.network.delete_subnet(subnet))
    return net


def _server(conn, cleanup, name, net, **attrs):
    flavor = conn.compute.find_flavor('m1.tiny', ignore_missing=False)
    if 'block_device_mapping' not in attrs:
        attrs['image_id'] = conn.image.find_image(bootstrap.IMAGE_NAME).id
    server = conn.compute.create_server(name=name, flavor_id=flavor.id,
                                        networks=[{'uuid': net.id}], **attrs)
    cleanup(lambda: conn.compute.wait_for_delete(
        conn.compute.delete_server(server) or server, wait=WAIT))
    return conn.compute.wait_for_server(server, wait=WAIT)


def _attach(conn, server, volume):
    conn.compute.create_volume_attachment(server, volume_id=volume.id)
    return conn.block_storage.wait_for_status(volume, 'in-use',
                                              failures=['error'], wait=WAIT)


def _detach(conn, server, volume):
    conn.compute.delete_volume_attachment(server, volume.id)
    return conn.block_storage.wait_for_status(volume, 'available',
                                              failures=['error'], wait=WAIT)


def _sha(path, size=None):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while True:
            chunk = handle.read(4 * 1024 * 1024)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def _raw_bytes(path, tmp_path):
    """The virtual disk's bytes of a raw or qcow2 volume file."""
    out = tmp_path / ('%s.raw' % os.path.basename(path))
    subprocess.run(['qemu-img', 'convert', '-U', '-O', 'raw', str(path),
                    str(out)], check=True, cwd=os.path.dirname(path))
    return out


def _pattern(seed, size=64 * 1024):
    return hashlib.shake_256(seed.encode()).digest(size)


def _write(path, offset, data):
    with open(path, 'r+b') as handle:
        handle.seek(offset)
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _read(path, offset, size):
    with open(path, 'rb') as handle:
        handle.seek(offset)
        return handle.read(size)


def test_volume_types_and_services(conn, cloud_name):
    types = {t.name: t for t in conn.block_storage.types()}
    assert set(confgen.VOLUME_TYPES) <= set(types)
    services = {(s.binary, s.state) for s in conn.block_storage.services()}
    assert {('cinder-scheduler', 'up'), ('cinder-volume', 'up'),
            ('cinder-backup', 'up')} <= services
    # Both catalog names lead to the same API.
    catalog = {s['type'] for s in conn.session.auth.get_access(
        conn.session).service_catalog.catalog}
    assert {'block-storage', 'volumev3'} <= catalog


def test_attach_write_read_detach_delete(devcloud, conn, cloud_name,
                                         cleanup):
    layout = devcloud.layout
    volume = _volume(conn, cleanup, 'cinder-data', volume_type='fast')
    path = layout.volume_file(cloud_name, volume.id)
    assert volume.volume_type == 'fast'
    assert path.stat().st_size == GIB
    assert path.stat().st_blocks == 0  # sparse: no bytes written yet
    net = _network(conn, cleanup, 'cinder-att', '10.81.0.0/24')
    server = _server(conn, cleanup, 'cinder-att', net)
    volume = _attach(conn, server, volume)
    assert volume.attachments[0]['server_id'] == server.id
    seen = layout.server_volumes(cloud_name, server.id)[volume.id]
    assert seen['device_path'] == str(path)
    assert seen['format'] == 'raw' and seen['mountpoint'].startswith('/dev/')

    # The guest writes through its device; the volume file has the bytes.
    payload = _pattern('guest ' + volume.id)
    _write(seen['device_path'], 512 * 1024 * 1024, payload)
    assert _read(path, 512 * 1024 * 1024, len(payload)) == payload

    _detach(conn, server, volume)
    assert volume.id not in layout.server_volumes(cloud_name, server.id)
    conn.block_storage.delete_volume(volume)
    conn.block_storage.wait_for_delete(volume, wait=WAIT)
    assert not path.exists()


def test_volume_from_image_and_boot_from_volume(devcloud, conn, cloud_name,
                                                cleanup, tmp_path):
    layout = devcloud.layout
    image = conn.image.find_image(bootstrap.IMAGE_NAME, ignore_missing=False)
    net = _network(conn, cleanup, 'cinder-bfv', '10.82.0.0/24')
    server = _server(conn, cleanup, 'cinder-bfv', net, block_device_mapping=[{
        'boot_index': 0, 'uuid': image.id, 'source_type': 'image',
        'destination_type': 'volume', 'volume_size': 1,
        'delete_on_termination': True}])
    attached = conn.compute.get_server(server).attached_volumes
    assert len(attached) == 1
    volume = conn.block_storage.get_volume(attached[0]['id'])
    assert volume.is_bootable and volume.status == 'in-use'
    assert volume.volume_image_metadata['image_id'] == image.id
    path = layout.volume_file(cloud_name, volume.id)
    # The root disk IS the volume file: its first bytes are the image's.
    disk = layout.server_disk(cloud_name, server.id)
    assert os.path.realpath(disk) == str(path)
    expected = bootstrap.image_bytes()
    assert _read(path, 0, len(expected)) == expected
    seen = layout.server_volumes(cloud_name, server.id)[volume.id]
    assert seen['root'] and seen['device_path'] == str(path)

    # Nova's own snapshot of a volume-backed server: a Cinder snapshot of
    # the (attached) root volume and an image that records the mapping.
    conn.compute.stop_server(server)
    conn.compute.wait_for_server(server, status='SHUTOFF', wait=WAIT)
    written = _pattern('before the snapshot')
    _write(layout.server_volumes(cloud_name, server.id)[volume.id]
           ['device_path'], 16 * 1024 * 1024, written)
    snap_image = conn.compute.create_server_image(server, 'cinder-bfv-snap',
                                                  wait=False)
    cleanup(lambda: conn.image.delete_image(snap_image, ignore_missing=True))
    snap_image = conn.image.wait_for_status(
        conn.image.get_image(snap_image), 'active',
        failures=['killed', 'deleted'], wait=WAIT)
    mapping = json.loads(snap_image.properties['block_device_mapping'])
    snapshot_id = mapping[0]['snapshot_id']
    snapshot = conn.block_storage.wait_for_status(
        conn.block_storage.get_snapshot(snapshot_id), 'available',
        failures=['error'], wait=WAIT)
    cleanup(lambda: _delete_snapshot(conn, snapshot))
    # The guest now writes to the overlay Cinder made; the snapshot keeps
    # what was there before.
    seen = layout.server_volumes(cloud_name, server.id)[volume.id]
    assert seen['format'] == 'qcow2'
    assert os.path.realpath(disk) == seen['device_path']

    restored = _volume(conn, cleanup, 'cinder-from-snap',
                       snapshot_id=snapshot.id)
    restored_path = layout.volume_file(cloud_name, restored.id)
    assert _read(restored_path, 16 * 1024 * 1024, len(written)) == written
    assert _read(restored_path, 0, len(expected)) == expected


def test_snapshot_of_an_available_volume(devcloud, conn, cloud_name,
                                         cleanup):
    layout = devcloud.layout
    volume = _volume(conn, cleanup, 'cinder-snap')
    path = layout.volume_file(cloud_name, volume.id)
    first = _pattern('first')
    _write(path, 0, first)
    snapshot = conn.block_storage.create_snapshot(volume_id=volume.id,
                                                  name='cinder-snap-1')
    cleanup(lambda: _delete_snapshot(conn, snapshot))
    conn.block_storage.wait_for_status(snapshot, 'available',
                                       failures=['error'], wait=WAIT)
    copy = _volume(conn, cleanup, 'cinder-snap-copy', snapshot_id=snapshot.id)
    assert _read(layout.volume_file(cloud_name, copy.id), 0,
                 len(first)) == first
    _delete_snapshot(conn, snapshot)
    # The overlay is merged back: the volume is one raw file again.
    assert sorted(p.name for p in layout.volume_share(cloud_name).glob(
        'volume-%s*' % volume.id)) in (
        ['volume-%s' % volume.id],
        ['volume-%s' % volume.id, 'volume-%s.info' % volume.id])


@pytest.mark.parametrize('cloud_name', ['devcloud-a'])
def test_in_use_snapshot_api_3_66(devcloud, conn, cloud_name, cleanup,
                                  tmp_path):
    layout = devcloud.layout
    volume = _volume(conn, cleanup, 'cinder-inuse')
    net = _network(conn, cleanup, 'cinder-inuse', '10.83.0.0/24')
    server = _server(conn, cleanup, 'cinder-inuse', net)
    _attach(conn, server, volume)
    cleanup(lambda: _detach(conn, server, volume))
    device = layout.server_volumes(cloud_name, server.id)[volume.id][
        'device_path']
    before = _pattern('before')
    _write(device, 0, before)
    # API 3.66: an in-use volume is snapshotted without 'force'.
    reply = conn.block_storage.post(
        '/snapshots', json={'snapshot': {'volume_id': volume.id,
                                         'name': 'cinder-inuse-snap'}},
        microversion='3.66')
    assert reply.status_code == 202, reply.text
    snapshot = conn.block_storage.get_snapshot(reply.json()['snapshot']['id'])
    cleanup(lambda: _delete_snapshot(conn, snapshot))
    conn.block_storage.wait_for_status(snapshot, 'available',
                                       failures=['error'], wait=WAIT)
    seen = layout.server_volumes(cloud_name, server.id)[volume.id]
    assert seen['format'] == 'qcow2' and seen['device_path'] != device
    # The guest goes on writing, into the overlay.
    subprocess.run(['qemu-io', '-f', 'qcow2', '-c',
                    'write -P 0x5a 0 64k', seen['device_path']],
                   check=True, capture_output=True,
                   cwd=os.path.dirname(seen['device_path']))
    copy = _volume(conn, cleanup, 'cinder-inuse-copy',
                   snapshot_id=snapshot.id)
    assert _read(layout.volume_file(cloud_name, copy.id), 0,
                 len(before)) == before
    # Deleting the snapshot merges through Nova; the guest keeps its bytes.
    _delete_snapshot(conn, snapshot)
    now = _raw_bytes(layout.server_volumes(cloud_name, server.id)[volume.id]
                     ['device_path'], tmp_path)
    assert _read(now, 0, 64 * 1024) == b'\x5a' * 64 * 1024


@pytest.mark.parametrize('cloud_name', ['devcloud-a'])
def test_backup_and_restore(devcloud, conn, cloud_name, cleanup):
    layout = devcloud.layout
    volume = _volume(conn, cleanup, 'cinder-backup-src')
    path = layout.volume_file(cloud_name, volume.id)
    for index in range(4):
        _write(path, index * 256 * 1024 * 1024, _pattern('b%d' % index))
    backup = conn.block_storage.create_backup(volume_id=volume.id,
                                              name='cinder-backup')
    cleanup(lambda: (conn.block_storage.delete_backup(
        backup, ignore_missing=True), conn.block_storage.wait_for_delete(
        backup, wait=WAIT)))
    backup = conn.block_storage.wait_for_status(backup, 'available',
                                                failures=['error'], wait=WAIT)
    assert any(layout.backup_dir(cloud_name).rglob('*'))
    target = _volume(conn, cleanup, 'cinder-backup-dst')
    conn.block_storage.restore_backup(backup, volume_id=target.id)
    # Fresh objects: wait_for_status returns at once on a stale 'available'.
    conn.block_storage.wait_for_status(
        conn.block_storage.get_backup(backup), 'available',
        failures=['error'], wait=WAIT)
    conn.block_storage.wait_for_status(
        conn.block_storage.get_volume(target), 'available',
        failures=['error', 'error_restoring'], wait=WAIT)
    assert _sha(layout.volume_file(cloud_name, target.id)) == _sha(path)
