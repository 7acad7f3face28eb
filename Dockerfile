# syntax=docker/dockerfile:1
# Multi-stage image of the Switchboard server. No Docker engine runs on our CI machines, so it
# is not built there: it follows scripts/setup.sh, which CI runs, and test/deploy/ checks its
# EXPOSE and ENV lines against the config schema. How to run it: deploy/README.md.
#
# The runtime image is node:22-bookworm-slim plus tini and the mediasoup worker's shared
# libraries (libuv, libsrtp2, libusrsctp, OpenSSL, abseil), the production npm dependencies
# (about 63 MB) with the worker binary built below (about 2.4 MB, stripped), the compiled server
# (dist/server, config, protocol, turn: about 2.5 MB), the TURN relay's batched UDP I/O addon
# (dist/native, about 30 KB, built with the build stage's gcc) and what it serves: the demo page
# (client-sdk/demo) and the browser SDK bundle (dist/sdk, about 3.4 MB). No compiler, dev
# dependency or TypeScript source.

# ---- build: dependencies, the mediasoup worker from the package's sources, TypeScript, SDK ----
FROM node:22-bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
WORKDIR /app
# The worker build needs meson >= 1.1 and accepts any on PATH; bookworm's is 1.0.1. A venv with
# the version mediasoup's own worker Makefile pins keeps it apart from Debian's Python.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/meson \
 && /opt/meson/bin/pip install --no-cache-dir meson==1.2.1
ENV PATH=/opt/meson/bin:$PATH
COPY package.json package-lock.json ./
# Skip mediasoup's prebuilt-worker download; the worker is built below against Debian's libraries
# (the script installs its Debian build dependencies itself).
RUN MEDIASOUP_WORKER_BIN=skip-prebuilt-download npm ci --no-audit --no-fund
COPY scripts/build-mediasoup-worker.sh scripts/
RUN SWITCHBOARD_CACHE_DIR=/tmp/cache bash scripts/build-mediasoup-worker.sh && rm -rf /tmp/cache
COPY tsconfig.json ./
COPY protocol protocol
COPY config config
COPY server server
COPY turn turn
COPY client-sdk client-sdk
COPY scripts scripts
# tsc to dist/, the SDK bundle the server serves under /sdk/ (dist/sdk), and the TURN relay's
# native UDP I/O (dist/native; --strict: the image is not built without it).
RUN npm run build && node scripts/build-native.mjs --strict && npm prune --omit=dev

# ---- runtime: slim Debian, the worker's shared libraries, root-owned files, non-root process ----
FROM node:22-bookworm-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends libuv1 libsrtp2-1 libusrsctp2 libssl3 libabsl20220623 tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Owned by root and not writable by the server's user: the process cannot rewrite its own code or worker.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist/server dist/server
COPY --from=build /app/dist/config dist/config
COPY --from=build /app/dist/protocol dist/protocol
COPY --from=build /app/dist/turn dist/turn
COPY --from=build /app/dist/native dist/native
COPY --from=build /app/dist/sdk dist/sdk
COPY --from=build /app/client-sdk/demo client-sdk/demo
COPY --from=build /app/scripts/check-mediasoup-worker.mjs scripts/
ENV NODE_ENV=production
# /metrics listens on its own port (METRICS_PORT); loopback would hide it from any scraper
# outside the container. Publish only PORT: METRICS_PORT is for the scraper's network.
ENV METRICS_HOST=0.0.0.0
USER node
# Smoke test as the runtime user: the worker starts with this stage's libraries, and a router and
# a WebRTC transport come up on 127.0.0.1.
RUN node scripts/check-mediasoup-worker.mjs
# ...and the TURN relay's native UDP I/O loads here (TURN_UDP_IO=native would refuse to start otherwise).
RUN node -e "import('/app/dist/turn/udpEndpoint.js').then((m) => console.log('TURN UDP I/O:', m.chooseUdpIo('native').io))"
# HTTP + Socket.IO (PORT), /metrics (METRICS_PORT), bundled TURN (TURN_PORT, UDP and TCP) and
# single-port SFU media (SFU_PORT, UDP and TCP). The image leaves TURN_WORKERS and SFU_WORKERS at
# one per core: relay worker i listens on TURN_PORT + i and SFU worker i on SFU_PORT + i, so only
# worker 0's ports are listed; to publish ports, set both counts and publish one port per worker.
# TURN over TLS (TURN_TLS_PORT, one port, served by relay worker 0) needs a certificate, so it is
# not listed. The TURN relay range (TURN_MIN_PORT..TURN_MAX_PORT, 16k UDP ports by default,
# inside Linux's ephemeral range) is not listed either: run media with --network host.
EXPOSE 8080/tcp 9464/tcp 3478/udp 3478/tcp 7882/udp 7882/tcp
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Stop with a timeout above SHUTDOWN_DRAIN_MS + SHUTDOWN_TIMEOUT_MS (docker stop -t 30 on the defaults).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/server/main.js"]
