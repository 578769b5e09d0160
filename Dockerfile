# The ispmux appliance image: Debian bookworm, DPDK 22.11 runtime, the release binary.
# Build: docker build -t ispmux .
# Run:   docker run --privileged --network host -v /dev/hugepages:/dev/hugepages \
#          -v /etc/ispmux:/etc/ispmux ispmux run -c /etc/ispmux/ispmux.toml

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config clang libclang-dev libdpdk-dev libpcap-dev \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
ENV PATH=/root/.cargo/bin:$PATH
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ispmux

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      dpdk iproute2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ispmux /usr/local/bin/ispmux
COPY examples/ /usr/share/ispmux/examples/
ENTRYPOINT ["/usr/local/bin/ispmux"]
CMD ["run", "-c", "/etc/ispmux/ispmux.toml"]
