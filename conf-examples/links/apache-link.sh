#!/bin/sh
# A link for apache.conf's protected folder:
#   MP4_LINK_SECRET=change-this-secret apache-link.sh /protected/film.mp4 [LIFETIME]
#   prints /s/<token>/<EXPIRES>/protected/film.mp4   (append ?start=30 as you like)
#   MP4_LINK_SECRET=change-this-secret apache-link.sh /protected/film.mp4/master.m3u8 [LIFETIME]
#   prints /s/<token>/<EXPIRES>/protected/film.mp4/master.m3u8   (or /manifest.mpd)
# /protected/film.mp4  the URL path of a film (.mp4 .m4v .m4a .mov), starting with
#             /protected/; letters, digits and - _ . / only (apache_link.py
#             percent-encodes any other name). Optionally followed by the name of
#             one of the film's outputs (master.m3u8, manifest.mpd; index-1.m3u8,
#             init-1.mp4, seg-1-1.m4s, ...). The token covers the film's path only,
#             so one link opens the film and everything under it (the playlists'
#             URLs are relative).
# LIFETIME    seconds from now until the link expires; default 3600. EXPIRES is the
#             link's EXPIRY time (Unix seconds), as nginx's: after it Apache
#             answers 410, also in the middle of a presentation.
# MP4_LINK_SECRET  the secret in apache.conf's md5('$2$3 ...') condition.
# token = md5hex("EXPIRES/protected/film.mp4 SECRET"), 32 lower-case hex digits.
set -eu
usage="usage: MP4_LINK_SECRET=... apache-link.sh /protected/film.mp4[/master.m3u8] [lifetime-seconds]"
path=${1:?$usage}
lifetime=${2:-3600}
secret=${MP4_LINK_SECRET:?set MP4_LINK_SECRET to the secret in apache.conf}
case $path in
*[!A-Za-z0-9/._-]* | *//* | */./* | */../* | */. | */..)
    echo "apache-link.sh: use letters, digits, - _ . / and no // . .. segments: $path" >&2
    exit 2
    ;;
esac
# The film: the path without its last segment if that names an output of it.
film=$path
if printf '%s\n' "${path##*/}" | grep -Eqx \
    'master\.m3u8|manifest\.mpd|(index-(f[0-9]+-)?[0-9]+\.m3u8)|(init-(f[0-9]+-)?[0-9]+\.mp4)|(seg-[0-9]+-(f[0-9]+-)?[0-9]+\.m4s)|(subs-(f[0-9]+-)?[0-9]+\.m3u8)|(subs-([0-9]+-)?(f[0-9]+-)?[0-9]+\.vtt)|(iframes-(f[0-9]+-)?[0-9]+\.m3u8)|(key-[0-9]+-(f[0-9]+-)?[0-9]+\.m4s)|encryption\.key|(thumb-[0-9]+(-w[0-9]+)?(-h[0-9]+)?\.jpg)|(tiles-[0-9]+\.jpg)|images\.m3u8|thumbnails\.vtt'; then
    film=${path%/*}
fi
case $film in
/protected/?*.mp4 | /protected/?*.m4v | /protected/?*.m4a | /protected/?*.mov) ;;
*) echo "apache-link.sh: name a film under /protected/ (.mp4 .m4v .m4a .mov): $path" >&2; exit 2 ;;
esac
expires=$(($(date +%s) + lifetime))
token=$(printf '%s' "$expires$film $secret" | md5sum | cut -c1-32)
printf '/s/%s/%s%s\n' "$token" "$expires" "$path"
