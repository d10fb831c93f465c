# syntax=docker/dockerfile:1
# One image for every role: `meshhook api | orchestrator | executor | migrate`.

# --- build: the SPA (wasm) and the release binary with the SPA embedded ---
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo xtask dist && cp target/release/meshhook /meshhook

# --- runtime: small, non-root ---
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /nonexistent --shell /usr/sbin/nologin meshhook
COPY --from=build /meshhook /usr/local/bin/meshhook
USER 10001:10001
ENV PORT=8080 MESHHOOK_BIND=0.0.0.0 MESHHOOK_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/meshhook"]
CMD ["api"]
