"""Kubernetes operator for Huawei Cloud DMS for RocketMQ instances.

Layers (a lower one never imports a higher one; import-linter enforces it):
``core`` (pure models and decisions) < ``ports`` (the cloud protocol and error tree)
< ``adapters`` (HTTP client and signer) < ``services`` (batcher, observer, sweeper,
reconciler) < ``wiring`` (the only kopf importer) < ``cli``.
"""
