# syntax=docker/dockerfile:1
#
# avatar-consent worker image (also runs the local HeyGen sandbox).
#
#   docker build -t avatar-consent .
#   docker run --env-file .env avatar-consent                                 # the worker
#   docker run -p 4010:4010 -e SANDBOX_HOST=0.0.0.0 avatar-consent \
#     node dist/heygen/sandbox/main.js                                        # the HeyGen sandbox
#
# The worker bundles the workflow code (dist/workflows/index.js) with webpack + swc when it starts,
# so the runtime stage keeps the compiled dist/ tree and the production dependencies that do that
# bundling (@temporalio/worker brings them).

ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---------------------------------------------------------------------------------------------
# build: install everything, compile TypeScript, then drop the dev dependencies
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

COPY package.json package-lock.json ./
# Native modules (Temporal's core bridge, swc) come as prebuilt binaries for linux-gnu: no compiler needed.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
  && test -f dist/worker.js \
  && test -f dist/workflows/index.js \
  && test -f dist/heygen/sandbox/main.js

RUN npm prune --omit=dev --no-audit --no-fund

# ---------------------------------------------------------------------------------------------
# runtime: compiled JS + production node_modules, non-root
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime

# CA roots for the Temporal core bridge (Rust) when it connects with TLS (e.g. Temporal Cloud);
# Node itself ships its own CA bundle for the HeyGen and SMTP connections.
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates \
  && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production
WORKDIR /app

COPY --from=build --chown=root:root /app/package.json ./package.json
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist

# The files stay owned by root and read-only for the process: the worker never writes to /app.
USER node

# The worker drains on SIGTERM (Temporal's Runtime handles it) and exits; `docker stop` waits 10 s
# by default, raise it (stop_grace_period) if activities need longer to finish.
STOPSIGNAL SIGTERM
CMD ["node", "dist/worker.js"]
