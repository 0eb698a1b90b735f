# digest in a container: the installed wheel only, a non-root user, the publication on a
# volume at /data (digest.toml, digest.secrets.toml, the SQLite database, outbox, public/).
#
#   docker build -t digest .
#   docker run --rm -it -v digest-data:/data digest init /data
#   docker run -d --name digest-schedule -v digest-data:/data digest schedule
#   docker run -d --name digest-web -v digest-data:/data -p 8000:8000 digest serve --host 0.0.0.0
#
# README.md ("Docker") and docs/operations.md say more.

FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 digest \
    && useradd --system --uid 10001 --gid digest --home-dir /data --shell /usr/sbin/nologin digest
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir "$(ls /wheels/digest-*.whl)[postgres]" && rm -rf /wheels
RUN mkdir /data && chown digest:digest /data && chmod 0700 /data
USER digest
WORKDIR /data
VOLUME ["/data"]
ENV DIGEST_CONFIG=/data/digest.toml \
    PYTHONUNBUFFERED=1
EXPOSE 8000
ENTRYPOINT ["digest"]
CMD ["schedule"]
