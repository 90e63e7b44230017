"""A migration's timeline: one bar per server, one colour per phase.

``openstack overcloud migration show <id> --timeline FILE`` draws it; the
logic lives here, on plain data, so it is tested without the CLI or a
cloud.  :func:`servers_from_journal` turns a journal's records into plain
dicts; :func:`layout` sorts them by wave, service group and start and
works out each server's and each group's downtime window; :func:`draw`
writes an SVG or PNG with matplotlib (an optional extra of the plugin:
``pip install 'overcloud-migrate[timeline]'``), imported only here.

In the picture every bar segment, downtime window and group window has an
id (``gid``: ``phase:<server>:<phase>``, ``down:<server>``,
``group:<wave>.<group>``) that an SVG keeps, so a test or a script can find
them in the file.
"""

import dataclasses
import json

# The phases of a server's move in the order they run, with their colours
# (colour-blind safe, Okabe-Ito); other phase names get the grey.
PHASE_COLOURS = {
    'stop': '#E69F00',
    'snapshot': '#56B4E9',
    'transfer': '#009E73',
    'handoff': '#009E73',
    'upload': '#0072B2',
    'boot': '#D55E00',
    'verify': '#CC79A7',
    'clean-source': '#999999',
    'delete-source': '#000000',
}
PHASE_ORDER = tuple(PHASE_COLOURS)
OTHER_COLOUR = '#BBBBBB'
DOWN_COLOUR = '#C00000'
FORMATS = ('.svg', '.png')


class TimelineError(Exception):
    """The timeline cannot be drawn; the message says why."""


@dataclasses.dataclass
class ServerLine:
    name: str
    source_id: str
    wave: int = 1
    group: int = 1
    #: [(phase, start, end)] in seconds from the migration's first start
    spans: list = dataclasses.field(default_factory=list)
    #: (start, end) of the downtime (source stopped -> copy ACTIVE), or None
    down: tuple = None

    @property
    def start(self):
        return min((s for _p, s, _e in self.spans), default=0.0)


@dataclasses.dataclass
class Timeline:
    lines: list                 # ServerLine, in drawing order (top first)
    #: {(wave, group): (start, end)} of each service group's downtime
    groups: dict
    waves: dict                 # {wave: (first row, last row)}
    origin: float = 0.0         # time.time() of the first start


def servers_from_journal(journal, migration_id):
    """The journal's server records of a migration as plain dicts."""
    found = []
    for record in journal.servers(migration_id):
        found.append({
            'name': record.name, 'source_id': record.source_id,
            'phases': json.loads(record.phases or '{}'),
            'spans': json.loads(getattr(record, 'phase_spans', None)
                                or '{}'),
            'stopped_at': record.stopped_at, 'active_at': record.active_at,
        })
    return found


def _spans_of(server):
    """[(phase, start, end)] in time.time() seconds, in run order.

    Journals written before the spans were recorded only hold each phase's
    duration: the phases ran one after the other and ``stop`` ended at
    ``stopped_at``, so the spans are rebuilt from there.
    """
    spans = server.get('spans') or {}
    if spans:
        found = [(p, float(s), float(e)) for p, (s, e) in spans.items()]
        return sorted(found, key=lambda span: (span[1], span[2]))
    phases = server.get('phases') or {}
    stopped = server.get('stopped_at')
    if not phases or stopped is None:
        return []
    names = sorted(phases, key=lambda p: (PHASE_ORDER.index(p)
                                          if p in PHASE_ORDER else 99))
    at = stopped - float(phases.get('stop', 0.0))
    rebuilt = []
    for name in names:
        rebuilt.append((name, at, at + float(phases[name])))
        at += float(phases[name])
    return rebuilt


def _places(order):
    """{server id: (wave, group)} from a plan's ``order`` (planner waves)."""
    places = {}
    for wave_number, wave in enumerate((order or {}).get('waves') or [], 1):
        wave_index = wave.get('index', wave_number)
        for group_number, group in enumerate(wave.get('groups') or [], 1):
            for server_id in group.get('server_ids') or []:
                places[server_id] = (wave_index, group_number)
    return places


def layout(servers, order=None):
    """Sort the servers for drawing and work out the downtime windows.

    ``servers`` are dicts as :func:`servers_from_journal` makes them;
    ``order`` is the plan's ``order`` (waves of service groups), if any.
    Servers are sorted by wave, then by their group's first start, then by
    their own start; without an order each server is its own group of one
    wave.
    """
    places = _places(order)
    raw = []
    for number, server in enumerate(servers):
        spans = _spans_of(server)
        wave, group = places.get(server['source_id'], (1, None))
        if group is None:   # no order: every server is its own group
            group = 10000 + number
        down = None
        if server.get('stopped_at') and server.get('active_at'):
            down = (float(server['stopped_at']), float(server['active_at']))
        raw.append((server, spans, wave, group, down))
    starts = [s for _srv, spans, _w, _g, _d in raw for _p, s, _e in spans]
    starts += [d[0] for *_rest, d in raw if d]
    origin = min(starts) if starts else 0.0
    lines = []
    for server, spans, wave, group, down in raw:
        lines.append(ServerLine(
            server['name'] or server['source_id'], server['source_id'],
            wave, group, [(p, s - origin, e - origin) for p, s, e in spans],
            (down[0] - origin, down[1] - origin) if down else None))
    group_start = {}
    for line in lines:
        key = (line.wave, line.group)
        group_start[key] = min(group_start.get(key, line.start), line.start)
    lines.sort(key=lambda ln: (ln.wave, group_start[(ln.wave, ln.group)],
                               ln.group, ln.start, ln.name))
    groups = {}
    for line in lines:
        if line.down is None:
            continue
        key = (line.wave, line.group)
        start, end = groups.get(key, line.down)
        groups[key] = (min(start, line.down[0]), max(end, line.down[1]))
    waves = {}
    for row, line in enumerate(lines):
        first, _last = waves.get(line.wave, (row, row))
        waves[line.wave] = (first, row)
    # Number the groups 1.. within each wave, in drawing order.
    renumber, seen = {}, {}
    for line in lines:
        key = (line.wave, line.group)
        if key not in renumber:
            seen[line.wave] = seen.get(line.wave, 0) + 1
            renumber[key] = seen[line.wave]
    for line in lines:
        line.group = renumber[(line.wave, line.group)]
    groups = {(w, renumber[(w, g)]): window
              for (w, g), window in groups.items()}
    return Timeline(lines, groups, waves, origin)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise TimelineError(
            'Drawing a timeline needs matplotlib, which is not installed: '
            "pip install 'overcloud-migrate[timeline]'")
    matplotlib.use('Agg')   # files only, never a window
    from matplotlib import pyplot
    return pyplot


def draw(timeline, path, title=''):
    """Write ``timeline`` to ``path`` (.svg or .png); returns the figure
    (closed: its artists can still be read)."""
    path = str(path)
    if not path.lower().endswith(FORMATS):
        raise TimelineError("A timeline is written as .svg or .png, not '%s'"
                            % path)
    if not timeline.lines:
        raise TimelineError('The migration has no server with timed phases '
                            'to draw.')
    pyplot = _pyplot()
    from matplotlib import patches

    rows = len(timeline.lines)
    end = max([e for ln in timeline.lines for _p, _s, e in ln.spans]
              + [ln.down[1] for ln in timeline.lines if ln.down] + [1.0])
    figure, axes = pyplot.subplots(figsize=(11, 1.6 + 0.26 * rows))
    used = []
    for row, line in enumerate(timeline.lines):
        for phase, start, stop in line.spans:
            axes.barh(row, max(stop - start, end / 2000.0), left=start,
                      height=0.56, color=PHASE_COLOURS.get(phase,
                                                           OTHER_COLOUR),
                      edgecolor='white', linewidth=0.3,
                      gid='phase:%s:%s' % (line.name, phase))
            if phase not in used:
                used.append(phase)
        if line.down:
            axes.barh(row + 0.36, line.down[1] - line.down[0],
                      left=line.down[0], height=0.1, color=DOWN_COLOUR,
                      gid='down:%s' % line.name)
    # Each service group's downtime: a box around its rows.
    for (wave, group), (start, stop) in sorted(timeline.groups.items()):
        members = [r for r, ln in enumerate(timeline.lines)
                   if (ln.wave, ln.group) == (wave, group)]
        if len(members) < 2:
            continue    # a group of one: its server's window says it all
        box = patches.Rectangle(
            (start, min(members) - 0.45), stop - start,
            max(members) - min(members) + 0.9, fill=True, alpha=0.12,
            facecolor=DOWN_COLOUR, edgecolor=DOWN_COLOUR, linestyle='--',
            linewidth=0.8, gid='group:%d.%d' % (wave, group))
        axes.add_patch(box)
        axes.text(stop, min(members) - 0.45, ' group %d.%d down %.1f s'
                  % (wave, group, stop - start), fontsize=7,
                  color=DOWN_COLOUR, va='top', ha='left')
    # Waves: a line between them and the wave's number on the left.
    for wave, (first, last) in sorted(timeline.waves.items()):
        if first > 0:
            axes.axhline(first - 0.5, color='#444444', linewidth=0.8,
                         gid='wave:%d' % wave)
        if len(timeline.waves) > 1:
            axes.text(1.005, (first + last) / 2.0, 'wave %d' % wave,
                      transform=axes.get_yaxis_transform(), rotation=90,
                      ha='left', va='center', fontsize=8,
                      color='#444444')
    axes.set_yticks(range(rows))
    axes.set_yticklabels([ln.name for ln in timeline.lines],
                         fontsize=8 if rows <= 40 else 6)
    axes.set_ylim(rows - 0.5, -0.7)   # first server on top
    axes.set_xlim(0, end * 1.12)
    axes.set_xlabel('seconds since the first step')
    axes.grid(axis='x', color='#DDDDDD', linewidth=0.5)
    axes.set_axisbelow(True)
    handles = [patches.Patch(color=PHASE_COLOURS.get(p, OTHER_COLOUR),
                             label=p) for p in used]
    handles.append(patches.Patch(color=DOWN_COLOUR, label='downtime'))
    axes.legend(handles=handles, loc='lower center', ncol=len(handles),
                bbox_to_anchor=(0.5, 1.0), fontsize=8, frameon=False)
    if title:
        figure.suptitle(title, fontsize=9, y=0.995)
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    except OSError as exc:
        raise TimelineError('Cannot write the timeline to %s: %s'
                            % (path, exc.strerror or exc))
    finally:
        pyplot.close(figure)
    return figure


def write(journal, migration_id, path, order=None):
    """Draw the timeline of ``migration_id`` from ``journal`` to ``path``."""
    timeline = layout(servers_from_journal(journal, migration_id), order)
    return draw(timeline, path, title='migration %s' % migration_id)
