"""What the Receiver has done with each item of a handoff directory.

Reads only files (markers and ``status.json``); no cloud, no journal.
"""

from overcloud_migrate import handoff

COLUMNS = ('Item', 'Server', 'Server ID', 'State', 'Reason',
           'Destination ID', 'Updated')


def _row(root, where, name):
    directory = '%s/%s' % (root, where) if where else root
    status = handoff.read_status(directory, name) or {}
    server, server_id = status.get('server_name'), status.get('server_id')
    state = status.get('state')
    if not server_id:
        try:
            marker = handoff.read_marker(directory, name)
            server, server_id = marker.get('server_name'), marker['server_id']
            state = state or 'pending'
        except handoff.NotReady:
            state = state or 'incomplete'
        except (handoff.ItemError, OSError) as exc:
            state = state or 'invalid'
            status.setdefault('reason', str(exc))
    if where and state not in ('done', 'failed'):
        state = where
    return ('%s/%s' % (where, name) if where else name, server or '',
            server_id or '', state, status.get('reason') or '',
            status.get('dest_server_id') or '', status.get('updated_at') or '')


def rows(root):
    """One row per item (see COLUMNS): waiting or in progress first, then
    done/, then failed/."""
    found = []
    for where in (None, handoff.DONE, handoff.FAILED):
        for name in handoff.list_items(root, where):
            found.append(_row(root, where, name))
    return found
