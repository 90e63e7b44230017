"""The DTN service's state: registered nodes, transfers and the log.

SQLAlchemy 2.x ORM only (bound parameters everywhere, no SQL built from
strings).  SQLite in the user's state directory by default; any SQLAlchemy
URL through ``--database-url``.
"""

import datetime
import os
import pathlib
import threading
import uuid

import sqlalchemy as sa
from sqlalchemy import orm

from overcloud_migrate.exceptions import OvercloudMigrateError

DB_FILE = 'dtn.sqlite'

#: transfer states; the last three are final
QUEUED, RUNNING, DONE, FAILED, CANCELLED = (
    'queued', 'running', 'done', 'failed', 'cancelled')
FINAL_STATES = frozenset({DONE, FAILED, CANCELLED})


def default_database_url():
    """SQLite under $XDG_STATE_HOME (or ~/.local/state)/overcloud-migrate."""
    base = os.environ.get('XDG_STATE_HOME') or os.path.join(
        os.path.expanduser('~'), '.local', 'state')
    return 'sqlite:///' + str(pathlib.Path(base, 'overcloud-migrate', DB_FILE))


def _now():
    # naive UTC: SQLite keeps no zone, so every stored time is UTC
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _iso(value):
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite drops the zone; we only store UTC
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.isoformat(timespec='seconds')


class Base(orm.DeclarativeBase):
    pass


class Node(Base):
    """A DTN: its GridFTP server, optional builtin data port and exports."""
    __tablename__ = 'nodes'

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(64), unique=True)
    address: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    gridftp_port: orm.Mapped[int] = orm.mapped_column(default=2811)
    gridftp_scheme: orm.Mapped[str] = orm.mapped_column(
        sa.String(16), default='ftp')
    data_port: orm.Mapped[int | None] = orm.mapped_column(nullable=True)
    endpoint: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(255), nullable=True)
    exports: orm.Mapped[dict] = orm.mapped_column(sa.JSON, default=dict)
    local: orm.Mapped[bool] = orm.mapped_column(default=False)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        sa.DateTime, default=_now)

    def to_dict(self):
        return {
            'id': self.id, 'name': self.name, 'address': self.address,
            'gridftp_port': self.gridftp_port,
            'gridftp_scheme': self.gridftp_scheme,
            'data_port': self.data_port, 'endpoint': self.endpoint,
            'exports': dict(self.exports or {}), 'local': self.local,
            'created_at': _iso(self.created_at),
        }


class Transfer(Base):
    __tablename__ = 'transfers'

    id: orm.Mapped[str] = orm.mapped_column(sa.String(32), primary_key=True)
    source_node: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    source_path: orm.Mapped[str] = orm.mapped_column(sa.String(4096))
    dest_node: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    dest_path: orm.Mapped[str] = orm.mapped_column(sa.String(4096))
    mover: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    streams: orm.Mapped[int] = orm.mapped_column(default=4)
    state: orm.Mapped[str] = orm.mapped_column(sa.String(16), default=QUEUED)
    bytes_total: orm.Mapped[int | None] = orm.mapped_column(
        sa.BigInteger, nullable=True)
    bytes_done: orm.Mapped[int] = orm.mapped_column(sa.BigInteger, default=0)
    avg_mb_per_s: orm.Mapped[float] = orm.mapped_column(default=0.0)
    inst_mb_per_s: orm.Mapped[float] = orm.mapped_column(default=0.0)
    seconds: orm.Mapped[float] = orm.mapped_column(default=0.0)
    error: orm.Mapped[str | None] = orm.mapped_column(sa.Text, nullable=True)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        sa.DateTime, default=_now)
    finished_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        sa.DateTime, nullable=True)

    def to_dict(self):
        return {
            'id': self.id, 'state': self.state,
            'source': {'node': self.source_node, 'path': self.source_path},
            'dest': {'node': self.dest_node, 'path': self.dest_path},
            'mover': self.mover, 'streams': self.streams,
            'bytes_total': self.bytes_total, 'bytes_done': self.bytes_done,
            'avg_mb_per_s': round(self.avg_mb_per_s or 0.0, 2),
            'inst_mb_per_s': round(self.inst_mb_per_s or 0.0, 2),
            'seconds': round(self.seconds or 0.0, 3),
            'error': self.error,
            'created_at': _iso(self.created_at),
            'finished_at': _iso(self.finished_at),
        }


class SyncRound(Base):
    """The sync side of a transfer row (its own table: databases made
    before syncs existed get it without a migration)."""
    __tablename__ = 'sync_rounds'

    transfer_id: orm.Mapped[str] = orm.mapped_column(sa.String(32),
                                                     primary_key=True)
    key: orm.Mapped[str] = orm.mapped_column(sa.String(128), index=True)
    round: orm.Mapped[int | None] = orm.mapped_column(nullable=True)
    size: orm.Mapped[int] = orm.mapped_column(sa.BigInteger)
    bytes: orm.Mapped[int] = orm.mapped_column(sa.BigInteger, default=0)
    changed_bytes: orm.Mapped[int] = orm.mapped_column(sa.BigInteger,
                                                       default=0)
    repaired_bytes: orm.Mapped[int] = orm.mapped_column(sa.BigInteger,
                                                        default=0)

    def to_dict(self):
        return {'mode': 'sync', 'key': self.key, 'round': self.round,
                'size': self.size, 'bytes': self.bytes or 0,
                'changed_bytes': self.changed_bytes or 0,
                'repaired_bytes': self.repaired_bytes or 0}


def _with_sync(session, row):
    """A transfer's dict, with its sync fields when it is a sync."""
    result = row.to_dict()
    extra = session.get(SyncRound, row.id)
    result.update(extra.to_dict() if extra is not None
                  else {'mode': 'transfer'})
    return result


class LogEntry(Base):
    """One finished transfer, in the seed's log columns."""
    __tablename__ = 'log'

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    date: orm.Mapped[datetime.datetime] = orm.mapped_column(
        sa.DateTime, default=_now, index=True)
    transfer_id: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(32), nullable=True)
    source: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    destination: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    file: orm.Mapped[str] = orm.mapped_column(sa.String(4096))
    mb_per_s: orm.Mapped[float] = orm.mapped_column()
    mb: orm.Mapped[float] = orm.mapped_column()
    seconds: orm.Mapped[float] = orm.mapped_column()

    def to_dict(self):
        return {
            'id': self.id, 'date': _iso(self.date),
            'transfer_id': self.transfer_id, 'source': self.source,
            'destination': self.destination, 'file': self.file,
            'mb_per_s': round(self.mb_per_s, 2), 'mb': round(self.mb, 3),
            'seconds': round(self.seconds, 3),
        }


class Leftover(Base):
    """A temporary file a mover made elsewhere and has not removed yet."""
    __tablename__ = 'leftovers'

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    mover: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    where: orm.Mapped[dict] = orm.mapped_column(sa.JSON, default=dict)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        sa.DateTime, default=_now)

    def to_dict(self):
        return {'id': self.id, 'mover': self.mover,
                'where': dict(self.where or {}),
                'created_at': _iso(self.created_at)}


class NotFound(OvercloudMigrateError, LookupError):
    """No row with that key."""


class Conflict(OvercloudMigrateError, ValueError):
    """A row with that unique key exists already."""


class Store:
    """Thread-safe access to the DTN database (one session per call)."""

    def __init__(self, url=None):
        url = url or default_database_url()
        kwargs = {}
        if url.startswith('sqlite'):
            db_path = sa.engine.make_url(url).database
            if db_path and db_path != ':memory:':
                pathlib.Path(db_path).parent.mkdir(
                    parents=True, exist_ok=True, mode=0o700)
            kwargs['connect_args'] = {'check_same_thread': False}
            if not db_path or db_path == ':memory:':
                kwargs['poolclass'] = sa.pool.StaticPool
        self.engine = sa.create_engine(url, **kwargs)
        Base.metadata.create_all(self.engine)
        self._sessions = orm.sessionmaker(self.engine, expire_on_commit=False)
        # SQLite allows one writer; serialise our own writes to avoid
        # "database is locked" under the threaded server.
        self._write_lock = threading.Lock()

    def close(self):
        self.engine.dispose()

    # -- nodes ---------------------------------------------------------
    def add_node(self, name, address, gridftp_port=2811, gridftp_scheme='ftp',
                 data_port=None, endpoint=None, exports=None, local=False):
        with self._write_lock, self._sessions.begin() as session:
            exists = session.scalar(sa.select(Node).where(Node.name == name))
            if exists is not None:
                raise Conflict('A DTN node named %r is already registered.'
                               % name)
            node = Node(name=name, address=address, gridftp_port=gridftp_port,
                        gridftp_scheme=gridftp_scheme, data_port=data_port,
                        endpoint=endpoint, exports=dict(exports or {}),
                        local=local)
            session.add(node)
            session.flush()
            return node.to_dict()

    def upsert_local_node(self, name, address, gridftp_port, gridftp_scheme,
                          data_port, exports, endpoint=None):
        """Register (or refresh) this DTN itself from its command line."""
        with self._write_lock, self._sessions.begin() as session:
            node = session.scalar(sa.select(Node).where(Node.name == name))
            if node is None:
                node = Node(name=name)
                session.add(node)
            node.address = address
            node.gridftp_port = gridftp_port
            node.gridftp_scheme = gridftp_scheme
            node.data_port = data_port
            node.exports = dict(exports)
            node.endpoint = endpoint
            node.local = True
            session.flush()
            return node.to_dict()

    def list_nodes(self):
        with self._sessions() as session:
            rows = session.scalars(sa.select(Node).order_by(Node.id))
            return [row.to_dict() for row in rows]

    def get_node(self, name):
        with self._sessions() as session:
            node = session.scalar(sa.select(Node).where(Node.name == name))
            if node is None:
                raise NotFound('No DTN node named %r is registered.' % name)
            return node.to_dict()

    def find_node_by_address(self, address, port):
        """The node whose GridFTP server is ``address:port`` (seed API)."""
        with self._sessions() as session:
            node = session.scalar(sa.select(Node).where(
                Node.address == address, Node.gridftp_port == port))
            if node is None:
                raise NotFound('No DTN node is registered with the GridFTP '
                               'address %s:%s.' % (address, port))
            return node.to_dict()

    def delete_node(self, name):
        with self._write_lock, self._sessions.begin() as session:
            node = session.scalar(sa.select(Node).where(Node.name == name))
            if node is None:
                raise NotFound('No DTN node named %r is registered.' % name)
            session.delete(node)

    # -- transfers -----------------------------------------------------
    def create_transfer(self, source_node, source_path, dest_node, dest_path,
                        mover, streams, bytes_total=None):
        with self._write_lock, self._sessions.begin() as session:
            row = Transfer(id=uuid.uuid4().hex, source_node=source_node,
                           source_path=source_path, dest_node=dest_node,
                           dest_path=dest_path, mover=mover, streams=streams,
                           state=QUEUED, bytes_done=0,
                           bytes_total=bytes_total)
            session.add(row)
            session.flush()
            return row.to_dict()

    def update_transfer(self, transfer_id, **fields):
        allowed = {'state', 'bytes_total', 'bytes_done', 'avg_mb_per_s',
                   'inst_mb_per_s', 'seconds', 'error', 'finished_at'}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError('cannot update transfer fields %s'
                             % sorted(unknown))
        with self._write_lock, self._sessions.begin() as session:
            row = session.get(Transfer, transfer_id)
            if row is None:
                raise NotFound('No transfer with id %r.' % transfer_id)
            for key, value in fields.items():
                setattr(row, key, value)
            return row.to_dict()

    def finish_transfer(self, transfer_id, state, error=None, log=None):
        """Set a final state and, for a success, add the log row."""
        with self._write_lock, self._sessions.begin() as session:
            row = session.get(Transfer, transfer_id)
            if row is None:
                raise NotFound('No transfer with id %r.' % transfer_id)
            row.state = state
            row.error = error
            row.finished_at = _now()
            if log is not None:
                row.bytes_total = log['bytes']
                row.bytes_done = log['bytes']
                row.seconds = log['seconds']
                row.avg_mb_per_s = log['mb_per_s']
                session.add(LogEntry(
                    transfer_id=transfer_id, source=row.source_node,
                    destination=row.dest_node, file=row.dest_path,
                    mb_per_s=log['mb_per_s'], mb=log['bytes'] / 1e6,
                    seconds=log['seconds']))
            return row.to_dict()

    def fail_interrupted(self):
        """Mark transfers left queued/running by a previous run as failed."""
        with self._write_lock, self._sessions.begin() as session:
            result = session.execute(
                sa.update(Transfer)
                .where(Transfer.state.in_([QUEUED, RUNNING]))
                .values(state=FAILED, finished_at=_now(),
                        error='The DTN service stopped during this '
                              'transfer.'))
            return result.rowcount

    # -- leftovers (temporary files to remove) --------------------------
    def add_leftover(self, mover, where):
        with self._write_lock, self._sessions.begin() as session:
            row = Leftover(mover=mover, where=dict(where))
            session.add(row)
            session.flush()
            return row.id

    def remove_leftover(self, leftover_id):
        with self._write_lock, self._sessions.begin() as session:
            session.execute(sa.delete(Leftover).where(
                Leftover.id == leftover_id))

    def list_leftovers(self):
        with self._sessions() as session:
            return [row.to_dict() for row in session.scalars(
                sa.select(Leftover).order_by(Leftover.id))]

    def get_transfer(self, transfer_id):
        with self._sessions() as session:
            row = session.get(Transfer, transfer_id)
            if row is None:
                raise NotFound('No transfer with id %r.' % transfer_id)
            return _with_sync(session, row)

    def list_transfers(self, limit=100):
        with self._sessions() as session:
            rows = session.scalars(sa.select(Transfer).order_by(
                Transfer.created_at.desc()).limit(limit))
            return [_with_sync(session, row) for row in rows]

    # -- syncs (a transfer row plus its sync round) ---------------------
    def create_sync(self, transfer_id, key, size):
        with self._write_lock, self._sessions.begin() as session:
            session.add(SyncRound(transfer_id=transfer_id, key=key,
                                  size=size, bytes=0, changed_bytes=0,
                                  repaired_bytes=0))

    def update_sync(self, transfer_id, **fields):
        allowed = {'round', 'size', 'bytes', 'changed_bytes',
                   'repaired_bytes'}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError('cannot update sync fields %s' % sorted(unknown))
        with self._write_lock, self._sessions.begin() as session:
            row = session.get(SyncRound, transfer_id)
            if row is None:
                raise NotFound('No sync round with id %r.' % transfer_id)
            for key, value in fields.items():
                setattr(row, key, value)

    # -- log -------------------------------------------------------------
    def add_log(self, source, destination, file, nbytes, seconds,
                transfer_id=None):
        mb = nbytes / 1e6
        with self._write_lock, self._sessions.begin() as session:
            row = LogEntry(source=source, destination=destination, file=file,
                           mb=mb, seconds=seconds, transfer_id=transfer_id,
                           mb_per_s=mb / seconds if seconds else 0.0)
            session.add(row)
            session.flush()
            return row.to_dict()

    def log(self, since=None, node=None, file=None, limit=1000):
        """Log rows, oldest first; ``file`` matches a substring."""
        query = sa.select(LogEntry)
        if since is not None:
            if since.tzinfo is not None:
                since = since.astimezone(datetime.timezone.utc).replace(
                    tzinfo=None)
            query = query.where(LogEntry.date >= since)
        if node:
            query = query.where(sa.or_(LogEntry.source == node,
                                       LogEntry.destination == node))
        if file:
            query = query.where(LogEntry.file.contains(file, autoescape=True))
        query = query.order_by(LogEntry.date, LogEntry.id).limit(limit)
        with self._sessions() as session:
            rows = []
            for row in session.scalars(query):
                entry = row.to_dict()
                extra = (session.get(SyncRound, row.transfer_id)
                         if row.transfer_id else None)
                if extra is not None:
                    entry['sync'] = extra.to_dict()
                rows.append(entry)
            return rows
