#!/usr/bin/env python3
"""A link for lighttpd.conf + secdownload.lua.

    MP4_LINK_SECRET=change-this-secret python3 lighttpd_link.py /film.mp4 [CREATED]
    prints /dl/<token>/<hex-time>/film.mp4   (append ?start=30&end=45 as you like)
    MP4_LINK_SECRET=change-this-secret python3 lighttpd_link.py /film.mp4/master.m3u8
    prints /dl/<token>/<hex-time>/film.mp4/master.m3u8   (or /manifest.mpd)

Or paste lighttpd_link() into your site. `path` is the film's path inside the
protected folder (here /srv/videos/protected/film.mp4 -> "/film.mp4"), starting
with "/", optionally followed by the name of one of the film's outputs
(master.m3u8, manifest.mpd; index-1.m3u8, init-1.mp4, seg-1-1.m4s, ...): a
presentation link, whose token covers the film's path only, so it opens the film
and everything under it (the playlists' URLs are relative). `created` is the
link's CREATION time in Unix seconds (default: now): lighttpd's hex-time is when
the link was made, not when it expires. The link opens while the server's clock
is within `timeout` (secdownload.lua: 3600 s) of it and answers 410 after that,
also in the middle of a presentation. `secret` is the `secret` of secdownload.lua.
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
FILM = re.compile(r"/.+\.(mp4|m4v|m4a|mov)")


def film_of(path):
    """The part of `path` the token covers (secdownload.lua's film_of): without
    its last segment if that names an output of the film before it."""
    film, _, last = path.rpartition("/")
    if OUTPUT.fullmatch(last) and FILM.fullmatch(film):
        return film
    return path


def lighttpd_link(path, secret, created=None):
    if not path.startswith("/"):
        raise ValueError("the path must start with /: %r" % path)
    if "//" in path or any(s in (".", "..") for s in path.split("/")):
        raise ValueError("no //, . or .. segments: %r" % path)
    hextime = "%08x" % int(time.time() if created is None else created)
    # The token covers the path as lighttpd decodes it; the link carries it encoded.
    token = hashlib.md5((secret + film_of(path) + hextime).encode()).hexdigest()
    return "/dl/%s/%s%s" % (token, hextime, urllib.parse.quote(path))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or "MP4_LINK_SECRET" not in os.environ:
        sys.exit("usage: MP4_LINK_SECRET=... lighttpd_link.py "
                 "/path/in/protected/folder.mp4[/master.m3u8] [created-unix-time]")
    created = int(sys.argv[2]) if len(sys.argv) == 3 else None
    try:
        print(lighttpd_link(sys.argv[1], os.environ["MP4_LINK_SECRET"], created))
    except ValueError as e:
        print("lighttpd_link.py: %s" % e, file=sys.stderr)
        sys.exit(2)
