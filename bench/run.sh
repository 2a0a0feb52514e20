#!/usr/bin/env bash
# Side-by-side benchmark: nginx's built-in `mp4;` against mp4-fcgi behind the
# same nginx, in one run, on one machine. Prints one table (markdown).
#
#   bench/run.sh            # full run (about 6-8 minutes on 2 cores)
#   DURATION=5 bench/run.sh # shorter wrk runs
#
# Needs: nginx (Debian's has --with-http_mp4_module), lighttpd, wrk, ffmpeg, curl, python3.
# ONLY="S1 S6" runs only those rows.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
CACHE=${CACHE:-}
WORK=$(mktemp -d /tmp/mp4-fcgi-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; for p in "$WORK"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; sleep 0.5; rm -rf "$WORK"' EXIT

for tool in nginx lighttpd wrk ffmpeg curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing (apt-get install -y nginx lighttpd wrk ffmpeg curl)" >&2; exit 2; }
done

# --- media, made once and cached -------------------------------------------
source "$ROOT/bench/media.sh"

# --- build ------------------------------------------------------------------
# MP4_FCGI_BIN: a binary already built (CI's smoke uses the test build).
BIN=${MP4_FCGI_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release -q
  BIN=$ROOT/target/release/mp4-fcgi
fi

# --- servers ----------------------------------------------------------------
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NGINX_PORT=$(port)
SOCK=$WORK/mp4-fcgi.sock
mkdir -p "$WORK/logs" "$WORK/tmp"
# nginx's workers run as nobody: they must reach the socket.
chmod 755 "$WORK"
# As root, nginx's workers would be nobody, who may not reach this checkout.
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
  client_body_temp_path $WORK/tmp/body;
  fastcgi_temp_path $WORK/tmp/fastcgi;
  proxy_temp_path $WORK/tmp/proxy;
  uwsgi_temp_path $WORK/tmp/uwsgi;
  scgi_temp_path $WORK/tmp/scgi;
  upstream mp4fcgi { server unix:$SOCK; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $CACHE;
    location /nginx/ { alias $CACHE/; mp4; mp4_start_key_frame on; mp4_max_buffer_size 64m; }
    location ~ ^/fcgi/(.+)\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $CACHE/\$1;
      fastcgi_buffering off;
      # As conf-examples/nginx.conf: the 4k default makes nginx syscall-bound.
      fastcgi_buffer_size ${FCGI_BUF:-64k};
      fastcgi_buffers 4 ${FCGI_BUF:-64k};
      fastcgi_keep_conn on;
      fastcgi_pass mp4fcgi;
    }
  }
}
CONF
"$BIN" --listen "unix:$SOCK" --socket-mode 666 --workers 1 --log-level warn &
FCGI_PID=$!
nginx -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon on;'

# S6: lighttpd sending offloaded clips (a second pool, --offload x-sendfile2)
# against lighttpd sending the same clip, cut beforehand, as a static file.
LIGHTTPD_PORT=$(port)
SOCK2=$WORK/offload.sock
mkdir -p "$WORK/offload" "$WORK/static"
"$BIN" cut "$CACHE/a.mp4" "$WORK/static/clip.mp4" --start 10.5 --end 20
"$BIN" cut "$CACHE/film2h.mp4" "$WORK/static/film.mp4" --start 60
chmod -R a+rX "$WORK/static"
cat > "$WORK/lighttpd.conf" <<CONF
server.modules = ( "mod_alias", "mod_fastcgi" )
server.document-root = "$CACHE"
server.bind = "127.0.0.1"
server.port = $LIGHTTPD_PORT
server.pid-file = "$WORK/lighttpd.pid"
server.errorlog = "$WORK/logs/lighttpd.log"
server.max-connections = 4096
server.stream-response-body = 2
alias.url = ( "/static/" => "$WORK/static/" )
\$HTTP["url"] !~ "^/static/" {
  fastcgi.server = ( ".mp4" => (( "socket" => "$SOCK2", "check-local" => "disable",
    "x-sendfile" => "enable", "x-sendfile-docroot" => ( "$CACHE", "$WORK/offload" ) )) )
}
CONF
"$BIN" --listen "unix:$SOCK2" --socket-mode 666 --workers 1 --log-level warn \
  --offload x-sendfile2 --offload-dir "$WORK/offload" &
lighttpd -f "$WORK/lighttpd.conf"
sleep 1

# --- measure ----------------------------------------------------------------
# A worker's resident and peak resident memory, in KiB.
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
worker_of() { pgrep -P "$1" | head -1; }
FCGI_WORKER=$(worker_of "$FCGI_PID")
NGINX_WORKER=$(worker_of "$(cat "$WORK/nginx.pid")")
IDLE_KIB=$(status_kib "$FCGI_WORKER" VmRSS)
wrk_rate() { # url [header] -> "req/s MB/s"
  local out
  if [ -n "${2:-}" ]; then out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" -H "$2" "$1"); else out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "$1"); fi
  local rps mbs non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  mbs=$(awk '/Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /KB/) {sub("KB","",v); v/=1024} else sub("MB","",v); print v}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  [ -z "$non2xx" ] || echo "bench: $1 had $non2xx non-2xx answers" >&2
  echo "$rps $mbs"
}
N="http://127.0.0.1:$NGINX_PORT"
L="http://127.0.0.1:$LIGHTTPD_PORT"
row() { # id, description, target, baseline-url, mp4-fcgi-url, [header]
  local ratio code
  case " ${ONLY:-$1} " in *" $1 "*) ;; *) return 0 ;; esac
  for u in "$4" "$5"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' ${6:+-H "$6"} "$u")
    case $code in 200|206) ;; *) echo "bench: $u answers $code; fix the setup first" >&2; exit 1 ;; esac
  done
  read -r n_rps n_mbs < <(wrk_rate "$4" "${6:-}")
  read -r f_rps f_mbs < <(wrk_rate "$5" "${6:-}")
  ratio=$(awk -v a="$f_rps" -v b="$n_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
  local met
  met=$(awk -v r="$ratio" -v t="$3" 'BEGIN { print (r >= t) ? "yes" : "NO" }')
  printf '| %s | %s | %s | %s | %.0f | %.1f | %.0f | %.1f | %s |\n' "$1" "$2" "$3" "$met" "$n_rps" "$n_mbs" "$f_rps" "$f_mbs" "$ratio"
}

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); nginx $(nginx -v 2>&1 | sed 's/.*\///'); wrk -t1 -c$CONNS -d${DURATION}s"
echo
echo "| scenario | request | target | met | baseline req/s | baseline MB/s | mp4-fcgi req/s | mp4-fcgi MB/s | ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
row S1 "60 s file, start=10.5&end=20" 0.7 "$N/nginx/a.mp4?start=10.5&end=20" "$N/fcgi/a.mp4?start=10.5&end=20"
row S2 "S1 + Range: bytes=0-99" 0.7 "$N/nginx/a.mp4?start=10.5&end=20" "$N/fcgi/a.mp4?start=10.5&end=20" "Range: bytes=0-99"
row S3 "2 h film, start=3600&end=3660, Range: bytes=0-99" 3 "$N/nginx/film2h.mp4?start=3600&end=3660" "$N/fcgi/film2h.mp4?start=3600&end=3660" "Range: bytes=0-99"
row S4 "2 h film, start=3600&end=3660" 2 "$N/nginx/film2h.mp4?start=3600&end=3660" "$N/fcgi/film2h.mp4?start=3600&end=3660"
row S5 "2 h film, start=60, throughput" 0.8 "$N/nginx/film2h.mp4?start=60" "$N/fcgi/film2h.mp4?start=60"
row S6 "lighttpd: offloaded S1 vs the cut clip as a static file" 0.95 "$L/static/clip.mp4" "$L/a.mp4?start=10.5&end=20"
row S6b "lighttpd: offloaded S5 vs the cut film as a static file" 0.95 "$L/static/film.mp4" "$L/film2h.mp4?start=60"
echo
echo "Baseline: nginx \`mp4; mp4_start_key_frame on;\` for S1-S5, lighttpd's static file for S6."
echo "Worker memory (KiB): mp4-fcgi idle $IDLE_KIB (target <= 8192), peak $(status_kib "$FCGI_WORKER" VmHWM);" \
  "nginx worker peak $(status_kib "$NGINX_WORKER" VmHWM)."
