#!/usr/bin/env bash
# Builds the Debian package of mp4-fcgi, mp4-fcgi_<version>_<arch>.deb, from a
# binary already built: no debhelper, no cargo-deb; dpkg-deb, coreutils, gzip
# and the Essential sed and grep only.
#
#   packaging/deb/build.sh                       # target/release/mp4-fcgi (cargo build --release if missing)
#   MP4_FCGI_BIN=target/debug/mp4-fcgi OUT=/tmp packaging/deb/build.sh
#
# MP4_FCGI_BIN  the binary to package; it runs here, to print its man pages and
#               completions, so it must be of this machine's architecture.
# OUT           where the .deb goes (default: target/debian).
# DEB_MAINTAINER  the Maintainer field (default: a placeholder).
# SOURCE_DATE_EPOCH  when set, every file's time, for a reproducible .deb.
# dpkg-deb's own DPKG_DEB_COMPRESSOR_TYPE / _LEVEL pick the compression (xz by default).
#
# The version is Cargo.toml's; the architecture is the binary's (its ELF
# header); Depends is computed from the binary's NEEDED libraries and the
# symbol versions it asks of them, as dpkg-shlibdeps reads them off Debian's
# symbols files. The last line printed is the .deb's path.
set -euo pipefail
umask 022

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
die() {
  echo "build.sh: $*" >&2
  exit 1
}

# A field of Cargo.toml's [package] table ("" when absent).
cargo_field() {
  sed -n '/^\[package\]/,/^\[/{s/^'"$1"' *= *"\(.*\)" *$/\1/p}' "$repo/Cargo.toml" | sed -n 1p
}
version=$(cargo_field version)
[ -n "$version" ] || die "no version in $repo/Cargo.toml"
# SemVer's pre-release (1.0.0-rc.1) sorts before the release in Debian only as 1.0.0~rc.1.
deb_version=${version/-/\~}
[[ $deb_version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "Cargo.toml's version '$version' is not a Debian version"

target_dir=${CARGO_TARGET_DIR:-$repo/target}
bin=${MP4_FCGI_BIN:-}
if [ -z "$bin" ]; then
  bin=$target_dir/release/mp4-fcgi
  if [ ! -e "$bin" ]; then
    echo "build.sh: $bin is missing: cargo build --release" >&2
    (cd "$repo" && cargo build --release)
  fi
fi
{ [ -f "$bin" ] && [ -x "$bin" ]; } || die "$bin is not an executable file"
out=${OUT:-$target_dir/debian}

# --- The binary's ELF header and dynamic section (64-bit little-endian only).

# The unsigned integer of $2 bytes at offset $1 of the binary.
int() {
  local v
  v=$(od -An -v -t "u$2" --endian=little -j "$1" -N "$2" "$bin")
  echo $((v))
}
# The NUL-ended string at offset $1 of the binary.
str() {
  local s=
  dd if="$bin" iflag=skip_bytes,count_bytes skip="$1" count=512 status=none |
    { IFS= read -r -d '' s || true; printf '%s' "$s"; }
}

[ "$(head -c 4 "$bin" | od -An -t x1 | tr -d ' \n')" = 7f454c46 ] || die "$bin is not an ELF file"
{ [ "$(int 4 1)" = 2 ] && [ "$(int 5 1)" = 1 ]; } || die "$bin is not a 64-bit little-endian ELF file"
case $(int 18 2) in
  62) arch=amd64 ;;
  183) arch=arm64 ;;
  243) arch=riscv64 ;;
  21) arch=ppc64el ;;
  258) arch=loong64 ;;
  *) die "$bin: ELF machine $(int 18 2) has no Debian architecture here" ;;
esac

phoff=$(int 32 8)
phentsize=$(int 54 2)
phnum=$(int 56 2)
loads=() # "vaddr offset filesz" of each PT_LOAD
dyn_off='' dyn_size=''
for ((i = 0; i < phnum; i++)); do
  p=$((phoff + i * phentsize))
  case $(int "$p" 4) in
    1) loads+=("$(int $((p + 16)) 8) $(int $((p + 8)) 8) $(int $((p + 32)) 8)") ;;
    2) dyn_off=$(int $((p + 8)) 8) dyn_size=$(int $((p + 32)) 8) ;;
  esac
done
[ -n "$dyn_off" ] || die "$bin is statically linked: Depends cannot be read off it"

# The file offset of virtual address $1.
file_offset() {
  local l vaddr off size
  for l in "${loads[@]}"; do
    read -r vaddr off size <<<"$l"
    if (($1 >= vaddr && $1 < vaddr + size)); then
      echo $(($1 - vaddr + off))
      return
    fi
  done
  die "address $1 is in no loaded segment"
}

needed=() strtab='' verneed='' verneednum=0
read -r -a dyn <<<"$(od -An -v -t u8 --endian=little -j "$dyn_off" -N "$dyn_size" "$bin" | tr '\n' ' ')"
for ((i = 0; i + 1 < ${#dyn[@]}; i += 2)); do
  tag=${dyn[i]} val=${dyn[i + 1]}
  case $tag in
    0) break ;;
    1) needed+=("$val") ;;               # DT_NEEDED
    5) strtab=$val ;;                    # DT_STRTAB
    1879048190) verneed=$val ;;          # DT_VERNEED
    1879048191) verneednum=$val ;;       # DT_VERNEEDNUM
  esac
done
[ -n "$strtab" ] || die "$bin has no dynamic string table"
strtab=$(file_offset "$strtab")

# The version nodes asked of each library ("soname node" lines): .gnu.version_r.
versions=$(
  [ -n "$verneed" ] || exit 0
  v=$(file_offset "$verneed")
  for ((n = 0; n < verneednum; n++)); do
    file=$(str $((strtab + $(int $((v + 4)) 4))))
    a=$((v + $(int $((v + 8)) 4)))
    for ((k = 0; k < $(int $((v + 2)) 2); k++)); do
      echo "$file $(str $((strtab + $(int $((a + 8)) 4))))"
      a=$((a + $(int $((a + 12)) 4)))
    done
    v=$((v + $(int $((v + 12)) 4)))
  done
)

# Each NEEDED library's package, and the least version that has every symbol
# version asked of it: libc6's and libgcc-s1's symbols files give each
# GLIBC_x.y node version x.y, and GCC_x.y.0 version x.y.
libc_min='' gcc_min='' deps=() other=()
for off in "${needed[@]}"; do
  so=$(str $((strtab + off)))
  nodes=$(awk -v so="$so" '$1 == so { print $2 }' <<<"$versions")
  case $so in
    libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | libutil.so.1 | libresolv.so.2 | ld-linux*.so.*)
      for node in $nodes; do
        case $node in
          GLIBC_PRIVATE) die "$bin uses GLIBC_PRIVATE symbols of $so" ;;
          GLIBC_[0-9]*) libc_min=$(printf '%s\n' "$libc_min" "${node#GLIBC_}" | sort -V | tail -n 1) ;;
        esac
      done
      [[ " ${deps[*]} " == *" libc6 "* ]] || deps+=(libc6)
      ;;
    libgcc_s.so.1)
      for node in $nodes; do
        case $node in
          GCC_[0-9]*.*.0) v=${node#GCC_} && gcc_min=$(printf '%s\n' "$gcc_min" "${v%.0}" | sort -V | tail -n 1) ;;
          GCC_[0-9]*) gcc_min=$(printf '%s\n' "$gcc_min" "${node#GCC_}" | sort -V | tail -n 1) ;;
        esac
      done
      deps+=(libgcc-s1)
      ;;
    # FFmpeg's libraries (thumbnails): package = soname without ".so.", and
    # Debian 12's symbols files give their LIBAV*_<major> nodes FFmpeg 5.0.
    libavcodec.so.59 | libavformat.so.59 | libavutil.so.57 | libswscale.so.6)
      other+=("${so/.so./} (>= 7:5.0)")
      ;;
    *) die "$bin needs $so, which build.sh does not know the Debian package of: add it beside libc.so.6" ;;
  esac
done
# adduser for the postinst; the libraries in dpkg-shlibdeps's order.
[[ " ${deps[*]} " != *" libc6 "* ]] || other+=("libc6${libc_min:+ (>= $libc_min)}")
[[ " ${deps[*]} " != *" libgcc-s1 "* ]] || other+=("libgcc-s1${gcc_min:+ (>= $gcc_min)}")
depends=adduser
while IFS= read -r d; do depends+=", $d"; done < <(printf '%s\n' "${other[@]}" | LC_ALL=C sort -u)

# --- The tree.
"$bin" --version >/dev/null 2>&1 || die "$bin does not run here (it prints the man pages and completions)"
stage=$(mktemp -d "${TMPDIR:-/tmp}/mp4-fcgi-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/mp4-fcgi_${deb_version}_$arch
doc=$root/usr/share/doc/mp4-fcgi
units=$root/usr/lib/systemd/system
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$units" "$root/usr/share/man/man1" \
  "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d" "$root/etc/default" "$root/etc/logrotate.d" \
  "$doc" "$root/var/log/mp4-fcgi"

install -m 755 "$bin" "$root/usr/bin/mp4-fcgi"

# The repo's units say /usr/local/bin (cargo install --root /usr/local); the package's /usr/bin.
grep -q '^ExecStart=/usr/local/bin/mp4-fcgi ' "$repo/systemd/mp4-fcgi.service" ||
  die "systemd/mp4-fcgi.service's ExecStart no longer starts /usr/local/bin/mp4-fcgi"
sed -e 's|^ExecStart=/usr/local/bin/mp4-fcgi |ExecStart=/usr/bin/mp4-fcgi |' \
  -e 's|^# and ReadOnlyPaths to match\. The binary goes to /usr/local/bin with$|# and ReadOnlyPaths to match (systemctl edit --full mp4-fcgi.service).|' \
  -e '/^#   cargo install --path \. --root \/usr\/local$/d' \
  "$repo/systemd/mp4-fcgi.service" >"$units/mp4-fcgi.service"
cp "$repo/systemd/mp4-fcgi.socket" "$units/mp4-fcgi.socket"
chmod 644 "$units"/*

for sub in "" cut info completions man; do
  page=mp4-fcgi${sub:+-$sub}.1
  # shellcheck disable=SC2086 # no subcommand: no argument
  "$bin" man $sub >"$root/usr/share/man/man1/$page"
  [ -s "$root/usr/share/man/man1/$page" ] || die "mp4-fcgi man $sub printed nothing"
done
gzip -9n "$root"/usr/share/man/man1/*.1

"$bin" completions bash >"$root/usr/share/bash-completion/completions/mp4-fcgi"
"$bin" completions zsh >"$root/usr/share/zsh/vendor-completions/_mp4-fcgi"
"$bin" completions fish >"$root/usr/share/fish/vendor_completions.d/mp4-fcgi.fish"

# A conffile the unit reads as root (EnvironmentFile=): 600, it may hold keys.
cat >"$root/etc/default/mp4-fcgi" <<'EOF'
# /etc/default/mp4-fcgi: the environment of mp4-fcgi.service (its EnvironmentFile=),
# read by systemd as root before the service starts. Mode 600: it may hold keys.
# One NAME=value per line; no "export", no shell expansion. After a change:
#   systemctl restart mp4-fcgi.service
#
# Films in object storage: in the unit's ExecStart (systemctl edit --full mp4-fcgi.service),
# replace --root /srv/videos with --origin s3://BUCKET/PREFIX, then set the keys here.
#AWS_ACCESS_KEY_ID=
#AWS_SECRET_ACCESS_KEY=
#AWS_SESSION_TOKEN=
#AWS_REGION=us-east-1
# An S3-compatible store (SeaweedFS, MinIO, Ceph...), if not AWS:
#AWS_ENDPOINT_URL=http://127.0.0.1:8333
#
# The log filter when ExecStart has no --log-level (error, warn, info, debug, trace):
#RUST_LOG=info
EOF
chmod 600 "$root/etc/default/mp4-fcgi"
install -m 644 "$repo/conf-examples/logrotate.conf" "$root/etc/logrotate.d/mp4-fcgi"

install -m 644 "$repo/README.md" "$doc/README.md"
cp -R "$repo/conf-examples" "$doc/conf-examples"
chmod -R u=rwX,go=rX "$doc/conf-examples"

license=$(cargo_field license)
license_file=$(cargo_field license-file)
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: mp4-fcgi"
  repository=$(cargo_field repository)
  [ -z "$repository" ] || echo "Source: $repository"
  echo
  echo "Files: *"
  authors=$(sed -n '/^\[package\]/,/^\[/{s/^authors *= *\[\(.*\)\] *$/\1/p}' "$repo/Cargo.toml" | tr -d '"')
  echo "Copyright: ${authors:-the mp4-fcgi authors}"
  if [ -n "$license" ]; then
    echo "License: $license"
    echo " The license expression (SPDX) of Cargo.toml. The texts of the common"
    echo " licenses are in /usr/share/common-licenses/."
  elif [ -n "$license_file" ]; then
    echo "License: custom"
    sed -e 's/^$/./' -e 's/^/ /' "$repo/$license_file"
  else
    echo "build.sh: warning: Cargo.toml has no license or license-file: the copyright file says so" >&2
    echo "License: none-declared"
    echo " Cargo.toml declares no license (no \"license\" or \"license-file\" field)."
  fi
  if [ -n "$license" ] && [ -n "$license_file" ]; then
    echo
    echo "License: $license"
    sed -e 's/^$/./' -e 's/^/ /' "$repo/$license_file"
  fi
} >"$doc/copyright"
chmod 644 "$doc/copyright"

# --- Control data.
cat >"$root/DEBIAN/conffiles" <<'EOF'
/etc/default/mp4-fcgi
/etc/logrotate.d/mp4-fcgi
EOF

# What debhelper's dh_installsystemd writes (bookworm's 13.11), for the socket
# (enabled and started; the service starts on the first connection) and the
# service (not enabled: its state kept for purge). Each part that talks to
# systemd runs only when systemd is PID 1 (/run/systemd/system, sd_booted(3)):
# elsewhere (a container, a chroot, sysvinit) the scripts leave systemd's
# files alone; systemctl enable --now mp4-fcgi.socket does it after a boot.
cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e

if [ "$1" = configure ]; then
	# The service's user: the unit's DynamicUser= takes a static user of the
	# unit's name when there is one, and so does --user mp4-fcgi by hand.
	if ! getent passwd mp4-fcgi >/dev/null; then
		adduser --system --group --home /nonexistent --no-create-home \
			--comment "mp4-fcgi FastCGI responder" --quiet mp4-fcgi
	fi
fi

if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
	if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
		deb-systemd-helper unmask mp4-fcgi.socket >/dev/null || true
		# was-enabled defaults to true, so new installations run enable.
		if deb-systemd-helper --quiet was-enabled mp4-fcgi.socket; then
			deb-systemd-helper enable mp4-fcgi.socket >/dev/null || true
		else
			deb-systemd-helper update-state mp4-fcgi.socket >/dev/null || true
		fi
		# The service is started by its socket; enabled only by the admin.
		if deb-systemd-helper debian-installed mp4-fcgi.service; then
			deb-systemd-helper unmask mp4-fcgi.service >/dev/null || true
			if deb-systemd-helper --quiet was-enabled mp4-fcgi.service; then
				deb-systemd-helper enable mp4-fcgi.service >/dev/null || true
			fi
		fi
		deb-systemd-helper update-state mp4-fcgi.service >/dev/null || true

		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			# An upgrade: a running pool (or an enabled service) restarts on the new binary.
			deb-systemd-invoke restart mp4-fcgi.service >/dev/null || true
		fi
		deb-systemd-invoke start mp4-fcgi.socket >/dev/null || true
	fi
fi

exit 0
EOF

cat >"$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e

if [ -z "${DPKG_ROOT:-}" ] && [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop mp4-fcgi.socket mp4-fcgi.service >/dev/null || true
fi

exit 0
EOF

cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e

if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi

if [ "$1" = purge ]; then
	# Only the links and state deb-systemd-helper recorded (none when it never ran).
	if [ -x /usr/bin/deb-systemd-helper ]; then
		deb-systemd-helper purge mp4-fcgi.socket mp4-fcgi.service >/dev/null || true
	fi
	# The log folder, and where LogsDirectory= keeps it under DynamicUser=.
	rm -rf /var/log/mp4-fcgi /var/log/private/mp4-fcgi
	# The mp4-fcgi user stays, as Debian's packages leave theirs: files it
	# owns may remain. deluser --system mp4-fcgi removes it.
fi

exit 0
EOF
chmod 755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
chmod 644 "$root/DEBIAN/conffiles"

(cd "$root" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/md5sums"

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: mp4-fcgi
Version: $deb_version
Architecture: $arch
Maintainer: ${DEB_MAINTAINER:-mp4-fcgi developers <root@localhost>}
Installed-Size: $installed_size
Depends: $depends
Suggests: nginx | lighttpd | apache2, logrotate
Section: httpd
Priority: optional
Description: FastCGI responder for MP4 pseudo-streaming
 Behind nginx, lighttpd or Apache, mp4-fcgi answers film.mp4?start=45.5&end=60
 with a smaller, valid MP4 covering just that window, starting on a key frame,
 and packages the same films as HLS and DASH on the fly (film.mp4/master.m3u8,
 film.mp4/manifest.mpd). Films are local files or objects in S3-compatible or
 HTTP storage. It runs as a pre-forked pool of event-driven workers; the
 package's systemd socket unit starts it on the first connection.
EOF
chmod 644 "$root/DEBIAN/control"

if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
fi

mkdir -p "$out"
deb=$(cd "$out" && pwd)/mp4-fcgi_${deb_version}_$arch.deb
dpkg-deb --root-owner-group --build "$root" "$deb" >&2
echo "$deb"
