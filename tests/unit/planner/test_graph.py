"""Drawing plans."""

import pytest

from overcloud_migrate import planner
from overcloud_migrate.planner import graph
from overcloud_migrate.planner import model
from tests.unit.planner import workloads


@pytest.fixture
def plan_and_traffic():
    servers = workloads.servers(6)
    servers[0] = model.ServerInfo('id0', 'web "front"', (), 2, 2048, 20)
    traffic = workloads.traffic(workloads.TWO_APPS)
    plan = planner.plan_dependencies(servers, workloads.hosts(2, vcpus=6),
                                     traffic)
    return plan, {s.id: s.name for s in servers}, traffic


def test_dot_has_a_cluster_per_group_and_every_edge(tmp_path,
                                                    plan_and_traffic):
    plan, names, traffic = plan_and_traffic
    path = tmp_path / 'g.dot'
    graph.draw(str(path), plan, names, traffic)
    text = path.read_text()
    assert text.startswith('graph dependencies {')
    assert text.count('subgraph cluster_') == len(plan.groups) == 2
    assert '"id0" [label="web \\"front\\""]' in text
    assert text.count(' -- ') == len(traffic)
    assert '"id0" -- "id1" [penwidth=5.00, label="100"]' in text


@pytest.mark.parametrize('ext, magic', [('svg', b'<?xml'),
                                        ('png', b'\x89PNG')])
def test_svg_and_png(tmp_path, plan_and_traffic, ext, magic):
    pytest.importorskip('matplotlib')
    plan, names, traffic = plan_and_traffic
    path = tmp_path / f'g.{ext}'
    graph.draw(str(path), plan, names, traffic)
    assert path.read_bytes().startswith(magic)


def test_unknown_extension_is_refused(tmp_path):
    with pytest.raises(model.PlannerError, match='must end in .dot, .svg'):
        graph.check_can_draw(str(tmp_path / 'g.pdf'))
