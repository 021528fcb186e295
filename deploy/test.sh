#!/usr/bin/env bash
# The project's test command:  bash deploy/test.sh [extra `dotnet test` arguments, e.g. --filter ...]
#
# Works from nothing on a Debian machine as root, without a terminal (CI): installs Docker and debootstrap
# when missing, starts the Docker engine when none answers, picks the container images for the integration
# tests (the official ones when a registry answers, otherwise images built from Debian packages and a .NET SDK
# image made of this machine's SDK, see deploy/images), then runs every test of the solution.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Keep the official tags in sync with tests/CallbackHub.IntegrationTests/Infrastructure/TestImages.cs.
readonly official_postgres=postgres:15.10-alpine
readonly official_rabbitmq=rabbitmq:3.13.7-management-alpine

log_prefix=test
# shellcheck source=deploy/lib.sh
source deploy/lib.sh

install_missing_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  ((${#missing[@]} == 0)) && return
  apt_install "${missing[@]}"
}

choose_images() {
  if [[ -n "${CALLBACKHUB_TEST_POSTGRES_IMAGE:-}" && -n "${CALLBACKHUB_TEST_RABBITMQ_IMAGE:-}" ]]; then
    log "images from the environment: $CALLBACKHUB_TEST_POSTGRES_IMAGE, $CALLBACKHUB_TEST_RABBITMQ_IMAGE"
    return
  fi
  local postgres rabbitmq
  if have_or_pull "$official_postgres" && have_or_pull "$official_rabbitmq"; then
    postgres="$official_postgres" rabbitmq="$official_rabbitmq"
  else
    log "no container registry answers: using images built from Debian packages"
    build_local_images
    postgres="$local_postgres" rabbitmq="$local_rabbitmq"
  fi
  # A variable the user set wins; only the missing one is filled in.
  export CALLBACKHUB_TEST_POSTGRES_IMAGE="${CALLBACKHUB_TEST_POSTGRES_IMAGE:-$postgres}"
  export CALLBACKHUB_TEST_RABBITMQ_IMAGE="${CALLBACKHUB_TEST_RABBITMQ_IMAGE:-$rabbitmq}"
  log "images: $CALLBACKHUB_TEST_POSTGRES_IMAGE, $CALLBACKHUB_TEST_RABBITMQ_IMAGE"
}

# The container tests (tests/CallbackHub.ContainerTests) build the service images FROM this image; the local
# Debian base (made with the images above) serves where no registry answers.
choose_runtime_image() {
  if [[ -z "${CALLBACKHUB_TEST_RUNTIME_IMAGE:-}" ]] && docker image inspect "$local_base" >/dev/null 2>&1; then
    export CALLBACKHUB_TEST_RUNTIME_IMAGE="$local_base"
  fi
  log "service images built FROM ${CALLBACKHUB_TEST_RUNTIME_IMAGE:-the default runtime image of deploy/Dockerfile}"
}

# The container tests also build the Dockerfile's final target, which restores and publishes inside an SDK image:
# the official one when a registry hands it out, otherwise a stand-in made of this machine's .NET SDK.
choose_sdk_image() {
  if [[ -z "${CALLBACKHUB_TEST_SDK_IMAGE:-}" ]]; then
    local official
    official="$(dockerfile_default SDK_IMAGE)"
    # The official SDK image is large: give its first pull time.
    if have_or_pull "$official" 600; then
      export CALLBACKHUB_TEST_SDK_IMAGE="$official"
    else
      build_local_sdk_image
      export CALLBACKHUB_TEST_SDK_IMAGE="$local_sdk"
    fi
  fi
  log "final target built with $CALLBACKHUB_TEST_SDK_IMAGE"
}

install_missing_packages
start_docker_engine
pin_docker_api_version
choose_images
choose_runtime_image
choose_sdk_image
# Ryuk (Testcontainers' reaper) is itself an image from a registry; the fixtures remove their containers.
export TESTCONTAINERS_RYUK_DISABLED="${TESTCONTAINERS_RYUK_DISABLED:-true}"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

log "dotnet test CallbackHub.sln -c Release $*"
output="$(mktemp)"
trap 'rm -f "$output"' EXIT
set +e
dotnet test CallbackHub.sln -c Release "$@" 2>&1 | tee "$output"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test project ("N passed, N failed"), the form CI reads in any language.
awk '/(Passed|Failed)! +- +Failed:/ {
       gsub(",", "")
       for (i = 1; i < NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) }
     }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$output"
exit "$status"
