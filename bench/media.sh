# The bench films, made once and cached under bench/.cache/ (sourced by
# bench/run.sh; bench/bounded.py runs it through bash).
# SMOKE=1 (CI): the same films, shorter and at 5 fps, only to show the
# harness runs; their figures mean nothing.
if [ "${SMOKE:-}" = 1 ]; then
  CACHE=$ROOT/bench/.cache-smoke
  LONG_SECONDS=3700 FRAG_SECONDS=80 LONG_RATE=5
else
  CACHE=$ROOT/bench/.cache
  LONG_SECONDS=7200 FRAG_SECONDS=800 LONG_RATE=25
fi
mkdir -p "$CACHE"
if [ ! -s "$CACHE/a.mp4" ]; then
  echo "making the 60 s test film..." >&2
  ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=25:duration=60 \
    -f lavfi -i sine=frequency=440:sample_rate=48000:duration=60 -map 0:v -map 1:a \
    -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -g 50 -keyint_min 50 \
    -sc_threshold 0 -bf 2 -b:v 250k -maxrate 400k -bufsize 800k -c:a aac -b:a 96k "$CACHE/a.mp4"
fi
if [ ! -s "$CACHE/film2h.mp4" ]; then
  echo "making the 2-hour film (tiny picture, ~2 minutes)..." >&2
  ffmpeg -v error -y -f lavfi -i color=c=gray:size=64x36:rate=$LONG_RATE:duration=$LONG_SECONDS \
    -f lavfi -i anullsrc=r=48000:cl=mono -t $LONG_SECONDS -map 0:v -map 1:a \
    -c:v libx264 -preset ultrafast -tune zerolatency -g 50 -bf 2 -b:v 20k -c:a aac -b:a 16k \
    "$CACHE/film2h.mp4.tmp.mp4" && mv "$CACHE/film2h.mp4.tmp.mp4" "$CACHE/film2h.mp4"
fi
if [ ! -s "$CACHE/frag20k.mp4" ]; then
  echo "making the 20 000-fragment film (one frame per fragment)..." >&2
  ffmpeg -v error -y -f lavfi -i color=c=gray:size=64x36:rate=25:duration=$FRAG_SECONDS \
    -c:v libx264 -preset ultrafast -g 25 -b:v 10k -movflags frag_every_frame+empty_moov \
    "$CACHE/frag20k.mp4.tmp.mp4" && mv "$CACHE/frag20k.mp4.tmp.mp4" "$CACHE/frag20k.mp4"
fi
