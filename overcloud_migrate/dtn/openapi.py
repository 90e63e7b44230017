"""The OpenAPI 3 description of the DTN service's v1 API.

Served at ``/v1/openapi.json``; a unit test holds it against the routes
the application really has.
"""

import copy

from overcloud_migrate.dtn import constants

_ERROR = {'$ref': '#/components/responses/Error'}
_LOCATION = {
    'oneOf': [
        {'type': 'string', 'description': 'NODE:/path or IP:PORT/path',
         'example': 'dtn-a:/export/data/vm1.qcow2'},
        {'type': 'object', 'required': ['node', 'path'],
         'additionalProperties': False,
         'properties': {'node': {'type': 'string'},
                        'path': {'type': 'string'}}},
    ]}


def _json(schema_ref, description='OK'):
    return {'description': description, 'content': {'application/json': {
        'schema': {'$ref': '#/components/schemas/' + schema_ref}}}}


def _name_param(name, description):
    return {'name': name, 'in': 'path', 'required': True,
            'description': description, 'schema': {'type': 'string'}}


_DOCUMENT = {
    'openapi': '3.0.3',
    'info': {
        'title': 'overcloud-migrate DTN service',
        'version': '1',
        'description': 'Moves files between Data Transfer Nodes. Every '
                       'request needs an X-Auth-Token header (a shared '
                       'token or a Keystone token) unless the service was '
                       'started with --insecure-no-auth.',
    },
    'components': {
        'securitySchemes': {'token': {'type': 'apiKey', 'in': 'header',
                                      'name': 'X-Auth-Token'}},
        'responses': {'Error': {
            'description': 'An error naming the problem',
            'content': {'application/json': {'schema': {
                '$ref': '#/components/schemas/Error'}}}}},
        'schemas': {
            'Error': {'type': 'object', 'properties': {'error': {
                'type': 'object', 'properties': {
                    'code': {'type': 'integer'},
                    'message': {'type': 'string'}}}}},
            'Node': {'type': 'object', 'properties': {
                'id': {'type': 'integer'}, 'name': {'type': 'string'},
                'address': {'type': 'string'},
                'gridftp_port': {'type': 'integer'},
                'gridftp_scheme': {'type': 'string',
                                   'enum': ['ftp', 'gsiftp', 'sshftp']},
                'data_port': {'type': 'integer', 'nullable': True},
                'endpoint': {'type': 'string', 'nullable': True},
                'exports': {'type': 'object', 'additionalProperties': {
                    'type': 'string'}},
                'local': {'type': 'boolean'},
                'created_at': {'type': 'string', 'format': 'date-time'}}},
            'NewNode': {
                'type': 'object', 'additionalProperties': False,
                'required': ['name', 'address', 'exports'],
                'properties': {
                    'name': {'type': 'string'},
                    'address': {'type': 'string'},
                    'gridftp_port': {'type': 'integer', 'default': 2811},
                    'gridftp_scheme': {'type': 'string', 'default': 'ftp'},
                    'data_port': {'type': 'integer'},
                    'endpoint': {'type': 'string'},
                    'exports': {'type': 'object', 'additionalProperties': {
                        'type': 'string'}}}},
            'NodeAnswer': {'type': 'object', 'properties': {
                'node': {'$ref': '#/components/schemas/Node'}}},
            'NodeList': {'type': 'object', 'properties': {'nodes': {
                'type': 'array', 'items': {
                    '$ref': '#/components/schemas/Node'}}}},
            'Listing': {'type': 'object', 'properties': {
                'node': {'type': 'string'}, 'path': {'type': 'string'},
                'url': {'type': 'string'},
                'entries': {'type': 'array', 'items': {'type': 'string'}}}},
            'NewTransfer': {
                'type': 'object', 'additionalProperties': False,
                'required': ['source', 'dest'],
                'properties': {
                    'source': _LOCATION, 'dest': _LOCATION,
                    'mover': {'type': 'string', 'default': 'gridftp'},
                    'streams': {'type': 'integer', 'minimum': 1,
                                'maximum': 64, 'default': 4}}},
            'Transfer': {'type': 'object', 'properties': {
                'id': {'type': 'string'},
                'state': {'type': 'string', 'enum': [
                    'queued', 'running', 'done', 'failed', 'cancelled']},
                'source': {'type': 'object'}, 'dest': {'type': 'object'},
                'mover': {'type': 'string'}, 'streams': {'type': 'integer'},
                'bytes_total': {'type': 'integer', 'nullable': True},
                'bytes_done': {'type': 'integer'},
                'avg_mb_per_s': {'type': 'number'},
                'inst_mb_per_s': {'type': 'number'},
                'seconds': {'type': 'number'},
                'error': {'type': 'string', 'nullable': True},
                'created_at': {'type': 'string'},
                'finished_at': {'type': 'string', 'nullable': True},
                'mode': {'type': 'string', 'enum': ['transfer', 'sync']},
                'key': {'type': 'string', 'description': 'syncs only'},
                'round': {'type': 'integer', 'nullable': True,
                          'description': 'syncs only: 1 for the first '
                                         'round of the key, then 2, 3...'},
                'size': {'type': 'integer', 'description': 'syncs only'},
                'bytes': {'type': 'integer', 'description': 'syncs only: '
                          'data bytes that crossed the link this round'},
                'changed_bytes': {'type': 'integer', 'description':
                                  'syncs only: bytes in blocks changed '
                                  'since the last round'},
                'repaired_bytes': {'type': 'integer', 'description':
                                   'syncs only: bytes resent because the '
                                   'destination found them damaged'}}},
            'NewSync': {
                'type': 'object', 'additionalProperties': False,
                'required': ['source', 'dest', 'key'],
                'properties': {
                    'source': _LOCATION, 'dest': _LOCATION,
                    'key': {'type': 'string',
                            'pattern': '^[A-Za-z0-9._-]{1,128}$'},
                    'streams': {'type': 'integer', 'minimum': 1,
                                'maximum': 64, 'default': 4},
                    'raw': {'type': 'boolean', 'default': False,
                            'description': 'refuse a source that starts '
                                           'as a disk image container '
                                           '(qcow2, VMDK, VHDX): it must '
                                           'be a raw disk'}}},
            'SyncAnswer': {'type': 'object', 'properties': {
                'sync': {'$ref': '#/components/schemas/Transfer'}}},
            'TransferAnswer': {'type': 'object', 'properties': {
                'transfer': {'$ref': '#/components/schemas/Transfer'}}},
            'TransferList': {'type': 'object', 'properties': {
                'transfers': {'type': 'array', 'items': {
                    '$ref': '#/components/schemas/Transfer'}}}},
            'LogList': {'type': 'object', 'properties': {'log': {
                'type': 'array', 'items': {'type': 'object', 'properties': {
                    'date': {'type': 'string'}, 'source': {'type': 'string'},
                    'destination': {'type': 'string'},
                    'file': {'type': 'string'},
                    'mb_per_s': {'type': 'number'}, 'mb': {'type': 'number'},
                    'seconds': {'type': 'number'}}}}}},
        },
    },
    'security': [{'token': []}],
    'paths': {
        '/v1/': {'get': {
            'summary': 'API version, installed movers and this node',
            'responses': {'200': {'description': 'OK'}, '401': _ERROR}}},
        '/v1/openapi.json': {'get': {
            'summary': 'This document',
            'responses': {'200': {'description': 'OK'}, '401': _ERROR}}},
        '/v1/nodes': {
            'get': {'summary': 'List the registered DTN nodes',
                    'responses': {'200': _json('NodeList'), '401': _ERROR}},
            'post': {'summary': 'Register a DTN node',
                     'requestBody': {'required': True, 'content': {
                         'application/json': {'schema': {
                             '$ref': '#/components/schemas/NewNode'}}}},
                     'responses': {'201': _json('NodeAnswer', 'Registered'),
                                   '400': _ERROR, '401': _ERROR,
                                   '409': _ERROR, '413': _ERROR}}},
        '/v1/nodes/{name}': {
            'parameters': [_name_param('name', 'Node name')],
            'get': {'summary': 'Show a node',
                    'responses': {'200': _json('NodeAnswer'), '404': _ERROR}},
            'delete': {'summary': 'Delete a node (not this DTN itself)',
                       'responses': {'204': {'description': 'Deleted'},
                                     '404': _ERROR, '409': _ERROR}}},
        '/v1/listing': {'get': {
            'summary': 'List a directory inside an export of a node',
            'parameters': [
                {'name': 'node', 'in': 'query', 'required': True,
                 'schema': {'type': 'string'}},
                {'name': 'path', 'in': 'query', 'required': True,
                 'schema': {'type': 'string'}}],
            'responses': {'200': _json('Listing'), '400': _ERROR,
                          '403': _ERROR, '404': _ERROR, '502': _ERROR}}},
        '/v1/transfers': {
            'get': {'summary': 'Recent transfers, newest first',
                    'responses': {'200': _json('TransferList')}},
            'post': {'summary': 'Start a transfer (runs in the background)',
                     'requestBody': {'required': True, 'content': {
                         'application/json': {'schema': {
                             '$ref': '#/components/schemas/NewTransfer'}}}},
                     'responses': {'202': _json('TransferAnswer', 'Started'),
                                   '400': _ERROR, '403': _ERROR,
                                   '404': _ERROR, '413': _ERROR,
                                   '503': _ERROR}}},
        '/v1/transfers/{transfer_id}': {
            'parameters': [_name_param('transfer_id', 'Transfer id')],
            'get': {'summary': 'Transfer status and progress',
                    'parameters': [
                        {'name': 'wait', 'in': 'query', 'schema': {
                            'type': 'number', 'minimum': 0,
                            'maximum': constants.MAX_WAIT},
                         'description': 'answer when the transfer ends or '
                                        'after this many seconds, whichever '
                                        'comes first'}],
                    'responses': {'200': _json('TransferAnswer'),
                                  '400': _ERROR, '404': _ERROR}},
            'delete': {'summary': 'Cancel a running transfer',
                       'responses': {'202': _json('TransferAnswer'),
                                     '404': _ERROR, '409': _ERROR}}},
        '/v1/syncs': {
            'post': {'summary': 'Start one round of a sync (a delta copy '
                                'into an existing file at least as large; '
                                'followed like a transfer)',
                     'requestBody': {'required': True, 'content': {
                         'application/json': {'schema': {
                             '$ref': '#/components/schemas/NewSync'}}}},
                     'responses': {'202': _json('SyncAnswer', 'Started'),
                                   '400': _ERROR, '403': _ERROR,
                                   '404': _ERROR, '409': _ERROR,
                                   '503': _ERROR}}},
        '/v1/syncs/{key}': {
            'parameters': [_name_param('key', 'Sync key')],
            'delete': {'summary': 'Both DTNs drop the saved signatures of '
                                  'the key (idempotent)',
                       'responses': {'200': {'description': 'Forgotten'},
                                     '409': _ERROR, '502': _ERROR,
                                     '503': _ERROR}}},
        '/v1/log': {'get': {
            'summary': 'The transfer log',
            'parameters': [
                {'name': 'since', 'in': 'query', 'schema': {
                    'type': 'string', 'format': 'date-time'}},
                {'name': 'node', 'in': 'query', 'schema': {'type': 'string'}},
                {'name': 'file', 'in': 'query', 'schema': {'type': 'string'},
                 'description': 'substring of the file path'},
                {'name': 'limit', 'in': 'query', 'schema': {
                    'type': 'integer', 'minimum': 1, 'maximum': 10000}}],
            'responses': {'200': _json('LogList'), '400': _ERROR}}},
    },
}


def document():
    """A fresh copy of the document (callers may change it)."""
    return copy.deepcopy(_DOCUMENT)
