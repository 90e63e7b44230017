"""``sharedfs``: stage the image in a directory, then upload it from there.

The directory is typically the seed's NFS mount of a DTN export, so the
staged file is also on the DTN. The download goes to ``<id>.part``
(hashed on the way), is fsync'ed and renamed to ``<id>.img``; the upload
streams that file to the destination Glance and checks that it still has
the hash of the download. A ``.part`` left by an interrupted run is
resumed with an HTTP ``Range`` request (its prefix is re-hashed, so the
final sha512 covers the whole file); a server that ignores ``Range`` makes
the driver start again from byte 0, never append.
"""

import errno
import fcntl
import hashlib
import logging
import os
import tempfile
import time

from overcloud_migrate import handoff
from overcloud_migrate.transports import base
from overcloud_migrate.transports import streams

LOG = logging.getLogger(__name__)


def _free_bytes(directory):
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def _hash_prefix(fd, length):
    """sha512 of the first ``length`` bytes of ``fd``."""
    digest = hashlib.sha512()
    done = 0
    while done < length:
        block = os.pread(fd, min(streams.CHUNK, length - done), done)
        if not block:
            raise base.TransportError('The staged file shrank while it was '
                                      'being read.')
        digest.update(block)
        done += len(block)
    return digest


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some network file systems refuse fsync on a dir
        pass
    finally:
        os.close(fd)


def check_directory(directory, what, missing_message):
    """Raise PreflightError unless ``directory`` is a writable directory.

    ``what`` names it in the messages ("sharedfs directory"); a real probe
    file is created and removed: os.access() is fooled by root, read-only
    mounts and NFS root squashing.
    """
    if not directory:
        raise base.PreflightError(missing_message)
    if not os.path.exists(directory):
        raise base.PreflightError('The %s %s does not exist.'
                                  % (what, directory))
    if not os.path.isdir(directory):
        raise base.PreflightError('The %s %s is not a directory.'
                                  % (what, directory))
    try:
        fd, probe = tempfile.mkstemp(prefix='.overcloud-migrate-probe-',
                                     dir=directory)
    except OSError as exc:
        raise base.PreflightError('The %s %s is not writable: %s.'
                                  % (what, directory, exc.strerror or exc))
    os.close(fd)
    os.unlink(probe)


class SharedfsTransport(base.Transport):
    """Stage in a shared directory (an NFS mount of a DTN export), then upload."""

    name = 'sharedfs'
    capabilities = frozenset({'staging', 'resume', 'handoff'})
    options = (
        base.Opt('directory', flag='dir', metavar='<directory>',
                 required=True,
                 help='The staging directory (for example the NFS mount of '
                      'a DTN export)'),
    )
    handoff_option = 'directory'

    def __init__(self, directory=None, keep=False, **options):
        super().__init__(directory=directory, keep=keep, **options)
        self.directory = directory
        self.keep = bool(keep)

    @classmethod
    def available(cls):
        """Needs nothing but a local (or mounted) directory."""
        return True

    # --- preflight ---

    def check(self, size=None):
        """Raise PreflightError if the directory is missing, not a
        directory, not writable, or (``size`` given) too small."""
        check_directory(self.directory, 'sharedfs directory',
                        'The sharedfs transport needs a directory (none was '
                        'given).')
        if size is not None:
            self._check_space(size)

    def _check_space(self, needed):
        free = _free_bytes(self.directory)
        if needed > free:
            raise base.PreflightError(
                'The sharedfs directory %s has %d bytes free; %d are needed.'
                % (self.directory, free, needed))

    # --- transfer ---

    def staged_path(self, image_id, suffix='.img'):
        if not image_id or '/' in image_id or image_id in ('.', '..'):
            raise base.TransportError('Refusing to stage an image with the '
                                      'ID %r.' % image_id)
        return os.path.join(self.directory, image_id + suffix)

    def transfer(self, source, dest, progress):
        start = time.monotonic()
        staged, sha512, count = self.stage(source, progress)
        with open(staged, 'rb') as data:
            chunks = streams.VerifiedChunks(
                data.read, sha512, 'image %s in %s' % (source.id, staged),
                count, progress)
            try:
                streams.upload(dest, chunks, count)
            except base.HashMismatch:
                # The file is bad; the next attempt must download again.
                self._remove(staged)
                raise
        if not self.keep:
            self._remove(staged)
        return base.Result(count, time.monotonic() - start, sha512)

    def stage(self, source, progress):
        """Make ``<id>.img`` hold the source image's data.

        :returns: ``(path, sha512, size)``.
        """
        try:
            return self._stage(source, progress)
        except OSError as exc:
            raise base.TransportError(
                'Staging image %s in %s failed: %s.'
                % (source.id, self.directory, exc.strerror or exc))

    def _stage(self, source, progress):
        final = self.staged_path(source.id)
        part = self.staged_path(source.id, '.part')
        return self._fetch(source, final, part, progress)

    def _fetch(self, source, final, part, progress):
        """Download ``source`` into ``part`` (resuming it), check it,
        fsync, rename to ``final``, fsync the directory; a complete
        ``final`` from an earlier run that still fits is reused."""
        if os.path.exists(final):
            done = self._reuse(final, source)
            if done:
                return done
        fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._lock(fd, source.id)
            count, digest = self._download(fd, source, progress)
            os.fsync(fd)
            sha512 = digest.hexdigest()
            try:
                streams.check_source(source, count, sha512)
            except base.TransportError:
                # Wrong bytes on disk: no later run may resume from them.
                os.unlink(part)
                raise
            os.rename(part, final)
        finally:
            os.close(fd)
        _fsync_dir(os.path.dirname(final))
        return final, sha512, count

    # --- handoff ---

    def _item_dir(self, item):
        if not handoff.valid_name(item):
            raise base.TransportError('Refusing the item name %r.' % item)
        path = os.path.join(self.directory, item)
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            if os.path.islink(path) or not os.path.isdir(path):
                raise base.TransportError('%s exists and is not a '
                                          'directory.' % path)
        else:
            _fsync_dir(self.directory)
        return path

    def handoff_image(self, source, item, name, progress):
        """Download into ``<dir>/<item>/.<name>.part``, then rename."""
        if not handoff.valid_name(name):
            raise base.TransportError('Refusing the file name %r.' % name)
        try:
            path = self._item_dir(item)
            _final, sha512, count = self._fetch(
                source, os.path.join(path, name),
                os.path.join(path, '.%s.part' % name), progress)
        except OSError as exc:
            raise base.TransportError(
                'Writing image %s into %s failed: %s.'
                % (source.id, self.directory, exc.strerror or exc))
        return count, sha512

    def handoff_file(self, item, name, data):
        if not handoff.valid_name(name):
            raise base.TransportError('Refusing the file name %r.' % name)
        try:
            handoff.write_file(os.path.join(self._item_dir(item), name),
                               data)
        except OSError as exc:
            raise base.TransportError('Writing %s of item %s into %s '
                                      'failed: %s.' % (
                                          name, item, self.directory,
                                          exc.strerror or exc))

    def _reuse(self, final, source):
        """A complete staged file from an earlier run, if it still fits."""
        fd = os.open(final, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            sha512 = _hash_prefix(fd, size).hexdigest()
        finally:
            os.close(fd)
        try:
            streams.check_source(source, size, sha512)
        except base.TransportError as exc:
            LOG.warning('Discarding %s from an earlier run: %s', final, exc)
            self._remove(final)
            return None
        LOG.info('Reusing %s (%d bytes) staged by an earlier run.',
                 final, size)
        return final, sha512, size

    @staticmethod
    def _lock(fd, image_id):
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise base.TransportError(
                    'Image %s is already being staged by another transfer.'
                    % image_id)
            # ENOLCK: an NFS mount without a lock service; go on unlocked.
            LOG.debug('No lock on the staged file of image %s: %s',
                      image_id, exc)

    def _download(self, fd, source, progress):
        """Fill ``fd`` from the source Glance, resuming where it ends."""
        offset = os.fstat(fd).st_size
        if source.size is not None and offset > source.size:
            offset = 0
        if offset:
            digest = _hash_prefix(fd, offset)
            if source.size is not None and offset == source.size:
                LOG.info('Image %s was already fully staged.', source.id)
                return offset, digest
        if source.size is not None:
            self._check_space(source.size - offset)
        response, start = streams.download(source, offset)
        try:
            if start == 0:
                os.ftruncate(fd, 0)
                digest = hashlib.sha512()
            else:
                LOG.info('Resuming image %s at byte %d.', source.id, start)
            reader = base.HashingReader(
                response.iter_content(streams.CHUNK), source.size, progress)
            reader.digest = digest
            reader.count = start
            position = start
            try:
                for chunk in reader:
                    view = memoryview(chunk)
                    while view:
                        written = os.pwrite(fd, view, position)
                        position += written
                        view = view[written:]
            except streams.STREAM_ERRORS as exc:
                raise base.TransportError(
                    'Staging image %s in %s stopped after %d bytes: %s; the '
                    'next attempt resumes from there.'
                    % (source.id, self.directory, position, exc))
        finally:
            response.close()
        return reader.count, reader.digest

    @staticmethod
    def _remove(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
