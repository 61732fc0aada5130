# Builds the bulkhead binary; the runtime image carries pg_dump for exports
# (bookworm's client is PostgreSQL 15: keep servers at 15 or older, or
# pg_dump refuses them) and curl for the compose healthcheck on /readyz.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin bulkhead

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/bulkhead \
 && chown nobody:nogroup /var/lib/bulkhead
COPY --from=build /src/target/release/bulkhead /usr/local/bin/bulkhead
# The outbox (mail kept when there is no relay, or it fails) lives here; the
# default ./.bulkhead would be / for nobody, which cannot write there.
ENV BULKHEAD_HOME=/var/lib/bulkhead
WORKDIR /var/lib/bulkhead
USER nobody
EXPOSE 8080
ENTRYPOINT ["bulkhead"]
CMD ["serve"]
