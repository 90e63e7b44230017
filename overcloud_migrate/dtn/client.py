"""A client for the DTN service's v1 API (used by the CLI and transports)."""

import re
import time

import requests

from overcloud_migrate.dtn import constants
from overcloud_migrate.exceptions import OvercloudMigrateError

TOKEN_HEADER = constants.TOKEN_HEADER
TOKEN_ENV = constants.TOKEN_ENV
MAX_STREAMS = constants.MAX_STREAMS
DEFAULT_TIMEOUT = 30.0


def _reason(exc):
    """The useful end of a requests exception ("[Errno 111] ...")."""
    text = str(exc)
    match = re.search(r'(\[Errno -?\d+\][^\'")]*)', text)
    if match:
        return match.group(1).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class DTNClientError(OvercloudMigrateError):
    """The DTN service refused a request or could not be reached."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def read_token_file(path, what='DTN'):
    """The token on the first line of ``path``; :class:`DTNClientError`
    naming the file (and ``what`` it is for) when it is unreadable or
    empty."""
    try:
        with open(path, encoding='utf-8') as handle:
            token = handle.readline().strip()
    except OSError as exc:
        raise DTNClientError('Cannot read the %s token file %s: %s.'
                             % (what, path, exc.strerror or exc))
    if not token:
        raise DTNClientError('The %s token file %s is empty.' % (what, path))
    return token


class TransferFailed(DTNClientError):
    """A transfer ended failed or cancelled."""

    def __init__(self, message, transfer):
        super().__init__(message)
        self.transfer = transfer


class WaitTimeout(DTNClientError):
    """A transfer did not end in time."""

    def __init__(self, message, transfer):
        super().__init__(message)
        self.transfer = transfer


class DTNClient:
    def __init__(self, endpoint, token=None, timeout=DEFAULT_TIMEOUT,
                 session=None):
        if not endpoint or not endpoint.startswith(('http://', 'https://')):
            raise DTNClientError('The DTN endpoint %r is not an http(s) URL.'
                                 % (endpoint,))
        self.endpoint = endpoint.rstrip('/')
        self.timeout = timeout
        self.session = session or requests.Session()
        if token:
            self.session.headers[TOKEN_HEADER] = token

    def _call(self, method, path, **kwargs):
        url = self.endpoint + path
        try:
            response = self.session.request(method, url, timeout=self.timeout,
                                            **kwargs)
        except requests.RequestException as exc:
            raise DTNClientError('The DTN service at %s is unreachable: %s'
                                 % (self.endpoint, _reason(exc)))
        if response.status_code >= 400:
            try:
                message = response.json()['error']['message']
            except (ValueError, KeyError, TypeError):
                message = response.text.strip()[:200] or response.reason
            raise DTNClientError('The DTN service at %s answered %d: %s'
                                 % (self.endpoint, response.status_code,
                                    message), status=response.status_code)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise DTNClientError('The DTN service at %s sent no JSON for %s %s.'
                                 % (self.endpoint, method, path))

    def info(self):
        """``GET /v1/``: the API version, the movers and this DTN's node
        name (also proves the token is accepted)."""
        return self._call('GET', '/v1/')

    # nodes
    def nodes(self):
        return self._call('GET', '/v1/nodes')['nodes']

    def node(self, name):
        return self._call('GET', '/v1/nodes/%s' % requests.utils.quote(
            name, safe=''))['node']

    def add_node(self, name, address, exports, gridftp_port=2811,
                 gridftp_scheme='ftp', data_port=None, endpoint=None):
        body = {'name': name, 'address': address, 'exports': exports,
                'gridftp_port': gridftp_port,
                'gridftp_scheme': gridftp_scheme}
        if data_port is not None:
            body['data_port'] = data_port
        if endpoint is not None:
            body['endpoint'] = endpoint
        return self._call('POST', '/v1/nodes', json=body)['node']

    def delete_node(self, name):
        self._call('DELETE', '/v1/nodes/%s' % requests.utils.quote(
            name, safe=''))

    # listings
    def listing(self, node, path):
        return self._call('GET', '/v1/listing',
                          params={'node': node, 'path': path})

    # transfers
    def start_transfer(self, source, dest, mover=None, streams=None):
        body = {'source': source, 'dest': dest}
        if mover:
            body['mover'] = mover
        if streams:
            body['streams'] = streams
        return self._call('POST', '/v1/transfers', json=body)['transfer']

    def transfer(self, transfer_id, wait=None):
        """The transfer's row; with ``wait`` (seconds, at most
        :data:`constants.MAX_WAIT`) the service answers when the transfer
        ends or once that time has passed."""
        params = {'wait': '%.3f' % wait} if wait else None
        return self._call('GET', '/v1/transfers/%s' % transfer_id,
                          params=params)['transfer']

    def transfers(self):
        return self._call('GET', '/v1/transfers')['transfers']

    def cancel_transfer(self, transfer_id):
        return self._call('DELETE',
                          '/v1/transfers/%s' % transfer_id)['transfer']

    def wait_transfer(self, transfer_id, timeout=None, interval=1.0,
                      progress=None):
        """Follow the transfer until it ends; raise on failure or timeout.

        Each request waits in the service for up to ``interval`` seconds
        (``GET ...?wait=``), so the end is seen the moment it comes;
        ``progress(row)`` is called after each.  A service that answers
        sooner without an end is asked again after the rest of the
        interval.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # the answer must come well within the request's own timeout
        longest = min(constants.MAX_WAIT,
                      (self.timeout or DEFAULT_TIMEOUT) / 2)
        row = self.transfer(transfer_id)
        while True:
            if progress is not None:
                progress(row)
            if row['state'] == 'done':
                return row
            if row['state'] in ('failed', 'cancelled'):
                raise TransferFailed('The transfer %s %s: %s' % (
                    transfer_id, row['state'], row.get('error') or
                    'no reason given'), row)
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout('The transfer %s did not finish within %ss '
                                  '(%s, %d bytes done).' % (
                                      transfer_id, timeout, row['state'],
                                      row['bytes_done']), row)
            wait = min(interval, longest)
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            asked = time.monotonic()
            row = self.transfer(transfer_id, wait=wait)
            if row['state'] not in ('done', 'failed', 'cancelled'):
                time.sleep(max(0.0, wait - (time.monotonic() - asked)))

    # syncs (rounds of a delta copy; followed like transfers)
    def start_sync(self, source, dest, key, streams=None, raw=False):
        """``POST /v1/syncs``: start one round of the sync ``key`` from
        ``source`` (``node:path`` on this DTN) into ``dest`` (an existing
        file at least as large); the transfer row (``mode`` "sync").  Follow
        it with :meth:`wait_transfer`.  ``raw``: the DTN refuses a source
        that is a disk image container (qcow2, ...)."""
        body = {'source': source, 'dest': dest, 'key': key}
        if streams:
            body['streams'] = streams
        if raw:
            body['raw'] = True
        return self._call('POST', '/v1/syncs', json=body)['sync']

    def forget_sync(self, key):
        """``DELETE /v1/syncs/<key>``: both DTNs drop the saved signatures
        of ``key`` (the next round is round 1 again); idempotent."""
        return self._call('DELETE', '/v1/syncs/%s' % requests.utils.quote(
            key, safe=''))

    # log
    def log(self, since=None, node=None, file=None, limit=None):
        params = {key: value for key, value in (
            ('since', since), ('node', node), ('file', file),
            ('limit', limit)) if value is not None}
        return self._call('GET', '/v1/log', params=params)['log']
