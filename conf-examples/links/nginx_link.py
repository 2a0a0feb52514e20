#!/usr/bin/env python3
"""A link for nginx.conf's protected folder.

    MP4_LINK_SECRET=change-this-secret python3 nginx_link.py /protected/film.mp4 [LIFETIME]
    prints /protected/film.mp4?md5=<token>&expires=<EXPIRES>   (append &start=30)
    MP4_LINK_SECRET=change-this-secret python3 nginx_link.py /protected/film.mp4/master.m3u8
    prints /s/<token>/<EXPIRES>/protected/film.mp4/master.m3u8   (or /manifest.mpd)

Or paste nginx_link() into your site. `path` is the URL path, starting with
/protected/. A path that ends in the name of one of the film's outputs
(master.m3u8, manifest.mpd; index-1.m3u8, init-1.mp4, seg-1-1.m4s, ...) gets a
presentation link: token and expiry in the path, the token over the film's path
only, so it opens the film and everything under it (the playlists' URLs are
relative). `expires` is the link's EXPIRY time in Unix seconds (default: now +
`lifetime`, 3600 s): nginx answers 410 after it, also in the middle of a
presentation. Not the creation time, as lighttpd's hex-time is. `secret` is the
one at the end of secure_link_md5.
"""
import base64
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
FILM = re.compile(r"/protected/.+\.(mp4|m4v|m4a|mov|urlset)")


def film_of(path):
    """The part of `path` the token covers: without its last segment if that
    names an output of the film before it."""
    film, _, last = path.rpartition("/")
    if OUTPUT.fullmatch(last) and FILM.fullmatch(film):
        return film
    return path


def nginx_link(path, secret, lifetime=3600, expires=None):
    if not path.startswith("/protected/"):
        raise ValueError("the path must start with /protected/: %r" % path)
    if "//" in path or any(s in (".", "..") for s in path.split("/")):
        raise ValueError("no //, . or .. segments: %r" % path)
    if expires is None:
        expires = int(time.time()) + lifetime
    film = film_of(path)
    # nginx hashes the path decoded; the link carries it encoded.
    digest = hashlib.md5(("%d%s %s" % (expires, film, secret)).encode()).digest()
    token = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    if film == path:
        return "%s?md5=%s&expires=%d" % (urllib.parse.quote(path), token, expires)
    return "/s/%s/%d%s" % (token, expires, urllib.parse.quote(path))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or "MP4_LINK_SECRET" not in os.environ:
        sys.exit("usage: MP4_LINK_SECRET=... nginx_link.py /protected/film.mp4[/master.m3u8] "
                 "[lifetime-seconds]")
    lifetime = int(sys.argv[2]) if len(sys.argv) == 3 else 3600
    try:
        print(nginx_link(sys.argv[1], os.environ["MP4_LINK_SECRET"], lifetime))
    except ValueError as e:
        print("nginx_link.py: %s" % e, file=sys.stderr)
        sys.exit(2)
