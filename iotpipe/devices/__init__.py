"""Device identities: IoT things, their certificates and the deployment's device policy.

Naming (REFERENCE.md section 6): thing names are unique per account and region and a thing
cannot be tagged, so the thing name carries the deployment (``<deployment>-<id>``: two
deployments may both have a ``sensor001``), and every thing of a deployment is a member of
the deployment's thing group (``<deployment>-devices``, tagged), which is how ``down`` finds
them with or without state: names are pure functions of ``Names``, as for every resource.
The thing name is the MQTT client id, so the policy variable
``${iot:Connection.Thing.ThingName}`` binds a connection to its own thing.
"""

from iotpipe.devices.identity import (
    AddResult,
    DeviceInfo,
    Scope,
    add_device,
    amazon_root_ca,
    list_devices,
    remove_all,
    remove_device,
)
from iotpipe.devices.registry import merge_registry, thing_registry, with_device_things
from iotpipe.devices.scheme import (
    device_id_of,
    group_name,
    parse_attrs,
    policy_name,
    thing_attributes,
    thing_name,
)

__all__ = [
    "AddResult",
    "DeviceInfo",
    "Scope",
    "add_device",
    "amazon_root_ca",
    "device_id_of",
    "group_name",
    "list_devices",
    "merge_registry",
    "parse_attrs",
    "policy_name",
    "remove_all",
    "remove_device",
    "thing_attributes",
    "thing_name",
    "thing_registry",
    "with_device_things",
]
