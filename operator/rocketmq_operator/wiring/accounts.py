"""The operator's accounts: one ``Runtime`` (client, token bucket, credential gate, observer, batchers,
sweeper, metrics) per account, the default one from ``DMS_*`` and one per account CR in use.

Why everything per account and not one client that switches credentials per call: the cloud's rate
limit, its list walk, its batch action and its refusals are all per account. A refused credential
must stall only its own account's resources, and a batch can only ever hold one project's ids.

An account's runtime is made the first time its Secret is read, and kept while the account exists:
- a change of the Secret (another resourceVersion) gives the same client new credentials
  (``DmsClient.rotate``: new connections, old ones closed once idle), so nothing is cached past a
  change, and pending deletions, the observer's cache and the bucket stay;
- a Secret that disappears takes nothing away: a namespace teardown deletes the Secret at once,
  while the account (held by its finalizer) still has instances to delete with it. Replacing the
  Secret, or deleting the account once unused, is how access ends.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace

from rocketmq_operator.adapters import dms_client, signing
from rocketmq_operator.core import accounts
from rocketmq_operator.core.accounts import AccountKey, CloudCredentials
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.settings import OperatorSettings
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.wiring.runtime import Runtime, build_client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountSource:
    """What an account's client is made of. Credentials stay ``SecretStr``s until the signer takes them."""

    endpoint: str
    project_id: str
    credentials: CloudCredentials
    credentials_version: str
    ca_bundle: str | None
    rate: float
    burst: int
    cluster_id: str | None

    def same_account(self, other: AccountSource) -> bool:
        """Everything but the Secret's version alike: what was verified still holds."""
        return replace(self, credentials_version="") == replace(other, credentials_version="")

    def settings(self, base: OperatorSettings) -> OperatorSettings:
        """The operator's settings with this account's place, limits and cluster id."""
        return base.model_copy(
            update={
                "endpoint": self.endpoint,
                "project_id": self.project_id,
                "rate_limit_rps": self.rate,
                "rate_limit_burst": self.burst,
                "cluster_id": self.cluster_id or base.cluster_id,
                "ca_file": None,
                "insecure_skip_tls_verify": False,
            }
        )


def signer_credentials(credentials: CloudCredentials) -> signing.Credentials:
    if isinstance(credentials, accounts.AkSk):
        token = credentials.security_token
        return signing.AkSkCredentials(
            credentials.access_key.get_secret_value(),
            credentials.secret_key.get_secret_value(),
            security_token=token.get_secret_value() if token is not None else None,
        )
    return signing.TokenCredentials(credentials.token.get_secret_value())


def client_for(base: OperatorSettings, source: AccountSource, metrics: Metrics) -> dms_client.DmsClient:
    return build_client(
        source.settings(base), metrics, credentials=signer_credentials(source.credentials), ca_data=source.ca_bundle
    )


@dataclass
class _Entry:
    runtime: Runtime
    client: dms_client.DmsClient
    source: AccountSource
    verdict: Verdict | None = None
    """What the last verification of these credentials concluded (None: not verified since they changed)."""


Starter = Callable[[AccountKey, AccountSource, Callable[[Metrics], dms_client.DmsClient]], Awaitable[Runtime]]
"""Builds and starts an account's runtime over the client the callable makes (the wiring passes the
indexes and the shared activity)."""


class Accounts:
    """The runtimes by account key; the default's always there."""

    def __init__(self, settings: OperatorSettings, *, default: Runtime, start: Starter) -> None:
        self._settings = settings
        self._default = default
        self._start = start
        self._entries: dict[AccountKey, _Entry] = {}

    @property
    def default(self) -> Runtime:
        return self._default

    def get(self, key: AccountKey) -> Runtime | None:
        if key.is_default:
            return self._default
        entry = self._entries.get(key)
        return entry.runtime if entry is not None else None

    def source(self, key: AccountKey) -> AccountSource | None:
        entry = self._entries.get(key)
        return entry.source if entry is not None else None

    def verdict(self, key: AccountKey) -> Verdict | None:
        entry = self._entries.get(key)
        return entry.verdict if entry is not None else None

    def remember(self, key: AccountKey, verdict: Verdict) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            entry.verdict = verdict

    def runtimes(self) -> Iterator[tuple[str, Runtime]]:
        yield accounts.DEFAULT_LABEL, self._default
        for key, entry in sorted(self._entries.items()):
            yield str(key), entry.runtime

    def metrics(self) -> list[tuple[str, Metrics]]:
        return [(label, runtime.metrics) for label, runtime in self.runtimes()]

    async def use(self, key: AccountKey, source: AccountSource) -> Runtime:
        """The account's runtime, made or brought up to ``source``: new credentials or trust rotate the
        client's HTTP side, a new rate retunes its bucket, a new cluster id is read from here."""
        entry = self._entries.get(key)
        if entry is not None and (entry.source.endpoint, entry.source.project_id) != (
            source.endpoint,
            source.project_id,
        ):
            # Immutable in the CRD; should the account be recreated elsewhere under the same name, its
            # services must not carry another project's memory over.
            await self.remove(key)
            entry = None
        if entry is None:
            made: list[dms_client.DmsClient] = []

            def make(metrics: Metrics) -> dms_client.DmsClient:
                made.append(client_for(self._settings, source, metrics))
                return made[-1]

            runtime = await self._start(key, source, make)
            client = made[0]
            self._entries[key] = _Entry(runtime, client, source)
            logger.info("account %s: client for project %s at %s", key, source.project_id, source.endpoint)
            return runtime
        previous = entry.source
        # By value, not by the Secret's resourceVersion: a new version with the same keys (a label, our
        # own finalizer) needs no new connections.
        if (previous.ca_bundle, previous.credentials) != (source.ca_bundle, source.credentials):
            timeout = self._settings.request_timeout_seconds
            http = dms_client.build_http(
                endpoint=source.endpoint,
                project_id=source.project_id,
                credentials=signer_credentials(source.credentials),
                tls=dms_client.tls_verification(ca_data=source.ca_bundle),
                timeouts=dms_client.Timeouts(connect=min(10.0, timeout), read=timeout, write=timeout, pool=None),
            )
            await entry.client.rotate(http)
            logger.info("account %s: new credentials (Secret version %s)", key, source.credentials_version)
        if (previous.rate, previous.burst) != (source.rate, source.burst) and entry.client.bucket is not None:
            entry.client.bucket.retune(source.rate, source.burst)
        if not entry.source.same_account(source):
            entry.verdict = None
        entry.source = source
        return entry.runtime

    async def remove(self, key: AccountKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            await entry.runtime.aclose()
            logger.info("account %s: closed", key)

    def forget(self, uid: str) -> None:
        """A CR is gone: every account's services drop what they kept for it (only one has any)."""
        for _label, runtime in self.runtimes():
            runtime.memory.forget(uid)

    def failures(self) -> list[str]:
        return [f"{label}: {failure}" for label, runtime in self.runtimes() for failure in runtime.failures()]

    async def aclose(self) -> None:
        for key in list(self._entries):
            await self.remove(key)
        await self._default.aclose()
