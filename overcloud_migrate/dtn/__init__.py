"""The DTN transfer service (port 22641), its movers and its client.

Runs on Data Transfer Nodes, which have no OpenStack client: nothing here
imports openstacksdk.
"""
