"""The bed's private RabbitMQ: its configuration and its definitions.

Users, vhosts and permissions come from a definitions file loaded at every
boot, so no slow ``rabbitmqctl`` round trip is needed.
"""

import base64
import hashlib
import json
import os

from overcloud_devcloud import layout as layout_mod


def password_hash(password, salt=None):
    """RabbitMQ's rabbit_password_hashing_sha256 of ``password``."""
    salt = os.urandom(4) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode()).digest()
    return base64.b64encode(salt + digest).decode()


def definitions(secrets):
    perms = {'configure': '.*', 'write': '.*', 'read': '.*'}
    return {
        'users': [{'name': 'devcloud',
                   'password_hash': password_hash(secrets['rabbitmq']),
                   'hashing_algorithm': 'rabbit_password_hashing_sha256',
                   'tags': []}],
        'vhosts': [{'name': cloud} for cloud in layout_mod.CLOUDS],
        'permissions': [dict(perms, user='devcloud', vhost=cloud)
                        for cloud in layout_mod.CLOUDS],
    }


def write_config(layout, secrets):
    base = layout.rabbit_dir
    (base / 'mnesia').mkdir(parents=True, exist_ok=True)
    defs = base / 'definitions.json'
    defs.write_text(json.dumps(definitions(secrets), indent=1))
    defs.chmod(0o600)
    (base / 'rabbitmq.conf').write_text('\n'.join([
        'listeners.tcp.default = %s:%d' % (layout_mod.HOST,
                                           layout.ports.amqp),
        'load_definitions = %s' % defs,
        'log.file = %s' % layout.logfile('rabbitmq'),
        'log.file.level = warning',
        'log.console = false',
        'disk_free_limit.absolute = 50MB',
        'vm_memory_high_watermark.absolute = 1GB',
        'collect_statistics = none',
        '']))
    (base / 'advanced.config').write_text('[].\n')
    (base / 'enabled_plugins').write_text('[].\n')
    (base / 'rabbitmq-env.conf').write_text('')
    cookie = base / '.erlang.cookie'
    if not cookie.exists():
        cookie.write_text(os.urandom(16).hex())
        cookie.chmod(0o400)
