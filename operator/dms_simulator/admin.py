"""The admin API under ``/_sim/``: how tests configure the fake cloud, break it, seed it and watch it.

It is deliberately outside ``/v2/`` and needs no credentials, so nothing a DMS client does can reach it
by accident and a test can always reach it. Requests here are not logged in the call log, are never
throttled and never hit by faults. The contract (paths and keys) is fixed: other people write tests
against it; docs/simulator.md describes it.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from dms_simulator import children, errors, responses, users
from dms_simulator.auth import Account, TokenGrant
from dms_simulator.errors import DmsError
from dms_simulator.faults import FaultPlan
from dms_simulator.instances import GONE, Instance, render_detail, render_recycle_info
from dms_simulator.ratelimit import RateLimit
from dms_simulator.simulator import SIMULATOR_KEY, Simulator

ADMIN_ERROR = "SIM.0400"
ADMIN_NOT_FOUND = "SIM.0404"


def _sim(request: web.Request) -> Simulator:
    return request.app[SIMULATOR_KEY]


def _ok(data: Any, status: int = 200) -> web.Response:
    return responses.json_response(data, responses.new_request_id(), status)


def _bad(message: str) -> DmsError:
    return DmsError(400, ADMIN_ERROR, message)


async def _json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _bad("body must be a JSON object")
    return data


def render_admin(sim: Simulator, instance: Instance) -> dict[str, Any]:
    """The show shape plus what only the simulator knows: owner project, bin, pending transition and
    the instance's latest deletion (as in ``/_sim/deletions``)."""
    detail = render_detail(instance, instance.status, "show")
    detail["project_id"] = instance.project_id
    detail["in_recycle_bin"] = instance.in_recycle_bin
    detail["recycle"] = render_recycle_info(instance) if instance.recycle is not None else None
    pending = instance.pending
    detail["pending"] = (
        None
        if pending is None
        else {"target": "GONE" if pending.target == GONE else pending.target, "due": pending.due}
    )
    deletion = sim.store.last_deletion(instance.instance_id)
    detail["last_deletion"] = None if deletion is None else deletion.to_json()
    return detail


async def health(request: web.Request) -> web.StreamResponse:
    return _ok({"ok": True})


async def reset(request: web.Request) -> web.StreamResponse:
    _sim(request).reset()
    return _ok({"ok": True})


async def get_config(request: web.Request) -> web.StreamResponse:
    return _ok(_sim(request).config.to_json())


async def put_config(request: web.Request) -> web.StreamResponse:
    sim = _sim(request)
    try:
        sim.update_config(await _json_object(request))
    except ValueError as exc:
        raise _bad(str(exc)) from None
    return _ok(sim.config.to_json())


async def get_faults(request: web.Request) -> web.StreamResponse:
    return _ok(_sim(request).faults.plan.to_json())


async def put_faults(request: web.Request) -> web.StreamResponse:
    sim = _sim(request)
    try:
        plan = FaultPlan.from_json(await _json_object(request))
    except ValueError as exc:
        raise _bad(str(exc)) from None
    sim.faults.replace(plan)
    return _ok(plan.to_json())


async def delete_faults(request: web.Request) -> web.StreamResponse:
    sim = _sim(request)
    sim.faults.clear()
    return _ok(sim.faults.plan.to_json())


async def seed_instances(request: web.Request) -> web.StreamResponse:
    sim = _sim(request)
    data = await _json_object(request)
    project_id = data.get("project_id")
    specs = data.get("instances")
    if not isinstance(project_id, str) or not project_id:
        raise _bad("project_id (a non-empty string) is required")
    if not isinstance(specs, list) or not all(isinstance(spec, dict) for spec in specs):
        raise _bad("instances must be a list of objects")
    seeded: list[Instance] = []
    try:
        for spec in specs:
            seeded.append(sim.store.seed(project_id, spec))
    except DmsError as exc:
        # All or nothing: a half-seeded fixture would only confuse the test that wrote it.
        for instance in seeded:
            sim.store.remove(instance.instance_id)
        raise _bad(exc.message) from None
    return _ok({"instances": [render_admin(sim, instance) for instance in seeded]})


async def list_instances(request: web.Request) -> web.StreamResponse:
    sim = _sim(request)
    project_id = request.query.get("project_id") or None
    return _ok({"instances": [render_admin(sim, i) for i in sim.store.all(project_id)]})


def _instance(request: web.Request) -> Instance:
    instance_id = request.match_info["instance_id"]
    instance = _sim(request).store.find(instance_id)
    if instance is None:
        raise DmsError(404, ADMIN_NOT_FOUND, f"no instance {instance_id} (it may be fully deleted)")
    return instance


async def get_instance(request: web.Request) -> web.StreamResponse:
    return _ok(render_admin(_sim(request), _instance(request)))


async def patch_instance(request: web.Request) -> web.StreamResponse:
    sim = _sim(request)
    instance = _instance(request)
    changes = await _json_object(request)
    if "instance_id" in changes or "project_id" in changes:
        raise _bad("instance_id and project_id cannot be changed")
    try:
        sim.store.apply_admin_fields(instance, changes)
    except DmsError as exc:
        raise _bad(exc.message) from None
    return _ok(render_admin(sim, instance))


async def get_children(request: web.Request) -> web.StreamResponse:
    """Topics and groups of an instance in any status, with their pending batch deletions, and its
    ACL users (never their secret keys: ``key_version`` says how often a key was set instead)."""
    sim = _sim(request)
    instance = _instance(request)
    sim.children.settle(instance)
    view = children.admin_view(instance)
    view["users"] = [users.render_admin(user) for user in instance.users.values()]
    return _ok(view)


async def check_user_key(request: web.Request) -> web.StreamResponse:
    """``{"secret_key": ...}`` -> ``{"matches": bool}``: lets a test check a user's key without the
    key ever travelling back (and without ``user_secret_in_show``)."""
    instance = _instance(request)
    name = request.match_info["name"]
    user = instance.users.get(name)
    if user is None:
        raise DmsError(404, ADMIN_NOT_FOUND, f"instance {instance.instance_id} has no user {name}")
    secret = (await _json_object(request)).get("secret_key")
    if not isinstance(secret, str):
        raise _bad("secret_key (a string) is required")
    return _ok({"matches": users.key_matches(user, secret)})


async def delete_child(request: web.Request) -> web.StreamResponse:
    """A topic, group or user removed out of band (as a person with the console would), for drift tests."""
    sim = _sim(request)
    instance = _instance(request)
    kind = request.match_info["kind"]
    tables: dict[str, dict[str, Any]] = {"topics": instance.topics, "groups": instance.groups, "users": instance.users}
    if kind not in tables:
        raise _bad(f"kind must be topics, groups or users, not {kind!r}")
    table = tables[kind]
    sim.children.settle(instance)
    if table.pop(request.match_info["name"], None) is None:
        return _ok({"error": "no such child"}, status=404)
    return _ok({"ok": True})


async def delete_instance(request: web.Request) -> web.StreamResponse:
    instance = _instance(request)
    _sim(request).store.remove(instance.instance_id)
    return _ok({"ok": True})


async def get_calls(request: web.Request) -> web.StreamResponse:
    sim = _sim(request)
    raw = request.query.get("since", "0")
    try:
        since = int(raw)
    except ValueError:
        raise _bad(f"since must be an integer, got {raw!r}") from None
    calls = sim.calls.since(since)
    return _ok({"calls": [c.to_json() for c in calls], "next": calls[-1].seq if calls else max(since, 0)})


async def list_deletions(request: web.Request) -> web.StreamResponse:
    return _ok({"deletions": [entry.to_json() for entry in _sim(request).store.deletions()]})


async def delete_calls(request: web.Request) -> web.StreamResponse:
    sim = _sim(request)
    sim.calls.clear()
    return _ok({"ok": True, "next": sim.calls.last_seq})


ACCOUNT_KEYS = ("secretKey", "projectIds", "rateLimitRps", "rateLimitBurst")


def _rate_limit_view(rate_limit: RateLimit | None) -> dict[str, Any]:
    # The burst as it applies, so a reader need not know the "rate rounded up" rule.
    if rate_limit is None:
        return {"rateLimitRps": None, "rateLimitBurst": None}
    return {"rateLimitRps": rate_limit.rps, "rateLimitBurst": rate_limit.effective_burst}


def render_account(account: Account) -> dict[str, Any]:
    """Never the secret key: the listing is read by tests and printed in their failures."""
    return {
        "accessKey": account.access_key,
        "projectIds": sorted(account.project_ids),
        **_rate_limit_view(account.rate_limit),
    }


def render_token(grant: TokenGrant) -> dict[str, Any]:
    """Never the token itself, only the identity the call log shows for it."""
    return {"identity": grant.identity, "projectIds": sorted(grant.project_ids), **_rate_limit_view(grant.rate_limit)}


async def list_accounts(request: web.Request) -> web.StreamResponse:
    auth = _sim(request).auth
    return _ok(
        {
            "accounts": [render_account(a) for a in sorted(auth.accounts, key=lambda a: a.access_key)],
            "tokens": [render_token(t) for t in sorted(auth.tokens, key=lambda t: t.identity)],
        }
    )


def _account_from(access_key: str, data: dict[str, Any]) -> Account:
    if not access_key.strip() or any(c == ":" or c.isspace() for c in access_key):
        raise _bad(f"the access key must be non-empty, without ':' or spaces; got {access_key!r}")
    unknown = sorted(set(data) - set(ACCOUNT_KEYS))
    if unknown:
        raise _bad(f"unknown account key(s): {', '.join(unknown)}; known: {', '.join(ACCOUNT_KEYS)}")
    secret_key = data.get("secretKey")
    if not isinstance(secret_key, str) or not secret_key:
        raise _bad("secretKey (a non-empty string) is required")
    project_ids = data.get("projectIds")
    if (
        not isinstance(project_ids, list)
        or not project_ids
        or not all(isinstance(p, str) and p.strip() for p in project_ids)
    ):
        raise _bad("projectIds (a non-empty list of non-empty strings) is required")
    rps, burst = data.get("rateLimitRps"), data.get("rateLimitBurst")
    if rps is None and burst is not None:
        raise _bad("rateLimitBurst needs rateLimitRps (an account's own policy replaces the global one whole)")
    try:
        rate_limit = None if rps is None else RateLimit(rps, burst)
    except ValueError as exc:
        raise _bad(f"rateLimitRps/rateLimitBurst: {exc}") from None
    return Account(access_key, secret_key, frozenset(p.strip() for p in project_ids), rate_limit)


async def put_account(request: web.Request) -> web.StreamResponse:
    """Add or replace an account; replacing its secret key is how a test rotates a key."""
    account = _account_from(request.match_info["access_key"], await _json_object(request))
    replaced = _sim(request).put_account(account)
    return _ok(render_account(account), status=200 if replaced else 201)


async def delete_account(request: web.Request) -> web.StreamResponse:
    access_key = request.match_info["access_key"]
    if not _sim(request).remove_account(access_key):
        raise DmsError(404, ADMIN_NOT_FOUND, f"no account with access key {access_key}")
    return _ok({"ok": True})


async def not_found(request: web.Request) -> web.StreamResponse:
    raise DmsError(404, errors.ROUTE_NOT_FOUND, f"no admin route {request.method} {request.path}")


def register(app: web.Application) -> None:
    router = app.router
    router.add_get("/_sim/health", health)
    router.add_post("/_sim/reset", reset)
    router.add_get("/_sim/config", get_config)
    router.add_put("/_sim/config", put_config)
    router.add_get("/_sim/faults", get_faults)
    router.add_put("/_sim/faults", put_faults)
    router.add_delete("/_sim/faults", delete_faults)
    router.add_post("/_sim/instances", seed_instances)
    router.add_get("/_sim/instances", list_instances)
    router.add_get("/_sim/instances/{instance_id}", get_instance)
    router.add_patch("/_sim/instances/{instance_id}", patch_instance)
    router.add_delete("/_sim/instances/{instance_id}", delete_instance)
    router.add_get("/_sim/instances/{instance_id}/children", get_children)
    router.add_delete("/_sim/instances/{instance_id}/children/{kind}/{name}", delete_child)
    router.add_post("/_sim/instances/{instance_id}/users/{name}/check-key", check_user_key)
    router.add_get("/_sim/calls", get_calls)
    router.add_delete("/_sim/calls", delete_calls)
    router.add_get("/_sim/deletions", list_deletions)
    router.add_get("/_sim/accounts", list_accounts)
    router.add_put("/_sim/accounts/{access_key}", put_account)
    router.add_delete("/_sim/accounts/{access_key}", delete_account)
    router.add_route("*", "/_sim/{tail:.*}", not_found)
