"""The RocketMQInstance spec every test starts from, spelled once: valid, small, a 5.x instance.

Tests change what their situation needs with ``{**SPEC, ...}``; never mutate it (it is shared).
Importable as ``instance_spec`` from every test package (the root conftest puts ``tests/`` on the path).
"""

from __future__ import annotations

from typing import Any

SPEC: dict[str, Any] = {
    "engineVersion": "5.x",
    "productId": "rocketmq.b2.large.4",
    "storageSpecCode": "dms.physical.storage.high.v2",
    "storageSpace": 300,
    "brokerNum": 1,
    "vpcId": "vpc-1",
    "subnetId": "subnet-1",
    "securityGroupId": "sg-1",
    "availableZones": ["az-1"],
}
