"""One TaskFlow flow per server, persisted beside the journal.

A flow's state lives in TaskFlow's SQLAlchemy backend on the journal's own
database; ``resume`` rebuilds the same flow (same task names) and loads it
with the saved flow detail, so finished tasks are not run again.
"""

import concurrent.futures
import contextlib
import logging
import uuid

from taskflow import engines
from taskflow import exceptions as tf_exc
from taskflow.patterns import linear_flow
from taskflow.persistence import backends
from taskflow.persistence import models

from overcloud_migrate import journal as journal_mod
from overcloud_migrate.workflow import images as image_tasks
from overcloud_migrate.workflow import tasks
from overcloud_migrate.workflow import volume_handoff
from overcloud_migrate.workflow import volumes
from overcloud_migrate.workflow import warm

LOG = logging.getLogger(__name__)


def _backend_url(journal_url):
    if journal_url.startswith('sqlite:') and '?' not in journal_url:
        return journal_url + '?timeout=30'
    return journal_url


def prepare(journal_url):
    """Create or upgrade TaskFlow's tables once, before threads use them."""
    backend = backends.fetch({'connection': _backend_url(journal_url)})
    try:
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
    finally:
        backend.close()


class FlowStore:
    """The TaskFlow logbook of one migration."""

    def __init__(self, journal_url, migration_id):
        self.backend = backends.fetch({'connection':
                                       _backend_url(journal_url)})
        with contextlib.closing(self.backend.get_connection()) as conn:
            conn.upgrade()
        self.migration_id = migration_id
        with contextlib.closing(self.backend.get_connection()) as conn:
            try:
                self.book = conn.get_logbook(migration_id)
            except tf_exc.NotFound:
                self.book = models.LogBook('migration-%s' % migration_id,
                                           uuid=migration_id)
                conn.save_logbook(self.book)

    def detail(self, name):
        """The flow detail ``name`` (a server's ID, or with a suffix for
        another flow of it: ``<ID>:cutover``), created on first use."""
        for detail in self.book:
            if detail.name == name:
                return detail
        detail = models.FlowDetail(name, uuid=str(uuid.uuid5(
            uuid.UUID(self.migration_id), name)))
        self.book.add(detail)
        with contextlib.closing(self.backend.get_connection()) as conn:
            conn.save_logbook(self.book)
        return detail

    def close(self):
        self.backend.close()


def flow_name(ctx):
    """The name of ``ctx``'s flow detail in the migration's logbook."""
    if ctx.warm == warm.CUTOVER:
        return '%s:%s' % (ctx.server.id, warm.CUTOVER)
    return ctx.server.id


def server_flow(ctx):
    if ctx.warm == warm.CUTOVER:
        return warm.cutover_flow(ctx)
    flow = linear_flow.Flow('server-%s' % ctx.server.id)
    image_booted = ctx.server.boot_source != 'volume'
    if ctx.item is not None:
        # The Receiver: the image and the volumes are in a handoff item.
        if image_booted:
            flow.add(image_tasks.UploadImage(ctx))
        _add_volumes(flow, ctx, volume_handoff.IN_THE_RECEIVER)
        flow.add(tasks.BootServer(ctx), tasks.Verify(ctx))
        _add_volumes(flow, ctx, None, after_boot=True)
        return flow
    if ctx.handoff:
        # migrate --handoff: the Receiver does the rest at the destination.
        flow.add(tasks.StopSource(ctx))
        if image_booted:
            flow.add(tasks.Snapshot(ctx))
        _add_volumes(flow, ctx, volume_handoff.AT_THE_SOURCE)
        flow.add(image_tasks.HandOff(ctx))
        if ctx.server.volumes:
            flow.add(volumes.CleanVolumes(ctx))
        return flow
    flow.add(tasks.StopSource(ctx))
    if image_booted:
        flow.add(tasks.Snapshot(ctx), image_tasks.TransferImage(ctx))
    _add_volumes(flow, ctx, None)
    flow.add(tasks.BootServer(ctx), tasks.Verify(ctx))
    _add_volumes(flow, ctx, None, after_boot=True)
    if not ctx.keep_source_snapshots and image_booted:
        flow.add(tasks.CleanSourceSnapshots(ctx))
    if ctx.delete_source:
        flow.add(tasks.DeleteSource(ctx))
    return flow


def _add_volumes(flow, ctx, steps, after_boot=False):
    """The volume tasks of ``ctx.server`` (``steps`` of each volume), or,
    ``after_boot``, their check and clean-up; nothing without volumes."""
    if not ctx.server.volumes:
        return
    if after_boot:
        flow.add(volumes.VerifyVolumes(ctx),
                 warm.ForgetSyncs(ctx) if ctx.volume_shares
                 else volumes.CleanVolumes(ctx))
    elif ctx.volume_shares and steps is None:
        # the transport reaches both Cinder shares: one sync round each
        flow.add(*warm.share_tasks(ctx))
    else:
        flow.add(*volumes.volume_tasks(ctx, steps))


def run_servers(contexts, journal_url, migration_id, parallel=1,
                on_done=None):
    """Run (or resume) each server's flow, ``parallel`` at a time.

    Returns {server id: None or the error message}.  A failing flow is
    reverted (its destination server and image deleted, the source server
    restarted) and does not stop the others.
    """
    store = FlowStore(journal_url, migration_id)
    journal = contexts[0].journal if contexts else None
    # Flow details are made here, not in the threads: the logbook is shared.
    details = {ctx.server.id: store.detail(flow_name(ctx))
               for ctx in contexts}

    def one(ctx):
        server = ctx.server
        detail = details[server.id]
        engine = engines.load(server_flow(ctx), flow_detail=detail,
                              book=store.book, backend=store.backend,
                              engine='serial')
        journal.update_server(migration_id, server.id, state=journal_mod.RUNNING,
                              error=None)
        try:
            engine.run()
        except Exception as exc:  # the flow reverted; record and go on
            message = str(exc).splitlines()[0] if str(exc) else repr(exc)
            if isinstance(exc, tf_exc.WrappedFailure):
                message = '; '.join(str(f.exception) for f in exc)
            journal.update_server(migration_id, server.id, state=journal_mod.FAILED,
                                  error=message)
            journal.log(migration_id, "server '%s': %s" % (server.name,
                                                           message), 'error')
            result = message
        else:
            done = (journal_mod.HANDED_OFF if ctx.handoff
                    else journal_mod.DONE)
            journal.update_server(migration_id, server.id, state=done)
            journal.log(migration_id, "server '%s' %s" % (
                server.name, 'handed off' if ctx.handoff else 'migrated'))
            result = None
        if on_done:
            on_done(ctx, result)
        return server.id, result

    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, parallel)) as pool:
            return dict(pool.map(one, contexts))
    finally:
        store.close()
