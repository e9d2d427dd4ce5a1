#!/usr/bin/env bash
# Builds what a lab hoster or relay operator downloads, into the folder $1
# (default dist/): for linux amd64, arm64 and armv7, a tarball (the binary,
# the README, examples/) and a .deb (the binary, the systemd units, the
# settings files in /etc/vw/). Each binary is built once and has the jsmpeg
# library embedded. make dist runs this with VERSION, COMMIT and DATE set.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${VERSION:?set VERSION (make dist does)}" "${COMMIT:?set COMMIT}" "${DATE:?set DATE}"
out=${1:-dist}

for asset in jsmpeg/assets/jsmpeg-player.umd.min.js jsmpeg/assets/mpegts.js; do
	if [ ! -s "$asset" ]; then
		echo "dist: $asset is missing, and a release must play video: run make js (it needs npm)" >&2
		exit 1
	fi
done

# A Debian version must start with a digit and sort upwards: v1.2.0 gives
# 1.2.0, three commits after it 1.2.0+3.gabc1234, and with no tag at all
# 0.0.0+git<commit date>.<hash>.
debian_version() {
	local v=$1 dirty=""
	if [[ $v == *-dirty ]]; then v=${v%-dirty}; dirty=".dirty"; fi
	if [[ $v =~ ^v?([0-9][0-9A-Za-z.]*)(-([0-9]+)-g([0-9a-f]+))?$ ]]; then
		v=${BASH_REMATCH[1]}
		[ -n "${BASH_REMATCH[3]}" ] && v+="+${BASH_REMATCH[3]}.g${BASH_REMATCH[4]}"
	else
		v="0.0.0+git$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d 2>/dev/null || echo 0).${COMMIT:0:12}"
	fi
	echo "$v$dirty"
}
debver=$(debian_version "$VERSION")

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The units name /usr/local/... for a copy by hand; the package puts things
# in /usr/bin and /usr/share/vw. Comments keep the by-hand paths.
mkdir "$work/units"
for u in examples/systemd/*.service; do
	sed -E '/^[[:space:]]*#/!s#/usr/local/(bin|share)/#/usr/\1/#g' "$u" >"$work/units/$(basename "$u")"
done

ldflags="-s -w -X main.version=$VERSION -X main.commit=$COMMIT -X main.date=$DATE"
# name GOARCH GOARM nfpm-arch deb-arch
targets=(
	"amd64 amd64 - amd64 amd64"
	"arm64 arm64 - arm64 arm64"
	"armv7 arm 7 arm7 armhf"
)
for t in "${targets[@]}"; do
	read -r name goarch goarm nfpmarch debarch <<<"$t"
	dir="vw_${debver}_linux_${name}"
	mkdir -p "$work/$dir"
	echo "dist: linux/$name"
	[ "$goarm" = - ] && goarm=""
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		go build -trimpath -ldflags "$ldflags" -o "$work/$dir/vw" ./cmd/vw

	cp README.md "$work/$dir/"
	mkdir "$work/$dir/examples"
	cp -r examples/. "$work/$dir/examples/"
	tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner \
		-czf "$out/$dir.tar.gz" "$dir"

	NFPM_ARCH=$nfpmarch DEB_VERSION=$debver BIN="$work/$dir/vw" STAGE="$work/units" \
		go tool nfpm package --config packaging/nfpm.yaml --packager deb \
		--target "$out/vw_${debver}_${debarch}.deb"
done
ls -l "$out"
