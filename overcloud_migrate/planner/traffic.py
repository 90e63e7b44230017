"""Traffic inputs: flow files (CSV, JSON, JSON Lines), packet captures, and
the mapping of their endpoints to servers.

A flow file holds rows of ``source, destination, bytes`` (or ``rate``); the
endpoints are IP addresses, server names or server IDs. A capture
(pcap/pcapng, for example from ``tcpdump -w`` on the hosts or on a mirror
port) is read with dpkt and gives the IP bytes summed per address pair.
"""

import csv
import io
import ipaddress
import json
import math
import os
import socket

from overcloud_migrate.planner import model

AMOUNT_FIELDS = ('bytes', 'rate')
SOURCE_NAMES = ('source', 'src')
DEST_NAMES = ('destination', 'dest', 'dst')


def _number(text, where):
    if isinstance(text, bool):
        raise model.PlannerError(f'{where}: {text!r} is not a number.')
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise model.PlannerError(
            f'{where}: {text!r} is not a number.') from None
    if not math.isfinite(value) or value < 0:
        raise model.PlannerError(
            f'{where}: the amount must be a finite number >= 0, '
            f'not {text!r}.')
    return value


def _endpoint(text, where, what):
    value = '' if text is None else str(text).strip()
    if not value:
        raise model.PlannerError(f'{where}: the {what} is empty.')
    return value


def _read_text(path):
    try:
        with open(path, encoding='utf-8') as f:
            return f.read()
    except UnicodeDecodeError:
        raise model.PlannerError(
            f'Flow file {path} is not UTF-8 text (a packet capture goes '
            f'with --pcap).') from None
    except OSError as exc:
        raise model.PlannerError(
            f'Cannot read flow file {path}: {exc.strerror}.') from None


def read_flows(path):
    """Read a flow file; return ``(flows, unit)``.

    The format is chosen by the content: JSON when the first non-blank
    character is ``[`` (an array of objects) or ``{`` (JSON Lines, one
    object a line), CSV otherwise. Errors name the file and line.
    """
    text = _read_text(path)
    name = os.path.basename(path)
    stripped = text.lstrip()
    if stripped.startswith('['):
        return _parse_json_array(text, name)
    if stripped.startswith('{'):
        return _parse_json_lines(text, name)
    return _parse_csv(text, name)


def _parse_csv(text, name):
    flows = []
    columns = None
    unit = None
    reader = csv.reader(io.StringIO(text))
    for fields in reader:
        line = reader.line_num
        where = f'{name} line {line}'
        fields = [f.strip() for f in fields]
        if not any(fields) or fields[0].startswith('#'):
            continue
        if columns is None:
            lowered = [f.lower() for f in fields]
            if any(f in AMOUNT_FIELDS + SOURCE_NAMES + DEST_NAMES
                   for f in lowered):
                columns, unit = _header(lowered, where)
                continue
            columns, unit = (0, 1, 2), 'bytes'
        if len(fields) != 3:
            raise model.PlannerError(
                f'{where}: expected 3 fields (source, destination, {unit}), '
                f'got {len(fields)}.')
        src, dst, amount = (fields[i] for i in columns)
        flows.append(model.Flow(
            _endpoint(src, where, 'source'),
            _endpoint(dst, where, 'destination'),
            _number(amount, where), line))
    return flows, unit or 'bytes'


def _header(lowered, where):
    if len(lowered) != 3:
        raise model.PlannerError(
            f'{where}: the header must name 3 columns (source, destination, '
            f'bytes or rate), got {len(lowered)}.')
    try:
        src = next(i for i, f in enumerate(lowered) if f in SOURCE_NAMES)
        dst = next(i for i, f in enumerate(lowered) if f in DEST_NAMES)
        amt = next(i for i, f in enumerate(lowered) if f in AMOUNT_FIELDS)
    except StopIteration:
        raise model.PlannerError(
            f'{where}: the header must name the columns source, destination '
            f'and bytes or rate, got {", ".join(lowered)}.') from None
    return (src, dst, amt), lowered[amt]


def _row(obj, where, unit):
    if not isinstance(obj, dict):
        raise model.PlannerError(
            f'{where}: a flow must be an object with source, destination '
            f'and bytes or rate.')
    keys = {k.lower(): v for k, v in obj.items()}
    src = next((keys[k] for k in SOURCE_NAMES if k in keys), None)
    dst = next((keys[k] for k in DEST_NAMES if k in keys), None)
    amounts = [k for k in AMOUNT_FIELDS if k in keys]
    if len(amounts) != 1:
        raise model.PlannerError(
            f'{where}: a flow needs exactly one of bytes or rate.')
    if unit is not None and amounts[0] != unit:
        raise model.PlannerError(
            f'{where}: this flow gives {amounts[0]} but earlier flows gave '
            f'{unit}; use one unit per file.')
    flow = (_endpoint(src, where, 'source'),
            _endpoint(dst, where, 'destination'),
            _number(keys[amounts[0]], where))
    return flow, amounts[0]


def _parse_json_lines(text, name):
    flows = []
    unit = None
    for line, raw in enumerate(text.splitlines(), start=1):
        where = f'{name} line {line}'
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise model.PlannerError(
                f'{where}: not valid JSON ({exc.msg}).') from None
        (src, dst, amount), unit = _row(obj, where, unit)
        flows.append(model.Flow(src, dst, amount, line))
    return flows, unit or 'bytes'


def _parse_json_array(text, name):
    """Parse ``[{...}, {...}]`` keeping the line where each object starts."""
    decoder = json.JSONDecoder()
    flows = []
    unit = None

    def line_of(pos):
        return text.count('\n', 0, pos) + 1

    def skip(pos):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        return pos

    def fail(pos, what):
        raise model.PlannerError(f'{name} line {line_of(pos)}: {what}.')

    pos = skip(text.index('[') + 1)
    if pos < len(text) and text[pos] == ']':
        return flows, 'bytes'
    while True:
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            fail(exc.pos, f'not valid JSON ({exc.msg})')
        where = f'{name} line {line_of(pos)}'
        (src, dst, amount), unit = _row(obj, where, unit)
        flows.append(model.Flow(src, dst, amount, line_of(pos)))
        pos = skip(end)
        if pos >= len(text):
            fail(pos, 'the JSON array is not closed')
        if text[pos] == ']':
            if skip(pos + 1) != len(text):
                fail(skip(pos + 1), 'unexpected text after the JSON array')
            return flows, unit or 'bytes'
        if text[pos] != ',':
            fail(pos, "expected ',' or ']' between flows")
        pos = skip(pos + 1)


# --- packet captures -------------------------------------------------------

PCAP_MAGICS = {b'\xd4\xc3\xb2\xa1', b'\xa1\xb2\xc3\xd4',
               b'\x4d\x3c\xb2\xa1', b'\xa1\xb2\x3c\x4d'}
PCAPNG_MAGIC = b'\x0a\x0d\x0d\x0a'


# Link types read: Ethernet, Linux cooked v1/v2, BSD loopback (NULL, LOOP)
# and raw IP (DLT_RAW is 12 or 14 depending on the platform; 101 is
# LINKTYPE_RAW in files; 228/229 raw IPv4/IPv6).
RAW_LINKTYPES = (12, 14, 101, 228, 229)
LINKTYPES = (1, 113, 276, 0, 108) + RAW_LINKTYPES


def _ip_layer(dpkt, datalink, buf):
    """Return the IPv4/IPv6 packet inside a captured frame, or None."""
    if datalink == dpkt.pcap.DLT_EN10MB:
        frame = dpkt.ethernet.Ethernet(buf)
        data = frame.data
    elif datalink == dpkt.pcap.DLT_LINUX_SLL:
        data = dpkt.sll.SLL(buf).data
    elif datalink == 276:
        data = dpkt.sll2.SLL2(buf).data
    elif datalink in (0, 108):
        data = dpkt.loopback.Loopback(buf).data
    else:  # raw IP
        if not buf:
            return None
        version = buf[0] >> 4
        data = (dpkt.ip.IP(buf) if version == 4
                else dpkt.ip6.IP6(buf) if version == 6 else None)
    if isinstance(data, (dpkt.ip.IP, dpkt.ip6.IP6)):
        return data
    return None


def read_pcap(path):
    """Sum IP bytes per (source address, destination address).

    Returns ``(flows, unit)`` with one :class:`~model.Flow` per address
    pair and direction (``line`` is the first packet's number). The IP
    header's length field is used, so a short snap length still counts the
    whole packet. Frames that are not IP (ARP, LLDP) are skipped.
    """
    try:
        import dpkt
    except ImportError:  # pragma: no cover - dpkt is a runtime requirement
        raise model.PlannerError(
            'Reading captures needs the dpkt library (pip install dpkt).'
        ) from None
    try:
        f = open(path, 'rb')
    except OSError as exc:
        raise model.PlannerError(
            f'Cannot read capture {path}: {exc.strerror}.') from None
    with f:
        magic = f.read(4)
        f.seek(0)
        if magic in PCAP_MAGICS:
            reader_class = dpkt.pcap.Reader
        elif magic == PCAPNG_MAGIC:
            reader_class = dpkt.pcapng.Reader
        else:
            raise model.PlannerError(
                f'{path} is not a packet capture: a pcap or pcapng file '
                f'starts with a known magic number, this one starts with '
                f'{magic.hex() or "nothing (empty file)"}.')
        try:
            reader = reader_class(f)
            datalink = reader.datalink()
        except (ValueError, dpkt.dpkt.Error) as exc:
            raise model.PlannerError(
                f'{path} is not a readable capture: {exc}.') from None
        if datalink not in LINKTYPES:
            raise model.PlannerError(
                f'{path} has link type {datalink}, which is not read: '
                f'capture with Ethernet, Linux cooked or raw IP framing '
                f'(for example tcpdump -i any or -i eth0).')
        totals = {}
        first = {}
        number = 0
        try:
            for number, (_ts, buf) in enumerate(reader, start=1):
                try:
                    ip = _ip_layer(dpkt, datalink, buf)
                except (dpkt.dpkt.NeedData, dpkt.dpkt.UnpackError):
                    continue
                if ip is None:
                    continue
                if isinstance(ip, dpkt.ip6.IP6):
                    key = (socket.inet_ntop(socket.AF_INET6, ip.src),
                           socket.inet_ntop(socket.AF_INET6, ip.dst))
                    size = ip.plen + 40
                else:
                    key = (socket.inet_ntop(socket.AF_INET, ip.src),
                           socket.inet_ntop(socket.AF_INET, ip.dst))
                    size = ip.len
                totals[key] = totals.get(key, 0) + size
                first.setdefault(key, number)
        except (ValueError, dpkt.dpkt.Error) as exc:
            raise model.PlannerError(
                f'{path}: the capture is damaged after packet {number} '
                f'({str(exc) or "truncated record"}).') from None
    flows = [model.Flow(src, dst, float(amount), first[(src, dst)])
             for (src, dst), amount in totals.items()]
    return flows, 'bytes'


# --- mapping endpoints to servers ------------------------------------------

def _canonical_ip(text):
    try:
        return str(ipaddress.ip_address(text.split('%', 1)[0]))
    except ValueError:
        return None


class Resolution:
    """Traffic mapped to servers, and what could not be mapped."""

    def __init__(self):
        self.traffic = {}
        self.unmatched = {}      # endpoint -> number of rows
        self.outside = 0         # rows to servers not being planned
        self.internal = 0        # rows from a server to itself

    @property
    def total(self):
        return sum(self.traffic.values())


def _index(servers):
    """Map IPs, IDs and unique names to server IDs."""
    by_key = {}
    names = {}
    for server in servers:
        by_key[server.id] = server.id
        for ip in server.ips:
            ip = _canonical_ip(ip) or ip
            by_key[ip] = server.id
        names.setdefault(server.name, set()).add(server.id)
    return by_key, names


def _lookup(endpoint, by_key, names):
    ip = _canonical_ip(endpoint)
    if ip is not None:
        return by_key.get(ip)
    if endpoint in by_key:
        return by_key[endpoint]
    ids = names.get(endpoint, ())
    if len(ids) > 1:
        raise model.PlannerError(
            f'The name {endpoint!r} belongs to {len(ids)} servers; use IP '
            f'addresses or server IDs in the flows.')
    return next(iter(ids), None)


def resolve(flows, servers, outside=(), strict=False):
    """Map flow endpoints to the servers being planned.

    ``servers`` are the :class:`~model.ServerInfo` to plan; ``outside``
    holds identifiers (IPs, IDs, names) of other known servers whose flows
    are dropped quietly. Endpoints that match nothing are collected in
    ``unmatched``; with ``strict`` they are refused with an error listing
    them.
    """
    by_key, names = _index(servers)
    outside_keys = {(_canonical_ip(k) or k) for k in outside}
    result = Resolution()
    for flow in flows:
        ends = []
        for endpoint in (flow.source, flow.destination):
            sid = _lookup(endpoint, by_key, names)
            if sid is None:
                canon = _canonical_ip(endpoint) or endpoint
                if canon not in outside_keys:
                    result.unmatched[endpoint] = (
                        result.unmatched.get(endpoint, 0) + 1)
                ends.append(None)
                continue
            ends.append(sid)
        a, b = ends
        if a is None or b is None:
            if a is not None or b is not None:
                result.outside += 1
            continue
        if a == b:
            result.internal += 1
            continue
        key = model.pair(a, b)
        result.traffic[key] = result.traffic.get(key, 0.0) + flow.amount
    if strict and result.unmatched:
        raise model.PlannerError(unmatched_message(result.unmatched)
                                 + ' (refused with --strict)')
    return result


def unmatched_message(unmatched, limit=20):
    """One sentence listing endpoints that match no server port."""
    items = sorted(unmatched)
    shown = ', '.join(items[:limit])
    more = f' and {len(items) - limit} more' if len(items) > limit else ''
    return (f'{len(items)} flow endpoint(s) match no port of the servers: '
            f'{shown}{more}')
