#!/usr/bin/env bash
# Thumbnails (film.mp4/thumb-<ms>.jpg), side by side in one run:
#   T1  a cached thumbnail through nginx -> pool (one warm-up request, then
#       wrk asks the same URL again and again), against nginx serving the
#       very same JPEG bytes (saved from the pool) as a static file.
#   T1c T1 through nginx's cache in front of the pool, once filled.
#   T2  uncached thumbnails of a 1080p H.264 film (60 s, a key frame every
#       10 s, 3 B-frames): THUMBS distinct times, each some seconds after a
#       key frame, asked one after the other with curl through nginx -> pool,
#       against `ffmpeg -ss T -i film -frames:v 1` for the same times, one
#       after the other. Then the worker's peak RSS.
#
#   bench/thumbs.sh               # about a minute after the media exist (the
#                                 # first run makes the 1080p film: +1-2 min)
#   DURATION=5 THUMBS=10 bench/thumbs.sh
#
# Needs: nginx, wrk, curl, ffmpeg (ffprobe), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
WORK=$(mktemp -d /tmp/mp4-fcgi-thumbs.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null; sleep 0.5; rm -rf "$WORK"' EXIT

for tool in nginx wrk curl ffmpeg ffprobe python3; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing (apt-get install -y nginx wrk curl ffmpeg python3)" >&2; exit 2; }
done
source "$ROOT/bench/media.sh"
# T2's film, made once next to the others. SMOKE=1: small and short, only to
# show the harness runs.
if [ "${SMOKE:-}" = 1 ]; then
  HD_SIZE=320x180 HD_SECONDS=12 HD_GOP=100 THUMBS=${THUMBS:-6}
else
  HD_SIZE=1920x1080 HD_SECONDS=60 HD_GOP=250 THUMBS=${THUMBS:-20}
fi
HD=$CACHE/film1080.mp4
if [ ! -s "$HD" ]; then
  echo "making the $HD_SECONDS s $HD_SIZE H.264 film..." >&2
  ffmpeg -v error -y -f lavfi -i testsrc2=size=$HD_SIZE:rate=25:duration=$HD_SECONDS \
    -f lavfi -i sine=frequency=440:sample_rate=48000:duration=$HD_SECONDS -map 0:v -map 1:a \
    -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -g $HD_GOP -sc_threshold 0 \
    -bf 3 -c:a aac -b:a 96k "$HD.tmp.mp4" && mv "$HD.tmp.mp4" "$HD"
fi
# MP4_FCGI_BIN: a binary already built (CI's smoke uses the test build).
BIN=${MP4_FCGI_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release -q
  BIN=$ROOT/target/release/mp4-fcgi
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- servers ----------------------------------------------------------------
mkdir -p "$WORK/films" "$WORK/static" "$WORK/tmp" "$WORK/logs" "$WORK/ours" "$WORK/ffmpeg" "$WORK/cache"
ln -s "$CACHE/a.mp4" "$WORK/films/a.mp4"
ln -s "$HD" "$WORK/films/film1080.mp4"
chmod -R a+rX "$WORK"

"$BIN" --listen "unix:$WORK/pool.sock" --socket-mode 666 --workers 1 --log-level warn &
POOL=$!
for _ in $(seq 100); do [ -S "$WORK/pool.sock" ] && break; sleep 0.05; done
NGINX_PORT=$(port)
EDGE_PORT=$(port)
NGINX_USER=
[ "$(id -u)" = 0 ] && NGINX_USER="user root root;"
cat > "$WORK/nginx.conf" <<CONF
$NGINX_USER
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  types { image/jpeg jpg; }
  client_body_temp_path $WORK/tmp/body; fastcgi_temp_path $WORK/tmp/fastcgi;
  proxy_temp_path $WORK/tmp/proxy; uwsgi_temp_path $WORK/tmp/uwsgi; scgi_temp_path $WORK/tmp/scgi;
  upstream pool { server unix:$WORK/pool.sock; keepalive 64; }
  fastcgi_cache_path $WORK/cache levels=1:2 keys_zone=thumbs:10m max_size=1g inactive=1h use_temp_path=off;
  # T1c: conf-examples/nginx-cache.conf's location for packaged outputs.
  server {
    listen 127.0.0.1:$EDGE_PORT;
    location ~ \.mp4/ {
      fastcgi_cache thumbs;
      fastcgi_cache_key "\$request_method|\$uri|\$args";
      fastcgi_cache_valid 200 1h;
      fastcgi_cache_lock on;
      include /etc/nginx/fastcgi_params;
      fastcgi_split_path_info ^(.+\.mp4)(/.+)\$;
      fastcgi_param SCRIPT_FILENAME $WORK/films\$fastcgi_script_name;
      fastcgi_param PATH_INFO \$fastcgi_path_info;
      fastcgi_pass_request_headers off;
      fastcgi_buffering on; fastcgi_buffer_size 64k; fastcgi_buffers 32 64k;
      fastcgi_keep_conn on; fastcgi_pass pool;
    }
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /static/ { root $WORK; }
    # conf-examples/nginx.conf's location for packaged outputs.
    location ~ \.mp4/ {
      include /etc/nginx/fastcgi_params;
      fastcgi_split_path_info ^(.+\.mp4)(/.+)\$;
      fastcgi_param SCRIPT_FILENAME $WORK/films\$fastcgi_script_name;
      fastcgi_param PATH_INFO \$fastcgi_path_info;
      fastcgi_buffering on; fastcgi_buffer_size 64k; fastcgi_buffers 8 64k; fastcgi_max_temp_file_size 0;
      fastcgi_keep_conn on; fastcgi_pass pool;
    }
    location ~ \.mp4\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $WORK/films\$fastcgi_script_name;
      fastcgi_buffering off; fastcgi_buffer_size 64k; fastcgi_buffers 4 64k;
      fastcgi_keep_conn on; fastcgi_pass pool;
    }
  }
}
CONF
nginx -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon on;'
sleep 0.5
N="http://127.0.0.1:$NGINX_PORT"

wrk_rate() { # url -> "req/s MB/s"
  local out rps mbs non2xx
  out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "$1")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  mbs=$(awk '/Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /KB/) {sub("KB","",v); v/=1024} else sub("MB","",v); print v}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  [ -z "$non2xx" ] || { echo "bench: $1 had $non2xx non-2xx answers" >&2; exit 1; }
  echo "$rps $mbs"
}
worker() { pgrep -P "$POOL" | head -1; }
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
now_ns() { date +%s%N; }
# A 200 answer whose body is a JPEG, saved to $2.
get_jpeg() { # url file
  local code
  code=$(curl -s -o "$2" -w '%{http_code}' "$1")
  [ "$code" = 200 ] || { echo "bench: $1 answers $code; fix the setup first" >&2; exit 1; }
  [ "$(head -c 3 "$2" | od -An -tx1 | tr -d ' ')" = ffd8ff ] || { echo "bench: $1 is not a JPEG" >&2; exit 1; }
}

echo
echo "machine: $(nproc) cores, $(uname -sr); nginx $(nginx -v 2>&1 | sed 's/.*\///'); ffmpeg $(ffmpeg -version | awk 'NR == 1 {print $3}'); wrk -t1 -c$CONNS -d${DURATION}s"

# --- T1: a cached thumbnail, against the same bytes as a static file ----------
T1_PATH=/a.mp4/thumb-12500.jpg
get_jpeg "$N$T1_PATH" "$WORK/static/thumb.jpg"
chmod a+r "$WORK/static/thumb.jpg"
T1_BYTES=$(wc -c < "$WORK/static/thumb.jpg")
get_jpeg "$N/static/thumb.jpg" "$WORK/check.jpg"
cmp -s "$WORK/check.jpg" "$WORK/static/thumb.jpg" || { echo "bench: the static copy differs" >&2; exit 1; }
echo "T1: $T1_PATH, $T1_BYTES bytes"
echo
echo "| scenario | request | target | met | baseline req/s | baseline MB/s | mp4-fcgi req/s | mp4-fcgi MB/s | ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
read -r b_rps b_mbs < <(wrk_rate "$N/static/thumb.jpg")
read -r c_rps c_mbs < <(wrk_rate "$N$T1_PATH")
ratio=$(awk -v a="$c_rps" -v b="$b_rps" 'BEGIN { printf "%.2f", a / b }')
met=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? "yes" : "NO" }')
printf '| T1 | a cached thumbnail (60 s 640x360 film, thumb-12500.jpg) through nginx -> pool vs the same JPEG as a static file | 0.8 | %s | %.0f | %.1f | %.0f | %.1f | %s |\n' \
  "$met" "$b_rps" "$b_mbs" "$c_rps" "$c_mbs" "$ratio"
# T1c: the same thumbnail through nginx's cache in front of the pool, filled.
E="http://127.0.0.1:$EDGE_PORT"
get_jpeg "$E$T1_PATH" "$WORK/edge.jpg"
cmp -s "$WORK/edge.jpg" "$WORK/static/thumb.jpg" || { echo "bench: the edge's copy differs" >&2; exit 1; }
read -r e_rps e_mbs < <(wrk_rate "$E$T1_PATH")
ratio=$(awk -v a="$e_rps" -v b="$b_rps" 'BEGIN { printf "%.2f", a / b }')
met=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? "yes" : "NO" }')
printf '| T1c | T1 through nginx'"'"'s cache in front of the pool (conf-examples/nginx-cache.conf), filled | 0.8 | %s | %.0f | %.1f | %.0f | %.1f | %s |\n' \
  "$met" "$b_rps" "$b_mbs" "$e_rps" "$e_mbs" "$ratio"

# --- T2: uncached thumbnails of the 1080p film, against ffmpeg ----------------
# Key frame times, then THUMBS times spread over the film, each 30-90 % of the
# way through its key frame's interval (so several frames are decoded).
ffprobe -v error -select_streams v:0 -show_entries packet=pts_time,flags -of csv=p=0 "$HD" |
  awk -F, '$2 ~ /K/ {print $1}' | sort -g > "$WORK/keys"
DUR=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$HD")
awk -v n="$THUMBS" -v dur="$DUR" '
  { k[NR - 1] = $1 } END {
    g = NR
    for (i = 0; i < n; i++) {
      j = int(i * g / n); a = k[j]; b = (j + 1 < g) ? k[j + 1] : dur
      ms = int((a + (b - a) * (0.3 + 0.2 * (i % 4))) * 1000)
      printf "%d %.3f\n", ms, ms / 1000
    }
  }' "$WORK/keys" > "$WORK/times"
[ "$(cut -d' ' -f1 "$WORK/times" | sort -u | wc -l)" = "$THUMBS" ] || { echo "bench: the $THUMBS times are not distinct" >&2; exit 1; }
# Both read the film from the page cache; the worker has its index (as for
# any film it served before), not the pictures.
cat "$HD" > /dev/null
[ "$(curl -s -o /dev/null -w '%{http_code}' -r 0-99 "$N/film1080.mp4")" = 206 ] || { echo "bench: film1080.mp4 does not answer" >&2; exit 1; }
W=$(worker)
RSS_BEFORE=$(status_kib "$W" VmRSS)

t0=$(now_ns)
while read -r ms s; do
  ffmpeg -v error -ss "$s" -i "$HD" -frames:v 1 -f image2 -y "$WORK/ffmpeg/$ms.jpg" < /dev/null
done < "$WORK/times"
t1=$(now_ns)
while read -r ms s; do
  curl -s -o "$WORK/ours/$ms.jpg" -w '%{http_code}\n' "$N/film1080.mp4/thumb-$ms.jpg" >> "$WORK/codes"
done < "$WORK/times"
t2=$(now_ns)
[ "$(grep -cx 200 "$WORK/codes")" = "$THUMBS" ] || { echo "bench: T2 answers: $(sort "$WORK/codes" | uniq -c | xargs)" >&2; exit 1; }
for d in ours ffmpeg; do
  [ "$(ls "$WORK/$d" | wc -l)" = "$THUMBS" ] || { echo "bench: $d made $(ls "$WORK/$d" | wc -l) pictures, not $THUMBS" >&2; exit 1; }
done
for f in "$WORK"/ours/*.jpg "$WORK"/ffmpeg/*.jpg; do
  [ "$(head -c 3 "$f" | od -An -tx1 | tr -d ' ')" = ffd8ff ] || { echo "bench: $f is not a JPEG" >&2; exit 1; }
done
FF_MS=$(( (t1 - t0) / 1000000 ))
OURS_MS=$(( (t2 - t1) / 1000000 ))
# The ffmpeg CLI decodes with a thread per core by default; ours with one.
echo
echo "T2: $THUMBS uncached thumbnails of the $HD_SECONDS s $HD_SIZE H.264 film (key frame every $((HD_GOP / 25)) s, 3 B-frames), one after the other:"
echo "| scenario | request | ffmpeg total ms | ffmpeg ms/picture | mp4-fcgi total ms | mp4-fcgi ms/picture | ratio (ffmpeg / ours) |"
echo "|---|---|---|---|---|---|---|"
awk -v f="$FF_MS" -v o="$OURS_MS" -v n="$THUMBS" -v s="$HD_SIZE" 'BEGIN {
  printf "| T2 | %d distinct thumb-<ms>.jpg of the %s film through nginx -> pool (curl) vs `ffmpeg -ss T -i film -frames:v 1` | %d | %.1f | %d | %.1f | %.2f |\n",
    n, s, f, f / n, o, o / n, f / o }'
echo
echo "worker RSS after T2: $(mib "$(status_kib "$W" VmRSS)") MiB (before T2 $(mib "$RSS_BEFORE") MiB);" \
  "peak $(mib "$(status_kib "$W" VmHWM)") MiB (VmHWM)"
