# Privatune image: API and worker (same image; PRIVATUNE_ROLE chooses).
# GPU workers: build with --build-arg BASE=nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04 --build-arg TFJS_GPU=1
# (installs @tensorflow/tfjs-node-gpu, which the platform picks up at start as the `tensorflow` backend).
ARG BASE=node:20-bookworm-slim
FROM node:20-bookworm-slim AS build
# node-gyp builds serving's native JPEG decoder (native/turbojpeg) against this image's Node headers.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ libturbojpeg0-dev && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY scripts/build-turbojpeg.js scripts/
COPY native native
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY migrations migrations
COPY test test
COPY bench bench
RUN npm run build && npm prune --omit=dev

FROM ${BASE}
ARG TFJS_GPU=0
RUN if ! command -v node >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends curl ca-certificates && \
      curl -fsSL https://deb.nodesource.com/setup_20.x | bash - && apt-get install -y nodejs && rm -rf /var/lib/apt/lists/*; \
    fi
# The native JPEG decoder's library (Debian: libturbojpeg0; Ubuntu, the CUDA base: libturbojpeg).
RUN apt-get update && (apt-get install -y --no-install-recommends libturbojpeg0 || apt-get install -y --no-install-recommends libturbojpeg) && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/native/turbojpeg/build/Release/turbojpeg.node native/turbojpeg/build/Release/turbojpeg.node
COPY --from=build /app/src/dashboard/public src/dashboard/public
COPY package.json ./
RUN if [ "$TFJS_GPU" = "1" ]; then npm install --no-save @tensorflow/tfjs-node-gpu@4.22.0; fi
EXPOSE 3000
CMD ["node", "dist/src/main.js"]
