#!/usr/bin/env bash
# Builds the PostgreSQL and RabbitMQ images the integration tests need from Debian packages alone,
# for machines that reach apt's mirror but no container registry (see DEVELOPERS.md).
#
#   bash deploy/images/build-local-images.sh [--force]
#
# Idempotent: the debootstrapped base is made once (about a minute) and kept unless --force is given; the two
# service images are rebuilt from Docker's layer cache every time (a second or two when nothing changed), so
# edits to their Dockerfiles and entrypoints take effect without --force.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly base_image=callbackhub-local/base:bookworm
readonly postgres_image=callbackhub-local/postgres:15
readonly rabbitmq_image=callbackhub-local/rabbitmq:3.10

cache=()
case "${1:-}" in
  --force) cache=(--no-cache) ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

rootfs=""
trap '[[ -z "$rootfs" ]] || rm -rf "$rootfs" "$rootfs.log"' EXIT

log() { printf '[images] %s\n' "$*"; }

# The Debian mirror apt already uses here (so nothing new has to be reachable);
# empty means debootstrap's own default.
debian_mirror() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p; s/^URIs:[[:space:]]*//p' \
    | tr -s '[:blank:]' '\n' | grep -E '/debian/?$' | head -n 1 || true
}

build_base() {
  if ((${#cache[@]} == 0)) && docker image inspect "$base_image" >/dev/null 2>&1; then
    log "$base_image exists"
    return
  fi
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install -y debootstrap)" >&2; exit 1; }
  local mirror
  mirror="$(debian_mirror)"
  rootfs="$(mktemp -d /tmp/callbackhub-rootfs.XXXXXX)"
  log "debootstrap bookworm (postgresql-15, rabbitmq-server) from ${mirror:-the default mirror}"
  if ! debootstrap --variant=minbase --include=postgresql-15,rabbitmq-server \
      bookworm "$rootfs" ${mirror:+"$mirror"} >"$rootfs.log" 2>&1; then
    tail -n 30 "$rootfs.log" >&2
    exit 1
  fi
  # Keep the image small: no package cache, lists or docs.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  log "importing $base_image"
  tar -C "$rootfs" -c . | docker import - "$base_image" >/dev/null
}

build_image() { # name dir
  log "building $1"
  # The classic builder needs nothing beyond the local engine (BuildKit may try to fetch its frontend);
  # its output is only shown when it fails.
  local output
  if ! output="$(DOCKER_BUILDKIT=0 docker build --force-rm "${cache[@]}" --tag "$1" "$here/$2" 2>&1)"; then
    printf '%s\n' "$output" >&2
    exit 1
  fi
}

build_base
build_image "$postgres_image" postgres
build_image "$rabbitmq_image" rabbitmq
log "ready: $postgres_image $rabbitmq_image (${SECONDS}s)"
