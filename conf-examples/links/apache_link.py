#!/usr/bin/env python3
"""A link for apache.conf's protected folder.

    MP4_LINK_SECRET=change-this-secret python3 apache_link.py /protected/film.mp4 [LIFETIME]
    prints /s/<token>/<EXPIRES>/protected/film.mp4   (append ?start=30 as you like)
    MP4_LINK_SECRET=change-this-secret python3 apache_link.py /protected/film.mp4/master.m3u8
    prints /s/<token>/<EXPIRES>/protected/film.mp4/master.m3u8   (or /manifest.mpd)

Or paste apache_link() into your site. `path` is the URL path of a film (.mp4
.m4v .m4a .mov), starting with /protected/, optionally followed by the name of
one of the film's outputs (master.m3u8, manifest.mpd; index-1.m3u8, init-1.mp4,
seg-1-1.m4s, ...). The token covers the film's path only, so one link opens the
film and everything under it (the playlists' URLs are relative). `expires` is the
link's EXPIRY time in Unix seconds (default: now + `lifetime`, 3600 s), as
nginx's: Apache answers 410 after it, also in the middle of a presentation.
`secret` is the one in apache.conf's md5('$2$3 ...') condition.
"""
import hashlib
import os
import re
import sys
import time
import urllib.parse

OUTPUT = re.compile(r"master\.m3u8|manifest\.mpd|index-(f[0-9]+-)?[0-9]+\.m3u8"
                    r"|init-(f[0-9]+-)?[0-9]+\.mp4|seg-[0-9]+-(f[0-9]+-)?[0-9]+\.m4s"
                    r"|subs-(f[0-9]+-)?[0-9]+\.m3u8|subs-([0-9]+-)?(f[0-9]+-)?[0-9]+\.vtt"
                    r"|iframes-(f[0-9]+-)?[0-9]+\.m3u8|key-[0-9]+-(f[0-9]+-)?[0-9]+\.m4s"
                    r"|encryption\.key|thumb-[0-9]+(-w[0-9]+)?(-h[0-9]+)?\.jpg|tiles-[0-9]+\.jpg"
                    r"|images\.m3u8|thumbnails\.vtt")
FILM = re.compile(r"/protected/[^?]+\.(mp4|m4v|m4a|mov)")


def apache_link(path, secret, lifetime=3600, expires=None):
    if "//" in path or any(s in (".", "..") for s in path.split("/")):
        raise ValueError("no //, . or .. segments: %r" % path)
    film, _, last = path.rpartition("/")
    if not OUTPUT.fullmatch(last):
        film = path
    if not FILM.fullmatch(film):
        raise ValueError("name a film under /protected/ (.mp4 .m4v .m4a .mov), no '?': %r"
                         % path)
    if expires is None:
        expires = int(time.time()) + lifetime
    # Apache hashes the path decoded; the link carries it encoded.
    token = hashlib.md5(("%d%s %s" % (expires, film, secret)).encode()).hexdigest()
    return "/s/%s/%d%s" % (token, expires, urllib.parse.quote(path))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or "MP4_LINK_SECRET" not in os.environ:
        sys.exit("usage: MP4_LINK_SECRET=... apache_link.py /protected/film.mp4[/master.m3u8] "
                 "[lifetime-seconds]")
    lifetime = int(sys.argv[2]) if len(sys.argv) == 3 else 3600
    try:
        print(apache_link(sys.argv[1], os.environ["MP4_LINK_SECRET"], lifetime))
    except ValueError as e:
        print("apache_link.py: %s" % e, file=sys.stderr)
        sys.exit(2)
