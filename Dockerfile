# hubproxy: one process, data in /data (a volume), listening on 8000 as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The wheel, installed without extras: what `tests/packaging/test_wheel.py` builds and starts.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip install --no-cache-dir --prefix=/install /wheels/hubproxy-*.whl

FROM python:3.11-slim
RUN groupadd --system --gid 10001 hubproxy \
    && useradd --system --uid 10001 --gid hubproxy --home-dir /data --no-create-home hubproxy \
    && mkdir -p /data && chown hubproxy:hubproxy /data
COPY --from=build /install /usr/local
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
ENV PYTHONUNBUFFERED=1
# Every hubproxy command in the container (kubectl exec / docker exec) uses the volume.
ENV HUBPROXY_DATA_DIR=/data
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4).status != 200)"]
ENTRYPOINT ["hubproxy"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--data-dir", "/data"]
