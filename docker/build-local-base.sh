#!/usr/bin/env bash
# Build a local base image for the Dockerfile where no container registry is reachable (only a Debian mirror):
# a minimal Debian bookworm root (Python 3.11, venv, pip, make, git, CA certificates) made by debootstrap and
# imported into Docker. Run as root (debootstrap needs it); takes ~4 minutes.
#
#   usage: sudo docker/build-local-base.sh [IMAGE_NAME] [MIRROR]
#          IMAGE_NAME  default eagrl-base:bookworm
#          MIRROR      default http://deb.debian.org/debian
#   then:  DOCKER_BUILDKIT=1 docker build --build-arg BASE=eagrl-base:bookworm -t eagrl .
set -euo pipefail

name="${1:-eagrl-base:bookworm}"
mirror="${2:-http://deb.debian.org/debian}"
root="$(mktemp -d "${TMPDIR:-/tmp}/eagrl-base.XXXXXX")"
trap 'rm -rf "$root"' EXIT

debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,make,git,ca-certificates \
  bookworm "$root" "$mirror"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$name"
echo "built $name"
