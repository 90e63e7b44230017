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
  reporting them gone.

It lives in the devcloud distribution only and never ships in the plugin.
"""

import json
import os

from nova.compute import task_states
import nova.conf
from nova import exception
from nova.image import glance
from nova.virt import fake
from oslo_log import log as logging

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)
CHUNK = 1024 * 1024


class DevcloudDriver(fake.FakeDriverWithoutFakeNodes):

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only=read_only)
        self._image_api = glance.API()

    # -- files of a server ------------------------------------------------

    @staticmethod
    def _path(uuid, suffix):
        return os.path.join(CONF.instances_path, '%s.%s' % (uuid, suffix))

    def _record(self, uuid):
        """Persist name and power state of a known server."""
        guest = self.instances[uuid]
        tmp = self._path(uuid, 'json.tmp')
        with open(tmp, 'w') as handle:
            json.dump({'name': guest.name, 'state': guest.state}, handle)
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
            LOG.info('Adopted server %s (%s) from its disk file',
                     uuid, record['name'])

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        disk = self._path(instance.uuid, 'disk')
        part = self._path(instance.uuid, 'disk.part')
        if instance.image_ref:
            # Nova's Glance client writes the image to the path and
            # checks its checksum on the way.
            self._image_api.download(context, instance.image_ref,
                                     dest_path=part)
        else:
            # Booted from a volume: no local disk content.
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

    def instance_on_disk(self, instance):
        return os.path.exists(self._path(instance.uuid, 'disk'))

