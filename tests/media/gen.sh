#!/bin/bash
# Makes the committed test fixtures: small variants of ../../../shared/media/gen.sh
# (20 s, 320x180, key frame every 2 s, B-frames) so that `cargo test` needs no encoder.
set -euo pipefail
cd "$(dirname "$0")"
D=20
V=(-f lavfi -i testsrc2=size=320x180:rate=25:duration=$D)
A=(-f lavfi -i sine=frequency=440:sample_rate=48000:duration=$D)
A2=(-f lavfi -i sine=frequency=880:sample_rate=44100:duration=$D)
X264=(-c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -g 50 -keyint_min 50
      -sc_threshold 0 -bf 2 -b:v 120k -maxrate 200k -bufsize 400k)
AAC=(-c:a aac -b:a 48k)
META=(-metadata title="mp4-fcgi fixture" -metadata comment="kept byte for byte")
ff() { ffmpeg -v error -y "$@"; }
ff "${V[@]}" "${A[@]}" -map 0:v -map 1:a "${X264[@]}" "${AAC[@]}" "${META[@]}" a.mp4
ff "${V[@]}" "${A[@]}" -map 0:v -map 1:a "${X264[@]}" "${AAC[@]}" "${META[@]}" -movflags +faststart a_faststart.mp4
ff "${V[@]}" "${A[@]}" -map 0:v -map 1:a -c:v libx265 -preset ultrafast -pix_fmt yuv420p \
   -x265-params keyint=50:min-keyint=50:scenecut=0:bframes=3:log-level=error -b:v 120k \
   -tag:v hvc1 "${AAC[@]}" hevc.mp4
ff "${V[@]}" "${A[@]}" "${A2[@]}" -map 0:v -map 1:a -map 2:a "${X264[@]}" "${AAC[@]}" \
   -metadata:s:a:0 language=eng -metadata:s:a:1 language=fra two_audio.mp4
ff "${V[@]}" "${A[@]}" -map 0:v -map 1:a "${X264[@]}" "${AAC[@]}" \
   -movflags frag_keyframe+empty_moov frag.mp4
ff "${A[@]}" -map 0:a -c:a aac -b:a 64k audio.m4a
python3 to_stz2.py audio.m4a audio_stz2.m4a
for f in a.mp4 a_faststart.mp4 hevc.mp4 two_audio.mp4 frag.mp4 audio.m4a audio_stz2.m4a; do
  [ -z "$(ffmpeg -v error -i "$f" -f null - 2>&1)" ] || { echo "$f does not decode clean" >&2; exit 1; }
done
ls -l *.mp4 *.m4a
