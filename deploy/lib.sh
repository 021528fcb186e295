# Shell functions shared by deploy/test.sh and deploy/run.sh. Sourced, not run:
#
#   log_prefix=run; source deploy/lib.sh
#
# The caller runs from the repository root with `set -euo pipefail`.

readonly local_base=callbackhub-local/base:bookworm
readonly local_postgres=callbackhub-local/postgres:15
readonly local_rabbitmq=callbackhub-local/rabbitmq:3.10
readonly local_sdk=callbackhub-local/dotnet-sdk:10.0
readonly dockerd_log="${TMPDIR:-/tmp}/callbackhub-dockerd.log"
# Two scripts on one machine must not build the same local images at once.
readonly images_lock="${TMPDIR:-/tmp}/callbackhub-images.lock"

log() { printf '[%s] %s\n' "$log_prefix" "$*"; }
die() { printf '[%s] error: %s\n' "$log_prefix" "$*" >&2; exit 1; }

# apt-get install, quietly and without questions; only root can.
apt_install() { # package...
  [[ "$(id -u)" == 0 ]] || die "please install $* (needs root)"
  command -v apt-get >/dev/null || die "please install $* (no apt-get here)"
  log "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

start_docker_engine() {
  if docker info >/dev/null 2>&1; then
    log "Docker engine is running"
    return
  fi
  [[ "$(id -u)" == 0 ]] || die "no Docker engine answers and only root can start one"
  log "starting dockerd in the background (log: $dockerd_log)"
  # Detached on purpose: it outlives this script and later runs reuse it.
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
have_or_pull() { # image [seconds]
  docker image inspect "$1" >/dev/null 2>&1 && return
  if command -v timeout >/dev/null; then
    timeout "${2:-20}" docker pull --quiet "$1" >/dev/null 2>&1
  else # macOS has no timeout
    docker pull --quiet "$1" >/dev/null 2>&1
  fi
}

# A build argument's default in deploy/Dockerfile (the official .NET images), e.g. `dockerfile_default SDK_IMAGE`.
dockerfile_default() { # name
  sed -n "s/^ARG $1=//p" deploy/Dockerfile | head -n 1
}

# callbackhub-local/base:bookworm, postgres:15 and rabbitmq:3.10 from Debian packages (see deploy/images).
build_local_images() {
  flock "$images_lock" bash deploy/images/build-local-images.sh
}

# callbackhub-local/dotnet-sdk:10.0: the local base plus this machine's .NET SDK, for the Dockerfile's final target.
build_local_sdk_image() {
  docker image inspect "$local_base" >/dev/null 2>&1 || build_local_images
  flock "$images_lock" bash deploy/images/build-local-sdk-image.sh
}
