# vscode-lm-gateway on Node 20, as a non-root container.
#   docker build -t vscode-lm-gateway .
#   docker run -p 4000:4000 -e GATEWAY_API_KEYS=... -e VSCODE_BRIDGE_URL=... -e VSCODE_BRIDGE_TOKEN=... vscode-lm-gateway

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY bridge/package.json bridge/package.json
# Production dependencies only (tsx runs the TypeScript sources; no build step).
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY public ./public
COPY bin ./bin
RUN mkdir -p /app/data && chown -R node:node /app/data
USER node
EXPOSE 4000
VOLUME ["/app/data"]
# The gateway refuses to listen on 0.0.0.0 without API keys: pass GATEWAY_API_KEYS
# (or mount a config with server.apiKeys and set GATEWAY_CONFIG).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
STOPSIGNAL SIGTERM
CMD ["node", "bin/vscode-lm-gateway.mjs"]
