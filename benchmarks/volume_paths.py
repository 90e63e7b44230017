"""Which Cinder calls should move a volume? Each candidate, measured.

Needs a running devcloud with Cinder (``overcloud-devcloud up``;
OS_CLIENT_CONFIG_FILE from ``overcloud-devcloud env``).  Makes a volume in
devcloud-a (default 1 GiB, VM-like: about 75% zero blocks, written into the
volume's file on the cloud's share as a guest would), then times, side by
side in one run, every step a volume migration could be built from:

source (devcloud-a)
  upload-raw      volume -> Glance image, disk_format raw (every byte)
  upload-qcow2    volume -> Glance image, disk_format qcow2 (zeros dropped)
  snap+clone      in-use style snapshot, then a volume from it (what a
                  consistent copy of an attached volume costs first)
  backup          a full backup (posix driver) of the volume
  share-read      read the volume's file on the share (a DTN's bare read)
between
  stream-raw      the raw image, source Glance -> destination Glance
  stream-qcow2    the qcow2 image, the same way
destination (devcloud-b)
  create-raw      a volume from the raw image
  create-qcow2    a volume from the qcow2 image
  share-write     an empty volume, its file written at the source's data
                  ranges from a buffer in memory (data blocks only, fsync:
                  a DTN's bare write, no read)
both shares
  share-both      share-read and share-write started at the same moment,
                  on two threads: what the disk gives a read and a write
                  when both shares are on one device (as here), the bound
                  of any path that reads one share and writes the other

and the paths made of them:

  naive           upload-raw + download to a file + upload the file +
                  create-raw (store and forward)
  api             upload-qcow2 + stream-qcow2 + create-qcow2
  share           the source file copied into the destination volume's
                  file, read and write overlapped (the bare DTN path, here
                  without a link between them)
  dtn-sync        what ``migrate`` does when its transport reaches both
                  Cinder shares (``--dtn-source-volumes``,
                  ``--dtn-dest-volumes``; every warm round too): an empty
                  destination volume, then one sync round through two DTN
                  services on loopback (hashes, authenticated frames, zero
                  blocks skipped, fsync)
  dtn-cached      dtn-sync with the source file already in the page
                  cache: no disk read at all, so what is left against
                  share-write (a bare write alone) is the round's own cost
                  (its pipeline and the disk writing while it runs)

Prints seconds and logical MB/s (volume bytes / seconds) of each, the
ratios against ``naive``, against the slower of each path's bare read and
bare write (each timed alone), and for the share paths against
``share-both``; the medium the shares are on and whether it is one device.
The share steps take about a second each, so they run ``--rounds`` times,
interleaved, and the median is printed.  The steps that read the source
file on the share (share-read, share-both, share-copy, dtn-sync) first drop
it from the page cache, so each reads it from the disk.  Absolute numbers
vary with the machine's load; ratios come from one run.  Everything it
makes is deleted at the end.
"""

import argparse
import contextlib
import errno
import os
import subprocess
import sys
import tempfile
import time

import secrets
import shutil
import statistics
import threading

import openstack

import warm_migrate

from overcloud_devcloud import layout as layout_mod
from overcloud_migrate.dtn import client as dtn_client
from overcloud_migrate.transports import base as transport_base
from overcloud_migrate.transports import dtn as dtn_transport
from overcloud_migrate.transports import glance as glance_transport

CHUNK = 1024 * 1024
GIB = 1024 ** 3
PREFIX = 'bench-vol'
TIMEOUT = 1200


def vm_blocks(size, data_fraction=0.25, seed=b'bench'):
    """(offset, bytes) of the data blocks of a VM-like disk: 1 MiB of
    random bytes every 1/data_fraction MiB, zeros between."""
    step = max(1, round(1 / data_fraction))
    for index in range(0, size // CHUNK, step):
        yield index * CHUNK, os.urandom(CHUNK)


def medium(path):
    result = subprocess.run(['findmnt', '-n', '-o', 'FSTYPE,SOURCE', '-T',
                             str(path)], capture_output=True, text=True)
    return result.stdout.strip() or 'unknown'


def timed(fn):
    start = time.monotonic()
    result = fn()
    return time.monotonic() - start, result


def wait_volume(conn, volume, status='available'):
    return conn.block_storage.wait_for_status(
        volume, status, failures=['error'], interval=0.5, wait=TIMEOUT)


def wait_image(conn, image_id):
    return conn.image.wait_for_status(
        conn.image.get_image(image_id), 'active',
        failures=['killed', 'deleted'], interval=0.5, wait=TIMEOUT)


def volume_file(layout, cloud, volume_id):
    return layout.volume_share(cloud) / ('volume-%s' % volume_id)


def data_ranges(fd, size):
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        offset = end


def read_file(path):
    """Read every data range of a sparse file, as a DTN sender would."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        for start, end in data_ranges(fd, size):
            offset = start
            while offset < end:
                n = len(os.pread(fd, min(4 * CHUNK, end - offset), offset))
                if n <= 0:
                    raise OSError(errno.EIO, 'short read')
                offset += n
    finally:
        os.close(fd)


def drop_cached(path):
    """Evict ``path`` (written and fsynced, so clean) from the page cache:
    the next read of it comes from the disk, as a DTN's would."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def file_ranges(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return list(data_ranges(fd, os.fstat(fd).st_size))
    finally:
        os.close(fd)


def write_ranges(ranges, dst):
    """A DTN's bare write: ``ranges`` (the source's data ranges) written in
    place into ``dst`` from a buffer already in memory, then fsync."""
    buffer = os.urandom(4 * CHUNK)
    dfd = os.open(dst, os.O_WRONLY)
    try:
        for start, end in ranges:
            offset = start
            while offset < end:
                offset += os.pwrite(
                    dfd, buffer[:min(len(buffer), end - offset)], offset)
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_and_write(path, ranges, dst):
    """share-read of ``path`` and share-write of ``ranges`` into ``dst``,
    started together on two threads (the first error is raised)."""
    errors = []

    def run(fn, *args):
        try:
            fn(*args)
        except Exception as exc:    # raised below, in the caller
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(read_file, path)),
               threading.Thread(target=run, args=(write_ranges, ranges, dst))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def same_device(*paths):
    return len({os.stat(path).st_dev for path in paths}) == 1


def copy_file(src, dst):
    """The share path without a link: data ranges of ``src`` written in
    place into ``dst`` (an existing file of the same size), then fsync."""
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY)
    try:
        size = os.fstat(sfd).st_size
        for start, end in data_ranges(sfd, size):
            offset = start
            while offset < end:
                data = os.pread(sfd, min(4 * CHUNK, end - offset), offset)
                if not data.strip(b'\0'):
                    offset += len(data)     # an allocated block of zeros
                    continue
                os.pwrite(dfd, data, offset)
                offset += len(data)
        os.fsync(dfd)
    finally:
        os.close(sfd)
        os.close(dfd)


def download_to_file(conn, image_id, path):
    response = conn.image.get('/images/%s/file' % image_id, stream=True)
    with open(path, 'wb') as handle:
        for chunk in response.iter_content(CHUNK):
            handle.write(chunk)


def upload_file(conn, name, disk_format, path):
    image = conn.image.create_image(name=name, disk_format=disk_format,
                                    container_format='bare')
    with open(path, 'rb') as handle:
        response = conn.image.put(
            '/images/%s/file' % image.id, data=handle,
            headers={'Content-Type': 'application/octet-stream'})
    if response.status_code >= 300:
        raise RuntimeError('upload failed: HTTP %d' % response.status_code)
    return wait_image(conn, image.id)


class Run:

    def __init__(self, size, backup=True, rounds=3):
        self.size = size
        self.backup = backup
        self.rounds = rounds
        self.samples = {}
        self.layout = layout_mod.Layout()
        self.src = openstack.connect(cloud='devcloud-a')
        self.dst = openstack.connect(cloud='devcloud-b')
        self.cleanups = []
        self.seconds = {}
        self.notes = {}

    def later(self, fn, *args, **kwargs):
        self.cleanups.append(lambda: fn(*args, **kwargs))

    def clean(self):
        for action in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                action()

    def step(self, name, fn):
        print('  %-14s ...' % name, end='', flush=True, file=sys.stderr)
        seconds, result = timed(fn)
        self.samples.setdefault(name, []).append(seconds)
        self.seconds[name] = statistics.median(self.samples[name])
        print(' %.2f s' % seconds, file=sys.stderr)
        return result

    def new_volume(self, conn, name, **attrs):
        volume = conn.block_storage.create_volume(
            name='%s-%s' % (PREFIX, name), size=self.size // GIB, **attrs)
        self.later(conn.block_storage.delete_volume, volume.id,
                   ignore_missing=True)
        return wait_volume(conn, volume)

    def upload(self, volume, disk_format):
        name = '%s-%s' % (PREFIX, disk_format)

        def go():
            reply = self.src.block_storage.upload_volume_to_image(
                volume, name, disk_format=disk_format,
                container_format='bare')
            image_id = reply['image_id']
            self.later(self.src.image.delete_image, image_id,
                       ignore_missing=True)
            image = wait_image(self.src, image_id)
            # Cinder lets the volume go once the image is active; a fresh
            # read (the SDK's wait returns at once on the cached status).
            wait_volume(self.src, self.src.block_storage.get_volume(
                volume.id))
            return image
        return self.step('upload-' + disk_format, go)

    def stream(self, image, label):
        def go():
            dest = self.dst.image.create_image(
                name=image.name, disk_format=image.disk_format,
                container_format='bare')
            self.later(self.dst.image.delete_image, dest.id,
                       ignore_missing=True)
            glance_transport.GlanceTransport().transfer(
                transport_base.ImageRef(self.src, image.id, image.size,
                                        image.hash_algo, image.hash_value,
                                        image.name),
                transport_base.ImageRef(self.dst, dest.id),
                lambda done, total: None)
            return wait_image(self.dst, dest.id)
        return self.step('stream-' + label, go)

    def run(self):
        print('making a %d GiB VM-like volume in devcloud-a' %
              (self.size // GIB), file=sys.stderr)
        source = self.new_volume(self.src, 'source')
        path = volume_file(self.layout, 'devcloud-a', source.id)
        fd = os.open(path, os.O_WRONLY)
        try:
            for offset, data in vm_blocks(self.size):
                os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)

        raw = self.upload(source, 'raw')
        qcow2 = self.upload(source, 'qcow2')
        self.notes['image MB raw / qcow2'] = '%.0f / %.0f' % (
            raw.size / 1e6, qcow2.size / 1e6)

        def snap_clone():
            snap = self.src.block_storage.create_snapshot(
                volume_id=source.id, name=PREFIX + '-snap', is_forced=True)
            self.later(self.src.block_storage.delete_snapshot, snap.id,
                       ignore_missing=True)
            self.src.block_storage.wait_for_status(
                snap, 'available', failures=['error'], interval=0.5,
                wait=TIMEOUT)
            return self.new_volume(self.src, 'clone', snapshot_id=snap.id)
        self.step('snap+clone', snap_clone)

        def backup():
            made = self.src.block_storage.create_backup(
                volume_id=source.id, name=PREFIX + '-backup', force=True)
            self.later(self.src.block_storage.delete_backup, made.id,
                       ignore_missing=True)
            return self.src.block_storage.wait_for_status(
                made, 'available', failures=['error'], interval=0.5,
                wait=TIMEOUT)
        if self.backup:
            self.step('backup', backup)

        dest_raw = self.stream(raw, 'raw')
        dest_qcow2 = self.stream(qcow2, 'qcow2')
        self.step('create-raw', lambda: self.new_volume(
            self.dst, 'from-raw', image_id=dest_raw.id))
        self.step('create-qcow2', lambda: self.new_volume(
            self.dst, 'from-qcow2', image_id=dest_qcow2.id))

        with tempfile.TemporaryDirectory(dir=self.layout.home) as tmp:
            staged = os.path.join(tmp, 'image.raw')
            self.step('download-file', lambda: download_to_file(
                self.src, raw.id, staged))
            again = self.step('upload-file', lambda: upload_file(
                self.dst, PREFIX + '-naive', 'raw', staged))
            self.later(self.dst.image.delete_image, again.id,
                       ignore_missing=True)

        ranges = file_ranges(path)
        transport = self.dtn_transport()
        for _ in range(self.rounds):
            self.share_steps(source, path, ranges, transport)
        share_b = self.layout.volume_share('devcloud-b')
        self.notes['source reads'] = ('from the disk (the source file is '
                                      'dropped from the page cache first)')
        self.notes['share media'] = '%s -> %s (%s)' % (
            medium(path), medium(share_b),
            'one device' if same_device(path, share_b) else 'two devices')
        self.notes['share steps'] = 'median of %d rounds' % self.rounds

    def empty_file(self, name):
        """The file of a new empty destination volume (sparse)."""
        volume = self.new_volume(self.dst, name)
        return volume, volume_file(self.layout, 'devcloud-b', volume.id)

    def share_steps(self, source, path, ranges, transport):
        """One round of the steps on the shares, each into a new empty
        destination volume, the source read from the disk each time."""
        _, written = self.empty_file('write-target')
        _, both = self.empty_file('both-target')
        _, copied = self.empty_file('share-target')
        synced, _ = self.empty_file('sync-target')
        os.sync()
        drop_cached(path)
        self.step('share-read', lambda: read_file(path))
        self.step('share-write', lambda: write_ranges(ranges, written))
        drop_cached(path)
        self.step('share-both', lambda: read_and_write(path, ranges, both))
        drop_cached(path)
        self.step('share-copy', lambda: copy_file(path, copied))
        drop_cached(path)
        os.sync()
        key = 'bench-%s' % synced.id
        self.step('dtn-sync', lambda: transport.sync_volume(
            source.id, synced.id, key, lambda done, total: None))
        transport.forget_sync(key)
        cached, _ = self.empty_file('cached-target')
        read_file(path)             # the source now in the page cache
        os.sync()
        key = 'bench-%s' % cached.id
        self.step('dtn-cached', lambda: transport.sync_volume(
            source.id, cached.id, key, lambda done, total: None))
        transport.forget_sync(key)

    def dtn_transport(self):
        """The dtn transport between two DTN services on loopback, each
        exporting its cloud's Cinder share."""
        work = tempfile.mkdtemp(prefix='vol-paths-', dir=self.layout.home)
        self.later(shutil.rmtree, work, ignore_errors=True)
        token = os.path.join(work, 'data-token')
        with open(token, 'w') as handle:
            handle.write(secrets.token_urlsafe(24) + '\n')
        sites = []
        for name, cloud in (('site-a', 'devcloud-a'),
                            ('site-b', 'devcloud-b')):
            export = os.path.join(work, name)
            os.makedirs(export)
            sites.append(warm_migrate.Dtn(
                name, '127.0.0.1', export,
                str(self.layout.volume_share(cloud)), work, token))
            self.later(sites[-1].stop)
        a, b = sites
        dtn_client.DTNClient(a.url, token=a.token).add_node(
            'site-b', '127.0.0.1', {'data': b.export, 'volumes': b.share},
            data_port=b.data_port, endpoint=b.url)
        transport = dtn_transport.DtnTransport(
            source_endpoint=a.url, dest_endpoint=b.url,
            source_dir=a.export, dest_dir=b.export,
            source_token_file=a.token_file, dest_token_file=b.token_file,
            source_volumes=a.share, dest_volumes=b.share, probe=False)
        transport.check_deltas()
        return transport

    def report(self):
        s = self.seconds
        paths = {
            'naive': s['upload-raw'] + s['download-file'] + s['upload-file']
            + s['create-raw'],
            'api': s['upload-qcow2'] + s['stream-qcow2'] + s['create-qcow2'],
            # what `migrate` does with an in-use volume: the same calls, in
            # this order, after a snapshot and a volume from it
            'ours': s['snap+clone'] + s['upload-qcow2'] + s['stream-qcow2']
            + s['create-qcow2'],
            'share': s['share-copy'],
            'dtn-sync': s['dtn-sync'],
            'dtn-cached': s['dtn-cached'],
        }
        bare = {'api': max(s['upload-qcow2'], s['create-qcow2']),
                'ours': max(s['upload-qcow2'], s['create-qcow2']),
                'share': max(s['share-read'], s['share-write']),
                'dtn-sync': max(s['share-read'], s['share-write']),
                # no disk read: against the bare write alone
                'dtn-cached': s['share-write']}
        # one device under both shares: a read and a write at once
        both = {'share': s['share-both'], 'dtn-sync': s['share-both']}
        mb = self.size / 1e6
        print('\nvolume: %d GiB, ~75%% zero blocks; %s'
              % (self.size // GIB, '; '.join('%s: %s' % kv
                                              for kv in self.notes.items())))
        print('\n%-16s %8s %10s' % ('step', 'seconds', 'MB/s'))
        for name, seconds in s.items():
            print('%-16s %8.2f %10.0f' % (name, seconds, mb / seconds))
        print('\n%-10s %8s %10s %10s %16s %12s' % (
            'path', 'seconds', 'MB/s', '/ naive', '/ slower bare',
            '/ bare both'))
        for name, seconds in paths.items():
            slower = ('%16.2f' % (bare[name] / seconds) if name in bare
                      else '%16s' % '-')
            at_once = ('%12.2f' % (both[name] / seconds) if name in both
                       else '%12s' % '-')
            print('%-10s %8.2f %10.0f %10.2f %s %s' % (
                name, seconds, mb / seconds, paths['naive'] / seconds,
                slower, at_once))
        print('\n/ naive: how many times faster than the naive path; '
              '/ slower bare: throughput against the slower of the path\'s '
              'bare read and bare write (api and ours: upload-qcow2, the '
              'source Cinder reading the volume through the API, and '
              'create-qcow2, the destination Cinder writing it; share and '
              'dtn-sync: share-read and share-write, each timed alone; '
              'dtn-cached, which reads nothing from the disk: share-write); '
              '/ bare both: against share-read and share-write run at the '
              'same time (share-both), what one device under both shares '
              'can give a path that reads one and writes the other.')
        print('ours: snap+clone + upload-qcow2 + stream-qcow2 + '
              'create-qcow2, the calls `migrate` makes for an in-use '
              'volume through the APIs; api: the same for an available '
              'one; dtn-sync: the path `migrate` takes when its dtn '
              'transport reaches both Cinder shares.')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-gib', type=int, default=1,
                        help='volume size in GiB (default: 1)')
    parser.add_argument('--no-backup', action='store_true',
                        help='skip the backup step (default: time it)')
    parser.add_argument('--rounds', type=int, default=3,
                        help='rounds of the share steps, interleaved; the '
                        'median is printed (default: 3)')
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error('--rounds must be at least 1')
    run = Run(args.size_gib * GIB, backup=not args.no_backup,
              rounds=args.rounds)
    try:
        run.run()
        run.report()
    finally:
        run.clean()


if __name__ == '__main__':
    main()
