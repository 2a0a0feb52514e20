#!/bin/sh
# A download link for nginx.conf's secure_link location:
#   MP4_LINK_SECRET=change-this-secret nginx-link.sh /protected/film.mp4 [LIFETIME]
#   prints /protected/film.mp4?md5=<token>&expires=<EXPIRES>   (append &start=30)
# /protected/film.mp4  the URL path, starting with /protected/; letters, digits
#             and - _ . / only (nginx_link.py percent-encodes any other name).
# LIFETIME    seconds from now until the link expires; default 3600.
#             nginx's expires is the link's EXPIRY time (Unix seconds): after it
#             nginx answers 410. Not the creation time, as lighttpd's hex-time is.
# MP4_LINK_SECRET  the secret at the end of secure_link_md5 in nginx.conf.
# token = base64url(md5("EXPIRES/protected/film.mp4 SECRET")) without "=";
# only coreutils (md5sum, basenc), or: ... | openssl md5 -binary | openssl base64 | tr +/ -_ | tr -d =
set -eu
usage="usage: MP4_LINK_SECRET=... nginx-link.sh /protected/film.mp4 [lifetime-seconds]"
path=${1:?$usage}
lifetime=${2:-3600}
secret=${MP4_LINK_SECRET:?set MP4_LINK_SECRET to the secret in nginx.conf}
case $path in
/protected/*) ;;
*) echo "nginx-link.sh: the path must start with /protected/: $path" >&2; exit 2 ;;
esac
case $path in
*[!A-Za-z0-9/._-]* | *//* | */./* | */../* | */. | */..)
    echo "nginx-link.sh: use letters, digits, - _ . / and no // . .. segments: $path" >&2
    exit 2
    ;;
esac
expires=$(($(date +%s) + lifetime))
token=$(printf '%s' "$expires$path $secret" | md5sum | cut -c1-32 | tr a-f A-F |
    basenc --base16 -d | basenc --base64url | tr -d '=')
printf '%s?md5=%s&expires=%s\n' "$path" "$token" "$expires"
