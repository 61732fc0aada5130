# Builds the bulkhead binary; the runtime image carries pg_dump for exports.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin bulkhead

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/bulkhead /usr/local/bin/bulkhead
USER nobody
ENTRYPOINT ["bulkhead"]
CMD ["tenant", "list"]
