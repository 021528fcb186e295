#!/usr/bin/env bash
# The project's run command: the demo of docker-compose.yml (PostgreSQL, RabbitMQ, the gateway simulator and
# CallbackHub signing in three demo agents), up and with events flowing, from nothing.
#
#   bash deploy/run.sh          # build, start, wait until events are published, print where to look
#   bash deploy/run.sh --down   # stop and remove the demo's containers, network and data
#
# Works on a Debian/Ubuntu machine as root without a terminal (CI), like deploy/test.sh: installs docker.io and
# Debian's docker-compose when missing (debootstrap too when local images must be made), starts dockerd when no
# engine answers. Where a registry hands out the official images it builds the images inside the SDK image (the
# Dockerfile's final target); where none does it publishes on this machine (the .NET SDK is needed then) and copies
# that onto a Debian base made from packages (the prebuilt target, deploy/images). Later runs reuse all of it.
#
# Host ports: POSTGRES_PORT, RABBITMQ_PORT, RABBITMQ_UI_PORT, SIMULATOR_PORT, CALLBACKHUB_HTTP_PORT,
# CALLBACKHUB_HTTPS_PORT (see docker-compose.yml); COMPOSE_PROJECT_NAME names a separate demo.
# CALLBACKHUB_RUN_TIMEOUT: seconds to wait for the first published event (default 180).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

log_prefix=run
# shellcheck source=deploy/lib.sh
source deploy/lib.sh

readonly api_key=demo-api-key-change-me
readonly wait_seconds="${CALLBACKHUB_RUN_TIMEOUT:-180}"
readonly http_port="${CALLBACKHUB_HTTP_PORT:-8080}"
compose=()

usage() { echo "usage: bash deploy/run.sh [--down]" >&2; exit 2; }

# A default of docker-compose.yml, e.g. `compose_default POSTGRES_IMAGE` (the official image it names).
compose_default() { # variable
  sed -n "s/.*\${$1:-\([^}]*\)}.*/\1/p" docker-compose.yml | head -n 1
}

# `docker compose` (v2) when the CLI has it, else Debian's docker-compose (v1).
find_compose() {
  if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
  elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
  else
    compose=()
  fi
}

install_missing_packages() {
  local missing=()
  if ! command -v docker >/dev/null || { ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null; }; then
    missing+=(docker.io)
  fi
  find_compose
  ((${#compose[@]} > 0)) || missing+=(docker-compose)
  command -v curl >/dev/null || missing+=(curl)
  ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
  find_compose
  ((${#compose[@]} > 0)) || die "neither \`docker compose\` nor docker-compose works here"
  log "compose: ${compose[*]} ($("${compose[@]}" version --short 2>/dev/null || echo '?'))"
}

# The official images where a registry hands them out, else images made from Debian packages. Variables the user
# set (POSTGRES_IMAGE, RABBITMQ_IMAGE, CALLBACKHUB_BUILD_TARGET, ...) win.
choose_images() {
  local postgres rabbitmq sdk runtime
  postgres="${POSTGRES_IMAGE:-$(compose_default POSTGRES_IMAGE)}"
  rabbitmq="${RABBITMQ_IMAGE:-$(compose_default RABBITMQ_IMAGE)}"
  sdk="${CALLBACKHUB_SDK_IMAGE:-$(dockerfile_default SDK_IMAGE)}"
  runtime="${CALLBACKHUB_RUNTIME_IMAGE:-$(dockerfile_default RUNTIME_IMAGE)}"

  local local_data=false
  if ! have_or_pull "$postgres" || ! have_or_pull "$rabbitmq"; then
    local_data=true
  fi
  if [[ -z "${CALLBACKHUB_BUILD_TARGET:-}" ]]; then
    # The SDK image is large: give its first pull time.
    if have_or_pull "$runtime" && have_or_pull "$sdk" 600; then
      export CALLBACKHUB_BUILD_TARGET=final
    else
      export CALLBACKHUB_BUILD_TARGET=prebuilt CALLBACKHUB_RUNTIME_IMAGE="${CALLBACKHUB_RUNTIME_IMAGE:-$local_base}"
    fi
  fi

  if $local_data || [[ "${CALLBACKHUB_RUNTIME_IMAGE:-}" == "$local_base" ]]; then
    log "no container registry answers: using images built from Debian packages (deploy/images)"
    if ! docker image inspect "$local_base" >/dev/null 2>&1 && ! command -v debootstrap >/dev/null; then
      apt_install debootstrap
    fi
    build_local_images
  fi
  if $local_data; then
    export POSTGRES_IMAGE="${POSTGRES_IMAGE:-$local_postgres}" RABBITMQ_IMAGE="${RABBITMQ_IMAGE:-$local_rabbitmq}"
  fi
  log "images: ${POSTGRES_IMAGE:-$postgres}, ${RABBITMQ_IMAGE:-$rabbitmq}; CallbackHub and the simulator built" \
      "with the Dockerfile's $CALLBACKHUB_BUILD_TARGET target FROM ${CALLBACKHUB_RUNTIME_IMAGE:-$runtime}"
}

# The prebuilt target copies deploy/publish/<project>: publish it here, where NuGet answers.
publish_on_host() {
  [[ "$CALLBACKHUB_BUILD_TARGET" == prebuilt ]] || return 0
  command -v dotnet >/dev/null \
    || die "no container registry answers, so the apps are published on this machine: install the .NET 10 SDK"
  local project
  for project in CallbackHub.GatewaySimulator CallbackHub; do
    log "dotnet publish $project -> deploy/publish/$project"
    rm -rf "deploy/publish/$project"
    # Intermediate files under artifacts/run (kept for the next run) rather than the projects' obj/ folders, which
    # builds and IDEs of the checkout use. No build server outlives the publish.
    dotnet publish "src/$project/$project.csproj" -c Release -r linux-x64 --self-contained \
      --artifacts-path artifacts/run -o "deploy/publish/$project" -nologo -v quiet --disable-build-servers \
      || die "dotnet publish of $project failed (its errors are above)"
  done
}

print_logs() {
  "${compose[@]}" ps >&2 || true
  "${compose[@]}" logs --no-color --tail=25 >&2 || true
}

# The sum of one Prometheus counter's series on /metrics, 0 when it is not there yet.
metric() { # name
  local text
  text="$(curl -fsS --max-time 5 "http://localhost:$http_port/metrics" 2>/dev/null)" || text=""
  awk -v name="$1" '$1 == name || index($1, name "{") == 1 { sum += $2 } END { printf "%d\n", sum }' <<<"$text"
}

wait_for_events() {
  log "waiting up to ${wait_seconds}s for events to flow (callbackhub_events_published_total on http://localhost:$http_port/metrics)"
  local deadline=$((SECONDS + wait_seconds)) published=0
  while ((SECONDS < deadline)); do
    published="$(metric callbackhub_events_published_total)"
    ((published > 0)) && break
    sleep 2
  done
  if ((published == 0)); then
    print_logs
    die "no event was published within ${wait_seconds}s (the containers' state and last logs are above)"
  fi
  log "events flow: $published published so far, $(metric callbackhub_events_stored_total) stored"
}

show_latest_events() {
  log "the latest events in PostgreSQL:"
  "${compose[@]}" exec -T postgres psql -U callbackhub -c \
    "SELECT e.agent_id, e.sequence, e.event_type, e.sequence <= s.published_sequence AS published FROM agent_events e JOIN agent_streams s USING (agent_id) ORDER BY e.received_at DESC, e.sequence DESC LIMIT 5" || true
}

print_where_to_look() {
  local c="${compose[*]}"
  [[ -z "${COMPOSE_PROJECT_NAME:-}" ]] || c="$c -p $COMPOSE_PROJECT_NAME"
  local sql="SELECT e.agent_id, e.sequence, e.event_type, e.content, e.sequence <= s.published_sequence AS published FROM agent_events e JOIN agent_streams s USING (agent_id) ORDER BY e.received_at DESC, e.sequence DESC LIMIT 10"
  cat <<EOF
[run] ready. Where to look:
  CallbackHub         http://localhost:$http_port  (API key: $api_key)
  readiness           http://localhost:$http_port/health/ready
  metrics             http://localhost:$http_port/metrics
  API description     http://localhost:$http_port/openapi/v1.json
  RabbitMQ UI         http://localhost:${RABBITMQ_UI_PORT:-15672}  (guest/guest; exchange callbackhub.agent-events)
  gateway simulator   http://localhost:${SIMULATOR_PORT:-5080}/simulator/pushes  (also /simulator/agents, /simulator/requests)
  PostgreSQL          localhost:${POSTGRES_PORT:-5432}  (callbackhub/callbackhub)
  AMQP                localhost:${RABBITMQ_PORT:-5672}  (guest/guest)

The agents and their sessions:
  curl -H 'X-Api-Key: $api_key' http://localhost:$http_port/api/agents
The latest events (compose commands run in $root):
  $c exec postgres psql -U callbackhub -c "$sql"
Logs:
  $c logs -f callbackhub
Stop and remove the demo:
  bash deploy/run.sh --down      (or: $c down -v)
EOF
}

down() {
  if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
    log "no Docker engine answers: nothing to stop"
    return
  fi
  find_compose
  ((${#compose[@]} > 0)) || die "neither \`docker compose\` nor docker-compose works here"
  log "${compose[*]} down -v --remove-orphans${COMPOSE_PROJECT_NAME:+ (project $COMPOSE_PROJECT_NAME)}"
  "${compose[@]}" down -v --remove-orphans
  log "stopped"
}

up() {
  install_missing_packages
  start_docker_engine
  choose_images
  publish_on_host
  # Debian's engine has no BuildKit client here (no buildx), and docker-compose v1 builds best with the classic
  # builder; the prebuilt target is made for it.
  if [[ "${compose[*]}" == docker-compose || "$CALLBACKHUB_BUILD_TARGET" == prebuilt ]]; then
    export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" COMPOSE_DOCKER_CLI_BUILD="${COMPOSE_DOCKER_CLI_BUILD:-0}"
  fi
  log "${compose[*]} build${COMPOSE_PROJECT_NAME:+ (project $COMPOSE_PROJECT_NAME)}"
  "${compose[@]}" build
  log "${compose[*]} up -d"
  if ! "${compose[@]}" up -d --remove-orphans; then
    print_logs
    die "the demo did not start (the containers' state and last logs are above; a host port taken? move it with" \
        "POSTGRES_PORT, RABBITMQ_PORT, RABBITMQ_UI_PORT, SIMULATOR_PORT, CALLBACKHUB_HTTP_PORT or CALLBACKHUB_HTTPS_PORT)"
  fi
  wait_for_events
  show_latest_events
  print_where_to_look
  log "done in ${SECONDS}s"
}

case "${1:-}" in
  "") up ;;
  --down) down ;;
  -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
  *) usage ;;
esac
