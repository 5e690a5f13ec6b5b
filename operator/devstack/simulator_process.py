"""Runs ``dms-simulator`` as a child process and drives its admin API (``/_sim/``)."""

from __future__ import annotations

import re
import ssl
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from kube_testenv import ManagedProcess, ProcessError

_LISTENING = re.compile(r"listening on (https?://\S+)")

DEFAULT_ACCESS_KEY = "LOCALAK0000000000001"
DEFAULT_SECRET_KEY = "local-secret-key-not-for-production"
DEFAULT_PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def console_script(name: str) -> str:
    """A console script of this virtualenv (never one from PATH: the tests must run ours)."""
    return str(Path(sys.executable).parent / name)


class SimulatorAdmin:
    """A thin client of the simulator's admin API; every method returns the decoded JSON."""

    def __init__(self, url: str, *, ca_file: Path | None = None) -> None:
        self.url = url.rstrip("/")
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        self._http = httpx.Client(base_url=self.url, timeout=30.0, verify=verify)

    def close(self) -> None:
        self._http.close()

    def _json(self, response: httpx.Response) -> Any:
        response.raise_for_status()
        return response.json() if response.content else None

    def health(self) -> Any:
        return self._json(self._http.get("/_sim/health"))

    def reset(self) -> Any:
        return self._json(self._http.post("/_sim/reset"))

    def config(self, **changes: Any) -> Any:
        if changes:
            return self._json(self._http.put("/_sim/config", json=changes))
        return self._json(self._http.get("/_sim/config"))

    def faults(self, **faults: Any) -> Any:
        return self._json(self._http.put("/_sim/faults", json=faults))

    def clear_faults(self) -> Any:
        return self._json(self._http.delete("/_sim/faults"))

    def seed(self, project_id: str, instances: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        body = {"project_id": project_id, "instances": list(instances)}
        result: list[dict[str, Any]] = self._json(self._http.post("/_sim/instances", json=body))["instances"]
        return result

    def instances(self, project_id: str | None = None) -> list[dict[str, Any]]:
        params = {"project_id": project_id} if project_id else {}
        result: list[dict[str, Any]] = self._json(self._http.get("/_sim/instances", params=params))["instances"]
        return result

    def instance(self, instance_id: str) -> dict[str, Any] | None:
        response = self._http.get(f"/_sim/instances/{instance_id}")
        if response.status_code == 404:
            return None
        result: dict[str, Any] = self._json(response)
        return result

    def remove_instance(self, instance_id: str) -> None:
        """Drop an instance from the cloud at once, as if deleted outside the operator long ago."""
        self._json(self._http.delete(f"/_sim/instances/{instance_id}"))

    def children(self, instance_id: str) -> dict[str, Any]:
        """``{instance_id, topics, groups}`` of an instance, pending batch deletions included."""
        result: dict[str, Any] = self._json(self._http.get(f"/_sim/instances/{instance_id}/children"))
        return result

    def remove_child(self, instance_id: str, kind: str, name: str) -> None:
        """Delete a topic (``kind`` "topics") or group ("groups") behind the operator's back."""
        self._json(self._http.delete(f"/_sim/instances/{instance_id}/children/{kind}/{quote(name, safe='')}"))

    def check_key(self, instance_id: str, user: str, secret_key: str) -> bool:
        """Whether ACL user ``user`` holds ``secret_key`` (the key never travels back)."""
        path = f"/_sim/instances/{instance_id}/users/{quote(user, safe='')}/check-key"
        return bool(self._json(self._http.post(path, json={"secret_key": secret_key}))["matches"])

    def deletions(self) -> list[dict[str, Any]]:
        """Every deletion the cloud accepted, with when it ended (``ended_at``) and how."""
        result: list[dict[str, Any]] = self._json(self._http.get("/_sim/deletions"))["deletions"]
        return result

    def accounts(self) -> dict[str, list[dict[str, Any]]]:
        """``{"accounts": [{accessKey, projectIds, rateLimitRps, rateLimitBurst}], "tokens": [{identity,
        projectIds, rateLimitRps, rateLimitBurst}]}``; never a secret key or a token."""
        result: dict[str, list[dict[str, Any]]] = self._json(self._http.get("/_sim/accounts"))
        return result

    def put_account(
        self,
        access_key: str,
        secret_key: str,
        project_ids: Sequence[str],
        rate_limit_rps: float | None = None,
        rate_limit_burst: int | None = None,
    ) -> dict[str, Any]:
        """Add or replace an account (a new ``secret_key`` rotates it: the old one is refused from now
        on); ``rate_limit_rps`` gives it its own throttling instead of the global config's."""
        body = {
            "secretKey": secret_key,
            "projectIds": list(project_ids),
            "rateLimitRps": rate_limit_rps,
            "rateLimitBurst": rate_limit_burst,
        }
        result: dict[str, Any] = self._json(self._http.put(f"/_sim/accounts/{quote(access_key, safe='')}", json=body))
        return result

    def delete_account(self, access_key: str) -> None:
        """Remove an account: its calls are refused as an unknown access key from now on."""
        self._json(self._http.delete(f"/_sim/accounts/{quote(access_key, safe='')}"))

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json(self._http.get("/_sim/calls", params={"since": since}))["calls"]
        return result


class SimulatorProcess:
    """``dms-simulator`` on a free loopback port, with one default account (the operator's, see
    ``operator_env``) and any ``accounts`` more, each ``AK:SK:PID[,PID...][:RPS[:BURST]]`` (the CLI's
    ``--account`` form; an access key given twice makes the start fail).

    With ``ca_file`` it serves HTTPS (``--tls``) and writes its CA certificate there; the admin
    client trusts that CA, nothing else does unless told to.
    """

    def __init__(
        self,
        *,
        log_path: Path,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        project_id: str = DEFAULT_PROJECT_ID,
        accounts: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        host: str = "127.0.0.1",
        ca_file: Path | None = None,
    ) -> None:
        self.access_key = access_key
        self.ca_file = ca_file
        self.secret_key = secret_key
        self.project_id = project_id
        argv = [
            console_script("dms-simulator"),
            "--host",
            host,
            "--port",
            "0",
            "--access-key",
            access_key,
            "--secret-key",
            secret_key,
            "--project-id",
            project_id,
            *(arg for spec in accounts for arg in ("--account", spec)),
            *(["--tls", "--ca-file", str(ca_file)] if ca_file else []),
            *extra_args,
        ]
        self.process = ManagedProcess("dms-simulator", argv, log_path=log_path)
        self.url = ""
        self._admin: SimulatorAdmin | None = None

    @property
    def admin(self) -> SimulatorAdmin:
        if self._admin is None:
            raise RuntimeError("simulator not started")
        return self._admin

    def start(self, timeout: float = 30.0) -> str:
        # The log is appended to; a stale "listening on" line from an earlier run must not be read.
        self.process.log_path.unlink(missing_ok=True)
        self.process.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.process.log_tail(200))
            if match:
                self.url = match.group(1)
                self._admin = SimulatorAdmin(self.url, ca_file=self.ca_file)
                return self.url
            code = self.process.poll()
            if code is not None:
                raise ProcessError(f"dms-simulator exited with {code}:\n{self.process.log_tail()}")
            time.sleep(0.05)
        self.process.stop()
        raise ProcessError(f"dms-simulator did not say 'listening on' within {timeout}s:\n{self.process.log_tail()}")

    def operator_env(self) -> dict[str, str]:
        """The DMS_* settings that point an operator at this simulator."""
        return {
            "DMS_ENDPOINT": self.url,
            "DMS_PROJECT_ID": self.project_id,
            "DMS_ACCESS_KEY": self.access_key,
            "DMS_SECRET_KEY": self.secret_key,
        }

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        self.process.stop()
