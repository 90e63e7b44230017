"""Passwords of a bed: generated once, kept 0600 in the state directory."""

import json
import os
import secrets as _random  # stdlib

from overcloud_devcloud import layout as layout_mod


def _new():
    values = {'mariadb': _random.token_hex(16),
              'mariadb_root': _random.token_hex(16),
              'rabbitmq': _random.token_hex(16)}
    for cloud in layout_mod.CLOUDS:
        values[cloud] = {'admin': _random.token_hex(12),
                         'member': _random.token_hex(12),
                         'service': _random.token_hex(12)}
    return values


def load_or_create(layout):
    path = layout.secrets_file
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    values = _new()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(values, handle)
    return values
