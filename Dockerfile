# syntax=docker/dockerfile:1
# Multi-stage image. Not built on our CI machines (no Docker engine there); written to mirror
# scripts/setup.sh, which is what CI runs.

# ---- build: dependencies, mediasoup worker from the package's sources, TypeScript ----
FROM node:20-bookworm AS build
WORKDIR /app
ENV DEBIAN_FRONTEND=noninteractive
# The worker build script installs its Debian build dependencies (meson from backports) itself.
COPY package.json package-lock.json ./
# Skip mediasoup's prebuilt-worker download; the worker is built below against Debian's libraries.
RUN MEDIASOUP_WORKER_BIN=skip-prebuilt-download npm ci --no-audit --no-fund
COPY scripts/build-mediasoup-worker.sh scripts/
RUN SWITCHBOARD_CACHE_DIR=/tmp/cache bash scripts/build-mediasoup-worker.sh
COPY tsconfig.json ./
COPY protocol protocol
COPY config config
COPY server server
COPY turn turn
COPY client-sdk client-sdk
COPY scripts scripts
RUN npm run build && npm prune --omit=dev

# ---- runtime: slim Debian, the worker's shared libraries, non-root ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends libuv1 libsrtp2-1 libusrsctp2 libssl3 libabsl20220623 tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules node_modules
COPY --from=build --chown=node:node /app/dist dist
USER node
# HTTP + Socket.IO, bundled TURN (UDP), TURN relay range (UDP), and the SFU's single media port
# (SFU_PORT, UDP and TCP; worker i uses SFU_PORT + i: publish one port per SFU_WORKERS, or use
# --network host). The SFU port range is for SFU_PORT=0 only and is not exposed.
EXPOSE 8080 3478/udp 49152-65535/udp 7882/udp 7882/tcp
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/server/main.js"]
