"""The bed's private MariaDB: initialise a data directory, create databases."""

import os
import re
import subprocess

import pymysql

from overcloud_devcloud import confgen
from overcloud_devcloud import layout as layout_mod
from overcloud_devcloud import services

_NAME = re.compile(r'^[a-z][a-z0-9_]{0,63}$')


def initialise(layout):
    """Create the data directory (once) with mariadb-install-db."""
    if (layout.mariadb_dir / 'mysql').is_dir():
        return
    layout.mariadb_dir.mkdir(parents=True, exist_ok=True)
    argv = [services.find_binary('mariadb-install-db'), '--no-defaults',
            '--datadir=%s' % layout.mariadb_dir,
            '--auth-root-authentication-method=normal',
            '--skip-test-db']
    if os.geteuid() == 0:
        argv.append('--user=root')
    with open(layout.logfile('mariadb-install'), 'wb') as log:
        subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=True,
                       stdin=subprocess.DEVNULL)


def _connect(layout, secrets, root_password):
    return pymysql.connect(unix_socket=str(layout.mariadb_socket),
                           user='root', password=root_password or '',
                           autocommit=True)


def create_databases(layout, secrets):
    """Secure root, create the 'devcloud' user and every cloud's databases.

    Idempotent.  Names come from a fixed list and are checked before they
    are quoted as identifiers (identifiers cannot be bound parameters).
    """
    try:
        conn = _connect(layout, secrets, secrets['mariadb_root'])
    except pymysql.err.OperationalError:
        # First start after mariadb-install-db: root has no password yet.
        conn = _connect(layout, secrets, None)
        with conn.cursor() as cur:
            cur.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s",
                        (secrets['mariadb_root'],))
    with conn, conn.cursor() as cur:
        for host in (layout_mod.HOST, 'localhost'):
            cur.execute("CREATE USER IF NOT EXISTS 'devcloud'@%s "
                        "IDENTIFIED BY %s", (host, secrets['mariadb']))
        for cloud in layout_mod.CLOUDS:
            for service in confgen.DB_SERVICES:
                name = confgen.db_name(cloud, service)
                if not _NAME.match(name):
                    raise ValueError('bad database name %r' % name)
                cur.execute('CREATE DATABASE IF NOT EXISTS `%s` '
                            'CHARACTER SET utf8mb4' % name)
                for host in (layout_mod.HOST, 'localhost'):
                    cur.execute('GRANT ALL PRIVILEGES ON `%s`.* TO '
                                "'devcloud'@%%s" % name, (host,))
