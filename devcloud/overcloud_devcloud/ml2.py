"""An ML2 mechanism driver for the test bed: binds every port, no agents.

Without L2 agents ports end ``binding_failed`` and Nova fails the boot.  This
driver binds each port to the first segment offered, as an OVS port, and
marks it ACTIVE.  Registered as ``devcloud_bind`` in
``neutron.ml2.mechanism_drivers`` by the devcloud distribution only.
"""

from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api


class BindEverythingDriver(api.MechanismDriver):

    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID], portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True,
                 portbindings.OVS_HYBRID_PLUG: False},
                status=constants.PORT_STATUS_ACTIVE)
            return
