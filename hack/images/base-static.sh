#!/usr/bin/env bash
# Make the local static base (stands in for gcr.io/distroless/static-debian12:nonroot) from
# scratch: /etc/passwd and /etc/group with root, nobody and nonroot (65532) like distroless,
# Debian's CA bundle (taken from CERTS_IMAGE, a local Debian image with ca-certificates),
# /etc/nsswitch.conf, a sticky /tmp, user nonroot. No shell, no package manager.
# Usage: base-static.sh REF CERTS_IMAGE
set -euo pipefail
ref="$1"
certs_image="$2"
work="$(mktemp -d)"
ctr=""
src=""
cleanup() {
  [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true
  [ -z "$src" ] || buildah rm "$src" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
root="$work/rootfs"
mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$root/home/nonroot" "$root/root"
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
GROUP
echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
src="$(buildah from "$certs_image")"
mnt="$(buildah mount "$src")"
cp "$mnt/etc/ssl/certs/ca-certificates.crt" "$root/etc/ssl/certs/ca-certificates.crt"
buildah umount "$src" >/dev/null
chown -R 65532:65532 "$root/home/nonroot"
tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .
ctr="$(buildah from scratch)"
buildah add "$ctr" "$work/rootfs.tar" / >/dev/null
buildah config --env PATH=/usr/local/bin:/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --user 65532:65532 --workingdir /home/nonroot --label org.opencontainers.image.title=berth-base-static "$ctr"
buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
ctr=""
