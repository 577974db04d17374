# gatelog image: a static (musl) binary on distroless/static, non-root.
#
#   docker build -t gatelog:0.1.0 .
#   docker run --rm gatelog:0.1.0 --dry-run          # the embedded default
#
# Written without a Docker engine at hand (the development machine has none),
# so this file has not been built there; it uses only stock images and the
# commands CI runs (`cargo build --locked`).
#
# Drop-in for fluent/fluent-bit: the default command reads
# /fluent-bit/etc/fluent-bit.conf, where the sidecar's ConfigMap is mounted.

# --- build: Rust + musl-tools (mlua compiles its vendored LuaJIT with the C
# compiler, which for the musl target must be musl-gcc).
FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# LuaJIT built without its FFI (see .cargo/config.toml).
COPY .cargo .cargo
COPY src src
# src/main.rs embeds examples/default.conf; cargo also lists examples/*.rs.
COPY examples examples
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin gatelog \
    && cp target/x86_64-unknown-linux-musl/release/gatelog /gatelog \
    && /gatelog --dry-run

# --- run: no shell, no libc needed; tzdata is included (TZ=Asia/Tokyo and
# Lua's os.date read /usr/share/zoneinfo).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /gatelog /usr/local/bin/gatelog
# Fluent Bit's Lua scripts, for configs that name them (lua/README.md).
COPY lua /usr/share/gatelog/lua
# uid 65532. The socket gatelog creates belongs to this user; nginx can send
# to it if its workers run as root (as in the Istio overlay, `user root;`)
# or if the config sets `Unix_Perm 0666` (deploy/kubernetes/). Output
# directories must be writable by this uid: on a root-owned hostPath, run
# the container as root (istio/README.md explains the choice).
USER nonroot:nonroot
WORKDIR /var/lib/gatelog
EXPOSE 2020
ENTRYPOINT ["/usr/local/bin/gatelog"]
CMD ["-c", "/fluent-bit/etc/fluent-bit.conf"]
