"""Layer 2, adapters: the only code that speaks HTTP to the cloud.

- ``signing``: the ``SDK-HMAC-SHA256`` AK/SK signer and IAM-token auth, as ``httpx.Auth``;
- ``ratelimit``: the per-account token bucket that a 429 pauses for every caller;
- ``failures``: the one mapping of HTTP and transport failures to ``ports.errors``;
- ``retrying``: which failures may be retried for which kind of request, and the backoff;
- ``dms_client``: ``DmsClient`` (every port of ``ports.protocol``) and ``build_client``.
"""
