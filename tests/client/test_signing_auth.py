"""What the httpx auth classes add to a request, and that no secret ever leaks into text."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest
from client_kit import AK, PID, SK

from rocketmq_operator.adapters import dms_client, signing
from rocketmq_operator.ports import errors

FIXED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
TEMP_TOKEN = "tmp-security-token-SECRET"
IAM_TOKEN = "MIIiam-token-SECRET"


def _sign(request: httpx.Request, auth: httpx.Auth) -> httpx.Request:
    return next(auth.sync_auth_flow(request))


def _signed_headers(request: httpx.Request) -> list[str]:
    authorization = request.headers["Authorization"]
    return authorization.split("SignedHeaders=")[1].split(",")[0].split(";")


class TestAkSkAuth:
    def test_adds_and_signs_project_id_and_security_token(self) -> None:
        auth = signing.AkSkAuth(
            signing.AkSkCredentials(AK, SK, security_token=TEMP_TOKEN), project_id=PID, clock=lambda: FIXED
        )
        sent = _sign(httpx.Request("GET", "https://h/v2/x"), auth)

        assert sent.headers["X-Project-Id"] == PID
        assert sent.headers["X-Security-Token"] == TEMP_TOKEN
        assert sent.headers["X-Sdk-Date"] == "20250102T030405Z"
        assert _signed_headers(sent) == ["host", "x-project-id", "x-sdk-date", "x-security-token"]

    def test_permanent_credentials_send_no_security_token(self) -> None:
        auth = signing.AkSkAuth(signing.AkSkCredentials(AK, SK), project_id=PID, clock=lambda: FIXED)
        sent = _sign(httpx.Request("GET", "https://h/v2/x"), auth)

        assert "X-Security-Token" not in sent.headers

    def test_leaves_headers_the_http_stack_owns_unsigned(self) -> None:
        client = httpx.Client(headers={"User-Agent": "ua/1"})
        request = client.build_request(
            "POST", "https://h/v2/x", content=b"{}", headers={"Content-Type": "application/json"}
        )
        sent = _sign(request, signing.AkSkAuth(signing.AkSkCredentials(AK, SK), clock=lambda: FIXED))

        # httpx added Accept, Accept-Encoding, Connection and Content-Length; CORE's requests adds
        # them after signing, and a proxy may rewrite hop-by-hop headers, so none is signed.
        assert {"accept", "accept-encoding", "connection", "content-length"} <= set(sent.headers.keys())
        assert _signed_headers(sent) == ["content-type", "host", "user-agent", "x-sdk-date"]

    def test_wire_query_is_the_sorted_canonical_form(self) -> None:
        request = httpx.Request("GET", "https://h/v2/x", params={"b": "2 3", "a": "+/~"})
        sent = _sign(request, signing.AkSkAuth(signing.AkSkCredentials(AK, SK), clock=lambda: FIXED))

        assert sent.url.raw_path == b"/v2/x?a=%2B%2F~&b=2%203"

    def test_no_query_means_no_question_mark(self) -> None:
        sent = _sign(
            httpx.Request("GET", "https://h/v2/x?"),
            signing.AkSkAuth(signing.AkSkCredentials(AK, SK), clock=lambda: FIXED),
        )

        assert sent.url.raw_path == b"/v2/x"

    def test_non_default_port_is_part_of_the_signed_host(self) -> None:
        sent = _sign(
            httpx.Request("GET", "https://127.0.0.1:8443/v2/x"),
            signing.AkSkAuth(signing.AkSkCredentials(AK, SK), clock=lambda: FIXED),
        )
        signed = signing.sign(
            method="GET",
            host="127.0.0.1:8443",
            path="/v2/x",
            query=[],
            headers=[],
            body=b"",
            credentials=signing.AkSkCredentials(AK, SK),
            now=FIXED,
        )

        assert sent.headers["Host"] == "127.0.0.1:8443"
        assert sent.headers["Authorization"] == signed.authorization

    def test_a_malformed_date_header_is_refused_before_signing(self) -> None:
        request = httpx.Request("GET", "https://h/v2/x", headers={"X-Sdk-Date": "2025-01-02"})

        with pytest.raises(ValueError, match="does not match format"):
            _sign(request, signing.AkSkAuth(signing.AkSkCredentials(AK, SK)))

    def test_the_default_clock_is_utc_now(self) -> None:
        before = datetime.now(UTC).replace(microsecond=0)
        sent = _sign(httpx.Request("GET", "https://h/"), signing.AkSkAuth(signing.AkSkCredentials(AK, SK)))
        stamped = datetime.strptime(sent.headers["X-Sdk-Date"], signing.DATE_FORMAT).replace(tzinfo=UTC)

        assert before <= stamped <= datetime.now(UTC)


class TestTokenAuth:
    def test_sends_the_token_and_signs_nothing(self) -> None:
        sent = _sign(httpx.Request("GET", "https://h/v2/x"), signing.TokenAuth(signing.TokenCredentials(IAM_TOKEN)))

        assert sent.headers["X-Auth-Token"] == IAM_TOKEN
        assert "Authorization" not in sent.headers

    def test_auth_for_picks_the_auth_matching_the_credentials(self) -> None:
        assert isinstance(signing.auth_for(signing.AkSkCredentials(AK, SK)), signing.AkSkAuth)
        assert isinstance(signing.auth_for(signing.TokenCredentials(IAM_TOKEN)), signing.TokenAuth)


class TestCredentialValidation:
    @pytest.mark.parametrize(("ak", "sk"), [("", SK), (AK, "")])
    def test_ak_sk_need_both_halves_and_say_so_without_the_secret(self, ak: str, sk: str) -> None:
        with pytest.raises(ValueError, match="both an access key and a secret key") as caught:
            signing.AkSkCredentials(ak, sk)
        assert SK not in str(caught.value)

    def test_token_must_not_be_empty(self) -> None:
        with pytest.raises(ValueError, match="non-empty token"):
            signing.TokenCredentials("")

    def test_a_security_token_does_not_go_with_an_iam_token(self) -> None:
        with pytest.raises(ValueError, match="temporary AK/SK"):
            dms_client.build_client(
                endpoint="https://h",
                project_id=PID,
                credentials=signing.TokenCredentials(IAM_TOKEN),
                security_token=TEMP_TOKEN,
            )


class TestSecretsNeverInText:
    async def test_reprs_and_strs_hide_every_secret(self) -> None:
        ak_sk = signing.AkSkCredentials(AK, SK, security_token=TEMP_TOKEN)
        token = signing.TokenCredentials(IAM_TOKEN)
        client = dms_client.build_client(endpoint="https://h", project_id=PID, credentials=ak_sk)
        texts = [
            repr(ak_sk),
            str(ak_sk),
            repr(token),
            str(token),
            repr(signing.AkSkAuth(ak_sk, project_id=PID)),
            str(signing.TokenAuth(token)),
            repr(client),
            f"{ak_sk} {token} {client}",
        ]
        await client.aclose()

        for text in texts:
            assert SK not in text
            assert TEMP_TOKEN not in text
            assert IAM_TOKEN not in text
        assert AK in repr(ak_sk)  # the access key is an identifier; it helps to see which one

    async def test_signing_and_calling_log_no_secret(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)

        def cloud(request: httpx.Request) -> httpx.Response:
            return httpx.Response(401, json={"error_code": "APIGW.0301", "error_msg": "bad signature"})

        client = dms_client.build_client(
            endpoint="https://h",
            project_id=PID,
            credentials=signing.AkSkCredentials(AK, SK),
            security_token=TEMP_TOKEN,
            transport=httpx.MockTransport(cloud),
        )
        async with client:
            with pytest.raises(errors.AuthFailed) as caught:
                await client.show_instance("i-1")

        for text in (caplog.text, str(caught.value), repr(caught.value)):
            assert SK not in text
            assert TEMP_TOKEN not in text
