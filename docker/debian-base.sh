#!/bin/sh
# Build a local base image from Debian's own packages, for hosts that reach a Debian mirror (and
# PyPI) but no image registry: a stand-in for both python:3.11-slim-bookworm (Debian's python3
# is 3.11 on bookworm) and debian:bookworm-slim. Needs root and debootstrap.
#
#   docker/debian-base.sh [TAG]                      # default mfsearch-base:bookworm
#   BASE_IMAGE=mfsearch-base:bookworm POSTGRES_BASE_IMAGE=mfsearch-base:bookworm docker/smoke.sh
#
# Behind a TLS-inspecting proxy, EXTRA_CA_DIR=/usr/local/share/ca-certificates adds the host's
# extra CA certificates (*.crt) to the image and points pip (which otherwise trusts only its own
# bundled list) and Python at the system store: builds on that image can then reach PyPI. Such an
# image is for this host only; do not push it.
set -eu

tag=${1:-mfsearch-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d /tmp/debian-base.XXXXXX)

cleanup() {
    # debootstrap mounts /proc and /sys in the tree; never let rm walk into them.
    umount "$root/proc" "$root/sys" 2>/dev/null || true
    rm -rf --one-file-system "$root"
}
trap cleanup EXIT

# minbase + what the Dockerfiles need: python3-venv (venv with ensurepip), useradd (passwd),
# ca-certificates (pip over HTTPS).
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd \
    bookworm "$root" "$mirror"

# The suites Docker's Debian images use, so that apt-get in a build gets security fixes.
cat > "$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
# As in Docker's Debian images: packages must not try to start services during a build.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin

ca_env=
if [ -n "${EXTRA_CA_DIR:-}" ]; then
    cp "$EXTRA_CA_DIR"/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null
    bundle=/etc/ssl/certs/ca-certificates.crt
    ca_env="ENV PIP_CERT=$bundle SSL_CERT_FILE=$bundle REQUESTS_CA_BUNDLE=$bundle"
fi

tar --numeric-owner -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["/bin/bash"]' \
    ${ca_env:+-c "$ca_env"} \
    - "$tag"
echo "debian-base: built $tag"
