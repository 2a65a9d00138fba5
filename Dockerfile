# syntax=docker/dockerfile:1
# Agate's image: one image for every role (`agate proxy|policy|ledger|query|start`).
#   docker build -t agate .
#   docker run --rm -v $PWD/agate.yaml:/etc/agate/agate.yaml:ro agate proxy --config /etc/agate/agate.yaml
# Stage 1 compiles the TypeScript with the dev dependencies; stage 2 installs only the runtime
# dependencies; the final stage holds those and the compiled output, and runs as a non-root user
# (the root filesystem may be mounted read-only: Agate writes only under data_dir and /tmp).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Install scripts are not needed: parsers and the embedded engine ship prebuilt (WASM, .node).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY core ./core
COPY schemas ./schemas
COPY services ./services
COPY cli ./cli
COPY deploy ./deploy
COPY bench ./bench
COPY test ./test
COPY tools ./tools
RUN npx tsc -p tsconfig.json && find dist -name '*.test.js' -delete -o -name '*.test.js.map' -delete && rm -rf dist/test dist/bench

FROM ${NODE_IMAGE} AS runtime-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=runtime-deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
# Read at run time: the Avro schemas (current, and every frozen version readers accept), the
# query API's OpenAPI document and the web console's pages (test/e2e/image-layout.test.ts starts
# Agate from exactly what this stage copies).
COPY schemas/*.avsc ./schemas/
COPY schemas/golden ./schemas/golden
COPY services/query/openapi.json ./services/query/openapi.json
COPY services/query/console ./services/query/console
COPY deploy/agate.example.yaml ./deploy/agate.example.yaml
# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 agate && useradd --system --uid 10001 --gid agate --home-dir /var/lib/agate --no-create-home agate \
    && mkdir -p /var/lib/agate && chown 10001:10001 /var/lib/agate && chmod 0700 /var/lib/agate
USER 10001:10001
# PostgreSQL, SSH, Kubernetes proxies; query API; ops (health, readiness, metrics).
EXPOSE 6432 2222 7480 9464
ENTRYPOINT ["node", "/app/bin/agate.js"]
CMD ["--help"]
