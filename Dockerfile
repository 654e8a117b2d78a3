# seqcast: one node per container. Build with `docker build -t seqcast .`, run with
#   docker run -p 8080:8080 -e SEQCAST_DATABASE_URL=postgresql://… seqcast
# (`docker run … seqcast migrate` applies the migrations alone.)

# --- build ------------------------------------------------------------------
FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/install-deps scripts/install-deps
RUN scripts/install-deps --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
RUN scripts/build -DSEQCAST_BUILD_TESTS=OFF \
 && scripts/runtime-packages build/seqcast > build/runtime-packages.txt

# --- runtime ----------------------------------------------------------------
FROM debian:12-slim
COPY --from=build /src/build/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && useradd --system --user-group --create-home --home-dir /var/lib/seqcast --shell /usr/sbin/nologin seqcast
COPY --from=build /src/build/seqcast /usr/local/bin/seqcast

USER seqcast
WORKDIR /var/lib/seqcast
ENV SEQCAST_LISTEN=0.0.0.0:8080 \
    SEQCAST_CACHE_DIR=/var/lib/seqcast/cache
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${SEQCAST_LISTEN##*:}/healthz" || exit 1
ENTRYPOINT ["seqcast"]
CMD ["serve"]
