"""Shared test configuration: the real control plane's fixtures (control_plane, kubeconfig, ...), and
the session's output kept for the reliability suite's secrets scan."""

pytest_plugins = ["kube_testenv.pytest_plugin", "reliability.pytest_output"]
