"""Checks of what a request or a peer hands the DTN service.

* :func:`parse_json`: JSON with a nesting limit and only strings that UTF-8
  can carry (a lone surrogate such as ``\\ud800`` is refused here, not when
  a file system call or the database trips over it);
* :func:`check_address`: a host name or an IP address, IPv6 scope ids
  limited to interface-name characters;
* :class:`NetworkAllowList`: the networks this DTN may talk to (set with
  ``--allow-network`` on the service command line): nodes outside it are
  refused when registered and again (re-resolved) when a transfer starts;
* :func:`host_for_url`: IPv6 addresses bracketed for URLs.
"""

import ipaddress
import json
import re
import socket

from overcloud_migrate.exceptions import OvercloudMigrateError

MAX_JSON_DEPTH = 32
_HOST = re.compile(r'^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$')
_SCOPE = re.compile(r'^[A-Za-z0-9_.-]{1,15}$')


class BadInput(OvercloudMigrateError, ValueError):
    """A request body or field that cannot be accepted."""


class NetworkRefused(OvercloudMigrateError):
    """An address outside the networks this DTN may talk to."""


def _depth(text):
    """Deepest nesting of [ and { in JSON text (outside strings)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == '\\':
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in '[{':
            depth += 1
            deepest = max(deepest, depth)
        elif char in ']}':
            depth -= 1
    return deepest


def _check_strings(value):
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode('utf-8')
            except UnicodeEncodeError:
                raise BadInput('The request holds a string that is not valid '
                               'Unicode (a lone surrogate such as \\ud800).')


def parse_json(raw):
    """The value of JSON bytes; :class:`BadInput` for anything unusable."""
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise BadInput('The request body is not valid JSON (not UTF-8: %s).'
                       % exc)
    if _depth(text) > MAX_JSON_DEPTH:
        raise BadInput('The request body nests deeper than %d levels.'
                       % MAX_JSON_DEPTH)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadInput('The request body is not valid JSON: %s' % exc)
    _check_strings(value)
    return value


def check_address(address):
    """``address`` if it is a host name or IP address, else BadInput."""
    if not isinstance(address, str):
        raise BadInput('The address %r is not a host name or IP address.'
                       % (address,))
    if _HOST.match(address):
        return address
    literal, sep, scope = address.partition('%')
    try:
        ip = ipaddress.ip_address(literal)
    except ValueError:
        ip = None
    if ip is None or (sep and (ip.version != 6 or not _SCOPE.match(scope))):
        raise BadInput('The address %r is not a host name or IP address (an '
                       'IPv6 scope id is an interface name: letters, digits, '
                       '".", "_" or "-", at most 15).' % (address,))
    return address


def host_for_url(host):
    """``host`` as it goes into a URL: IPv6 in brackets, scope as %25."""
    if ':' in host:
        literal, sep, scope = host.partition('%')
        return '[%s%s]' % (literal, '%25' + scope if sep else '')
    return host


class NetworkAllowList:
    """The networks this DTN may talk to; ``None`` or empty: any."""

    def __init__(self, networks=None):
        self.networks = [ipaddress.ip_network(net, strict=False)
                         for net in (networks or ())]

    def __bool__(self):
        return bool(self.networks)

    def __str__(self):
        return ', '.join(str(net) for net in self.networks) or 'any'

    def _allowed_ip(self, ip):
        ip = ipaddress.ip_address(ip.split('%')[0])
        if getattr(ip, 'ipv4_mapped', None):
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)

    def allows(self, address):
        """Whether an IP address (a connecting peer) is allowed."""
        if not self.networks:
            return True
        try:
            return self._allowed_ip(address)
        except ValueError:
            return False

    def check(self, host, what='address'):
        """Raise NetworkRefused unless every address of ``host`` is allowed.

        A name is resolved (each time: an answer may change between the
        registration and a transfer).
        """
        if not self.networks:
            return
        try:
            ipaddress.ip_address(host.split('%')[0])
            addresses = [host]
        except ValueError:
            try:
                infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as exc:
                raise NetworkRefused('The %s %s does not resolve (%s), so it '
                                     'cannot be checked against the allowed '
                                     'networks.' % (what, host, exc))
            addresses = sorted({info[4][0] for info in infos})
        outside = [addr for addr in addresses if not self._allowed_ip(addr)]
        if outside:
            raise NetworkRefused(
                'The %s %s (%s) is outside the networks this DTN may talk to '
                '(%s; see --allow-network).' % (what, host, ', '.join(outside),
                                               self))
