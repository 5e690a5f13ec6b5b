"""RBAC is enforced, and ServiceAccounts can act: the operator's Roles can be tested for real.

A ServiceAccount is denied until a Role and RoleBinding grant it something; TokenRequest
(``kubectl create token``) issues tokens, and the apiserver authenticates requests made with them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client, config

from kube_testenv import ControlPlane

pytestmark = pytest.mark.controlplane

SA = "robot"
VERB, RESOURCE = "list", "configmaps"


def can_i_as(control_plane: ControlPlane, namespace: str, *, as_sa: bool = True) -> str:
    """kubectl auth can-i's verdict ("yes"/"no"; it exits non-zero on "no")."""
    impersonate = [f"--as=system:serviceaccount:{namespace}:{SA}"] if as_sa else []
    result = control_plane.kubectl("auth", "can-i", VERB, RESOURCE, "-n", namespace, *impersonate, check=False)
    return result.stdout.strip()


def allowed_by_review(api: client.ApiClient, namespace: str) -> bool:
    """The same question through the Python client: a SubjectAccessReview for the ServiceAccount."""
    review = client.AuthorizationV1Api(api).create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=f"system:serviceaccount:{namespace}:{SA}",
                groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
                resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb=VERB, resource=RESOURCE),
            )
        )
    )
    assert review.status is not None
    return bool(review.status.allowed)


def grant(api: client.ApiClient, namespace: str) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="configmap-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=[RESOURCE], verbs=["get", VERB])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="robot-reads-configmaps"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-reader"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=SA, namespace=namespace)],
        ),
    )


def eventually_equal(expected: object, probe: Callable[[], object], timeout: float = 10.0) -> None:
    """RBAC decisions come from the authorizer's informer cache, which trails writes by milliseconds."""
    deadline = time.monotonic() + timeout
    while (got := probe()) != expected:
        assert time.monotonic() < deadline, f"still {got!r}, expected {expected!r}"
        time.sleep(0.1)


def test_service_account_is_denied_without_a_role_and_allowed_with_one(
    control_plane: ControlPlane, kube_api_client: client.ApiClient, unique_namespace: str
) -> None:
    control_plane.kubectl("create", "serviceaccount", SA, "-n", unique_namespace)

    assert can_i_as(control_plane, unique_namespace) == "no"
    assert not allowed_by_review(kube_api_client, unique_namespace)
    # The admin itself is allowed everything, so the denial above is RBAC's, not a broken setup.
    assert can_i_as(control_plane, unique_namespace, as_sa=False) == "yes"

    grant(kube_api_client, unique_namespace)

    eventually_equal("yes", lambda: can_i_as(control_plane, unique_namespace))
    assert allowed_by_review(kube_api_client, unique_namespace)
    # Granted is only what the Role says.
    denied = control_plane.kubectl(
        "auth", "can-i", "delete", RESOURCE, "-n", unique_namespace,
        f"--as=system:serviceaccount:{unique_namespace}:{SA}", check=False,
    )  # fmt: skip
    assert denied.stdout.strip() == "no"


def test_token_from_kubectl_create_token_authenticates(
    control_plane: ControlPlane, kube_api_client: client.ApiClient, unique_namespace: str, tmp_path: Path
) -> None:
    control_plane.kubectl("create", "serviceaccount", SA, "-n", unique_namespace)
    grant(kube_api_client, unique_namespace)
    token = control_plane.kubectl("create", "token", SA, "-n", unique_namespace, "--duration=10m").stdout.strip()
    as_robot = control_plane.token_kubeconfig(token, tmp_path / "robot.kubeconfig")

    whoami = json.loads(control_plane.kubectl(f"--kubeconfig={as_robot}", "auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{unique_namespace}:{SA}"
    eventually_equal(
        "yes",
        lambda: control_plane.kubectl(
            f"--kubeconfig={as_robot}", "auth", "can-i", VERB, RESOURCE, "-n", unique_namespace, check=False
        ).stdout.strip(),
    )


def test_token_request_through_the_python_client_authenticates(
    control_plane: ControlPlane, kube_api_client: client.ApiClient, unique_namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(kube_api_client)
    core.create_namespaced_service_account(
        unique_namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=SA))
    )
    issued = core.create_namespaced_service_account_token(
        SA,
        unique_namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)),
    )
    assert issued.status is not None and issued.status.token
    as_robot = control_plane.token_kubeconfig(issued.status.token, tmp_path / "robot.kubeconfig")

    robot = config.new_client_from_config(config_file=str(as_robot))  # type: ignore[no-untyped-call]
    try:
        review = client.AuthenticationV1Api(robot).create_self_subject_review(client.V1SelfSubjectReview())
        assert review.status is not None
        assert review.status.user_info is not None
        assert review.status.user_info.username == f"system:serviceaccount:{unique_namespace}:{SA}"
        # Not granted anything: the token authenticates, and RBAC still applies to it.
        with pytest.raises(client.ApiException) as forbidden:
            client.CoreV1Api(robot).list_namespaced_config_map(unique_namespace)
        assert forbidden.value.status == 403
    finally:
        robot.close()
