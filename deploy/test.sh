#!/usr/bin/env bash
# The project's test command:  bash deploy/test.sh [extra `dotnet test` arguments, e.g. --filter ...]
#
# Works from nothing on a Debian machine as root, without a terminal (CI): installs Docker and debootstrap
# when missing, starts the Docker engine when none answers, picks the container images for the integration
# tests (the official ones when a registry answers, otherwise images built from Debian packages, see
# deploy/images), then runs every test of the solution.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Keep the official tags in sync with tests/CallbackHub.IntegrationTests/Infrastructure/TestImages.cs.
readonly official_postgres=postgres:15.10-alpine
readonly official_rabbitmq=rabbitmq:3.13.7-management-alpine
readonly local_postgres=callbackhub-local/postgres:15
readonly local_rabbitmq=callbackhub-local/rabbitmq:3.10
readonly local_base=callbackhub-local/base:bookworm
readonly dockerd_log="${TMPDIR:-/tmp}/callbackhub-dockerd.log"

log() { printf '[test] %s\n' "$*"; }
die() { printf '[test] error: %s\n' "$*" >&2; exit 1; }

install_missing_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  ((${#missing[@]} == 0)) && return
  [[ "$(id -u)" == 0 ]] || die "please install ${missing[*]} (needs root)"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_docker_engine() {
  if docker info >/dev/null 2>&1; then
    log "Docker engine is running"
    return
  fi
  [[ "$(id -u)" == 0 ]] || die "no Docker engine answers and only root can start one"
  log "starting dockerd in the background (log: $dockerd_log)"
  # Detached on purpose: it outlives this script (dotnet test replaces it) and later runs reuse it.
  setsid dockerd >"$dockerd_log" 2>&1 </dev/null &
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && return
    sleep 1
  done
  tail -n 20 "$dockerd_log" >&2
  die "dockerd did not answer within 60 s"
}

# Testcontainers 4 asks for a newer Docker API than Debian's engine (1.41) serves unless told which one to use.
pin_docker_api_version() {
  local api
  api="$(docker version --format '{{.Server.APIVersion}}')"
  if [[ -z "${DOCKER_API_VERSION:-}" ]] && [[ "$(printf '%s\n' "$api" 1.44 | sort -V | head -n 1)" != 1.44 ]]; then
    export DOCKER_API_VERSION="$api"
  fi
  log "Docker API $api${DOCKER_API_VERSION:+ (DOCKER_API_VERSION=$DOCKER_API_VERSION)}"
}

# True when the image is here or a registry hands it out quickly.
have_or_pull() {
  docker image inspect "$1" >/dev/null 2>&1 || timeout 20 docker pull --quiet "$1" >/dev/null 2>&1
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
    # The lock keeps two test runs on one machine from building the same images at once.
    flock "${TMPDIR:-/tmp}/callbackhub-images.lock" bash deploy/images/build-local-images.sh
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

install_missing_packages
start_docker_engine
pin_docker_api_version
choose_images
choose_runtime_image
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
