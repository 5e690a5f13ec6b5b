# The operator's container image. Two stages: the builder makes a wheel and a virtualenv; the final
# stage gets only that virtualenv, a non-root user and the entry point (no compilers, no pip).
#
# Build:  docker build -t <registry>/rocketmq-operator:0.1.0 .
# The Helm chart runs this image with its own arguments (deploy/helm/rocketmq-operator); CMD below is
# the same command for a plain `docker run` (settings come from DMS_* variables, see docs/settings.md).

FROM python:3.11.13-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
# The operator's package only: the rest of operator/ is the local stack (tools/harness), not shipped.
COPY operator/rocketmq_operator/ operator/rocketmq_operator/
# The wheel is built exactly as the tests build it (pip wheel --no-deps), then installed with its
# dependencies (no extras) into a virtualenv that the final stage copies whole.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir /wheels/*.whl \
 && /opt/venv/bin/pip uninstall --yes pip setuptools

FROM python:3.11.13-slim-bookworm
# A fixed uid/gid (65532, as distroless' "nonroot"), so runAsNonRoot can be checked from the image and
# the chart's runAsUser matches. pip and setuptools leave: nothing installs at run time.
RUN groupadd --system --gid 65532 operator \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin operator \
 && python -m pip uninstall --yes pip setuptools wheel
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
# 8080: Kopf's liveness endpoint (/healthz); 9090: Prometheus /metrics.
EXPOSE 8080 9090
ENTRYPOINT ["rocketmq-operator"]
CMD ["run", "--liveness=http://0.0.0.0:8080/healthz", "--metrics-port=9090", "--metrics-host=0.0.0.0", "--log-format=json"]
