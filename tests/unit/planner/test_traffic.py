"""Flow files, captures and the mapping of endpoints to servers."""

import json

import dpkt
import pytest

from overcloud_migrate.planner import model
from overcloud_migrate.planner import traffic
from tests.unit.planner import workloads


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- flow files ------------------------------------------------------------

def test_csv_with_header_any_column_order(tmp_path):
    path = write(tmp_path, 'f.csv',
                 'bytes,destination,source\n'
                 '# a comment\n'
                 '\n'
                 '100,10.0.0.2,10.0.0.1\n'
                 '7.5,db,web\n')
    flows, unit = traffic.read_flows(path)
    assert unit == 'bytes'
    assert flows == [model.Flow('10.0.0.1', '10.0.0.2', 100.0, 4),
                     model.Flow('web', 'db', 7.5, 5)]


def test_csv_without_header_and_rate_header(tmp_path):
    flows, unit = traffic.read_flows(write(tmp_path, 'f.csv', 'a,b,3\n'))
    assert (flows, unit) == ([model.Flow('a', 'b', 3.0, 1)], 'bytes')
    flows, unit = traffic.read_flows(
        write(tmp_path, 'g.csv', 'src,dst,rate\na,b,2\n'))
    assert unit == 'rate' and flows[0].amount == 2.0


@pytest.mark.parametrize('body, message', [
    ('source,destination,bytes\na,b,1\na,b\n', 'line 3: expected 3 fields'),
    ('source,destination,bytes\na,b,1\n\na,b,lots\n',
     "line 4: 'lots' is not a number"),
    ('a,b,1\na,b,-4\n', 'line 2: the amount must be a finite number >= 0'),
    ('a,b,1\n,b,1\n', 'line 2: the source is empty'),
    ('a,b,nan\n', 'line 1: the amount must be a finite number'),
    ('source,target,bytes\n', 'line 1: the header must name the columns'),
])
def test_csv_errors_carry_the_line(tmp_path, body, message):
    with pytest.raises(model.PlannerError, match=message) as err:
        traffic.read_flows(write(tmp_path, 'flows.csv', body))
    assert str(err.value).startswith('flows.csv line')


def test_json_array_keeps_line_numbers(tmp_path):
    text = ('[\n'
            '  {"source": "a", "destination": "b", "bytes": 1},\n'
            '  {"source": "b",\n'
            '   "destination": "c", "bytes": 2}\n'
            ']\n')
    flows, unit = traffic.read_flows(write(tmp_path, 'f.json', text))
    assert [f.line for f in flows] == [2, 3]
    assert [f.amount for f in flows] == [1.0, 2.0]


@pytest.mark.parametrize('text, message', [
    ('[\n{"source": "a", "destination": "b", "bytes": 1},\n'
     '{"source": "a", "destination": "b"}\n]', 'line 3: a flow needs exactly'),
    ('[\n{"source": "a", "destination": "b", "bytes": 1},\n'
     '{"source": "a", "destination": "b", "rate": 1}\n]',
     'line 3: this flow gives rate but earlier flows gave bytes'),
    ('[\n{"source": "a", "destination": "b", "bytes": 1}\n'
     '{"source": "a", "destination": "b", "bytes": 1}]',
     "line 3: expected ',' or ']'"),
    ('[\n{"source": "a", "destination": "b", "bytes": true}]',
     "line 2: True is not a number"),
    ('[\n{"source": "a", "destination": "b", "bytes": 1},\n{oops}\n]',
     'line 3: not valid JSON'),
    ('[\n{"source": "a", "destination": "b", "bytes": 1},\n',
     'not closed|not valid JSON'),
])
def test_json_errors_carry_the_line(tmp_path, text, message):
    with pytest.raises(model.PlannerError, match=message):
        traffic.read_flows(write(tmp_path, 'f.json', text))


def test_json_lines(tmp_path):
    rows = [{'src': '10.0.0.1', 'dst': '10.0.0.2', 'rate': 5},
            {'source': '10.0.0.2', 'destination': '10.0.0.3', 'rate': 1}]
    text = '\n'.join(json.dumps(r) for r in rows) + '\n\n'
    flows, unit = traffic.read_flows(write(tmp_path, 'f.jsonl', text))
    assert unit == 'rate'
    assert [(f.source, f.line) for f in flows] == [('10.0.0.1', 1),
                                                  ('10.0.0.2', 2)]
    bad = text + '{"source": "a", "destination": "b", "rate": "x"}\n'
    with pytest.raises(model.PlannerError, match="line 4: 'x' is not"):
        traffic.read_flows(write(tmp_path, 'g.jsonl', bad))


def test_binary_flow_file_is_refused(tmp_path):
    path = tmp_path / 'f.csv'
    path.write_bytes(b'\xd4\xc3\xb2\xa1\x02\x00\xff\xfe')
    with pytest.raises(model.PlannerError, match='not UTF-8 text'):
        traffic.read_flows(str(path))


# --- captures --------------------------------------------------------------

def ip_packet(src, dst, payload=b'x' * 100):
    tcp = dpkt.tcp.TCP(sport=1234, dport=80, data=payload)
    ip = dpkt.ip.IP(src=bytes(map(int, src.split('.'))),
                    dst=bytes(map(int, dst.split('.'))), p=6, data=tcp)
    ip.len = len(bytes(ip))
    return ip


def ethernet(ip):
    return bytes(dpkt.ethernet.Ethernet(
        src=b'\x02' * 6, dst=b'\x04' * 6, type=dpkt.ethernet.ETH_TYPE_IP,
        data=ip))


def test_pcap_bytes_summed_per_pair(tmp_path):
    path = tmp_path / 'c.pcap'
    one = ip_packet('10.0.0.1', '10.0.0.2')
    arp = bytes(dpkt.ethernet.Ethernet(
        src=b'\x02' * 6, dst=b'\xff' * 6, type=dpkt.ethernet.ETH_TYPE_ARP,
        data=dpkt.arp.ARP()))
    with open(path, 'wb') as f:
        writer = dpkt.pcap.Writer(f)
        writer.writepkt(ethernet(one), ts=1)
        writer.writepkt(ethernet(one), ts=2)
        writer.writepkt(arp, ts=3)
        writer.writepkt(ethernet(ip_packet('10.0.0.2', '10.0.0.1',
                                           b'y' * 10)), ts=4)
    flows, unit = traffic.read_pcap(str(path))
    size = len(bytes(one))
    assert unit == 'bytes'
    assert sorted((f.source, f.destination, f.amount) for f in flows) == [
        ('10.0.0.1', '10.0.0.2', 2.0 * size),
        ('10.0.0.2', '10.0.0.1', float(20 + 20 + 10))]


def test_pcap_counts_ip_length_even_with_short_snaplen(tmp_path):
    path = tmp_path / 'snap.pcap'
    packet = ethernet(ip_packet('10.0.0.1', '10.0.0.2', b'z' * 1000))
    with open(path, 'wb') as f:
        writer = dpkt.pcap.Writer(f, snaplen=64)
        writer.writepkt(packet[:64], ts=1)
    flows, _ = traffic.read_pcap(str(path))
    assert flows[0].amount == 20 + 20 + 1000


def test_pcapng_is_read(tmp_path):
    path = tmp_path / 'c.pcapng'
    with open(path, 'wb') as f:
        writer = dpkt.pcapng.Writer(f)
        writer.writepkt(ethernet(ip_packet('10.0.0.3', '10.0.0.4')), ts=1)
    flows, _ = traffic.read_pcap(str(path))
    assert [(f.source, f.destination) for f in flows] == [('10.0.0.3',
                                                           '10.0.0.4')]


def test_linux_cooked_and_raw_ip_captures(tmp_path):
    ip = ip_packet('10.0.0.5', '10.0.0.6', b'q' * 50)
    cooked = dpkt.sll.SLL(type=0, ethtype=dpkt.ethernet.ETH_TYPE_IP,
                          data=ip)
    for name, linktype, frame in (('sll.pcap', dpkt.pcap.DLT_LINUX_SLL,
                                   bytes(cooked)),
                                  ('raw.pcap', 101, bytes(ip))):
        path = tmp_path / name
        with open(path, 'wb') as f:
            writer = dpkt.pcap.Writer(f, linktype=linktype)
            writer.writepkt(frame, ts=1)
        flows, _ = traffic.read_pcap(str(path))
        assert [(f.source, f.destination, f.amount) for f in flows] == [
            ('10.0.0.5', '10.0.0.6', 90.0)], name


def test_damaged_pcapng_names_the_last_good_packet(tmp_path):
    path = tmp_path / 'cut.pcapng'
    with open(path, 'wb') as f:
        writer = dpkt.pcapng.Writer(f)
        for ts in range(3):
            writer.writepkt(ethernet(ip_packet('10.0.0.1', '10.0.0.2')),
                            ts=ts)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(model.PlannerError,
                       match='damaged after packet 2 \\(truncated record'):
        traffic.read_pcap(str(path))


def test_unknown_link_type_is_refused(tmp_path):
    path = tmp_path / 'wifi.pcap'
    with open(path, 'wb') as f:
        dpkt.pcap.Writer(f, linktype=105).writepkt(b'\x00' * 30, ts=1)
    with pytest.raises(model.PlannerError, match='link type 105'):
        traffic.read_pcap(str(path))


@pytest.mark.parametrize('content, message', [
    (b'source,destination,bytes\n', 'is not a packet capture'),
    (b'', 'nothing \\(empty file\\)'),
    (b'\xd4\xc3\xb2\xa1\x02', 'not a readable capture'),
])
def test_not_a_capture(tmp_path, content, message):
    path = tmp_path / 'x.pcap'
    path.write_bytes(content)
    with pytest.raises(model.PlannerError, match=message):
        traffic.read_pcap(str(path))


# --- resolution ------------------------------------------------------------

def test_resolve_by_ip_name_and_id_summing_both_directions():
    servers = workloads.servers(3)
    flows = [model.Flow('10.0.0.1', '10.0.0.2', 10),
             model.Flow('vm1', 'id0', 5),
             model.Flow('id2', '10.0.0.1', 1),
             model.Flow('vm2', 'vm2', 99)]
    result = traffic.resolve(flows, servers)
    assert result.traffic == {('id0', 'id1'): 15.0, ('id0', 'id2'): 1.0}
    assert result.internal == 1 and not result.unmatched


def test_resolve_ipv6_forms_match():
    servers = [model.ServerInfo('a', 'a', ('fd00::1',)),
               model.ServerInfo('b', 'b', ('fd00:0:0::2',))]
    result = traffic.resolve([model.Flow('fd00:0::1', 'fd00::2', 3)],
                             servers)
    assert result.traffic == {('a', 'b'): 3.0}


def test_unmatched_listed_outside_dropped_quietly_strict_refuses():
    servers = workloads.servers(2)
    flows = [model.Flow('10.0.0.1', '192.0.2.7', 4),
             model.Flow('10.0.0.1', '10.0.0.9', 4),
             model.Flow('192.0.2.7', '10.0.0.2', 4),
             model.Flow('10.0.0.1', '10.0.0.2', 4)]
    result = traffic.resolve(flows, servers, outside={'10.0.0.9'})
    assert result.unmatched == {'192.0.2.7': 2}
    assert result.outside == 3
    assert result.traffic == {('id0', 'id1'): 4.0}
    with pytest.raises(model.PlannerError,
                       match='1 flow endpoint.*192.0.2.7.*--strict'):
        traffic.resolve(flows, servers, outside={'10.0.0.9'}, strict=True)
    assert traffic.resolve(flows[1:2] + flows[3:], servers,
                           outside={'10.0.0.9'}, strict=True).traffic


def test_ambiguous_name_is_an_error():
    servers = [model.ServerInfo('a', 'web'), model.ServerInfo('b', 'web'),
               model.ServerInfo('c', 'db')]
    with pytest.raises(model.PlannerError, match="'web' belongs to 2"):
        traffic.resolve([model.Flow('web', 'db', 1)], servers)
