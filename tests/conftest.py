"""Shared test configuration: the real control plane's fixtures (control_plane, kubeconfig, ...)."""

pytest_plugins = ["kube_testenv.pytest_plugin"]
