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
import os
import posixpath
import re

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

