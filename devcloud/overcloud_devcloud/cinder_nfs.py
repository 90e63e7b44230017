"""Cinder's NFS driver on a local directory, for the test bed.

On a real site the storage host mounts the NFS export and Cinder's NFS
(RemoteFS) driver keeps one file per volume on it.  Here the "export" is a
directory of the bed (``Layout.volume_share``), named in ``nfs_shares`` as
``127.0.0.1:/that/directory``; this subclass changes only what needs a
mount:

* no probe for ``mount.nfs`` and no mount: the share's path is the
  directory itself;
* file operations run as the bed's user, never through sudo (see
  :meth:`LocalShareNfsDriver.do_setup`);
* volumes of a multi-attach type are accepted (the backend reports
  ``multiattach``), so a test can build one;
* connections are ``driver_volume_type: 'local'`` with the ``device_path``
  of the volume's active file, so os-brick's LocalConnector attaches them
  (in nova-compute, in cinder-backup, in cinder-volume for image uploads)
  without privileges.

Everything else (sparse raw files, qcow2 snapshot overlays and their
``.info`` file, image <-> volume with qemu-img, Nova-assisted snapshots of
attached volumes) is Cinder's own code.  It lives in the devcloud
distribution only and never ships in the plugin.
"""

import os

from cinder import exception
from cinder.volume.drivers import nfs
from cinder.volume.drivers import remotefs
from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class LocalShareNfsDriver(nfs.NfsDriver):
    """NfsDriver whose share is a local directory; attaches as 'local'."""

    driver_volume_type = 'local'
    VERSION = nfs.NfsDriver.VERSION + '-devcloud'

    def do_setup(self, context):
        # NfsDriver.do_setup, less the mount.nfs probe (no mounts here).
        remotefs.RemoteFSSnapDriverDistributed.do_setup(self, context)
        config = self.configuration.nfs_shares_config
        if not config or not os.path.exists(config):
            raise exception.NfsException(
                'NFS config file %r does not exist' % config)
        self.shares = {}
        self.set_nas_security_options(self._is_voldb_empty_at_startup)
        self._check_snapshot_support(setup_checking=True)
        # Cinder refuses snapshots with nas_secure_file_operations 'true', so
        # the bed sets it 'false', which would run every file operation
        # (qemu-img, cp, rm, du) as root through sudo and rootwrap.  The
        # share is the bed's own directory: its own user does them.
        self._execute_as_root = False

    @staticmethod
    def _share_path(share):
        """'127.0.0.1:/some/dir' -> '/some/dir'."""
        return share.split(':', 1)[1]

    def _get_mount_point_for_share(self, share):
        return self._share_path(share)

    def _ensure_share_mounted(self, share):
        path = self._share_path(share)
        os.makedirs(path, exist_ok=True)
        LOG.debug('Share %s is the local directory %s', share, path)

    def initialize_connection(self, volume, connector):
        info = super().initialize_connection(volume, connector)
        data = info['data']
        data['device_path'] = os.path.join(self._local_volume_dir(volume),
                                           data['name'])
        info['driver_volume_type'] = self.driver_volume_type
        return info

    def _update_volume_stats(self):
        # Multi-attach: Cinder's scheduler places a volume of a type with
        # ``multiattach='<is> True'`` only on a backend that reports it.  A
        # file on the share can be opened by any number of guests (the bed's
        # Nova driver says it supports multi-attach, as Nova's fake driver
        # does), so the bed can hold such volumes; what a real NFS backend
        # would need to share them safely is not the bed's concern.
        super()._update_volume_stats()
        self._stats['multiattach'] = True
