"""Confine every path a request names to the configured export roots.

A path is accepted only when it is absolute, free of NUL and control
characters (GridFTP's control channel is line based), has no ``..``
component, and lies inside one export root of its node.  For this DTN's own
exports (``local``) the check is repeated on the real path, so a symlink
that points out of an export is refused too.  For remote nodes only the
lexical check is possible here; their GridFTP server must run with
``-restrict-paths`` on the same roots (see the user guide).
"""

import dataclasses
import errno
import os
import posixpath
import re
import stat

from overcloud_migrate.exceptions import OvercloudMigrateError

MAX_PATH = 4096
_CONTROL = re.compile(r'[\x00-\x1f\x7f]')


class PathRefused(OvercloudMigrateError, ValueError):
    """The path is malformed or lies outside every export root."""


class PathOutside(PathRefused):
    """The path (or what a symlink in it points to) is outside the exports."""


@dataclasses.dataclass(frozen=True)
class ConfinedPath:
    export: str      # export name
    root: str        # export root directory (normalised)
    path: str        # absolute, normalised path inside root
    relative: str    # path relative to root ('' for the root itself)


def normalise(path):
    """Check the syntax of ``path`` and return it normalised."""
    if not isinstance(path, str):
        raise PathRefused('The path must be a string, not %s.'
                          % type(path).__name__)
    if not path:
        raise PathRefused('The path is empty.')
    if len(path) > MAX_PATH:
        raise PathRefused('The path is longer than %d characters.' % MAX_PATH)
    if '\x00' in path:
        raise PathRefused('The path %r contains a NUL byte.' % path)
    if _CONTROL.search(path):
        raise PathRefused('The path %r contains a control character.' % path)
    if not path.startswith('/'):
        raise PathRefused('The path %r is not absolute.' % path)
    if '..' in path.split('/'):
        raise PathRefused('The path %r contains a ".." component.' % path)
    norm = posixpath.normpath(path)
    if norm.startswith('//'):
        norm = '/' + norm.lstrip('/')
    return norm


def _inside(path, root):
    return path == root or path.startswith(root.rstrip('/') + '/')


def confine(path, exports, local=False):
    """Return the :class:`ConfinedPath` of ``path`` or raise PathRefused.

    ``exports`` maps export names to root directories.  With ``local`` the
    real path (symlinks resolved) must also stay inside the real root.
    """
    norm = normalise(path)
    best = None
    for name, root in sorted((exports or {}).items()):
        root_norm = posixpath.normpath(root)
        if _inside(norm, root_norm) and (
                best is None or len(root_norm) > len(best[1])):
            best = (name, root_norm)
    if best is None:
        raise PathOutside('The path %r is outside every export of this node '
                          '(exports: %s).' % (
                              path, ', '.join(sorted(
                                  (exports or {}).values())) or 'none'))
    name, root = best
    if local:
        real_root = os.path.realpath(root)
        real = os.path.realpath(norm)
        if not _inside(real, real_root):
            raise PathOutside('The path %r resolves through a symlink to %r, '
                              'outside the export %r.' % (path, real, name))
    relative = posixpath.relpath(norm, root) if norm != root else ''
    return ConfinedPath(export=name, root=root, path=norm, relative=relative)


def confine_directory(path, exports, local=False):
    """Like :func:`confine` for a directory; the answer ends with '/'."""
    confined = confine(path, exports, local=local)
    if local and not os.path.isdir(confined.path):
        raise PathRefused('The directory %r does not exist on this node.'
                          % path)
    return confined



# -- opening beneath an export root (no symlink race) ----------------------
#
# The checks above look at names; between them and the open a component can
# be swapped for a symlink.  These helpers walk the path one component at a
# time from a descriptor of the export root, each with O_NOFOLLOW (and
# O_DIRECTORY for directories), so what is opened is always inside the root
# whatever happens to the names meanwhile (what openat2(RESOLVE_BENEATH |
# RESOLVE_NO_SYMLINKS) does in one call on Linux >= 5.6).

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _parts(relative):
    parts = [part for part in str(relative).split('/') if part]
    if not parts or any(part in ('.', '..') for part in parts):
        raise PathRefused('%r is not a path inside an export.' % relative)
    return parts


def _refused(exc, what):
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        raise PathOutside('%s is a symlink or not a directory: refused (it '
                          'could lead out of the export).' % what) from None
    raise exc


def open_dir_beneath(root, parts, create=False, mode=0o755):
    """A descriptor of the directory ``root/parts...``; no symlinks followed
    below ``root``.  ``create`` makes missing directories."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts:
            try:
                next_fd = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, mode, dir_fd=fd)
                except FileExistsError:
                    pass
                try:
                    next_fd = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW,
                                      dir_fd=fd)
                except OSError as exc:
                    _refused(exc, part)
            except OSError as exc:
                _refused(exc, part)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def split_beneath(root, relative, create_dirs=False):
    """(descriptor of the parent directory, final name) of ``relative``."""
    parts = _parts(relative)
    return open_dir_beneath(root, parts[:-1], create=create_dirs), parts[-1]


def open_beneath(root, relative, flags=os.O_RDONLY, mode=0o644):
    """Open the file ``root/relative`` without following any symlink below
    ``root``; the file must be a regular file.  A descriptor."""
    dir_fd, name = split_beneath(root, relative)
    try:
        try:
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                         dir_fd=dir_fd)
        except OSError as exc:
            _refused(exc, relative)
    finally:
        os.close(dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PathRefused('%s is not a regular file.' % relative)
    return fd
