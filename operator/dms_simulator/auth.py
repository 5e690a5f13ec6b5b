"""Who is calling, and may they touch this project: AK/SK signatures, IAM tokens, project binding.

Huawei's gateway authenticates before the service sees a request; this module plays that part. An
account is an access key bound to one or more project ids, a token is bound likewise, and a request
for any other project is refused, so tests can prove that one account never sees another's
instances. The signature check itself is in ``signing``; this module decides what a failure means.
Accounts can be added, replaced and removed while serving (the admin API's ``/_sim/accounts``), so a
test can rotate a key or revoke an account and watch the client's next call be refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from dms_simulator import errors, signing
from dms_simulator.ratelimit import RateLimit

ACCOUNT_FORM = "AK:SK:PROJECT_ID[,PROJECT_ID...][:RPS[:BURST]]"


def split_projects(value: str) -> frozenset[str]:
    return frozenset(part for part in value.split(",") if part)


def parse_rate_limit(parts: list[str], whose: str) -> RateLimit | None:
    """The optional ``RPS[:BURST]`` tail of a CLI form; ``whose`` names the form in the message."""
    if not parts:
        return None
    if len(parts) > 2 or not all(parts):
        raise ValueError(f"{whose}: after the projects give RPS or RPS:BURST, got {':'.join(parts)!r}")
    try:
        return RateLimit.parse(*parts)
    except ValueError as exc:
        raise ValueError(f"{whose}: {exc}") from None


@dataclass(frozen=True)
class Account:
    """An access key / secret key pair, the projects it may use, and its own throttling if any."""

    access_key: str
    secret_key: str
    project_ids: frozenset[str]
    rate_limit: RateLimit | None = None
    """``None``: the global ``rate_limit_rps``/``rate_limit_burst`` apply."""

    @classmethod
    def parse(cls, spec: str) -> Account:
        """``AK:SK:PID[,PID...][:RPS[:BURST]]``, the CLI's ``--account`` form."""
        parts = spec.split(":")
        if not 3 <= len(parts) <= 5 or not all(parts[:3]):
            raise ValueError(f"expected {ACCOUNT_FORM}, got {spec!r}")
        projects = split_projects(parts[2])
        if not projects:
            raise ValueError(f"account {parts[0]!r} names no project id")
        return cls(parts[0], parts[1], projects, parse_rate_limit(parts[3:], f"account {parts[0]!r}"))


@dataclass(frozen=True)
class TokenGrant:
    """An IAM token (sent as ``X-Auth-Token``), the projects it is scoped to, its own throttling."""

    token: str
    project_ids: frozenset[str]
    rate_limit: RateLimit | None = None

    @property
    def identity(self) -> str:
        """What the call log, the throttle and the admin listing show instead of the token itself."""
        return f"token:{self.token[:8]}"


@dataclass(frozen=True)
class Principal:
    kind: Literal["aksk", "token"]
    identity: str
    """The access key, or ``token:<first 8 chars>``: the rate-limit key and what the call log shows."""
    project_ids: frozenset[str]
    rate_limit: RateLimit | None = None
    """The account's or token's own throttling; ``None`` = the global config's."""


class Authenticator:
    def __init__(
        self,
        accounts: Iterable[Account] = (),
        tokens: Iterable[TokenGrant] = (),
    ) -> None:
        self._accounts = {account.access_key: account for account in accounts}
        self._tokens = {grant.token: grant for grant in tokens}

    @property
    def accounts(self) -> list[Account]:
        return list(self._accounts.values())

    @property
    def tokens(self) -> list[TokenGrant]:
        return list(self._tokens.values())

    def account(self, access_key: str) -> Account | None:
        return self._accounts.get(access_key)

    def put_account(self, account: Account) -> bool:
        """Add or replace an account; ``True`` when it replaced one. A call signed with the old
        secret key is refused from now on (a rotated key)."""
        replaced = account.access_key in self._accounts
        self._accounts[account.access_key] = account
        return replaced

    def remove_account(self, access_key: str) -> bool:
        """Forget an account; its calls are refused as an unknown access key from now on."""
        return self._accounts.pop(access_key, None) is not None

    @property
    def project_ids(self) -> frozenset[str]:
        projects: set[str] = set()
        for account in self._accounts.values():
            projects |= account.project_ids
        for grant in self._tokens.values():
            projects |= grant.project_ids
        return frozenset(projects)

    @staticmethod
    def claimed_identity(headers: Mapping[str, str]) -> str | None:
        """The access key a request *claims*, for the call log, before anything is verified."""
        authorization = headers.get("authorization")
        if authorization is not None:
            try:
                return signing.parse_authorization(authorization).access_key
            except signing.SignatureFormatError:
                return None
        token = headers.get("x-auth-token")
        return f"token:{token[:8]}" if token else None

    def authenticate(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
        max_skew_seconds: float,
    ) -> Principal:
        """Verify the request's credentials; ``headers`` keyed by lower-case name. Raises 401."""
        authorization = headers.get("authorization")
        if authorization is not None:
            return self._authenticate_aksk(
                authorization,
                method=method,
                path=path,
                query=query,
                headers=headers,
                body=body,
                now=now,
                max_skew_seconds=max_skew_seconds,
            )
        token = headers.get("x-auth-token")
        if token is not None:
            grant = self._tokens.get(token.strip())
            if grant is None:
                raise errors.DmsError(401, errors.INVALID_TOKEN, "The token is invalid or expired.")
            return Principal("token", grant.identity, grant.project_ids, grant.rate_limit)
        raise errors.auth_failed("no Authorization or X-Auth-Token header")

    def _authenticate_aksk(
        self,
        authorization: str,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
        max_skew_seconds: float,
    ) -> Principal:
        try:
            auth = signing.parse_authorization(authorization)
        except signing.SignatureFormatError as exc:
            raise errors.auth_failed(f"malformed Authorization header ({exc})") from exc
        account = self._accounts.get(auth.access_key)
        if account is None:
            raise errors.auth_failed(f"the access key {auth.access_key} does not exist")
        sdk_date = headers.get(signing.HEADER_DATE.lower())
        if sdk_date is None:
            raise errors.auth_failed(f"the {signing.HEADER_DATE} header is missing")
        try:
            signed_at = signing.parse_sdk_date(sdk_date)
        except ValueError as exc:
            raise errors.auth_failed(f"{signing.HEADER_DATE} is not in {signing.DATE_FORMAT} format") from exc
        skew = abs((now.astimezone(UTC) - signed_at).total_seconds())
        if skew > max_skew_seconds:
            raise errors.auth_failed(
                f"{signing.HEADER_DATE} {sdk_date} is {skew:.0f} s away from the server time "
                f"(at most {max_skew_seconds:.0f} s allowed)"
            )
        problem = signing.verify_signature(
            auth=auth,
            secret_key=account.secret_key,
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
        )
        if problem is not None:
            raise errors.auth_failed(problem)
        return Principal("aksk", account.access_key, account.project_ids, account.rate_limit)

    @staticmethod
    def authorize(principal: Principal, project_id: str | None, headers: Mapping[str, str]) -> None:
        """Refuse a project the credentials are not bound to (path or ``X-Project-Id`` header)."""
        header_project = headers.get("x-project-id")
        for candidate in (project_id, header_project):
            if candidate is not None and candidate.strip() not in principal.project_ids:
                raise errors.DmsError(
                    401,
                    errors.PROJECT_MISMATCH,
                    f"The project ID and the credentials do not match: {principal.identity} "
                    f"is not bound to project {candidate.strip()}",
                )
        if project_id is not None and header_project is not None and header_project.strip() != project_id:
            raise errors.DmsError(
                401,
                errors.PROJECT_MISMATCH,
                f"The X-Project-Id header ({header_project.strip()}) does not match the project "
                f"in the path ({project_id})",
            )
