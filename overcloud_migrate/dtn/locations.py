"""Parse where a file lives: a node name or a GridFTP address, and a path.

Three spellings are accepted:

* ``{"node": "dtn-a", "path": "/export/data/f"}`` (v1 JSON),
* ``"dtn-a:/export/data/f"`` (node name, colon, absolute path),
* ``"210.119.43.34:2811/export/data/f"`` (the seed's GridFTP address form).
"""

import dataclasses
import re

from overcloud_migrate.exceptions import OvercloudMigrateError

_ADDRESS = re.compile(
    r'^(?:(?P<scheme>ftp|gsiftp|sshftp)://)?'
    r'(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})'
    r'(?P<path>/.*)$', re.DOTALL)
_NAMED = re.compile(r'^(?P<node>[A-Za-z0-9][A-Za-z0-9_.-]{0,63}):(?P<path>/.*)$',
                    re.DOTALL)
NODE_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$')


class LocationError(OvercloudMigrateError, ValueError):
    """The location cannot be parsed."""


@dataclasses.dataclass(frozen=True)
class Location:
    path: str
    node: str = None       # by node name ...
    host: str = None       # ... or by GridFTP address
    port: int = None


def parse(value, what='location'):
    """Return a :class:`Location` from a dict or string (see module doc)."""
    if isinstance(value, dict):
        unknown = set(value) - {'node', 'path'}
        if unknown:
            raise LocationError('The %s has unknown fields: %s.'
                                % (what, ', '.join(sorted(unknown))))
        node, path = value.get('node'), value.get('path')
        if not isinstance(node, str) or not NODE_NAME.match(node):
            raise LocationError('The %s names no valid node (a name of '
                                'letters, digits, ".", "_" or "-"): %r.'
                                % (what, node))
        if not isinstance(path, str):
            raise LocationError('The %s has no path string.' % what)
        return Location(node=node, path=path)
    if not isinstance(value, str):
        raise LocationError('The %s must be a string or an object with node '
                            'and path, not %s.' % (what, type(value).__name__))
    match = _ADDRESS.match(value)
    if match:
        port = int(match.group('port'))
        if not 0 < port < 65536:
            raise LocationError('The %s %r has an invalid port.'
                                % (what, value))
        return Location(host=match.group('host').strip('[]'), port=port,
                        path=match.group('path'))
    match = _NAMED.match(value)
    if match:
        return Location(node=match.group('node'), path=match.group('path'))
    raise LocationError('The %s %r is neither NODE:/path nor IP:PORT/path.'
                        % (what, value))
