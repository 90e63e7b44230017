"""A Nova compute driver for the test bed whose servers have real disks.

Built on Nova's ``FakeDriverWithoutFakeNodes`` (a stable node identity across
restarts).  What it adds:

* every server gets a disk file, ``<instances_path>/<uuid>.disk``, filled with
  the bytes of its boot image when it spawns;
* a snapshot uploads that file through Nova's own Glance API, so the
  snapshot image becomes ``active`` and carries the server's disk bytes
  (stock FakeDriver never uploads: its snapshots stay ``queued``);
* a small ``<uuid>.json`` beside the disk records the server's name and power
  state, so a restarted nova-compute adopts its servers again instead of
  reporting them gone;
* Cinder volumes are attached through os-brick's LocalConnector (devcloud's
  Cinder hands out ``driver_volume_type: 'local'`` connections to files on
  its volume share) and the record's ``volumes`` says, per volume id, the
  guest device (``/dev/vdb``), the file the guest sees (``device_path``)
  and its format, so a tool can write "in the guest" through that file;
* a server booted from a volume has no disk of its own: ``<uuid>.disk`` is a
  symbolic link to its root volume's file;
* Cinder's NFS driver snapshots an attached volume with Nova's help
  (assisted volume snapshots): Cinder writes a qcow2 overlay and Nova's
  driver switches the guest to it (``volume_snapshot_create``), or merges
  overlays when a snapshot goes (``volume_snapshot_delete``, with
  ``qemu-img commit`` / ``rebase`` where libvirt would block-commit or
  block-rebase the running guest).

It lives in the devcloud distribution only and never ships in the plugin.
"""

import json
import os
import subprocess

from nova.compute import task_states
import nova.conf
from nova import exception
from nova.image import glance
from nova.virt import driver as virt_driver
from nova.virt import fake
from nova.volume import cinder
from os_brick.initiator import connector as brick_connector
from oslo_log import log as logging

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)
CHUNK = 1024 * 1024


class DevcloudDriver(fake.FakeDriverWithoutFakeNodes):

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only=read_only)
        self._image_api = glance.API()
        self._volume_api = cinder.API()
        # {server uuid: {volume id: {'mountpoint', 'device_path', 'format',
        #  'root'}}}, persisted in the server's record.
        self._volumes = {}

    # -- files of a server ------------------------------------------------

    @staticmethod
    def _path(uuid, suffix):
        return os.path.join(CONF.instances_path, '%s.%s' % (uuid, suffix))

    def _record(self, uuid):
        """Persist name and power state of a known server."""
        guest = self.instances[uuid]
        tmp = self._path(uuid, 'json.tmp')
        with open(tmp, 'w') as handle:
            json.dump({'name': guest.name, 'state': guest.state,
                       'volumes': self._volumes.get(uuid, {})}, handle,
                      indent=1)
        os.replace(tmp, self._path(uuid, 'json'))

    def _forget(self, uuid):
        for suffix in ('disk', 'json', 'disk.part'):
            try:
                os.unlink(self._path(uuid, suffix))
            except FileNotFoundError:
                pass

    # -- driver interface -------------------------------------------------

    def init_host(self, host):
        super().init_host(host)
        os.makedirs(CONF.instances_path, exist_ok=True)
        for name in sorted(os.listdir(CONF.instances_path)):
            if not name.endswith('.json'):
                continue
            uuid = name[:-len('.json')]
            try:
                with open(self._path(uuid, 'json')) as handle:
                    record = json.load(handle)
            except (OSError, ValueError):
                LOG.warning('Ignoring unreadable record %s', name)
                continue
            self.instances[uuid] = fake.FakeInstance(
                record['name'], record['state'], uuid)
            self._volumes[uuid] = record.get('volumes', {})
            LOG.info('Adopted server %s (%s) from its disk file',
                     uuid, record['name'])

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        disk = self._path(instance.uuid, 'disk')
        part = self._path(instance.uuid, 'disk.part')
        self._volumes[instance.uuid] = {}
        root = virt_driver.block_device_info_get_root_device(
            block_device_info)
        for bdm in virt_driver.block_device_info_get_mapping(
                block_device_info):
            self._connect(instance, bdm['connection_info'],
                          bdm['mount_device'],
                          root=bdm['mount_device'] == root or
                          bdm.get('boot_index') == 0)
        root_path = self._root_volume_path(instance.uuid)
        if root_path:
            # Booted from a volume: the root disk is the volume's file.
            _force_symlink(root_path, part)
        elif instance.image_ref:
            # Nova's Glance client writes the image to the path and
            # checks its checksum on the way.
            self._image_api.download(context, instance.image_ref,
                                     dest_path=part)
        else:
            open(part, 'wb').close()
        os.replace(part, disk)
        super().spawn(context, instance, image_meta, injected_files,
                      admin_password, allocations, network_info=network_info,
                      block_device_info=block_device_info, power_on=power_on,
                      accel_info=accel_info)
        self._record(instance.uuid)

    def snapshot(self, context, instance, image_id, update_task_state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        snapshot = self._image_api.get(context, image_id)
        base = instance.image_meta
        metadata = {
            'name': snapshot['name'],
            'disk_format': (base.disk_format
                            if base.obj_attr_is_set('disk_format')
                            else 'raw'),
            'container_format': (base.container_format
                                 if base.obj_attr_is_set('container_format')
                                 else 'bare'),
            'properties': {'image_location': 'snapshot',
                           'image_state': 'available',
                           'owner_id': instance.project_id},
        }
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        with open(self._path(instance.uuid, 'disk'), 'rb') as disk:
            self._image_api.update(context, image_id, metadata, data=disk,
                                   purge_props=False)
        LOG.info('Snapshot %s of server %s uploaded', image_id,
                 instance.uuid)

    def power_off(self, instance, timeout=0, retry_interval=0):
        super().power_off(instance, timeout, retry_interval)
        self._record(instance.uuid)

    def power_on(self, context, instance, network_info,
                 block_device_info=None, accel_info=None, share_info=None):
        super().power_on(context, instance, network_info,
                         block_device_info=block_device_info,
                         accel_info=accel_info, share_info=share_info)
        self._record(instance.uuid)

    def reboot(self, context, instance, network_info, reboot_type,
               block_device_info=None, bad_volumes_callback=None,
               accel_info=None, share_info=None):
        super().reboot(context, instance, network_info, reboot_type,
                       block_device_info=block_device_info,
                       bad_volumes_callback=bad_volumes_callback,
                       accel_info=accel_info, share_info=share_info)
        if instance.uuid in self.instances:
            self._record(instance.uuid)

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        super().destroy(context, instance, network_info,
                        block_device_info=block_device_info,
                        destroy_disks=destroy_disks,
                        destroy_secrets=destroy_secrets)
        if destroy_disks:
            self._forget(instance.uuid)
            self._volumes.pop(instance.uuid, None)


    # -- volumes ----------------------------------------------------------

    def get_volume_connector(self, instance):
        return {'ip': CONF.my_block_storage_ip, 'host': CONF.host,
                'initiator': 'iqn.2026-12.org.devcloud:%s' % CONF.host,
                'multipath': False, 'platform': 'x86_64', 'os_type': 'linux'}

    @staticmethod
    def _volume_id(connection_info):
        return (connection_info.get('serial') or
                connection_info['data'].get('volume_id'))

    def _connect(self, instance, connection_info, mountpoint, root=False):
        """Connect a volume through os-brick and record what the guest
        sees; returns the device path."""
        kind = connection_info.get('driver_volume_type')
        if kind != 'local':
            raise exception.VolumeDriverNotFound(driver_type=kind)
        connector = brick_connector.InitiatorConnector.factory(
            'LOCAL', None)
        device = connector.connect_volume(connection_info['data'])
        path = device['path']
        if not os.path.exists(path):
            raise exception.VolumeNotFound(volume_id=self._volume_id(
                connection_info))
        self._volumes.setdefault(instance.uuid, {})[
            self._volume_id(connection_info)] = {
            'mountpoint': mountpoint, 'device_path': path,
            'format': connection_info['data'].get('format', 'raw'),
            'root': root}
        LOG.info('Volume %s is %s of server %s (file %s)',
                 self._volume_id(connection_info), mountpoint, instance.uuid,
                 path)
        return path

    def _root_volume_path(self, uuid):
        for entry in self._volumes.get(uuid, {}).values():
            if entry.get('root'):
                return entry['device_path']
        return None

    def attach_volume(self, context, connection_info, instance, mountpoint,
                      disk_bus=None, device_type=None, encryption=None):
        super().attach_volume(context, connection_info, instance, mountpoint,
                              disk_bus=disk_bus, device_type=device_type,
                              encryption=encryption)
        self._connect(instance, connection_info, mountpoint)
        if instance.uuid in self.instances:
            self._record(instance.uuid)

    def detach_volume(self, context, connection_info, instance, mountpoint,
                      encryption=None):
        super().detach_volume(context, connection_info, instance, mountpoint,
                              encryption=encryption)
        self._volumes.get(instance.uuid, {}).pop(
            self._volume_id(connection_info), None)
        if instance.uuid in self.instances:
            self._record(instance.uuid)

    def swap_volume(self, context, old_connection_info, new_connection_info,
                    instance, mountpoint, resize_to):
        super().swap_volume(context, old_connection_info,
                            new_connection_info, instance, mountpoint,
                            resize_to)
        old = self._volumes.get(instance.uuid, {}).pop(
            self._volume_id(old_connection_info), {})
        self._connect(instance, new_connection_info, mountpoint,
                      root=old.get('root', False))
        self._sync_root(instance.uuid)
        self._record(instance.uuid)

    def _sync_root(self, uuid):
        root = self._root_volume_path(uuid)
        if root:
            _force_symlink(root, self._path(uuid, 'disk'))

    def volume_snapshot_create(self, context, instance, volume_id,
                               create_info):
        """Switch the guest to the qcow2 overlay Cinder has just made."""
        snapshot_id = create_info.get('snapshot_id')
        try:
            if create_info.get('type') != 'qcow2':
                raise exception.InternalError(
                    'Unknown volume snapshot type %s' % create_info.get('type'))
            entry = self._volumes.get(instance.uuid, {}).get(volume_id)
            if entry is None:
                raise exception.VolumeNotFound(volume_id=volume_id)
            new = os.path.join(os.path.dirname(entry['device_path']),
                               create_info['new_file'])
            if not os.path.exists(new):
                raise exception.InternalError('No overlay file %s' % new)
            entry.update(device_path=new, format='qcow2')
            self._sync_root(instance.uuid)
            self._record(instance.uuid)
            LOG.info('Volume %s of server %s now writes to %s (snapshot %s)',
                     volume_id, instance.uuid, new, snapshot_id)
        except Exception:
            LOG.exception('volume_snapshot_create of %s failed', volume_id)
            self._volume_api.update_snapshot_status(context, snapshot_id,
                                                    'error')
            raise
        self._volume_api.update_snapshot_status(context, snapshot_id,
                                                'creating')

    def volume_snapshot_delete(self, context, instance, volume_id,
                               snapshot_id, delete_info):
        """Merge a snapshot's overlay as libvirt would on a live guest.

        ``merge_target_file`` None: pull everything below the active file
        down to ``file_to_merge`` (None: all of it) into the active file
        (libvirt's blockRebase; here ``qemu-img rebase``).  Otherwise commit
        ``file_to_merge`` into ``merge_target_file`` and point the file above
        it at the target (blockCommit; here ``qemu-img commit`` and an
        unsafe ``rebase``).  The active file never changes.
        """
        try:
            if delete_info.get('type') != 'qcow2':
                raise exception.InternalError(
                    'Unknown volume snapshot type %s' % delete_info.get('type'))
            entry = self._volumes.get(instance.uuid, {}).get(volume_id)
            if entry is None:
                raise exception.VolumeNotFound(volume_id=volume_id)
            active = entry['device_path']
            folder = os.path.dirname(active)
            merge = delete_info.get('file_to_merge')
            target = delete_info.get('merge_target_file')
            if target is None:
                if merge is None:
                    _qemu_img(folder, 'rebase', '-f', 'qcow2', '-b', '',
                              active)
                    entry['format'] = 'qcow2'
                else:
                    _qemu_img(folder, 'rebase', '-f', 'qcow2', '-b', merge,
                              '-F', _image_format(folder, merge), active)
            else:
                above = _file_above(folder, active, merge)
                _qemu_img(folder, 'commit', '-f', _image_format(folder, merge),
                          '-d', '-b', target, merge)
                if above is not None:
                    _qemu_img(folder, 'rebase', '-u', '-f', 'qcow2',
                              '-b', target, '-F',
                              _image_format(folder, target), above)
            LOG.info('Snapshot %s of volume %s merged (%s)', snapshot_id,
                     volume_id, delete_info)
        except Exception:
            LOG.exception('volume_snapshot_delete of %s failed', snapshot_id)
            self._volume_api.update_snapshot_status(context, snapshot_id,
                                                    'error_deleting')
            raise
        self._volume_api.update_snapshot_status(context, snapshot_id,
                                                'deleting')

    def instance_on_disk(self, instance):
        return os.path.exists(self._path(instance.uuid, 'disk'))


def _force_symlink(target, link):
    tmp = link + '.link'
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _qemu_img(folder, *args):
    """Run qemu-img in the volume's directory (Cinder writes backing file
    names relative to it)."""
    result = subprocess.run(['qemu-img', *args], cwd=folder,
                            capture_output=True, text=True)
    if result.returncode:
        raise exception.InternalError('qemu-img %s failed: %s' % (
            ' '.join(args), result.stderr.strip()))
    return result.stdout


def _image_format(folder, name):
    info = json.loads(_qemu_img(folder, 'info', '-U', '--output=json', name))
    return info['format']


def _file_above(folder, active, name):
    """The file of ``active``'s backing chain whose backing file is
    ``name`` (None if ``name`` is not in the chain)."""
    chain = json.loads(_qemu_img(folder, 'info', '-U', '--backing-chain',
                                 '--output=json', active))
    for image in chain:
        backing = image.get('backing-filename')
        if backing and os.path.basename(backing) == os.path.basename(name):
            return image['filename']
    return None
