#!/bin/sh
# A link for nginx.conf's protected folder:
#   MP4_LINK_SECRET=change-this-secret nginx-link.sh /protected/film.mp4 [LIFETIME]
#   prints /protected/film.mp4?md5=<token>&expires=<EXPIRES>   (append &start=30)
#   MP4_LINK_SECRET=change-this-secret nginx-link.sh /protected/film.mp4/master.m3u8 [LIFETIME]
#   prints /s/<token>/<EXPIRES>/protected/film.mp4/master.m3u8   (or /manifest.mpd)
# A path that ends in the name of one of the film's outputs (master.m3u8,
# manifest.mpd; index-1.m3u8, init-1.mp4, seg-1-1.m4s, ...) gets a presentation
# link: token and expiry in the path, the token over the film's path only, so it
# opens the film and everything under it (the playlists' URLs are relative).
# /protected/film.mp4  the URL path, starting with /protected/; letters, digits
#             and - _ . / , only (nginx_link.py percent-encodes any other name).
# LIFETIME    seconds from now until the link expires; default 3600.
#             nginx's expires is the link's EXPIRY time (Unix seconds): after it
#             nginx answers 410. Not the creation time, as lighttpd's hex-time is.
#             A presentation link must last until the viewer's last segment.
# MP4_LINK_SECRET  the secret at the end of secure_link_md5 in nginx.conf.
# token = base64url(md5("EXPIRES/protected/film.mp4 SECRET")) without "=";
# only coreutils (md5sum, basenc) and grep, or:
#   ... | openssl md5 -binary | openssl base64 | tr +/ -_ | tr -d =
set -eu
usage="usage: MP4_LINK_SECRET=... nginx-link.sh /protected/film.mp4[/master.m3u8] [lifetime-seconds]"
path=${1:?$usage}
lifetime=${2:-3600}
secret=${MP4_LINK_SECRET:?set MP4_LINK_SECRET to the secret in nginx.conf}
case $path in
/protected/*) ;;
*) echo "nginx-link.sh: the path must start with /protected/: $path" >&2; exit 2 ;;
esac
case $path in
*[!A-Za-z0-9/._,-]* | *//* | */./* | */../* | */. | */..)
    echo "nginx-link.sh: use letters, digits, - _ . / , and no // . .. segments: $path" >&2
    exit 2
    ;;
esac
# The film: the path without its last segment if that names an output of it.
film=$path
if printf '%s\n' "${path##*/}" | grep -Eqx \
    'master\.m3u8|manifest\.mpd|(index-(f[0-9]+-)?[0-9]+\.m3u8)|(init-(f[0-9]+-)?[0-9]+\.mp4)|(seg-[0-9]+-(f[0-9]+-)?[0-9]+\.m4s)|(subs-(f[0-9]+-)?[0-9]+\.m3u8)|(subs-([0-9]+-)?(f[0-9]+-)?[0-9]+\.vtt)|(iframes-(f[0-9]+-)?[0-9]+\.m3u8)|(key-[0-9]+-(f[0-9]+-)?[0-9]+\.m4s)|encryption\.key|(thumb-[0-9]+(-w[0-9]+)?(-h[0-9]+)?\.jpg)|(tiles-[0-9]+\.jpg)|images\.m3u8|thumbnails\.vtt'; then
    case ${path%/*} in
    /protected/?*.mp4 | /protected/?*.m4v | /protected/?*.m4a | /protected/?*.mov | /protected/?*.urlset)
        film=${path%/*}
        ;;
    esac
fi
expires=$(($(date +%s) + lifetime))
token=$(printf '%s' "$expires$film $secret" | md5sum | cut -c1-32 | tr a-f A-F |
    basenc --base16 -d | basenc --base64url | tr -d '=')
if [ "$film" = "$path" ]; then
    printf '%s?md5=%s&expires=%s\n' "$path" "$token" "$expires"
else
    printf '/s/%s/%s%s\n' "$token" "$expires" "$path"
fi
