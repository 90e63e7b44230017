"""The migration journal: migrations, their events and the ID map.

SQLAlchemy over SQLite by default (``$XDG_STATE_HOME/overcloud-migrate/
journal.sqlite``); any database URL works for a shared deployment
(``--journal-url`` or ``OVERCLOUD_MIGRATE_JOURNAL_URL``).  The ID map
records, for every resource a migration created or adopted at the
destination, which source resource it stands for: replication finds it
again there, and rollback knows what to delete.
"""

import datetime
import json
import os
import pathlib
import uuid

import sqlalchemy as sa
from sqlalchemy import orm

JOURNAL_URL_ENV = 'OVERCLOUD_MIGRATE_JOURNAL_URL'

# The state names, defined here only.  A migration (Migration.state) is
# planned, running, network-ready (--network-only), aborting, synced (a warm
# migration between its sync rounds and its cut-over), and ends done,
# failed, rolled-back or handed-off (migrate --handoff).  A server
# (ServerRun.state) is pending, running, stopping, booting, verified, synced
# (warm: its volumes copied while it runs), and ends done, failed,
# rolled-back or handed-off.
PLANNED = 'planned'
PENDING = 'pending'
RUNNING = 'running'
STOPPING = 'stopping'
BOOTING = 'booting'
VERIFIED = 'verified'
NETWORK_READY = 'network-ready'
ABORTING = 'aborting'
DONE = 'done'
FAILED = 'failed'
ROLLED_BACK = 'rolled-back'
HANDED_OFF = 'handed-off'
SYNCED = 'synced'
#: a migration in one of these states has nothing left to resume
FINISHED = (DONE, ROLLED_BACK, HANDED_OFF)
#: a migration in one of these states can be aborted
ABORTABLE = (RUNNING, NETWORK_READY)


def default_url(name='journal.sqlite'):
    state = os.environ.get('XDG_STATE_HOME') or os.path.join(
        os.path.expanduser('~'), '.local', 'state')
    path = pathlib.Path(state) / 'overcloud-migrate' / name
    return 'sqlite:///%s' % path


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


class Base(orm.DeclarativeBase):
    pass


class Migration(Base):
    __tablename__ = 'migrations'
    id = sa.Column(sa.String(36), primary_key=True)
    created_at = sa.Column(sa.DateTime(timezone=True), default=_now)
    updated_at = sa.Column(sa.DateTime(timezone=True), default=_now,
                           onupdate=_now)
    source = sa.Column(sa.String(512), nullable=False)
    destination = sa.Column(sa.String(512), nullable=False)
    state = sa.Column(sa.String(32), nullable=False, default=PLANNED)
    plan = sa.Column(sa.Text, nullable=False)
    error = sa.Column(sa.Text)
    # How to reach the clouds again on resume: names, never secrets.
    source_cloud = sa.Column(sa.String(255))
    dest_cloud = sa.Column(sa.String(255))
    dest_region = sa.Column(sa.String(255))
    dest_project = sa.Column(sa.String(255))
    options = sa.Column(sa.Text)  # JSON: transport, its options, modes
    #: warm migration: what a run of it is doing now ('sync' or 'cutover');
    #: resume goes on with it
    step = sa.Column(sa.String(16))


class ServerRun(Base):
    """One server of a migration: where it is and how long each phase took."""
    __tablename__ = 'server_runs'
    __table_args__ = (sa.UniqueConstraint('migration_id', 'source_id'),)
    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    migration_id = sa.Column(sa.String(36), sa.ForeignKey('migrations.id'),
                             nullable=False)
    source_id = sa.Column(sa.String(64), nullable=False)
    name = sa.Column(sa.String(255), nullable=False, default='')
    position = sa.Column(sa.Integer, nullable=False, default=0)
    state = sa.Column(sa.String(32), nullable=False, default=PENDING)
    dest_id = sa.Column(sa.String(64))
    source_was_running = sa.Column(sa.Boolean)
    stopped_by_us = sa.Column(sa.Boolean, nullable=False, default=False)
    bytes = sa.Column(sa.BigInteger)
    transfer_seconds = sa.Column(sa.Float)
    stopped_at = sa.Column(sa.Float)   # time.time() of the source stop
    active_at = sa.Column(sa.Float)    # time.time() of destination ACTIVE
    phases = sa.Column(sa.Text)        # JSON {phase: seconds}
    # JSON {phase: [start, end]} in time.time() seconds (the timeline)
    phase_spans = sa.Column(sa.Text)
    #: warm migration: JSON of what the source server was at the first sync
    #: round (launched_at, flavor, image, volumes): later rounds compare
    source_fingerprint = sa.Column(sa.Text)
    error = sa.Column(sa.Text)


class VolumeRun(Base):
    """One volume of a server of a migration: its copy and what it cost."""
    __tablename__ = 'volume_runs'
    __table_args__ = (sa.UniqueConstraint('migration_id', 'source_id'),)
    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    migration_id = sa.Column(sa.String(36), sa.ForeignKey('migrations.id'),
                             nullable=False)
    source_id = sa.Column(sa.String(64), nullable=False)
    server_id = sa.Column(sa.String(64), nullable=False)
    name = sa.Column(sa.String(255), nullable=False, default='')
    position = sa.Column(sa.Integer, nullable=False, default=0)
    dest_id = sa.Column(sa.String(64))
    bytes = sa.Column(sa.BigInteger)        # image bytes that crossed
    transfer_seconds = sa.Column(sa.Float)
    phases = sa.Column(sa.Text)             # JSON {phase: seconds}


class SyncRound(Base):
    """One finished sync round of one volume of a warm migration."""
    __tablename__ = 'sync_rounds'
    __table_args__ = (sa.UniqueConstraint('migration_id', 'volume_id',
                                          'round'),)
    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    migration_id = sa.Column(sa.String(36), sa.ForeignKey('migrations.id'),
                             nullable=False)
    server_id = sa.Column(sa.String(64), nullable=False)
    volume_id = sa.Column(sa.String(64), nullable=False)
    round = sa.Column(sa.Integer, nullable=False)
    #: True: the cut-over's round (the source server stopped)
    cutover = sa.Column(sa.Boolean, nullable=False, default=False)
    size = sa.Column(sa.BigInteger)             # the volume's bytes
    bytes = sa.Column(sa.BigInteger)            # payload that crossed
    changed_bytes = sa.Column(sa.BigInteger)    # found changed at the source
    repaired_bytes = sa.Column(sa.BigInteger)   # found damaged at the dest
    seconds = sa.Column(sa.Float)
    finished_at = sa.Column(sa.Float)           # time.time()


class Mapping(Base):
    """Source resource -> destination resource, per pair of clouds."""
    __tablename__ = 'id_map'
    __table_args__ = (sa.UniqueConstraint('source', 'destination',
                                          'resource_type', 'source_id'),)
    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    source = sa.Column(sa.String(512), nullable=False)
    destination = sa.Column(sa.String(512), nullable=False)
    resource_type = sa.Column(sa.String(64), nullable=False)
    source_id = sa.Column(sa.String(255), nullable=False)
    dest_id = sa.Column(sa.String(255), nullable=False)
    # True when this migration created it (rollback deletes only those).
    created = sa.Column(sa.Boolean, nullable=False, default=True)
    migration_id = sa.Column(sa.String(36), sa.ForeignKey('migrations.id'))
    recorded_at = sa.Column(sa.DateTime(timezone=True), default=_now)


class Event(Base):
    __tablename__ = 'events'
    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    migration_id = sa.Column(sa.String(36), sa.ForeignKey('migrations.id'),
                             nullable=False)
    at = sa.Column(sa.DateTime(timezone=True), default=_now)
    level = sa.Column(sa.String(16), nullable=False)
    message = sa.Column(sa.Text, nullable=False)


class Journal:
    """The journal at ``url`` (created on first use)."""

    def __init__(self, url=None):
        self.url = url or os.environ.get(JOURNAL_URL_ENV) or default_url()
        if self.url.startswith('sqlite:///'):
            path = pathlib.Path(self.url[len('sqlite:///'):])
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.engine = sa.create_engine(self.url, future=True)
        if self.engine.dialect.name == 'sqlite':
            sa.event.listen(self.engine, 'connect', _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        _add_missing_columns(self.engine)
        self._session = orm.sessionmaker(self.engine, expire_on_commit=False)

    # -- migrations ---------------------------------------------------------

    def start(self, source, destination, plan, **clouds):
        """Record a new migration of ``plan`` (a dict); returns its id.

        ``clouds`` may give source_cloud, dest_cloud, dest_region,
        dest_project (names), options (a dict, stored as JSON) and
        migration_id (default: a new UUID).
        """
        options = clouds.pop('options', None)
        migration_id = clouds.pop('migration_id', None) or str(uuid.uuid4())
        record = Migration(id=migration_id, source=source,
                           destination=destination, state=RUNNING,
                           plan=json.dumps(plan, sort_keys=True),
                           options=json.dumps(options or {}), **clouds)
        with self._session.begin() as session:
            session.add(record)
        return record.id

    def set_state(self, migration_id, state, **values):
        """Set the migration's state (and other columns: ``step``)."""
        with self._session.begin() as session:
            record = session.get(Migration, migration_id)
            record.state = state
            for key, value in values.items():
                setattr(record, key, value)

    # -- servers of a migration ---------------------------------------------

    def add_server(self, migration_id, source_id, name, position):
        with self._session.begin() as session:
            found = session.scalars(sa.select(ServerRun).where(
                ServerRun.migration_id == migration_id,
                ServerRun.source_id == source_id)).first()
            if found is None:
                session.add(ServerRun(migration_id=migration_id,
                                      source_id=source_id, name=name,
                                      position=position))

    def update_server(self, migration_id, source_id, phase=None,
                      seconds=None, started=None, **values):
        """Set columns of a server's record; add ``phase``'s duration
        (and its span, from ``started``, a time.time())."""
        with self._session.begin() as session:
            row = session.scalars(sa.select(ServerRun).where(
                ServerRun.migration_id == migration_id,
                ServerRun.source_id == source_id)).one()
            for key, value in values.items():
                setattr(row, key, value)
            if phase is not None:
                phases = json.loads(row.phases or '{}')
                phases[phase] = round(seconds or 0.0, 3)
                row.phases = json.dumps(phases)
                if started is not None:
                    spans = json.loads(row.phase_spans or '{}')
                    spans[phase] = [round(started, 3),
                                    round(started + (seconds or 0.0), 3)]
                    row.phase_spans = json.dumps(spans)

    def servers(self, migration_id):
        with self._session() as session:
            return list(session.scalars(sa.select(ServerRun).where(
                ServerRun.migration_id == migration_id)
                .order_by(ServerRun.position)))

    def server(self, migration_id, source_id):
        with self._session() as session:
            return session.scalars(sa.select(ServerRun).where(
                ServerRun.migration_id == migration_id,
                ServerRun.source_id == source_id)).first()

    # -- volumes of a migration ---------------------------------------------

    def update_volume(self, migration_id, source_id, server_id=None,
                      phase=None, seconds=None, **values):
        """Set columns of a volume's record (made on first use); add
        ``phase``'s duration."""
        with self._session.begin() as session:
            row = session.scalars(sa.select(VolumeRun).where(
                VolumeRun.migration_id == migration_id,
                VolumeRun.source_id == source_id)).first()
            if row is None:
                row = VolumeRun(migration_id=migration_id,
                                source_id=source_id,
                                server_id=server_id or '')
                session.add(row)
            for key, value in values.items():
                setattr(row, key, value)
            if phase is not None:
                phases = json.loads(row.phases or '{}')
                phases[phase] = round(seconds or 0.0, 3)
                row.phases = json.dumps(phases)

    def volumes(self, migration_id):
        with self._session() as session:
            return list(session.scalars(sa.select(VolumeRun).where(
                VolumeRun.migration_id == migration_id)
                .order_by(VolumeRun.id)))

    # -- sync rounds of a warm migration ------------------------------------

    def add_round(self, migration_id, server_id, volume_id, round_, **values):
        """Record a finished sync round (again: its figures replaced)."""
        with self._session.begin() as session:
            row = session.scalars(sa.select(SyncRound).where(
                SyncRound.migration_id == migration_id,
                SyncRound.volume_id == volume_id,
                SyncRound.round == round_)).first()
            if row is None:
                row = SyncRound(migration_id=migration_id,
                                server_id=server_id, volume_id=volume_id,
                                round=round_)
                session.add(row)
            for key, value in values.items():
                setattr(row, key, value)

    def rounds(self, migration_id, volume_id=None):
        """The finished sync rounds, oldest first."""
        with self._session() as session:
            query = sa.select(SyncRound).where(
                SyncRound.migration_id == migration_id)
            if volume_id is not None:
                query = query.where(SyncRound.volume_id == volume_id)
            return list(session.scalars(query.order_by(SyncRound.id)))

    def finish(self, migration_id, state, error=None):
        with self._session.begin() as session:
            record = session.get(Migration, migration_id)
            record.state = state
            record.error = error
            record.step = None

    def get(self, migration_id):
        with self._session() as session:
            return session.get(Migration, migration_id)

    def migrations(self):
        with self._session() as session:
            return list(session.scalars(
                sa.select(Migration).order_by(Migration.created_at)))

    def log(self, migration_id, message, level='info'):
        with self._session.begin() as session:
            session.add(Event(migration_id=migration_id, level=level,
                              message=message))

    def events(self, migration_id):
        with self._session() as session:
            return list(session.scalars(
                sa.select(Event).where(Event.migration_id == migration_id)
                .order_by(Event.id)))

    # -- the ID map ---------------------------------------------------------

    def lookup(self, source, destination, resource_type, source_id):
        with self._session() as session:
            row = session.scalars(sa.select(Mapping).where(
                Mapping.source == source, Mapping.destination == destination,
                Mapping.resource_type == resource_type,
                Mapping.source_id == source_id)).first()
            return row.dest_id if row else None

    def record(self, source, destination, resource_type, source_id, dest_id,
               migration_id=None, created=True):
        """Map ``source_id`` to ``dest_id`` (replacing an older mapping)."""
        with self._session.begin() as session:
            row = session.scalars(sa.select(Mapping).where(
                Mapping.source == source, Mapping.destination == destination,
                Mapping.resource_type == resource_type,
                Mapping.source_id == source_id)).first()
            if row is None:
                session.add(Mapping(
                    source=source, destination=destination,
                    resource_type=resource_type, source_id=source_id,
                    dest_id=dest_id, migration_id=migration_id,
                    created=created))
            else:
                row.dest_id = dest_id
                row.migration_id = migration_id or row.migration_id

    def forget(self, source, destination, resource_type, source_id):
        with self._session.begin() as session:
            session.execute(sa.delete(Mapping).where(
                Mapping.source == source, Mapping.destination == destination,
                Mapping.resource_type == resource_type,
                Mapping.source_id == source_id))

    def mappings(self, migration_id=None):
        with self._session() as session:
            query = sa.select(Mapping).order_by(Mapping.id)
            if migration_id:
                query = query.where(Mapping.migration_id == migration_id)
            return list(session.scalars(query))


# Columns added after the first release: (table, column, SQL type).
_LATER_COLUMNS = (('server_runs', 'phase_spans', 'TEXT'),
                  ('server_runs', 'source_fingerprint', 'TEXT'),
                  ('migrations', 'step', 'VARCHAR(16)'))


def _add_missing_columns(engine):
    """Bring a journal made by an older release up to the current tables."""
    inspector = sa.inspect(engine)
    for table, column, kind in _LATER_COLUMNS:
        if column in {c['name'] for c in inspector.get_columns(table)}:
            continue
        try:
            with engine.begin() as conn:
                conn.execute(sa.text('ALTER TABLE %s ADD COLUMN %s %s'
                                     % (table, column, kind)))
        except sa.exc.OperationalError:
            pass  # another process added it first


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute('PRAGMA journal_mode=WAL')
    cursor.execute('PRAGMA busy_timeout=10000')
    cursor.execute('PRAGMA foreign_keys=ON')
    cursor.close()
