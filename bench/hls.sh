#!/usr/bin/env bash
# HLS/DASH packaged on the fly, side by side in one run:
#   H1  media-segment requests through nginx -> pool, against nginx serving the
#       same film's segments pre-packaged by ffmpeg (-f hls -hls_segment_type fmp4,
#       video and audio in separate segments, as the pool makes them) as static files.
#       wrk cycles through every segment of each packaging.
#   H1r the ceiling: the same nginx relaying ffmpeg's segments from a trivial
#       FastCGI responder that holds them in memory (bench/ceiling.rs).
#   H1b, H1br  H1 and H1r for the 2-hour film (2400 segments of ~4 KB).
#   H1c the same through nginx's cache in front of the pool (conf-examples/
#       nginx-cache.conf's location for packaged outputs), once filled.
#   H1L lighttpd sending the pool's segments itself from X-Sendfile2 ranges
#       (--offload x-sendfile2), against lighttpd sending ffmpeg's segments.
#   H3  the worker's peak RSS under 64 connections of segment load, next to the
#       same load of progressive clips; a 100-byte answer's time meanwhile; and a
#       worker's RSS with 64 segment streams that never read (bench/stalled.py).
#   E1  the same film encrypted (cenc, --keys) through nginx -> pool, against its
#       clear segments through the same pool: sealed segments once cached.
#   E2  worker CPU per media segment sealed anew (each clip window's segments
#       are encrypted on first request), next to the same clear segments.
# H2 (playlists and one segment's header, engine only) is in `cargo bench`.
#
#   bench/hls.sh               # about a minute after the media exist
#   DURATION=5 bench/hls.sh
#
# Needs: nginx, lighttpd, wrk, curl, ffmpeg, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
WORK=$(mktemp -d /tmp/mp4-fcgi-hls.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; for p in nginx lighttpd; do [ -f "$WORK/$p.pid" ] && kill "$(cat "$WORK/$p.pid")" 2>/dev/null; done; sleep 0.5; rm -rf "$WORK"' EXIT

for tool in nginx lighttpd wrk curl ffmpeg python3; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing (apt-get install -y nginx lighttpd wrk curl ffmpeg python3)" >&2; exit 2; }
done
source "$ROOT/bench/media.sh"
# MP4_FCGI_BIN: a binary already built (CI's smoke uses the test build).
BIN=${MP4_FCGI_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release -q
  BIN=$ROOT/target/release/mp4-fcgi
fi
# H1r's trivial responder, built beside the binary (CI's test build has it).
if [ -n "${MP4_FCGI_BIN:-}" ]; then
  CEILING=$(dirname "$BIN")/examples/fcgi-ceiling
  if [ ! -x "$CEILING" ]; then
    cargo build -q --example fcgi-ceiling
    CEILING=$ROOT/target/debug/examples/fcgi-ceiling
  fi
else
  cargo build --release -q --example fcgi-ceiling
  CEILING=$ROOT/target/release/examples/fcgi-ceiling
fi
# WORKERS: the pool's workers behind nginx (its default is one per core).
WORKERS=${WORKERS:-$(nproc)}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- media: the 60 s film, and ffmpeg's packaging of it --------------------------
mkdir -p "$WORK/films" "$WORK/static" "$WORK/tmp" "$WORK/logs" "$WORK/cache" "$WORK/memory"
ln -s "$CACHE/a.mp4" "$WORK/films/a.mp4"
ln -s "$CACHE/film2h.mp4" "$WORK/films/b.mp4"
# E1, E2: the same film under another name, encrypted.
ln -s "$CACHE/a.mp4" "$WORK/films/e.mp4"
echo "**/e.mp4 cenc 0123456789abcdef0123456789abcdef 00112233445566778899aabbccddeeff" > "$WORK/keys"
( cd "$WORK/static" && ffmpeg -v error -y -i "$CACHE/a.mp4" -map 0:v -map 0:a -c copy \
    -f hls -hls_segment_type fmp4 -hls_time 6 -hls_playlist_type vod \
    -var_stream_map "v:0,agroup:a a:0,agroup:a" -master_pl_name master.m3u8 \
    -hls_segment_filename "seg_%v_%03d.m4s" -hls_fmp4_init_filename init.mp4 "stream_%v.m3u8" )
( cd "$WORK/static" && ffmpeg -v error -y -i "$CACHE/film2h.mp4" -map 0:v -map 0:a -c copy \
    -f hls -hls_segment_type fmp4 -hls_time 6 -hls_playlist_type vod \
    -var_stream_map "v:0,agroup:a a:0,agroup:a" -master_pl_name master-b.m3u8 \
    -hls_segment_filename "long_%v_%04d.m4s" -hls_fmp4_init_filename "init-b_%v.mp4" "long_%v.m3u8" )
# H1r: the trivial responder holds every media segment ffmpeg wrote.
cp "$WORK"/static/*.m4s "$WORK/memory/"
chmod -R a+rX "$WORK"

"$BIN" --listen "unix:$WORK/pool.sock" --socket-mode 666 --workers "$WORKERS" --log-level warn --keys "$WORK/keys" &
POOL=$!
"$CEILING" "$WORK/ceiling.sock" "$WORK/memory" &
for _ in $(seq 100); do [ -S "$WORK/ceiling.sock" ] && break; sleep 0.05; done
chmod 666 "$WORK/ceiling.sock"
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
  client_body_temp_path $WORK/tmp/body; fastcgi_temp_path $WORK/tmp/fastcgi;
  proxy_temp_path $WORK/tmp/proxy; uwsgi_temp_path $WORK/tmp/uwsgi; scgi_temp_path $WORK/tmp/scgi;
  upstream pool { server unix:$WORK/pool.sock; keepalive 64; }
  upstream ceiling { server unix:$WORK/ceiling.sock; keepalive 64; }
  fastcgi_cache_path $WORK/cache levels=1:2 keys_zone=hls:10m max_size=1g inactive=1h use_temp_path=off;
  server {
    listen 127.0.0.1:$EDGE_PORT;
    location /static/ { root $WORK; }
    location ~ \.mp4/ {
      fastcgi_cache hls;
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
    # H1r: the ceiling, with the settings of the pool's location below.
    location /memory/ {
      include /etc/nginx/fastcgi_params;
      fastcgi_buffering on; fastcgi_buffer_size 64k; fastcgi_buffers 8 64k; fastcgi_max_temp_file_size 0;
      fastcgi_keep_conn on; fastcgi_pass ceiling;
    }
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

# Every media segment of each packaging, in playlist order (video, then audio).
ls "$WORK/static"/seg_*.m4s | sed "s|$WORK||" > "$WORK/static.paths"
ls "$WORK/static"/long_*.m4s | sed "s|$WORK||" > "$WORK/static-b.paths"
sed 's|^/static/|/memory/|' "$WORK/static.paths" > "$WORK/memory.paths"
sed 's|^/static/|/memory/|' "$WORK/static-b.paths" > "$WORK/memory-b.paths"
segments() { # film -> its media segments' paths
  for list in $(curl -s "$N/$1/master.m3u8" | grep -o 'index-[0-9]*\.m3u8' | sort -u); do
    curl -s "$N/$1/$list" | grep '^seg-' | sed "s|^|/$1/|"
  done
}
segments a.mp4 > "$WORK/pool.paths"
segments b.mp4 > "$WORK/pool-b.paths"
cat > "$WORK/cycle.lua" <<'LUA'
local paths, i = {}, 0
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
LUA

wrk_rate() { # paths-file conns [base URL] -> "req/s MB/s"
  local out rps mbs non2xx
  out=$(PATHS=$1 wrk -t1 -c"$2" -d"${DURATION}s" -s "$WORK/cycle.lua" "${3:-$N}")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  mbs=$(awk '/Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /KB/) {sub("KB","",v); v/=1024} else sub("MB","",v); print v}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  [ -z "$non2xx" ] || { echo "bench: $1 had $non2xx non-2xx answers" >&2; exit 1; }
  echo "$rps $mbs"
}
# With several workers: the largest worker's figure (memory), or their sum (CPU).
workers() { pgrep -P "$POOL"; }
rss_kib() { for w in $(workers); do awk '/VmRSS/ {print $2}' "/proc/$w/status"; done | sort -n | tail -1; }
hwm_kib() { for w in $(workers); do awk '/VmHWM/ {print $2}' "/proc/$w/status"; done | sort -n | tail -1; }
# Peak RSS of the worker during a 64-connection run (sampled every 50 ms).
peak_under() { # paths-file -> KiB
  local w peak=0 v
  PATHS=$1 wrk -t1 -c64 -d"${DURATION}s" -s "$WORK/cycle.lua" "$N" >/dev/null &
  local load=$!
  while kill -0 "$load" 2>/dev/null; do
    v=$(rss_kib); [ "$v" -gt "$peak" ] && peak=$v
    sleep 0.05
  done
  echo "$peak"
}

STATIC_N=$(wc -l < "$WORK/static.paths")
POOL_N=$(wc -l < "$WORK/pool.paths")
STATIC_BYTES=$(cat "$WORK"/static/seg_*.m4s | wc -c)
POOL_BYTES=0
while read -r p; do POOL_BYTES=$((POOL_BYTES + $(curl -s -o /dev/null -w '%{size_download}' "$N$p"))); done < "$WORK/pool.paths"

echo
echo "machine: $(nproc) cores, $(uname -sr); nginx $(nginx -v 2>&1 | sed 's/.*\///') (1 worker); pool --workers $WORKERS; wrk -t1 -c$CONNS -d${DURATION}s"
echo "segments: ffmpeg $STATIC_N ($STATIC_BYTES bytes), pool $POOL_N ($POOL_BYTES bytes); 2-hour film: ffmpeg $(wc -l < "$WORK/static-b.paths"), pool $(wc -l < "$WORK/pool-b.paths")"
echo
echo "| scenario | request | target | met | baseline req/s | baseline MB/s | mp4-fcgi req/s | mp4-fcgi MB/s | ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
read -r b_rps b_mbs < <(wrk_rate "$WORK/static.paths" "$CONNS")
read -r c_rps c_mbs < <(wrk_rate "$WORK/pool.paths" "$CONNS")
ratio=$(awk -v a="$c_rps" -v b="$b_rps" 'BEGIN { printf "%.2f", a / b }')
met=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.6) ? "yes" : "NO" }')
printf '| H1 | every media segment of the 60 s film, in turn | 0.6 | %s | %.0f | %.1f | %.0f | %.1f | %s |\n' \
  "$met" "$b_rps" "$b_mbs" "$c_rps" "$c_mbs" "$ratio"
row() { # name text target baseline-paths candidate-paths
  local b_rps b_mbs c_rps c_mbs ratio met
  read -r b_rps b_mbs < <(wrk_rate "$4" "$CONNS")
  read -r c_rps c_mbs < <(wrk_rate "$5" "$CONNS")
  ratio=$(awk -v a="$c_rps" -v b="$b_rps" 'BEGIN { printf "%.2f", a / b }')
  met=-
  [ "$3" = - ] || met=$(awk -v r="$ratio" -v t="$3" 'BEGIN { print (r >= t) ? "yes" : "NO" }')
  printf '| %s | %s | %s | %s | %.0f | %.1f | %.0f | %.1f | %s |\n' \
    "$1" "$2" "$3" "$met" "$b_rps" "$b_mbs" "$c_rps" "$c_mbs" "$ratio"
}
row H1r "ceiling: ffmpeg's segments from memory through the same nginx (trivial responder) vs as static files" - \
  "$WORK/static.paths" "$WORK/memory.paths"
row H1b "every media segment of the 2-hour film, in turn: pool vs static" 0.6 \
  "$WORK/static-b.paths" "$WORK/pool-b.paths"
row H1br "ceiling for H1b: ffmpeg's segments from memory vs as static files" - \
  "$WORK/static-b.paths" "$WORK/memory-b.paths"

# H1c: fill the cache, then the same cycle through it.
while read -r p; do curl -s -o /dev/null "http://127.0.0.1:$EDGE_PORT$p"; done < "$WORK/pool.paths"
read -r b_rps b_mbs < <(wrk_rate "$WORK/static.paths" "$CONNS")
read -r c_rps c_mbs < <(wrk_rate "$WORK/pool.paths" "$CONNS" "http://127.0.0.1:$EDGE_PORT")
ratio=$(awk -v a="$c_rps" -v b="$b_rps" 'BEGIN { printf "%.2f", a / b }')
met=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? "yes" : "NO" }')
printf '| H1c | H1 through nginx'"'"'s cache in front of the pool, filled | 0.8 | %s | %.0f | %.1f | %.0f | %.1f | %s |\n' \
  "$met" "$b_rps" "$b_mbs" "$c_rps" "$c_mbs" "$ratio"

# H1L: lighttpd sending the segments itself from X-Sendfile2 ranges (a
# second pool, --offload x-sendfile2), against lighttpd sending ffmpeg's
# segments as static files.
LIGHTTPD_PORT=$(port)
mkdir -p "$WORK/offload"
cat > "$WORK/lighttpd.conf" <<CONF
server.modules = ( "mod_alias", "mod_fastcgi" )
server.document-root = "$WORK/films"
server.bind = "127.0.0.1"
server.port = $LIGHTTPD_PORT
server.pid-file = "$WORK/lighttpd.pid"
server.errorlog = "$WORK/logs/lighttpd.log"
server.max-connections = 4096
server.stream-response-body = 2
alias.url = ( "/static/" => "$WORK/static/" )
\$HTTP["url"] !~ "^/static/" {
  fastcgi.server = ( ".mp4" => (( "socket" => "$WORK/offload.sock", "check-local" => "disable",
    "x-sendfile" => "enable", "x-sendfile-docroot" => ( "$WORK/films", "$CACHE", "$WORK/offload" ) )) )
}
CONF
"$BIN" --listen "unix:$WORK/offload.sock" --socket-mode 666 --workers 1 --log-level warn \
  --offload x-sendfile2 --offload-dir "$WORK/offload" &
for _ in $(seq 100); do [ -S "$WORK/offload.sock" ] && break; sleep 0.05; done
lighttpd -f "$WORK/lighttpd.conf"
sleep 0.5
L="http://127.0.0.1:$LIGHTTPD_PORT"
# Each segment once (its header file is written meanwhile), then checked
# against the nginx pool's bytes once offloaded.
while read -r p; do curl -s -o /dev/null "$L$p"; done < "$WORK/pool.paths"
sleep 0.5
while read -r p; do
  cmp -s <(curl -s "$L$p") <(curl -s "$N$p") || { echo "bench: lighttpd's $p differs" >&2; exit 1; }
done < "$WORK/pool.paths"
OFFLOADED=$(find "$WORK/offload" -name 'mp4fcgi-*' | wc -l)
read -r b_rps b_mbs < <(wrk_rate "$WORK/static.paths" "$CONNS" "$L")
read -r c_rps c_mbs < <(wrk_rate "$WORK/pool.paths" "$CONNS" "$L")
ratio=$(awk -v a="$c_rps" -v b="$b_rps" 'BEGIN { printf "%.2f", a / b }')
met=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.9) ? "yes" : "NO" }')
printf '| H1L | lighttpd: H1 offloaded (X-Sendfile2, %d header files) vs ffmpeg'"'"'s segments as static files | 0.9 | %s | %.0f | %.1f | %.0f | %.1f | %s |\n' \
  "$OFFLOADED" "$met" "$b_rps" "$b_mbs" "$c_rps" "$c_mbs" "$ratio"
# What lighttpd -> FastCGI allows at all: the same pool's smallest kept
# answer (the master playlist, ~1 KB), one request after another.
echo /a.mp4/master.m3u8 > "$WORK/tiny.paths"
read -r t_rps _ < <(wrk_rate "$WORK/tiny.paths" "$CONNS" "$L")
H1L_CEILING=$t_rps

# H3: worker memory under 64 connections, segments vs progressive clips.
grep -c . "$WORK/pool.paths" >/dev/null
for s in 0 10 20 30 40; do echo "/a.mp4?start=$s.5&end=$((s + 10))"; done > "$WORK/clips.paths"
IDLE=$(rss_kib)
SEG_PEAK=$(peak_under "$WORK/pool.paths")
CLIP_PEAK=$(peak_under "$WORK/clips.paths")
# A 100-byte answer (a window's first bytes) while 64 segment streams run:
# whether segments block the event loop.
PATHS="$WORK/pool.paths" wrk -t1 -c64 -d"${DURATION}s" -s "$WORK/cycle.lua" "$N" >/dev/null &
LOAD=$!
sleep 1
: > "$WORK/small.times"
for _ in $(seq 40); do
  curl -s -o /dev/null -r 0-99 -w '%{time_total}\n' "$N/a.mp4?start=12.5" >> "$WORK/small.times"
  sleep 0.1
done
wait "$LOAD"
SMALL=$(sort -n "$WORK/small.times" | awk '{ t[NR] = $1 * 1000 } END { printf "median %.1f ms, slowest %.1f ms of %d", t[int((NR + 1) / 2)], t[NR], NR }')
echo
printf 'H1L ceiling: lighttpd -> FastCGI -> pool for a ~1 KB kept answer (master.m3u8): %.0f req/s\n' "$H1L_CEILING"
echo "a 100-byte answer while 64 segment streams run: $SMALL"
python3 "$ROOT/bench/stalled.py" "$BIN" "$WORK/films" "$WORK/pool.paths" "$WORK"
echo "worker RSS: idle $((IDLE / 1024)).$(( (IDLE % 1024) * 10 / 1024 )) MiB; peak under 64 connections:" \
  "segments $((SEG_PEAK / 1024)).$(( (SEG_PEAK % 1024) * 10 / 1024 )) MiB," \
  "progressive clips $((CLIP_PEAK / 1024)).$(( (CLIP_PEAK % 1024) * 10 / 1024 )) MiB" \
  "(high-water mark $(( $(hwm_kib) / 1024 )) MiB)"

# E1: the encrypted film's segments (sealed once, then kept) against its
# clear segments, both through nginx -> pool.
sed 's|^/a.mp4/|/e.mp4/|' "$WORK/pool.paths" > "$WORK/sealed.paths"
while read -r p; do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$N$p")" = 200 ] || { echo "bench: $p is not 200" >&2; exit 1; }
done < "$WORK/sealed.paths"
read -r c_rps c_mbs < <(wrk_rate "$WORK/pool.paths" "$CONNS")
read -r e_rps e_mbs < <(wrk_rate "$WORK/sealed.paths" "$CONNS")
ratio=$(awk -v a="$e_rps" -v b="$c_rps" 'BEGIN { printf "%.2f", a / b }')
met=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? "yes" : "NO" }')
echo
echo "| scenario | request | target | met | clear req/s | clear MB/s | encrypted req/s | encrypted MB/s | ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '| E1 | every media segment, cenc, sealed and kept, vs the same clear segments, both through nginx -> pool | 0.8 | %s | %.0f | %.1f | %.0f | %.1f | %s |\n' \
  "$met" "$c_rps" "$c_mbs" "$e_rps" "$e_mbs" "$ratio"

# E2: worker CPU (user + system, clock ticks) over every segment of ten clip
# windows, each requested once: encrypted anew, and clear.
ticks() { for w in $(workers); do awk '{print $14 + $15}' "/proc/$w/stat"; done | awk '{ s += $1 } END { print s }'; }
cpu_per_segment() { # film -> ms per segment
  local w t0 t1 n=0 q
  t0=$(ticks)
  for k in 1 2 3 4 5 6 7 8 9 10; do
    q="start=0.$k"
    for p in $(sed "s|^/a.mp4/|/$1/|" "$WORK/pool.paths"); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' "$N$p?$q")" = 200 ] && n=$((n + 1))
    done
  done
  t1=$(ticks)
  awk -v d=$((t1 - t0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", d * 1000 / hz / n }'
}
CLEAR_MS=$(cpu_per_segment a.mp4)
SEALED_MS=$(cpu_per_segment e.mp4)
echo
echo "E2: worker CPU per media segment (60 s film, 6 s segments, each clip window's segments once):" \
  "clear $CLEAR_MS ms, cenc sealed anew $SEALED_MS ms"
