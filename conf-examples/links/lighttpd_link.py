#!/usr/bin/env python3
"""A download link for lighttpd.conf + secdownload.lua.

    MP4_LINK_SECRET=change-this-secret python3 lighttpd_link.py /film.mp4 [CREATED]
    prints /dl/<token>/<hex-time>/film.mp4   (append ?start=30&end=45 as you like)

Or paste lighttpd_link() into your site. `path` is the film's path inside the
protected folder (here /srv/videos/protected/film.mp4 -> "/film.mp4"), starting
with "/". `created` is the link's CREATION time in Unix seconds (default: now):
lighttpd's hex-time is when the link was made, not when it expires. The link
opens while the server's clock is within `timeout` (secdownload.lua: 3600 s) of
it and answers 410 after that. `secret` is the `secret` of secdownload.lua.
"""
import hashlib
import os
import sys
import time
import urllib.parse


def lighttpd_link(path, secret, created=None):
    if not path.startswith("/"):
        raise ValueError("the path must start with /: %r" % path)
    if "//" in path or any(s in (".", "..") for s in path.split("/")):
        raise ValueError("no //, . or .. segments: %r" % path)
    hextime = "%08x" % int(time.time() if created is None else created)
    # The token covers the path as lighttpd decodes it; the link carries it encoded.
    token = hashlib.md5((secret + path + hextime).encode()).hexdigest()
    return "/dl/%s/%s%s" % (token, hextime, urllib.parse.quote(path))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or "MP4_LINK_SECRET" not in os.environ:
        sys.exit("usage: MP4_LINK_SECRET=... lighttpd_link.py /path/in/protected/folder.mp4 "
                 "[created-unix-time]")
    created = int(sys.argv[2]) if len(sys.argv) == 3 else None
    print(lighttpd_link(sys.argv[1], os.environ["MP4_LINK_SECRET"], created))
