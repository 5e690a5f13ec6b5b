"""``rocketmq-operator sweep-report``: what each sweep mode would delete, without deleting anything.

Why: the project-wide sweep (``all_failure``) deletes failed instances nobody here owns. Before a
person turns it on, this report shows exactly which instances that would be.
"""

from __future__ import annotations

import json
import sys

from rocketmq_operator.core import cloud
from rocketmq_operator.core.mapping import OWNER_NAME_TAG, OWNER_NAMESPACE_TAG
from rocketmq_operator.core.settings import OperatorSettings
from rocketmq_operator.ports import errors
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.services.sweeping import select_failed
from rocketmq_operator.wiring.runtime import build_client


async def failed_instances(settings: OperatorSettings) -> list[cloud.InstanceView]:
    async with build_client(settings, Metrics()) as client:
        found: dict[str, cloud.InstanceView] = {}
        offset = 0
        while True:
            page = await client.list_instances(
                cloud.ListQuery(status=cloud.CREATEFAILED, include_failure=True, offset=offset, limit=50)
            )
            for view in page.instances:
                found[view.instance_id] = view
            if len(page.instances) < 50:
                return list(found.values())
            offset += 50


async def sweep_report(settings: OperatorSettings, *, cluster_id: str, as_json: bool) -> int:
    try:
        failed = await failed_instances(settings)
    except errors.CloudError as exc:
        print(f"rocketmq-operator: listing failed instances failed: {exc}", file=sys.stderr)
        return 1
    owned, foreign = select_failed(failed, cluster_id=cluster_id, known_ids=())
    rows = [
        {
            "instance_id": view.instance_id,
            "name": view.name,
            "owned": view in owned,
            "owner": "/".join(
                filter(None, (view.tag_map().get(OWNER_NAMESPACE_TAG), view.tag_map().get(OWNER_NAME_TAG)))
            ),
            "deleted_by": "owned sweep (default)" if view in owned else "project-wide sweep only",
        }
        for view in failed
    ]
    if as_json:
        print(json.dumps({"cluster_id": cluster_id, "instances": rows}, indent=2))
        return 0
    print(
        f"failed instances in project {settings.project_id}: {len(failed)} "
        f"({len(owned)} owned by cluster {cluster_id or '?'}, {len(foreign)} not)"
    )
    for row in rows:
        print(f"  {row['instance_id']}  {row['name']:<40}  {row['deleted_by']}  {row['owner']}")
    return 0
