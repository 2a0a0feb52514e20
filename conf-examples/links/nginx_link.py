#!/usr/bin/env python3
"""A download link for nginx.conf's secure_link location.

    MP4_LINK_SECRET=change-this-secret python3 nginx_link.py /protected/film.mp4 [LIFETIME]
    prints /protected/film.mp4?md5=<token>&expires=<EXPIRES>   (append &start=30)

Or paste nginx_link() into your site. `path` is the URL path, starting with
/protected/. `expires` is the link's EXPIRY time in Unix seconds (default: now
+ `lifetime`, 3600 s): nginx answers 410 after it. Not the creation time, as
lighttpd's hex-time is. `secret` is the one at the end of secure_link_md5.
"""
import base64
import hashlib
import os
import sys
import time
import urllib.parse


def nginx_link(path, secret, lifetime=3600, expires=None):
    if not path.startswith("/protected/"):
        raise ValueError("the path must start with /protected/: %r" % path)
    if "//" in path or any(s in (".", "..") for s in path.split("/")):
        raise ValueError("no //, . or .. segments: %r" % path)
    if expires is None:
        expires = int(time.time()) + lifetime
    # nginx hashes $uri: the path decoded; the link carries it encoded.
    digest = hashlib.md5(("%d%s %s" % (expires, path, secret)).encode()).digest()
    token = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return "%s?md5=%s&expires=%d" % (urllib.parse.quote(path), token, expires)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or "MP4_LINK_SECRET" not in os.environ:
        sys.exit("usage: MP4_LINK_SECRET=... nginx_link.py /protected/film.mp4 [lifetime-seconds]")
    lifetime = int(sys.argv[2]) if len(sys.argv) == 3 else 3600
    print(nginx_link(sys.argv[1], os.environ["MP4_LINK_SECRET"], lifetime))
