#!/bin/sh
# A link for lighttpd.conf + secdownload.lua:
#   MP4_LINK_SECRET=change-this-secret lighttpd-link.sh /film.mp4 [CREATED]
#   prints /dl/<token>/<hex-time>/film.mp4   (append ?start=30&end=45 as you like)
#   MP4_LINK_SECRET=change-this-secret lighttpd-link.sh /film.mp4/master.m3u8 [CREATED]
#   prints /dl/<token>/<hex-time>/film.mp4/master.m3u8   (or /manifest.mpd)
# /film.mp4   the film's path inside the protected folder (here
#             /srv/videos/protected/film.mp4), starting with "/"; letters, digits
#             and - _ . / only (lighttpd_link.py percent-encodes any other name).
#             Followed by the name of one of the film's outputs (master.m3u8,
#             manifest.mpd; index-1.m3u8, init-1.mp4, seg-1-1.m4s, ...), a
#             presentation link: the token covers the film's path only, so it opens
#             the film and everything under it (the playlists' URLs are relative).
# CREATED     the link's CREATION time, Unix seconds; default: now. lighttpd's
#             hex-time is when the link was made, not when it expires: it opens
#             while the server's clock is within `timeout` (secdownload.lua: 3600 s)
#             of CREATED, and answers 410 after that, also in the middle of a
#             presentation.
# MP4_LINK_SECRET  the `secret` of secdownload.lua.
# token = md5hex(secret + film + hex-time), hex-time = CREATED as 8 hex digits.
set -eu
usage="usage: MP4_LINK_SECRET=... lighttpd-link.sh /path/in/protected/folder.mp4[/master.m3u8] [created-unix-time]"
path=${1:?$usage}
created=${2:-$(date +%s)}
secret=${MP4_LINK_SECRET:?set MP4_LINK_SECRET to the secret in secdownload.lua}
case $path in
/*) ;;
*) echo "lighttpd-link.sh: the path must start with /: $path" >&2; exit 2 ;;
esac
case $path in
*[!A-Za-z0-9/._-]* | *//* | */./* | */../* | */. | */..)
    echo "lighttpd-link.sh: use letters, digits, - _ . / and no // . .. segments: $path" >&2
    exit 2
    ;;
esac
# The film: the path without its last segment if that names an output of it.
film=$path
if printf '%s\n' "${path##*/}" | grep -Eqx \
    'master\.m3u8|manifest\.mpd|(index-(f[0-9]+-)?[0-9]+\.m3u8)|(init-(f[0-9]+-)?[0-9]+\.mp4)|(seg-[0-9]+-(f[0-9]+-)?[0-9]+\.m4s)|(subs-(f[0-9]+-)?[0-9]+\.m3u8)|(subs-([0-9]+-)?(f[0-9]+-)?[0-9]+\.vtt)|(iframes-(f[0-9]+-)?[0-9]+\.m3u8)|(key-[0-9]+-(f[0-9]+-)?[0-9]+\.m4s)|encryption\.key|(thumb-[0-9]+(-w[0-9]+)?(-h[0-9]+)?\.jpg)|(tiles-[0-9]+\.jpg)|images\.m3u8|thumbnails\.vtt'; then
    case ${path%/*} in
    /?*.mp4 | /?*.m4v | /?*.m4a | /?*.mov) film=${path%/*} ;;
    esac
fi
hextime=$(printf '%08x' "$created")
token=$(printf '%s' "$secret$film$hextime" | md5sum | cut -c1-32)
printf '/dl/%s/%s%s\n' "$token" "$hextime" "$path"
