"""Third-party GridFTP transfers with ``globus-url-copy``.

The mover asks the source DTN's GridFTP server to send a file straight to
the destination DTN's GridFTP server (``-p N`` parallel streams, ``-fast``
MODE E, ``-rst`` restarts).  ``globus-url-copy`` always runs from an argv
list, never through a shell.

The file first lands under a hidden temporary name next to its final name
and is renamed only after the transfer succeeded; a failed or cancelled
transfer deletes it.  Rename and delete go over the FTP control channel,
so they need an ``ftp://`` destination (anonymous GridFTP, as on the seed's
research network); with ``gsiftp://``/``sshftp://`` the file is written
under its final name directly (no client for RNFR/RNTO there).
"""

import ctypes
import ctypes.util
import ftplib
import logging
import posixpath
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid

from overcloud_migrate.dtn import checks
from overcloud_migrate.dtn import paths
from overcloud_migrate.dtn.movers import base

LOG = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
try:
    _LIBC = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6',
                        use_errno=True)
except OSError:     # not Linux: children may outlive a killed service
    _LIBC = None

BINARY = 'globus-url-copy'
INSTALL_HINT = 'apt-get install -y globus-gass-copy-progs'
_PERF = re.compile(
    r'(?P<bytes>\d+)\s+bytes\s+(?P<avg>[\d.]+)\s+MB/sec avg'
    r'(?:\s+(?P<inst>[\d.]+)\s+MB/sec inst)?')
_TAIL = 20  # stderr lines kept for the error message


def url(scheme, host, port, path):
    """A GridFTP URL for an absolute path (quoted; directories keep '/')."""
    quoted = urllib.parse.quote(path, safe='/')
    return '%s://%s:%d%s' % (scheme, checks.host_for_url(host), int(port),
                             quoted)


_PRINTABLE = re.compile(r'^[\x20-\x7e]*$')


def check_path(path):
    """``path`` if GridFTP carries it safely, else PathRefused.

    GridFTP drops bytes outside ASCII (``日本.txt`` arrived as ``.txt``, and
    ``é`` as the directory itself), and a %XX sequence in a name may be
    decoded on the way (``.%C3%A9.`` listed the export's parent).  So a
    path must be printable ASCII, and whatever the server may make of it
    (%XX decoded, repeatedly, non-ASCII dropped) must keep every component:
    none may become empty, ``.``, ``..``, hold a ``/`` or a control
    character.  (A harmless ``%41`` in a name is carried as is: our URLs
    quote ``%``.)
    """
    if not _PRINTABLE.match(path):
        raise paths.PathRefused(
            'The path %r has characters GridFTP cannot carry (only printable '
            'ASCII; use the builtin mover for other names).' % path)
    for part in path.split('/'):
        decoded = part
        for _ in range(4):
            decoded = urllib.parse.unquote(decoded, errors='ignore')
        kept = decoded.encode('ascii', 'ignore').decode('ascii')
        if part and (kept in ('', '.', '..') or '/' in kept
                     or not _PRINTABLE.match(kept) or kept != decoded):
            raise paths.PathRefused(
                'The path %r has a component that reads as %r once GridFTP '
                'decodes it; refused.' % (path, kept))
    return path


def _die_with_parent():
    """In the child, before exec: SIGKILL when the thread that started us
    (and so the DTN service) dies, even by kill -9."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _popen(argv, **kwargs):
    return subprocess.Popen(argv, preexec_fn=_die_with_parent, **kwargs)


def find_binary():
    return shutil.which(BINARY)


def list_directory(scheme, host, port, path, timeout=60):
    """Names in a directory on a GridFTP server (directories end in '/')."""
    binary = find_binary()
    if binary is None:
        raise base.MoverUnavailable(
            '%s is not installed on this DTN; run: %s' % (BINARY, INSTALL_HINT))
    if not path.endswith('/'):
        path += '/'
    check_path(path)
    argv = [binary, '-list', url(scheme, host, port, path)]
    proc = _popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise base.MoverError('Listing %s on %s:%s timed out after %ss.'
                              % (path, host, port, timeout))
    if proc.returncode != 0:
        raise base.MoverError('Listing %s on %s:%s failed: %s' % (
            path, host, port, _last_error(err)))
    names = []
    for line in out.splitlines()[1:]:
        name = line.strip()  # printed as is, not URL-encoded
        if name:
            names.append(name)
    return names


def _last_error(text):
    lines = [line.strip() for line in (text or '').splitlines()
             if line.strip()]
    return ' '.join(lines[-3:]) or 'no error message'


class _Control:
    """The FTP control channel of an anonymous GridFTP server."""

    def __init__(self, host, port, timeout=30):
        self.ftp = ftplib.FTP()
        self.ftp.connect(host, int(port), timeout=timeout)
        self.ftp.login()

    def size(self, path):
        self.ftp.voidcmd('TYPE I')
        return self.ftp.size(path)

    def rename(self, old, new):
        self.ftp.rename(old, new)

    def delete(self, path):
        self.ftp.delete(path)

    def close(self):
        try:
            self.ftp.quit()
        except (OSError, ftplib.Error):
            self.ftp.close()


class GridftpMover(base.Mover):
    """``globus-url-copy`` between two GridFTP servers.

    Request options: ``source_scheme``/``source_host``/``source_port`` (the
    source DTN's GridFTP server; default this host, 2811), ``dest_scheme``
    (default ``ftp``), ``dest_root`` (the destination export root that
    ``dest_path`` is relative to), ``fast`` (default true), ``restart_retries``
    (default 3), ``stall_timeout`` seconds (default 120), ``tcp_buffer_size``,
    ``block_size``.
    """

    name = 'gridftp'
    capabilities = frozenset({'parallel-streams', 'resume', 'third-party'})

    def __init__(self, binary=None):
        self._binary = binary

    @property
    def binary(self):
        return self._binary or find_binary()

    def check_path(self, path):
        check_path(path)

    def remove_leftover(self, where):
        return self._discard(where['host'], where['port'], where['path'])

    def check(self):
        if not self.binary:
            raise base.MoverUnavailable(
                '%s is not installed on this DTN; run: %s'
                % (BINARY, INSTALL_HINT))

    def argv(self, request, source_url, dest_url):
        opts = request.options
        argv = [self.binary, '-vb', '-p', str(int(request.streams))]
        if opts.get('fast', True):
            argv.append('-fast')
        retries = int(opts.get('restart_retries', 3))
        if retries:
            argv += ['-rst', '-rst-retries', str(retries),
                     '-rst-interval', '1']
        argv += ['-stall-timeout', str(int(opts.get('stall_timeout', 120)))]
        if opts.get('tcp_buffer_size'):
            argv += ['-tcp-bs', str(int(opts['tcp_buffer_size']))]
        if opts.get('block_size'):
            argv += ['-bs', str(int(opts['block_size']))]
        return argv + [source_url, dest_url]

    def transfer(self, request, progress, cancel):
        self.check()
        opts = request.options
        src_scheme = opts.get('source_scheme', 'ftp')
        src_host = opts.get('source_host', '127.0.0.1')
        src_port = int(opts.get('source_port', 2811))
        dest_scheme = opts.get('dest_scheme', 'ftp')
        final = posixpath.join(opts.get('dest_root', '/'), request.dest_path)
        directory, name = posixpath.split(final)
        renamable = dest_scheme == 'ftp'
        target = (posixpath.join(directory, '.%s.part-%s'
                                 % (name, uuid.uuid4().hex[:8]))
                  if renamable else final)
        source_url = url(src_scheme, src_host, src_port, request.source_path)
        dest_url = url(dest_scheme, request.dest_host, request.dest_port,
                       target)
        size = None
        if src_scheme == 'ftp':
            size = self._remote_size(src_host, src_port, request.source_path)
        argv = self.argv(request, source_url, dest_url)
        LOG.info('gridftp: %s -> %s (%d streams)', source_url, dest_url,
                 request.streams)
        start = time.monotonic()
        ok = False
        noted = None
        if renamable and request.leftovers is not None:
            noted = request.leftovers.add({'host': request.dest_host,
                                           'port': int(request.dest_port),
                                           'path': target})
        try:
            done = self._run(argv, progress, cancel, source_url)
            seconds = time.monotonic() - start
            if renamable:
                nbytes = self._finalize(request.dest_host, request.dest_port,
                                        target, final, size)
            else:
                nbytes = size if size is not None else done
            ok = True
        finally:
            gone = ok or not renamable or self._discard(
                request.dest_host, request.dest_port, target)
            if gone and noted is not None:
                request.leftovers.remove(noted)
        progress(nbytes)
        return base.TransferResult(bytes=nbytes, bytes_on_wire=nbytes,
                                   seconds=seconds)

    def _run(self, argv, progress, cancel, source_url):
        proc = _popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
        state = {'bytes': 0}
        errors = []
        readers = [
            threading.Thread(target=self._read_progress,
                             args=(proc.stdout, progress, state),
                             daemon=True),
            threading.Thread(target=self._read_tail,
                             args=(proc.stderr, errors), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            while proc.poll() is None:
                if cancel.wait(0.2):
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                    raise base.TransferCancelled(
                        'The transfer of %s was cancelled.' % source_url)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for reader in readers:
                reader.join(timeout=5)
        if proc.returncode != 0:
            raise base.MoverError('globus-url-copy failed for %s (exit %d): %s'
                                  % (source_url, proc.returncode,
                                     _last_error('\n'.join(errors))))
        return state['bytes']

    @staticmethod
    def _read_progress(stream, progress, state):
        """Parse ``-vb`` lines ("N bytes X MB/sec avg Y MB/sec inst")."""
        buf = b''
        while True:
            chunk = stream.read1(4096) if hasattr(stream, 'read1') else \
                stream.read(4096)
            if not chunk:
                break
            buf += chunk
            parts = re.split(rb'[\r\n]', buf)
            buf = parts.pop()
            for part in parts:
                match = _PERF.search(part.decode('utf-8', 'replace'))
                if match:
                    state['bytes'] = int(match.group('bytes'))
                    try:
                        progress(state['bytes'])
                    except Exception:  # a progress sink must not kill us
                        LOG.exception('gridftp: progress callback failed')

    @staticmethod
    def _read_tail(stream, lines):
        for raw in stream:
            lines.append(raw.decode('utf-8', 'replace').rstrip())
            del lines[:-_TAIL]

    @staticmethod
    def _remote_size(host, port, path):
        try:
            control = _Control(host, port)
        except (OSError, ftplib.Error) as exc:
            raise base.MoverUnavailable(
                'The GridFTP server %s:%s is unreachable: %s'
                % (host, port, exc))
        try:
            return control.size(path)
        except ftplib.Error as exc:
            raise base.MoverError('The source file %s on %s:%s cannot be read: '
                                  '%s' % (path, host, port, exc))
        finally:
            control.close()

    @staticmethod
    def _finalize(host, port, temp, final, expected):
        control = _Control(host, port)
        try:
            got = control.size(temp)
            if expected is not None and got != expected:
                raise base.MoverError(
                    'The destination %s holds %d of %d bytes after the '
                    'transfer; it was not completed.' % (final, got, expected))
            control.rename(temp, final)
            return got
        except ftplib.Error as exc:
            raise base.MoverError('The destination file %s on %s:%s could not '
                                  'be completed: %s' % (final, host, port, exc))
        finally:
            control.close()

    @staticmethod
    def _discard(host, port, temp):
        """Delete a temporary file; True when it is gone."""
        try:
            control = _Control(host, port)
        except (OSError, ftplib.Error) as exc:
            LOG.warning('gridftp: cannot remove partial file %s on %s:%s '
                        '(tried again when the service starts): %s',
                        temp, host, port, exc)
            return False
        try:
            control.delete(temp)
        except ftplib.error_perm:
            pass  # never created (the transfer failed before writing)
        except (OSError, ftplib.Error) as exc:
            LOG.warning('gridftp: cannot remove partial file %s on %s:%s: %s',
                        temp, host, port, exc)
            return False
        finally:
            control.close()
        return True
