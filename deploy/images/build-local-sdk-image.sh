#!/usr/bin/env bash
# Makes callbackhub-local/dotnet-sdk:10.0, a stand-in for the official .NET SDK image on machines that reach no
# container registry, so deploy/Dockerfile's final target (restore and publish inside the SDK image) builds there:
# callbackhub-local/base:bookworm (build-local-images.sh) plus this machine's .NET SDK and its CA certificates, so
# NuGet answers inside the image as it does here.
#
#   bash deploy/images/build-local-sdk-image.sh [--force]
#
# Idempotent: skipped when the image exists and was made from the same SDK version as `dotnet --version` here
# (its label org.callbackhub.dotnet-sdk-version says which); otherwise about a minute (the SDK is ~600 MB).
set -euo pipefail

readonly base_image=callbackhub-local/base:bookworm
readonly sdk_image=callbackhub-local/dotnet-sdk:10.0
readonly version_label=org.callbackhub.dotnet-sdk-version
readonly ca_bundle=/etc/ssl/certs/ca-certificates.crt

log() { printf '[images] %s\n' "$*"; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

force=false
case "${1:-}" in
  --force) force=true ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

command -v dotnet >/dev/null || die "no .NET SDK here to copy (dotnet is not on PATH)"
dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
version="$(dotnet --version)"
[[ -f "$ca_bundle" ]] || die "$ca_bundle is missing"
docker image inspect "$base_image" >/dev/null 2>&1 || die "$base_image is missing: bash deploy/images/build-local-images.sh"

made_from="$(docker image inspect --format "{{ index .Config.Labels \"$version_label\" }}" "$sdk_image" 2>/dev/null || true)"
if ! $force && [[ "$made_from" == "$version" ]]; then
  log "$sdk_image exists (SDK $version)"
  exit 0
fi

context="$(mktemp -d /tmp/callbackhub-sdk-image.XXXXXX)"
trap 'rm -rf "$context"' EXIT
cp "$ca_bundle" "$context/ca-certificates.crt"
cat >"$context/Dockerfile" <<EOF
FROM $base_image
COPY dotnet/ /usr/share/dotnet/
# This machine's CA certificates: NuGet inside the image trusts what NuGet here trusts.
COPY ca-certificates.crt $ca_bundle
ENV PATH=/usr/share/dotnet:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    DOTNET_ROOT=/usr/share/dotnet \\
    DOTNET_CLI_TELEMETRY_OPTOUT=1 \\
    DOTNET_NOLOGO=1 \\
    DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 \\
    NUGET_CERT_REVOCATION_MODE=offline \\
    SSL_CERT_FILE=$ca_bundle
# The base has libicu (PostgreSQL needs it), so the SDK runs with full globalization.
RUN ln -sf /usr/share/dotnet/dotnet /usr/bin/dotnet && dotnet --version
LABEL $version_label=$version
EOF

log "building $sdk_image from the .NET SDK $version in $dotnet_root"
# The SDK is streamed into the build context as a tar (no copy on disk): the Dockerfile and certificates from the
# temporary folder, the SDK as dotnet/. The classic builder needs nothing beyond the local engine.
output="$(tar -c -C "$context" Dockerfile ca-certificates.crt -C "$(dirname "$dotnet_root")" \
            --transform 's,^[^/]*/,dotnet/,' "$(basename "$dotnet_root")" \
          | DOCKER_BUILDKIT=0 docker build --force-rm --tag "$sdk_image" - 2>&1)" \
  || { printf '%s\n' "$output" >&2; die "could not build $sdk_image"; }
log "ready: $sdk_image (${SECONDS}s)"
