# seqcast: one node per container. Build with `docker build -t seqcast .`, run with
#   docker run -p 8080:8080 -e SEQCAST_DATABASE_URL=postgresql://… seqcast
# (`docker run … seqcast migrate` applies the migrations alone.)
#
# BASE is Debian 12 slim. Without access to an image registry, build a local one
# first from Debian's own packages:  scripts/debian-base --minbase debian:12-slim
# (scripts/test-image does that, builds this image and checks it end to end).
# Works with the classic builder (Debian's docker.io) as well as BuildKit.
ARG BASE=debian:12-slim

# --- build ------------------------------------------------------------------
FROM ${BASE} AS build
WORKDIR /src
COPY scripts/install-deps scripts/install-deps
RUN scripts/install-deps --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
# Debug info stays in the build stage (build/seqcast.debug), not in the image.
RUN scripts/build -DSEQCAST_BUILD_TESTS=OFF \
 && scripts/runtime-packages build/seqcast > build/runtime-packages.txt \
 && objcopy --only-keep-debug build/seqcast build/seqcast.debug \
 && objcopy --strip-debug --strip-unneeded --add-gnu-debuglink=build/seqcast.debug \
      build/seqcast build/seqcast.stripped

# --- runtime ----------------------------------------------------------------
# Only the packages of the shared libraries the binary loads (no curl, no
# ca-certificates: the HEALTHCHECK speaks HTTP with bash alone, and libpq of
# PostgreSQL 15 reads its root certificates from sslrootcert, not the system store).
FROM ${BASE}
COPY --from=build /src/build/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
      /tmp/runtime-packages.txt \
 && useradd --system --user-group --create-home --home-dir /var/lib/seqcast --shell /usr/sbin/nologin seqcast
COPY --from=build /src/build/seqcast.stripped /usr/local/bin/seqcast

USER seqcast
WORKDIR /var/lib/seqcast
ENV SEQCAST_LISTEN=0.0.0.0:8080 \
    SEQCAST_CACHE_DIR=/var/lib/seqcast/cache
EXPOSE 8080
# GET /healthz over bash's /dev/tcp: healthy once the status line says 200.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${SEQCAST_LISTEN##*:} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r -t 2 _ status _ <&3 && [[ $status == 200 ]]"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["seqcast"]
CMD ["serve"]
