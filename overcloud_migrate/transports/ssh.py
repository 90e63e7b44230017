"""``ssh``: copy the image to a directory on a remote host, then upload it.

The seed's scp path, without the local staging file: the source Glance
download is streamed into ``ssh HOST 'cat > DIR/.ID.part-XXXX'``, moved to
``DIR/ID.img`` when complete, and streamed back with ``ssh HOST 'cat
DIR/ID.img'`` into the destination Glance upload. The file stays on the
remote host (``keep=True``, as in the seed), where the Receiver can pick it
up too. The read-back must hash to what was downloaded, or the upload is
cut short.

Locally, ``ssh`` runs from argv lists (never a shell). The remote side
always runs a shell, so every remote command is built from
:func:`shlex.quote`'d words and fixed operators only.
"""

import logging
import posixpath
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid

from overcloud_migrate import handoff
from overcloud_migrate.transports import base
from overcloud_migrate.transports import streams

LOG = logging.getLogger(__name__)

_OPTION = re.compile(r'^[A-Za-z][A-Za-z0-9]*[ =]\S')
#: exit codes of the remote directory probe
_NO_DIR, _NOT_WRITABLE = 3, 4


def _words(*words):
    return ' '.join(shlex.quote(str(word)) for word in words)


def _tail(stream):
    """The last lines of a captured stderr file, for error messages."""
    stream.seek(0)
    text = stream.read()[-2000:].decode('utf-8', 'replace').strip()
    return ' '.join(text.splitlines()[-3:])


class SshTransport(base.Transport):
    """Copy to a directory on a remote host over ssh (the seed's scp path)."""

    name = 'ssh'
    capabilities = frozenset({'staging', 'remote', 'handoff'})
    options = (
        base.Opt('host', metavar='<user@host>', required=True,
                 help='The host the image is copied to'),
        base.Opt('directory', flag='dir', metavar='<directory>',
                 required=True, help='The directory on that host'),
        base.Opt('identity_file', flag='key', metavar='<file>',
                 help='The identity file (default: ssh\'s own)'),
        base.Opt('port', metavar='<port>', type=int,
                 help='The port (default: 22)'),
    )
    handoff_option = 'directory'

    def __init__(self, host=None, directory=None, port=None,
                 identity_file=None, ssh_options=(), keep=True,
                 connect_timeout=10, ssh_binary='ssh', **options):
        super().__init__(host=host, directory=directory, port=port,
                         identity_file=identity_file,
                         ssh_options=list(ssh_options or ()), keep=keep,
                         connect_timeout=connect_timeout,
                         ssh_binary=ssh_binary, **options)
        self.host = host
        self.directory = directory
        self.port = port
        self.identity_file = identity_file
        self.ssh_options = list(ssh_options or ())
        self.keep = bool(keep)
        self.connect_timeout = int(connect_timeout)
        self.ssh_binary = ssh_binary

    @classmethod
    def available(cls):
        """An ``ssh`` client is on PATH."""
        return shutil.which('ssh') is not None

    # --- the ssh command line ---

    def _validate(self):
        if not self.host:
            raise base.PreflightError('The ssh transport needs a host '
                                      '(user@host); none was given.')
        if self.host.startswith('-') or any(c.isspace() for c in self.host):
            raise base.PreflightError('The ssh host %r is not a valid '
                                      'user@host.' % self.host)
        if not self.directory or not posixpath.isabs(self.directory):
            raise base.PreflightError(
                'The ssh transport needs an absolute remote directory on %s '
                '(got %r).' % (self.host, self.directory))
        if self.port is not None:
            try:
                port = int(self.port)
            except (TypeError, ValueError):
                port = 0
            if not 0 < port < 65536:
                raise base.PreflightError('The ssh port %r for %s is not a '
                                          'port number.'
                                          % (self.port, self.host))
        for option in self.ssh_options:
            if not _OPTION.match(str(option)):
                raise base.PreflightError(
                    'The ssh option %r is not of the form Key=Value (each '
                    'is passed to ssh as -o Key=Value).' % option)

    def argv(self, remote_command):
        """The local ssh argv running ``remote_command`` on the host."""
        argv = [self.ssh_binary, '-o', 'BatchMode=yes',
                '-o', 'ConnectTimeout=%d' % self.connect_timeout]
        if self.port is not None:
            argv += ['-p', str(int(self.port))]
        if self.identity_file:
            argv += ['-i', str(self.identity_file),
                     '-o', 'IdentitiesOnly=yes']
        for option in self.ssh_options:
            argv += ['-o', str(option)]
        return argv + ['--', self.host, remote_command]

    def _run(self, remote_command, timeout=None):
        """Run a short remote command; returns (returncode, stderr tail)."""
        with tempfile.TemporaryFile() as err:
            try:
                code = subprocess.run(
                    self.argv(remote_command), stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=err,
                    timeout=timeout or self.connect_timeout + 30).returncode
            except FileNotFoundError:
                raise base.PreflightError('The ssh client %r is not '
                                          'installed.' % self.ssh_binary)
            except subprocess.TimeoutExpired:
                return None, 'timed out'
            return code, _tail(err)

    # --- preflight ---

    def check(self, size=None):
        """ssh works in batch mode and the remote directory is writable."""
        self._validate()
        code, err = self._run('true')
        if code != 0:
            raise base.PreflightError(
                'Cannot run commands on %s over ssh: %s.'
                % (self.host, err or 'exit status %s' % code))
        directory = shlex.quote(self.directory)
        probe = shlex.quote(posixpath.join(
            self.directory, '.overcloud-migrate-probe.XXXXXX'))
        code, err = self._run(
            'test -d %s || exit %d; t=$(mktemp %s) || exit %d; rm -f -- "$t"'
            % (directory, _NO_DIR, probe, _NOT_WRITABLE))
        if code == _NO_DIR:
            raise base.PreflightError('The directory %s does not exist on '
                                      '%s.' % (self.directory, self.host))
        if code == _NOT_WRITABLE:
            raise base.PreflightError('The directory %s on %s is not '
                                      'writable: %s.'
                                      % (self.directory, self.host, err))
        if code != 0:
            raise base.PreflightError(
                'Checking the directory %s on %s failed: %s.'
                % (self.directory, self.host, err or 'exit status %s' % code))

    # --- transfer ---

    def remote_path(self, image_id):
        if not image_id or '/' in image_id or image_id in ('.', '..'):
            raise base.TransportError('Refusing to copy an image with the '
                                      'ID %r.' % image_id)
        return posixpath.join(self.directory, image_id + '.img')

    def transfer(self, source, dest, progress):
        self._validate()
        start = time.monotonic()
        final = self.remote_path(source.id)
        count, sha512 = self._send(source, final, progress)
        self._upload(final, sha512, count, source, dest, progress)
        if not self.keep:
            self._remove(final)
        return base.Result(count, time.monotonic() - start, sha512)

    def _send(self, source, final, progress):
        """Stream the source download into ``final`` on the host."""
        temp = posixpath.join(self.directory, '.%s.part-%s'
                              % (source.id, uuid.uuid4().hex[:8]))
        response, _ = streams.download(source)
        try:
            reader = base.HashingReader(
                response.iter_content(streams.CHUNK), source.size, progress)
            self._pipe_to(reader, temp, source.id)
        except BaseException:
            self._remove(temp)
            raise
        finally:
            response.close()
        try:
            streams.check_source(source, reader.count, reader.sha512)
        except base.TransportError:
            self._remove(temp)
            raise
        code, err = self._run(_words('mv', '-f', '--', temp, final))
        if code != 0:
            self._remove(temp)
            raise base.TransportError('Moving image %s into place at %s:%s '
                                      'failed: %s.' % (source.id, self.host,
                                                       final, err))
        return reader.count, reader.sha512

    def _pipe_to(self, chunks, temp, image_id):
        remote = 'cat > %s' % shlex.quote(temp)
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(self.argv(remote),
                                        stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL,
                                        stderr=err)
            except FileNotFoundError:
                raise base.TransportError('The ssh client %r is not '
                                          'installed.' % self.ssh_binary)
            broken = False
            try:
                for chunk in chunks:
                    proc.stdin.write(chunk)
            except BrokenPipeError:
                broken = True
            except streams.STREAM_ERRORS as exc:
                proc.kill()
                proc.wait()
                raise base.TransportError(
                    'Reading image %s from the source Glance stopped: %s.'
                    % (image_id, exc))
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            try:
                proc.stdin.close()
            except BrokenPipeError:
                broken = True
            code = proc.wait()
            if code != 0 or broken:
                raise base.TransportError(
                    'Copying image %s to %s:%s failed: %s.'
                    % (image_id, self.host, temp,
                       _tail(err) or 'exit status %s' % code))

    # --- handoff ---

    def _item_path(self, item, name):
        self._validate()
        if not handoff.valid_name(item) or not handoff.valid_name(name):
            raise base.TransportError('Refusing the item %r / file %r.'
                                      % (item, name))
        directory = posixpath.join(self.directory, item)
        code, err = self._run(_words('mkdir', '-p', '--', directory))
        if code != 0:
            raise base.TransportError('Making %s:%s failed: %s.'
                                      % (self.host, directory, err))
        return directory, posixpath.join(directory, name)

    def _sync(self, *paths):
        """fsync the remote files/directories (coreutils ``sync FILE``)."""
        code, err = self._run(_words('sync', '--', *paths))
        if code != 0:
            raise base.TransportError('Syncing %s on %s failed: %s.'
                                      % (', '.join(paths), self.host, err))

    def handoff_image(self, source, item, name, progress):
        """Stream the source download into a temporary name in the item,
        sync, move into place, sync the directory."""
        directory, final = self._item_path(item, name)
        count, sha512 = self._send(source, final, progress)
        self._sync(final, directory)
        return count, sha512

    def handoff_file(self, item, name, data):
        directory, final = self._item_path(item, name)
        temp = posixpath.join(directory, '.%s.tmp-%s'
                              % (name, uuid.uuid4().hex[:8]))
        try:
            self._pipe_to([data], temp, '%s/%s' % (item, name))
            self._sync(temp)
            code, err = self._run(_words('mv', '-f', '--', temp, final))
            if code != 0:
                raise base.TransportError('Moving %s into place at %s:%s '
                                          'failed: %s.' % (name, self.host,
                                                           final, err))
        except BaseException:
            self._remove(temp)
            raise
        self._sync(directory)

    def _upload(self, final, sha512, count, source, dest, progress):
        """Stream ``final`` back from the host into the destination."""
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    self.argv(_words('cat', '--', final)),
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=err)
            except FileNotFoundError:
                raise base.TransportError('The ssh client %r is not '
                                          'installed.' % self.ssh_binary)

            def finish():
                code = proc.wait()
                if code != 0:
                    raise base.TransportError(
                        'Reading image %s back from %s:%s failed: %s.'
                        % (source.id, self.host, final,
                           _tail(err) or 'exit status %s' % code))

            chunks = streams.VerifiedChunks(
                proc.stdout.read, sha512,
                'image %s at %s:%s' % (source.id, self.host, final),
                count, progress, finish)
            try:
                streams.upload(dest, chunks, count)
            except base.HashMismatch:
                self._remove(final)
                raise
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                proc.stdout.close()

    def _remove(self, path):
        code, err = self._run(_words('rm', '-f', '--', path))
        if code != 0:
            LOG.warning('Could not remove %s:%s: %s', self.host, path, err)
