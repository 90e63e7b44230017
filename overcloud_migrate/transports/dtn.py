"""``dtn``: stage on the source DTN, cross DTN to DTN, upload at the other end.

The seed's data path. Each site's DTN exports a directory that the host
running the migration mounts (NFS in the seed; on one machine, a plain
directory):

#. the source Glance download is staged in the source DTN's directory
   exactly as the ``sharedfs`` driver does it (``<ID>.part`` resumed with
   ``Range``, checked against the source size and sha512, renamed to
   ``<ID>.img``);
#. the source DTN service is asked (``POST /v1/transfers``) to move that
   file to the destination DTN's directory with its mover (``gridftp``: a
   third-party GridFTP transfer; ``builtin``: its own data path), and the
   transfer is followed until it ends; a transfer still running from an
   interrupted run is waited for instead of being started again, and a
   file that already arrived is not sent again;
#. the arrived file is streamed into the destination Glance and hashed on
   the way: if it is not the staged bytes, the upload is cut short, the
   arrived copy is deleted and :class:`~.base.HashMismatch` raised (the
   migration then sends the image again);
#. after a verified upload both files are removed (unless ``keep``).

Warm migration (``deltas``): with ``--dtn-source-volumes`` and
``--dtn-dest-volumes`` naming each site's Cinder share as its DTN sees it
(the seed's NFS link between a DTN and its cloud, toward Cinder), a sync
round asks the source DTN service (``POST /v1/syncs``) to bring the
destination volume's file (``volume-<ID>``, Cinder's RemoteFS naming) in
step with the source volume's file, block by block: only the blocks that
changed since the last round cross, and the destination writes them in
place.

The DTN services are reached only through :mod:`overcloud_migrate.dtn.client`.
Tokens are read from files (or the environment) when a client is made;
the driver's options, which the migration journal records, hold only the
file names.
"""

import logging
import os
import posixpath
import re
import tempfile
import time

from overcloud_migrate.dtn import client as dtn_client
from overcloud_migrate.dtn import constants as dtn_constants
from overcloud_migrate.transports import base
from overcloud_migrate.transports import sharedfs
from overcloud_migrate.transports import streams

LOG = logging.getLogger(__name__)

#: the environment variable the ``overcloud dtn`` commands read too
TOKEN_ENV = dtn_constants.TOKEN_ENV
_ACTIVE = ('queued', 'running')
_PROBE_PREFIX = '.overcloud-migrate-probe-'
#: a volume's file on a Cinder NFS/RemoteFS share (its volume_name_template)
VOLUME_FILE = 'volume-%s'
#: the staged file must be readable by the DTN's GridFTP server, which
#: often runs as another user (``nobody`` for anonymous ftp://)
_STAGED_MODE = 0o644


def _lower_first(text):
    """A message to go after a colon: no final stop, "The" -> "the" (but
    "DTN" stays)."""
    text = str(text).rstrip('.')
    if text[1:2].islower():
        text = text[:1].lower() + text[1:]
    return text


def _inside(path, root):
    root = root.rstrip('/') or '/'
    return path == root or path.startswith(root + '/')


class _Side:
    """One site: its DTN service, node name and directory."""

    def __init__(self, label, endpoint, token_file, directory, path):
        self.label = label               # 'source' or 'destination'
        self.endpoint = endpoint
        self.token_file = token_file
        self.directory = directory        # as mounted here
        self.path = path or directory     # as the DTN sees it
        self.node = None
        self.volumes = None               # the Cinder share, as the DTN sees it
        self.images = None                # the Glance store, as the DTN sees it

    def token(self):
        if self.token_file:
            try:
                return dtn_client.read_token_file(self.token_file,
                                                  '%s DTN' % self.label)
            except dtn_client.DTNClientError as exc:
                raise base.PreflightError(str(exc))
        return os.environ.get(TOKEN_ENV) or None

    def client(self, timeout):
        try:
            return dtn_client.DTNClient(self.endpoint, token=self.token(),
                                        timeout=timeout)
        except dtn_client.DTNClientError as exc:
            raise base.PreflightError('Cannot use the %s DTN: %s.'
                                      % (self.label, _lower_first(exc)))


class DtnTransport(base.Transport):
    """Stage on the source DTN, transfer DTN to DTN, upload from the destination DTN."""

    name = 'dtn'
    capabilities = frozenset({'staging', 'resume', 'remote', 'third-party',
                              'deltas'})
    options = (
        base.Opt('source_endpoint', flag='source', metavar='<url>',
                 required=True,
                 help='URL of the source site\'s DTN service '
                      '(overcloud-dtn-api), for example http://dtn-a:22641; '
                      'it runs the DTN-to-DTN transfers, so the destination '
                      'DTN must be registered in it with `openstack '
                      'overcloud dtn node add` (required with --transport '
                      'dtn)'),
        base.Opt('dest_endpoint', flag='dest', metavar='<url>',
                 required=True,
                 help='URL of the destination site\'s DTN service; it is '
                      'asked which node it is and must accept its token '
                      '(required with --transport dtn)'),
        base.Opt('source_dir', metavar='<directory>', required=True,
                 help='The source DTN\'s export directory as mounted on '
                      'this host (the NFS mount of the original design); '
                      'each image is staged there as <image ID>.img, '
                      'resumably (required with --transport dtn)'),
        base.Opt('dest_dir', metavar='<directory>', required=True,
                 help='The destination DTN\'s export directory as mounted '
                      'on this host; each image arrives there from the '
                      'source DTN and is uploaded to the destination Glance '
                      'from there (required with --transport dtn)'),
        base.Opt('source_path', metavar='<path>',
                 help='The directory of --dtn-source-dir as the source DTN '
                      'itself names it, when it is mounted elsewhere here '
                      '(default: the same path as --dtn-source-dir)'),
        base.Opt('dest_path', metavar='<path>',
                 help='The directory of --dtn-dest-dir as the destination '
                      'DTN itself names it (default: the same path as '
                      '--dtn-dest-dir)'),
        base.Opt('source_token_file', metavar='<file>',
                 help='File whose first line is the source DTN service\'s '
                      'token; only the file name is journaled, the token is '
                      'never logged (default: the token in the environment '
                      'variable %s)' % TOKEN_ENV),
        base.Opt('dest_token_file', metavar='<file>',
                 help='File whose first line is the destination DTN '
                      'service\'s token (default: the token in the '
                      'environment variable %s)' % TOKEN_ENV),
        base.Opt('mover', metavar='<mover>',
                 help='How the DTNs move the bytes: gridftp (a third-party '
                      'GridFTP transfer) or builtin (parallel streams that '
                      'skip zeros); the source DTN service must offer it '
                      '(default: the source DTN service\'s default mover)'),
        base.Opt('streams', metavar='<count>', type=int, minimum=1,
                 help='Parallel TCP streams of each DTN transfer, 1 to 64 '
                      '(default: the DTN service\'s default, 4)'),
        base.Opt('source_volumes', metavar='<path>',
                 help='Warm migration: the source Cinder share (the '
                      'directory holding volume-<ID> files) as the source '
                      'DTN names it; it must lie inside one of that node\'s '
                      'exports (required with --warm)'),
        base.Opt('dest_volumes', metavar='<path>',
                 help='Warm migration: the destination Cinder share as the '
                      'destination DTN names it; the destination volumes\' '
                      'files are written there in place (required with '
                      '--warm)'),
        base.Opt('source_images', metavar='<path>',
                 help='Warm migration with --dest-boot-volume: the source '
                      'Glance filesystem store (the directory holding one '
                      'file per image, named by its ID) as the source DTN '
                      'names it; the snapshots of each round are read there '
                      '(with --dest-boot-volume, unless --dtn-source-disks '
                      'is given)'),
        base.Opt('source_disks', metavar='<template>',
                 help='Warm migration with --dest-boot-volume: where the '
                      'source DTN reads an image-booted server\'s root disk '
                      'in the source Nova instance store (shared with the '
                      'compute hosts), a path template with {server} (the '
                      'server ID) and optionally {host} (its compute host), '
                      'e.g. /nova/instances/{server}/disk; raw disks only '
                      '(libvirt images_type raw or flat). Replaces the Nova '
                      'snapshot of each round: the rounds read the running '
                      'disk, the cut-over the stopped one (instead of '
                      '--dtn-source-images)'),
        base.Opt('keep', switch=True,
                 help='Keep the staged copies on both DTNs after a verified '
                      'upload (default: remove them)'),
    )
    timeout_option = 'transfer_timeout'

    def __init__(self, source_endpoint=None, dest_endpoint=None,
                 source_dir=None, dest_dir=None, source_path=None,
                 dest_path=None, source_token_file=None,
                 dest_token_file=None, source_node=None, dest_node=None,
                 mover=None, streams=None, keep=False, source_volumes=None,
                 dest_volumes=None, source_images=None, source_disks=None,
                 transfer_timeout=3600,
                 request_timeout=30.0, poll_interval=0.5, probe=True,
                 **options):
        super().__init__(
            source_endpoint=source_endpoint, dest_endpoint=dest_endpoint,
            source_dir=source_dir, dest_dir=dest_dir,
            source_path=source_path, dest_path=dest_path,
            source_token_file=source_token_file,
            dest_token_file=dest_token_file, source_node=source_node,
            dest_node=dest_node, mover=mover, streams=streams, keep=keep,
            source_volumes=source_volumes, dest_volumes=dest_volumes,
            source_images=source_images, source_disks=source_disks,
            transfer_timeout=transfer_timeout,
            request_timeout=request_timeout, poll_interval=poll_interval,
            probe=probe, **options)
        self.source = _Side('source', source_endpoint, source_token_file,
                            source_dir, source_path)
        self.dest = _Side('destination', dest_endpoint, dest_token_file,
                          dest_dir, dest_path)
        self.source.node = source_node
        self.dest.node = dest_node
        self.mover = mover
        self.streams = int(streams) if streams else None
        self.keep = bool(keep)
        self.source.volumes = source_volumes
        self.dest.volumes = dest_volumes
        self.source.images = source_images
        self.source.disks = source_disks
        self.transfer_timeout = float(transfer_timeout)
        self.request_timeout = float(request_timeout)
        self.poll_interval = float(poll_interval)
        self.probe = bool(probe)

    @classmethod
    def available(cls):
        """Needs only HTTP to the DTN services and two mounted directories."""
        return True

    # --- preflight ---

    def _validate(self):
        missing = [what for what, value in (
            ('the URL of the source DTN service', self.source.endpoint),
            ('the URL of the destination DTN service', self.dest.endpoint),
            ('the source DTN directory', self.source.directory),
            ('the destination DTN directory', self.dest.directory))
            if not value]
        if missing:
            raise base.PreflightError('The dtn transport needs %s (not '
                                      'given).' % ', '.join(missing))
        for side in (self.source, self.dest):
            if not posixpath.isabs(side.path):
                raise base.PreflightError(
                    'The %s DTN directory %r is not an absolute path.'
                    % (side.label, side.path))
        if self.streams is not None and not 1 <= self.streams <= 64:
            raise base.PreflightError('The number of DTN streams must be '
                                      'from 1 to 64, not %d.' % self.streams)

    def check(self, size=None):
        """Both DTN services answer and accept their token, both
        directories are writable here, the source DTN knows the destination
        node and has the mover, there is room for the image, and (unless
        ``probe`` is off) a few bytes really cross from one directory to
        the other through the DTNs."""
        self._validate()
        for side in (self.source, self.dest):
            sharedfs.check_directory(side.directory,
                                     '%s DTN directory' % side.label, '')
        self._discover()
        if size is not None:
            self._check_space(size)
        if self.probe:
            self._probe()

    def _info(self, side):
        try:
            return side.client(self.request_timeout).info()
        except dtn_client.DTNClientError as exc:
            raise base.PreflightError('Cannot use the %s DTN: %s.'
                                      % (side.label, _lower_first(exc)))

    def _discover(self):
        """Node names, the mover and the registry, from the services."""
        src_info = self._info(self.source)
        dst_info = self._info(self.dest)
        for side, info in ((self.source, src_info), (self.dest, dst_info)):
            if not side.node:
                side.node = info.get('local_node')
            if not side.node:
                raise base.PreflightError(
                    'The %s DTN service at %s does not say which node it is '
                    'and none was given.' % (side.label, side.endpoint))
        movers = src_info.get('movers') or []
        if self.mover and self.mover not in movers:
            raise base.PreflightError(
                "The source DTN service at %s has no mover '%s' (it has: %s)."
                % (self.source.endpoint, self.mover,
                   ', '.join(movers) or 'none'))
        client = self.source.client(self.request_timeout)
        for side in (self.source, self.dest):
            try:
                node = client.node(side.node)
            except dtn_client.DTNClientError as exc:
                if exc.status == 404:
                    raise base.PreflightError(
                        "The source DTN service at %s does not know the %s "
                        "DTN node '%s'; register it there with `openstack "
                        "overcloud dtn node add`." % (
                            self.source.endpoint, side.label, side.node))
                raise base.PreflightError('Cannot use the source DTN: %s.'
                                          % _lower_first(exc))
            exports = (node.get('exports') or {}).values()
            for path in (side.path, side.volumes, side.images):
                if path and not any(_inside(path, root) for root in exports):
                    raise base.PreflightError(
                        "The %s DTN directory %s is outside the exports of "
                        "node '%s' (%s)." % (
                            side.label, path, side.node,
                            ', '.join(sorted(exports)) or 'none'))

    def _check_space(self, size):
        src = os.stat(self.source.directory).st_dev
        dst = os.stat(self.dest.directory).st_dev
        needs = {self.source.directory: size}
        if src == dst:   # both copies on one file system (one machine)
            needs[self.source.directory] = 2 * size
        else:
            needs[self.dest.directory] = size
        for directory, needed in needs.items():
            free = sharedfs._free_bytes(directory)
            if needed > free:
                raise base.PreflightError(
                    'The DTN directory %s has %d bytes free; %d are needed.'
                    % (directory, free, needed))

    def _probe(self):
        """Send a small file through the DTNs; it must come out in the
        destination directory. Proves the mover and the directory mapping."""
        data = os.urandom(4096)
        fd, local = tempfile.mkstemp(prefix=_PROBE_PREFIX,
                                     dir=self.source.directory)
        name = os.path.basename(local)
        arrived = os.path.join(self.dest.directory, name)
        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(data)
            os.chmod(local, _STAGED_MODE)
            try:
                self._run_transfer(name, len(data), None,
                                   timeout=max(self.request_timeout, 120))
            except base.TransportError as exc:
                raise base.PreflightError(
                    'A probe transfer through the DTNs failed: %s'
                    % _lower_first(exc) + '.')
            try:
                with open(arrived, 'rb') as handle:
                    same = handle.read() == data
            except FileNotFoundError:
                same = None
            if same is None:
                raise base.PreflightError(
                    'A probe file sent to %s on DTN node %s did not appear '
                    'in %s here: the destination directory and its path on '
                    'the DTN must be the same directory (remove %s there).'
                    % (self.dest.path, self.dest.node, self.dest.directory,
                       name))
            if not same:
                raise base.PreflightError(
                    'A probe file sent through the DTNs arrived in %s with '
                    'other bytes than were sent.' % self.dest.directory)
        finally:
            for path in (local, arrived):
                _remove(path)

    # --- transfer ---

    def transfer(self, source, dest, progress):
        self._validate()
        if not (self.source.node and self.dest.node):
            self._discover()
        start = time.monotonic()
        stager = sharedfs.SharedfsTransport(directory=self.source.directory,
                                            keep=True)
        staged, sha512, count = stager.stage(source, progress)
        os.chmod(staged, _STAGED_MODE)
        name = os.path.basename(staged)
        arrived = os.path.join(self.dest.directory, name)
        self._cross(source, name, arrived, count, progress)
        try:
            with open(arrived, 'rb') as data:
                chunks = streams.VerifiedChunks(
                    data.read, sha512, 'image %s at the destination DTN (%s)'
                    % (source.id, arrived), count, progress)
                streams.upload(dest, chunks, count)
        except base.HashMismatch:
            # The DTN copy is bad; the staged one was checked against the
            # source, so the next attempt only crosses again.
            _remove(arrived)
            raise
        except OSError as exc:
            raise base.TransportError('Reading image %s from %s failed: %s.'
                                      % (source.id, arrived,
                                         exc.strerror or exc))
        if not self.keep:
            _remove(arrived)
            _remove(staged)
        return base.Result(count, time.monotonic() - start, sha512)

    def _cross(self, source, name, arrived, count, progress):
        """Make ``arrived`` a copy of the staged file, through the DTNs."""
        try:
            size = os.path.getsize(arrived)
        except FileNotFoundError:
            size = None
        if size == count:
            LOG.info('Image %s already arrived at the destination DTN (%s); '
                     'not sending it again.', source.id, arrived)
            return
        if size is not None:
            LOG.info('Discarding %s (%d of %d bytes) from an earlier run.',
                     arrived, size, count)
            _remove(arrived)
        try:
            self._run_transfer(name, count, progress,
                               timeout=self.transfer_timeout)
        except base.TransportError as exc:
            raise base.TransportError('Moving image %s between the DTNs '
                                      'failed: %s' % (source.id,
                                                      _lower_first(exc)) + '.')
        try:
            size = os.path.getsize(arrived)
        except FileNotFoundError:
            size = None
        if size != count:
            raise base.TransportError(
                'The DTN transfer of image %s ended, but %s holds %s of %d '
                'bytes.' % (source.id, arrived,
                            'none' if size is None else size, count))

    def _run_transfer(self, name, count, progress, timeout):
        """Start (or find) the DTN transfer of ``name`` and wait for it."""
        src_path = posixpath.join(self.source.path, name)
        dst_path = posixpath.join(self.dest.path, name)
        client = self.source.client(self.request_timeout)
        try:
            row = self._running(client, src_path, dst_path)
            if row is None:
                row = client.start_transfer(
                    {'node': self.source.node, 'path': src_path},
                    {'node': self.dest.node, 'path': dst_path},
                    mover=self.mover, streams=self.streams)
            LOG.info('DTN transfer %s: %s:%s -> %s:%s (mover %s)', row['id'],
                     self.source.node, src_path, self.dest.node, dst_path,
                     row.get('mover'))

            def report(current):
                if progress is not None:
                    progress(current.get('bytes_done') or 0, count)

            done = self._follow(client, row['id'], timeout, report)
        except dtn_client.DTNClientError as exc:
            raise base.TransportError(
                'DTN %s to DTN %s (through %s): %s'
                % (self.source.node, self.dest.node, self.source.endpoint,
                   _lower_first(exc)))
        LOG.info('DTN transfer %s done: %s bytes at %s MB/s', done['id'],
                 done.get('bytes_done'), done.get('avg_mb_per_s'))
        return done

    def _running(self, client, src_path, dst_path):
        """A transfer of the same file still under way (an earlier run)."""
        for row in client.transfers():
            if row.get('state') in _ACTIVE and row.get('source') == {
                    'node': self.source.node, 'path': src_path} and \
                    row.get('dest') == {'node': self.dest.node,
                                        'path': dst_path}:
                LOG.info('Waiting for DTN transfer %s started by an earlier '
                         'run.', row['id'])
                return row
        return None

    def _follow(self, client, transfer_id, timeout, report):
        """Wait for a transfer or sync; cancel it when the wait times out."""
        try:
            return client.wait_transfer(
                transfer_id, timeout=timeout, interval=self.poll_interval,
                progress=report)
        except dtn_client.WaitTimeout:
            self._cancel(client, transfer_id)
            raise

    @staticmethod
    def _cancel(client, transfer_id):
        try:
            client.cancel_transfer(transfer_id)
        except dtn_client.DTNClientError as exc:
            LOG.warning('Could not cancel DTN transfer %s: %s', transfer_id,
                        exc)


    # --- deltas (warm migration) ---

    def reaches_volumes(self):
        return bool(self.source.volumes and self.dest.volumes)

    def reads_disks(self):
        return bool(self.source.disks)

    def check_deltas(self, images=False):
        """Both Cinder shares (and with ``images`` the source Glance
        store or Nova instance store) are named, absolute and inside their
        DTN's exports, and the source DTN service can run syncs."""
        roots = self.source.images or self.source.disks
        missing = [flag for flag, value in (
            ('--dtn-source-volumes', self.source.volumes),
            ('--dtn-dest-volumes', self.dest.volumes),
            ('--dtn-source-disks or --dtn-source-images',
             roots if images else '-'),
        ) if not value]
        if missing:
            raise base.PreflightError(
                'Warm migration with the dtn transport needs %s: the Cinder '
                'share of each site (and for --dest-boot-volume the source '
                'Nova instance store or Glance store) as its DTN names it.'
                % ' and '.join(missing))
        for path, what in ((self.source.volumes, 'source Cinder share'),
                           (self.dest.volumes, 'destination Cinder share'),
                           (self.source.images, 'source Glance store'),
                           (self.source.disks, 'source disk template')):
            if path and not posixpath.isabs(path):
                raise base.PreflightError('The %s %r is not an absolute path.'
                                          % (what, path))
        if self.source.disks:
            disk_path(self.source.disks, '0', 'host')   # the template's form
        self._discover()
        info = self._info(self.source)
        if 'sync' not in (info.get('features') or ()):
            raise base.PreflightError(
                'The source DTN service at %s cannot run syncs (delta '
                'rounds); upgrade both DTN services.' % self.source.endpoint)

    def _location(self, side, directory, name):
        return {'node': side.node, 'path': posixpath.join(directory, name)}

    def sync_volume(self, source_volume_id, dest_volume_id, key, progress):
        if not (self.source.node and self.dest.node):
            self._discover()
        return self._sync(
            self._location(self.source, self.source.volumes,
                           VOLUME_FILE % source_volume_id),
            self._location(self.dest, self.dest.volumes,
                           VOLUME_FILE % dest_volume_id),
            key, progress, 'volume %s' % source_volume_id)

    def sync_image(self, image_id, dest_volume_id, key, progress):
        if not (self.source.node and self.dest.node):
            self._discover()
        return self._sync(
            self._location(self.source, self.source.images, image_id),
            self._location(self.dest, self.dest.volumes,
                           VOLUME_FILE % dest_volume_id),
            key, progress, 'image %s' % image_id)

    def sync_disk(self, server_id, host, dest_volume_id, key, progress):
        if not (self.source.node and self.dest.node):
            self._discover()
        return self._sync(
            {'node': self.source.node,
             'path': disk_path(self.source.disks, server_id, host)},
            self._location(self.dest, self.dest.volumes,
                           VOLUME_FILE % dest_volume_id),
            key, progress, 'the root disk of server %s' % server_id,
            raw=True)

    def _sync(self, src, dst, key, progress, what, raw=False):
        """One round of ``key`` from ``src`` into ``dst`` (locations);
        ``raw``: the source must be a raw disk."""
        client = self.source.client(self.request_timeout)
        start = time.monotonic()
        try:
            try:
                row = client.start_sync(src, dst, key=key,
                                        streams=self.streams, raw=raw)
            except dtn_client.DTNClientError as exc:
                if exc.status != 409:
                    raise
                # A round an interrupted run started goes on inside the
                # DTN service: wait for it, then run ours (it finds
                # little to do).
                self._wait_for_round(client, key)
                row = client.start_sync(src, dst, key=key,
                                        streams=self.streams, raw=raw)

            def report(current):
                if progress is not None:
                    progress(current.get('bytes_done') or 0,
                             current.get('size'))

            # A cut-over's round is downtime: the service answers the
            # moment it ends (the follow waits in the service).
            done = self._follow(client, row['id'], self.transfer_timeout,
                                report)
        except dtn_client.DTNClientError as exc:
            raise base.TransportError(
                'Syncing %s into %s:%s (through %s): %s'
                % (what, dst['node'], dst['path'], self.source.endpoint,
                   _lower_first(exc)))
        return base.SyncResult(
            size=int(done.get('size') or 0), bytes=int(done.get('bytes') or 0),
            changed_bytes=int(done.get('changed_bytes') or 0),
            repaired_bytes=int(done.get('repaired_bytes') or 0),
            seconds=time.monotonic() - start, round=int(done.get('round')
                                                        or 0))

    def _wait_for_round(self, client, key):
        for row in client.transfers():
            if row.get('mode') == 'sync' and row.get('key') == key \
                    and row.get('state') in _ACTIVE:
                LOG.info('Waiting for sync %s of %s started by an earlier '
                         'run.', row['id'], key)
                try:
                    client.wait_transfer(row['id'],
                                         timeout=self.transfer_timeout,
                                         interval=self.poll_interval)
                except dtn_client.TransferFailed:
                    pass

    def forget_sync(self, key):
        try:
            self.source.client(self.request_timeout).forget_sync(key)
        except dtn_client.DTNClientError as exc:
            raise base.TransportError('The DTNs could not drop the sync '
                                      'state of %s: %s.'
                                      % (key, _lower_first(exc)))


#: what {server} and {host} of --dtn-source-disks may stand for
_DISK_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$')
_DISK_FIELD = re.compile(r'{([^{}]*)}')


def disk_path(template, server_id, host):
    """The path ``template`` (of --dtn-source-disks) gives for the root
    disk of server ``server_id`` on compute host ``host``."""
    fields = set(_DISK_FIELD.findall(template))
    if 'server' not in fields or not fields <= {'server', 'host'}:
        raise base.PreflightError(
            'The source disk template %r must hold {server} and may hold '
            '{host}, nothing else in braces.' % template)
    values = {'server': server_id, 'host': host}
    for field in fields:
        value = values[field]
        if not value or not _DISK_NAME.match(value):
            raise base.TransportError(
                'The %s %r cannot name a disk file of the source instance '
                'store (template %s).' % (field, value, template))
    path = template
    for field in fields:
        path = path.replace('{%s}' % field, values[field])
    return posixpath.normpath(path)


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
