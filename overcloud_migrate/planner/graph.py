"""Draw a plan: servers, their traffic and their groups.

``.dot`` is Graphviz text written directly (one cluster per group, edge
width by traffic). ``.svg`` and ``.png`` are drawn with matplotlib, an
optional dependency imported only here.
"""

import os

from overcloud_migrate.planner import model

FORMATS = ('dot', 'svg', 'png')


def graph_format(path):
    """Return the format of ``path`` from its extension, or raise."""
    ext = os.path.splitext(path)[1].lower().lstrip('.')
    if ext not in FORMATS:
        raise model.PlannerError(
            f'Cannot draw {path}: the graph file must end in '
            f'{", ".join("." + f for f in FORMATS)}.')
    return ext


def check_can_draw(path):
    """Fail early (before any cloud call) when the format cannot be made."""
    if graph_format(path) != 'dot':
        _matplotlib()


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends import backend_agg
        from matplotlib import figure
    except ImportError:
        raise model.PlannerError(
            'Drawing .svg or .png needs matplotlib (pip install '
            'matplotlib); a .dot file needs nothing.') from None
    return figure, backend_agg


def _quote(text):
    return '"' + str(text).replace('\\', '\\\\').replace('"', '\\"') + '"'


def to_dot(plan, names, traffic):
    """Graphviz text for ``plan``; ``names`` maps server ID to name."""
    top = max(traffic.values(), default=0) or 1
    lines = ['graph dependencies {',
             '  graph [fontname="sans-serif"];',
             '  node [shape=box, style=rounded, fontname="sans-serif"];']
    number = 0
    for wave in plan.waves:
        for group in wave.groups:
            number += 1
            label = f'wave {wave.index} -> {group.host}'
            lines.append(f'  subgraph cluster_{number} {{')
            lines.append(f'    label={_quote(label)};')
            for sid in group.server_ids:
                lines.append(f'    {_quote(sid)} '
                             f'[label={_quote(names.get(sid, sid))}];')
            lines.append('  }')
    for (a, b), amount in sorted(traffic.items()):
        width = 1 + 4 * amount / top
        lines.append(f'  {_quote(a)} -- {_quote(b)} '
                     f'[penwidth={width:.2f}, label={_quote(f"{amount:g}")}];')
    lines.append('}')
    return '\n'.join(lines) + '\n'


def _layout(plan, traffic):
    import networkx as nx
    g = nx.Graph()
    for group in plan.groups:
        g.add_nodes_from(group.server_ids)
    for (a, b), amount in traffic.items():
        if a in g and b in g:
            g.add_edge(a, b, weight=amount)
    return g, nx.spring_layout(g, weight='weight', seed=0)


def draw(path, plan, names, traffic):
    """Write the plan's graph to ``path`` (.dot, .svg or .png)."""
    kind = graph_format(path)
    if kind == 'dot':
        text = to_dot(plan, names, traffic)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
        return
    figure_mod, backend_agg = _matplotlib()
    g, pos = _layout(plan, traffic)
    fig = figure_mod.Figure(figsize=(10, 8))
    backend_agg.FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    top = max(traffic.values(), default=0) or 1
    for a, b, data in g.edges(data=True):
        (x1, y1), (x2, y2) = pos[a], pos[b]
        ax.plot([x1, x2], [y1, y2], color='0.6', zorder=1,
                linewidth=0.5 + 4 * data['weight'] / top)
    colours = [f'C{i % 10}' for i in range(len(plan.groups))]
    number = 0
    for wave in plan.waves:
        for group in wave.groups:
            xs = [pos[s][0] for s in group.server_ids]
            ys = [pos[s][1] for s in group.server_ids]
            ax.scatter(xs, ys, s=300, color=colours[number], zorder=2,
                       label=f'wave {wave.index} -> {group.host}')
            for sid, x, y in zip(group.server_ids, xs, ys):
                ax.annotate(names.get(sid, sid), (x, y), fontsize=8,
                            ha='center', va='bottom',
                            xytext=(0, 9), textcoords='offset points')
            number += 1
    if number <= 20:
        ax.legend(loc='best', fontsize=8)
    title = f'{plan.algorithm} plan, traffic cut {plan.traffic_cut:g}'
    if plan.estimate:
        title += ' (estimate)'
    ax.set_title(title)
    fig.savefig(path, format=kind)
